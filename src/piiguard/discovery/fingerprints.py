"""Copy fingerprints: keyed Bloom filters of registered collections' customer keys and e-mails."""

from __future__ import annotations

from collections.abc import Sequence

from piiguard.catalog import Catalog
from piiguard.discovery.base import CopyLink
from piiguard.discovery.settings import DiscoverySettings
from piiguard.model import Store


def load_key(settings: DiscoverySettings) -> bytes:
    """The discovery key from ``key_env`` / ``key_file``; ConfigError naming the setting when it is
    missing, unreadable or shorter than MIN_KEY_BYTES."""
    raise NotImplementedError


def key_id(key: bytes) -> str:
    """A short keyed identifier of the key (safe to store), never the key."""
    raise NotImplementedError


def match(store: Store, catalog: Catalog, key: bytes, *, limit: int = 100_000,
          collections: Sequence[str] = ()) -> list[CopyLink]:
    """Read (up to ``limit`` records of) each collection of ``store`` and link it to every fingerprinted
    source collection whose people it holds."""
    raise NotImplementedError
