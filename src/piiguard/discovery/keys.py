"""The discovery key: by reference (an environment variable or a file only its owner can read), never
inline; the fingerprints and the canaries are keyed with it, and the catalog keeps only its id."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from pathlib import Path

from piiguard import safefile
from piiguard.discovery.settings import MIN_KEY_BYTES, DiscoverySettings
from piiguard.errors import ConfigError, FileRefused

KEY_HINT = "make one with `head -c 32 /dev/urandom | base64`, put it in the variable or a file only you can read"
KEY_ID_LABEL = b"piiguard fingerprint key id"
MIN_DISTINCT = 8  # distinct byte values a key must hold (16 random bytes hold fewer with odds near 1e-13)
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


def decode_key(raw: bytes) -> bytes:
    """The key's bytes: hex when the text is all hex digits (even length), else base64 when it is
    valid padded base64, else the text as it is. The decoded length is what must reach MIN_KEY_BYTES:
    ``AAAAAAAAAAAAAA==`` is 10 bytes, not a 16-character passphrase."""
    text = raw.strip()
    try:
        ascii_text = text.decode("ascii")
    except UnicodeDecodeError:
        return text
    if _HEX.match(ascii_text):
        return bytes.fromhex(ascii_text)
    if len(ascii_text) % 4 == 0:
        try:
            return base64.b64decode(ascii_text, validate=True)
        except (binascii.Error, ValueError):
            pass
    return text


def load_key(settings: DiscoverySettings) -> bytes:
    """The discovery key from ``key_env`` / ``key_file``; ConfigError naming the setting when it is
    missing, unreadable or shorter than MIN_KEY_BYTES."""
    if settings.key_env:
        where = "discovery.key_env"
        value = os.environ.get(settings.key_env)
        if not value:
            raise ConfigError([f"{where}: the variable {settings.key_env} is not set"], hint=KEY_HINT)
        raw = value.encode("utf-8", "surrogateescape")
    elif settings.key_file:
        where = "discovery.key_file"
        try:
            raw = safefile.read_key(Path(settings.key_file), "discovery key")
        except FileRefused as exc:
            raise ConfigError([f"{where}: {exc.message}"], hint=exc.hint or KEY_HINT) from exc
    else:
        raise ConfigError(["discovery.key_env: no fingerprint key is configured (key_env or key_file)"],
                          hint="add `key_env: PIIGUARD_DISCOVERY_KEY` under discovery:, then " + KEY_HINT)
    key = decode_key(raw)
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError([f"{where}: the key holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed"],
                          hint=KEY_HINT)
    weak = weakness(key)
    if weak is not None:
        raise ConfigError([f"{where}: the key {weak}: it is not a random key"], hint=KEY_HINT)
    return key


def weakness(key: bytes) -> str | None:
    """Why ``key`` is plainly not random, or None. A sanity check against a placeholder or a typed
    pattern (``0000…``, ``ÄÄÄÄ…``, ``abcdabcd…``), not a proof of entropy: a key that passes may still
    be guessable (a word, a date), and only a key from a random source is safe. Refused: fewer than
    :data:`MIN_DISTINCT` distinct byte values, or a repetition of a shorter block (the key is a
    block repeated, the last copy possibly cut). Random keys of 16 bytes or more pass both with
    odds of failing far below 1e-12."""
    if len(set(key)) < MIN_DISTINCT:
        return f"holds only {len(set(key))} distinct byte value(s), at least {MIN_DISTINCT} are needed"
    for period in range(1, len(key) // 2 + 1):
        if key[period:] == key[:-period]:
            return f"repeats a {period}-byte block"
    return None


def key_id(key: bytes) -> str:
    """A short keyed identifier of the key (safe to store), never the key."""
    return hmac.digest(key, KEY_ID_LABEL, "sha256")[:8].hex()
