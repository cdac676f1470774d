"""The timeline's key, its keyed chain and its head.

Each timeline entry carries an HMAC-SHA256, under the **timeline key**, of the previous entry's HMAC
and its own content: editing or reordering an entry breaks it, and rewriting the chain needs the key.
The incident row keeps a *seal* — an HMAC of the entry count and the last entry's HMAC — so deleting
the last entries (or all of them) is found too. The *head* (``COUNT-HMAC``) is what leaves the
catalog with each step (printed by every ``incident`` command, written by ``export``, printed by
``verify``): ``verify --head`` checks the timeline against a head recorded elsewhere, which finds
even a rewrite made with the key, or a whole catalog put back from an older copy.

The key is given by reference and lives outside the catalog, looked for in this order:

1. ``PIIGUARD_TIMELINE_KEY``: an environment variable holding the key (at least 16 bytes);
2. ``PIIGUARD_TIMELINE_KEY_FILE``: the path of a file holding it (readable by its owner only);
3. ``timeline.key`` in the user's configuration folder (``~/.config/piiguard/`` on Linux): created
   there (0600, in a 0700 folder) with 32 random bytes the first time an incident needs it. Back it up
   apart from the catalog: without it no timeline can be verified.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_config_dir

from piiguard import safefile
from piiguard.errors import FileRefused, UsageError

KEY_ENV = "PIIGUARD_TIMELINE_KEY"
KEY_FILE_ENV = "PIIGUARD_TIMELINE_KEY_FILE"
MIN_KEY_BYTES = 16
GENESIS = "0" * 64
_HEAD = re.compile(r"^(\d+)-([0-9a-f]{64})$")


def default_key_path() -> Path:
    return Path(user_config_dir("piiguard")) / "timeline.key"


def load_key() -> bytes:
    """The timeline key, from the first reference that is set (see the module's documentation)."""
    value = os.environ.get(KEY_ENV)
    if value:
        raw = value.encode()
        where = f"${KEY_ENV}"
    else:
        path = Path(os.environ.get(KEY_FILE_ENV) or default_key_path())
        where = str(path)
        if not os.environ.get(KEY_FILE_ENV) and not os.path.lexists(path):
            try:
                safefile.write(path, secrets.token_hex(32) + "\n")
            except FileRefused:
                if not os.path.lexists(path):  # made meanwhile by a concurrent piiguard: read theirs
                    raise
        raw = safefile.read_key(path, "timeline key")
    if len(raw) < MIN_KEY_BYTES:
        raise UsageError(f"the timeline key ({where}) must hold at least {MIN_KEY_BYTES} bytes",
                         hint="e.g. openssl rand -hex 32")
    return raw


def key_id(key: bytes) -> str:
    """Names the key without revealing it (recorded when an incident opens, so a wrong key is named)."""
    return hmac.new(key, b"piiguard timeline key id", hashlib.sha256).hexdigest()[:16]


def entry_mac(key: bytes, prev: str, incident_id: int, seq: int, at: str, kind: str, body: str) -> str:
    return hmac.new(key, _material(prev, incident_id, seq, at, kind, body), hashlib.sha256).hexdigest()


def unkeyed_hash(prev: str, incident_id: int, seq: int, at: str, kind: str, body: str) -> str:
    """The chain hash of piiguard before timelines were keyed: recognised only to say so."""
    return hashlib.sha256(_material(prev, incident_id, seq, at, kind, body)).hexdigest()


def _material(prev: str, incident_id: int, seq: int, at: str, kind: str, body: str) -> bytes:
    return "\n".join((prev, str(incident_id), str(seq), at, kind, body)).encode()


@dataclass(frozen=True)
class Head:
    """How long the timeline is and how it ends: ``COUNT-HMAC`` (record it outside the catalog)."""

    entries: int
    last: str

    def __str__(self) -> str:
        return f"{self.entries}-{self.last}"

    @classmethod
    def parse(cls, text: str) -> Head:
        m = _HEAD.match(text.strip())
        if m is None or int(m.group(1)) < 1:
            raise UsageError("--head: expected COUNT-HMAC as printed by piiguard (e.g. 5-3f9a…, 64 hex digits)")
        return cls(int(m.group(1)), m.group(2))

    def seal(self, key: bytes, incident_id: int) -> str:
        """Kept on the incident row: only the key's holder can make the seal of a shorter timeline."""
        material = f"piiguard timeline head\n{incident_id}\n{self}".encode()
        return hmac.new(key, material, hashlib.sha256).hexdigest()
