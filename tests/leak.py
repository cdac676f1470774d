"""The leak fixture: one place that searches everything piiguard emitted during a test for the values
the test seeded.

Every integration and adversarial test runs under it (``tests/conftest.py`` makes it autouse there).
Seeded values come from two places:

- every call of :func:`piiguard.synthetic.rows` (the distinctive PII columns: e-mails, phones, streets,
  MACs, SSIDs, serials, media URLs, tokens, keys, hashes, cards, IBANs, SSNs, national ids, customer ids,
  IP addresses, coordinates), recorded for the whole session;
- ``leaks.seed(values)`` in a test that writes its own rows.

What is searched, after the test:

- its captured stdout and stderr, and the stdout/stderr of every ``piiguard`` subprocess it ran;
- every HTTP body a :class:`helpers.Listener` received (webhooks, lineage);
- every file under the test's ``tmp_path`` (catalogs with their ``-wal``/``-shm``, reports, bundles,
  masked copies written to files, SARIF/JSON outputs), except the ones the test declared:
  ``leaks.source(path)`` — the test's own input data — and ``leaks.holds_people(path)`` — a subject
  list or a notice spool, which must hold people's data: those are checked to be 0600 instead;
- the catalog the test's commands used (``PIIGUARD_CATALOG`` is set to a file under ``tmp_path``).

Values shorter than 8 characters are not seeded (``male``, ``42``: they occur in any text). A hit fails
the test at teardown and names the artefact and the seeded column, never the value.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hyperscan

MIN_LENGTH = 8
# synthetic columns whose values are distinctive enough that seeing one outside the store is a leak
SEEDED_LABELS = frozenset({
    "email", "phone", "street-address", "mac-address", "wifi-ssid", "device-serial", "personal-media-url",
    "oauth-token", "api-key", "password-hash", "credit-card", "iban", "us-ssn", "national-id",
    "customer-identifier", "ip-address", "geo-coordinates",
})


@dataclass
class Stats:
    tests: int = 0
    artefacts: int = 0
    bytes: int = 0
    hits: list[str] = field(default_factory=list)


STATS = Stats()
_session_seeds: dict[str, str] = {}  # value -> label


def record_synthetic(data: dict[str, list[object]], columns: Iterable[Any]) -> None:
    for c in columns:
        if c.label in SEEDED_LABELS:
            for v in data.get(c.name, ()):
                if _seedable(c.label, v):
                    _session_seeds.setdefault(str(v), c.name)


def _glued(data: bytes, i: int) -> bool:
    return 0 <= i < len(data) and (chr(data[i]).isalnum() or data[i] == ord("."))


def _seedable(label: str | None, v: object) -> bool:
    # an IPv4 address ending in .0 is its own /24 network: the ip-prefix masker writes it, rightly
    return isinstance(v, str) and len(v) >= MIN_LENGTH and not (label == "ip-address" and v.endswith(".0"))


class Matcher:
    """Hyperscan over the seeded literals: one pass per artefact, whatever the number of values."""

    def __init__(self, seeds: dict[str, str]) -> None:
        self.values = list(seeds)
        self.labels = [seeds[v] for v in self.values]
        self.encoded = [v.encode() for v in self.values]
        self.db: Any = None
        if self.values:
            self.db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.db.compile(expressions=[v.encode() for v in self.values], ids=list(range(len(self.values))),
                            flags=0, literal=True)

    def find(self, data: bytes) -> list[str]:
        found: list[int] = []
        if self.db is None or not data:
            return []

        def on_match(id_: int, start: int, end: int, flags: int, ctx: object) -> bool | None:
            # a whole value, not a piece of a longer token (``1.2.3.4`` inside ``11.2.3.45``)
            begin = end - len(self.encoded[id_])
            if _glued(data, begin - 1) or _glued(data, end):
                return None
            found.append(id_)
            return True  # the first hit is enough

        with contextlib.suppress(hyperscan.ScanTerminated):
            self.db.scan(data, match_event_handler=on_match)
        return [self.labels[i] for i in found]


class Leaks:
    """Per test: what it seeded, what it declared, and what it emitted."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.seeds: dict[str, str] = {}
        self.sources: list[Path] = []
        self.people_files: list[Path] = []
        self.texts: list[tuple[str, bytes]] = []

    # --- what a test declares
    def seed(self, values: Iterable[object], label: str = "seeded") -> None:
        for v in values:
            if isinstance(v, str) and len(v) >= MIN_LENGTH:
                self.seeds.setdefault(v, label)

    def source(self, path: str | os.PathLike[str]) -> None:
        self.sources.append(Path(path).resolve())

    def holds_people(self, path: str | os.PathLike[str]) -> None:
        self.people_files.append(Path(path).resolve())

    def emitted(self, where: str, data: str | bytes | None) -> None:
        if data:
            self.texts.append((where, data.encode() if isinstance(data, str) else data))

    # --- the search
    def _declared(self, p: Path, among: list[Path]) -> bool:
        return any(p == d or d in p.parents for d in among)

    def artefacts(self) -> Iterator[tuple[str, bytes]]:
        yield from self.texts
        if not self.tmp_path.exists():
            return
        for p in sorted(self.tmp_path.rglob("*")):
            if p.is_symlink() or not p.is_file():
                continue
            rp = p.resolve()
            if self._declared(rp, self.sources) or self._declared(rp, self.people_files):
                continue
            try:
                yield str(p.relative_to(self.tmp_path)), p.read_bytes()
            except OSError:
                continue

    def problems(self) -> list[str]:
        out: list[str] = []
        seeds = {**_session_seeds, **self.seeds}
        matcher = Matcher(seeds)
        for where, data in self.artefacts():
            STATS.artefacts += 1
            STATS.bytes += len(data)
            out += [f"{where}: holds a seeded {label} value" for label in matcher.find(data)]
        for p in self.people_files:
            if p.exists() and p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077:
                out.append(f"{p.name}: holds people's data but is {oct(stat.S_IMODE(p.stat().st_mode))}, not 0600")
        return out


def watch_subprocesses(leaks: Leaks, monkeypatch: Any) -> None:
    """Record the output of every piiguard command the test runs in a subprocess."""
    real_run = subprocess.run

    def run(*args: Any, **kwargs: Any) -> Any:
        result = real_run(*args, **kwargs)
        cmd = args[0] if args else kwargs.get("args", "")
        text = " ".join(map(str, cmd)) if isinstance(cmd, list | tuple) else str(cmd)
        if "piiguard" in text:
            leaks.emitted(f"subprocess `{text[:60]}` stdout", result.stdout)
            leaks.emitted(f"subprocess `{text[:60]}` stderr", result.stderr)
        return result

    monkeypatch.setattr(subprocess, "run", run)
