"""Copy fingerprints: keyed Bloom filters of registered collections' customer keys and e-mails."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from pathlib import Path

from piiguard import safefile
from piiguard.catalog import Catalog
from piiguard.discovery.base import CopyLink
from piiguard.discovery.settings import MIN_KEY_BYTES, DiscoverySettings
from piiguard.errors import ConfigError, PiiguardError
from piiguard.model import Store


def load_key(settings: DiscoverySettings) -> bytes:
    """The discovery key from ``key_env`` / ``key_file``; ConfigError naming the setting when it is
    missing, unreadable or shorter than MIN_KEY_BYTES.

    (Written by helper E so canaries work before helper D's version is merged; D's version wins.)"""
    hint = "e.g. openssl rand -hex 32 > discovery.key; chmod 600 discovery.key; discovery: {key_file: discovery.key}"
    if settings.key_env:
        value = os.environ.get(settings.key_env)
        if value is None:
            raise ConfigError([f"discovery.key_env: the variable {settings.key_env} is not set"], hint=hint)
        raw, where = value.strip().encode(), "discovery.key_env"
    elif settings.key_file:
        try:
            raw = safefile.read_key(Path(settings.key_file), "discovery key")
        except PiiguardError as exc:
            raise ConfigError([f"discovery.key_file: {exc.message}"], hint=exc.hint or hint) from exc
        where = "discovery.key_file"
    else:
        raise ConfigError(["discovery.key_env: no discovery key is configured (key_env or key_file)"], hint=hint)
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError([f"{where}: the discovery key must hold at least {MIN_KEY_BYTES} bytes"], hint=hint)
    return raw


def key_id(key: bytes) -> str:
    """A short keyed identifier of the key (safe to store), never the key."""
    return hmac.new(key, b"piiguard discovery key id", hashlib.sha256).hexdigest()[:16]


def match(store: Store, catalog: Catalog, key: bytes, *, limit: int = 100_000,
          collections: Sequence[str] = ()) -> list[CopyLink]:
    """Read (up to ``limit`` records of) each collection of ``store`` and link it to every fingerprinted
    source collection whose people it holds."""
    raise NotImplementedError
