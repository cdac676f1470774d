"""Access evidence for an exposure window: who connected, from where, and what they read.

One collector per engine, registered like every other plugin. Each writes the raw artefact it read
(a log excerpt, a query log, a client list) to the incident's evidence folder and returns its
SHA-256 with what it found: source addresses classed **allowed** (inside the store's
``allowed_networks``) or **unknown**, and the collections each unknown address read. When the store
kept no trail, the result says so instead of guessing.

- **postgres**: the server log named by the store's ``log_file`` option (log_connections gives each
  session's address; pgaudit's ``AUDIT:`` lines, when loaded with ``pgaudit.log`` including ``read``,
  give what it read). Without pgaudit, connections are known and reads are not.
- **mysql** (MariaDB): the server_audit plugin's log named by the store's ``log_file`` option.
- **clickhouse**: ``system.query_log`` for the window (address, user, tables named in the query).
- **opensearch**: the security plugin's audit indices (reads appear only when successful requests are
  audited).
- **redis**: the ``ACL LOG`` (refused attempts) and the current client list. Redis keeps no record
  of successful reads: the result says so.
- Other engines: no collector yet; the result says no evidence was collected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from piiguard.model import Store
from piiguard.registry import Registry


@dataclass
class Evidence:
    store: str
    artefact: str | None  # file name in the evidence folder
    sha256: str | None
    trail: bool  # whether the store kept any access trail for the window
    note: str
    addresses: dict[str, str] = field(default_factory=dict)  # address -> allowed | unknown
    reads: dict[str, list[str]] = field(default_factory=dict)  # unknown address -> collections read

    def read(self, address: str, names: Iterable[str]) -> None:
        """Record the collections an unknown address read, each once, in the order first seen."""
        reads = self.reads.setdefault(address, [])
        reads += [n for n in dict.fromkeys(names) if n not in reads]

    def summary(self) -> dict[str, Any]:
        return {"store": self.store, "artefact": self.artefact, "sha256": self.sha256, "trail": self.trail,
                "note": self.note, "addresses": self.addresses, "unknown_reads": self.reads}


def classify_address(store: Store, address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return "unknown"
    if ip.is_loopback and not store.allowed_networks:
        return "allowed"
    return "allowed" if any(ip in ipaddress.ip_network(n, strict=False) for n in store.allowed_networks) else "unknown"


class Collector(ABC):
    @abstractmethod
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path, *,
                timeout: float = 30.0) -> Evidence: ...


collectors: Registry[type[Collector]] = Registry("evidence collector", Collector)


def _save(folder: Path, name: str, data: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    (folder / name).chmod(0o600)
    return hashlib.sha256(data).hexdigest()


FROM = re.compile(r'\b(?:FROM|JOIN)\s+((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)', re.IGNORECASE)
PG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: \w+)?) \[(\d+)\] \w+:\s+(.*)$")


@collectors.register("postgres")
class PostgresLog(Collector):
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path, *,
                timeout: float = 30.0) -> Evidence:
        path = store.options.get("log_file")
        if not path:
            return Evidence(store.name, None, None, False, "no log_file option: the server log was not read")
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return Evidence(store.name, None, None, False, f"cannot read {path} ({exc.strerror})")
        hosts: dict[str, str] = {}
        window: list[str] = []
        audit = False
        ev = Evidence(store.name, None, None, True, "")
        for line in text.splitlines():
            m = PG_LINE.match(line)
            if m is None:
                continue
            at = _pg_time(m.group(1))
            if at is None or at < start or (end is not None and at > end):
                continue
            window.append(line)
            pid, message = m.group(2), m.group(3)
            received = re.match(r"connection received: host=(\S+)", message)
            if received:
                hosts[pid] = received.group(1)
                ev.addresses[received.group(1)] = classify_address(store, received.group(1))
            elif message.startswith("AUDIT: "):
                audit = True
                row = next(csv.reader(io.StringIO(message[len("AUDIT: "):])), [])
                host = hosts.get(pid, "local socket")
                if len(row) > 7 and row[3] == "READ" and ev.addresses.get(host) != "allowed":
                    # pgaudit.log_relation = on names each relation; otherwise the statement's FROM does
                    ev.read(host, [row[6]] if row[6] else [n.replace('"', "") for n in FROM.findall(row[7])])
        ev.artefact = f"{store.name}-postgres-log.txt"
        ev.sha256 = _save(folder, ev.artefact, ("\n".join(window) + "\n").encode())
        ev.note = (f"{len(window)} log lines in the window; " +
                   ("pgaudit recorded what each session read" if audit else
                    "no pgaudit lines: connections are known, what they read is not"))
        return ev


def _pg_time(text: str) -> datetime | None:
    parts = text.split()
    try:
        value = datetime.fromisoformat(" ".join(parts[:2]))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if len(parts) > 2 and parts[2] in ("UTC", "GMT") else value.astimezone(UTC)


@collectors.register("mysql")
class MariaDBAudit(Collector):
    """MariaDB's server_audit plugin log (the store's ``log_file`` option): CONNECT lines give each
    connection's address, TABLE events (``READ``) and queries give what it read."""

    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path, *,
                timeout: float = 30.0) -> Evidence:
        path = store.options.get("log_file")
        if not path:
            return Evidence(store.name, None, None, False, "no log_file option: the audit log was not read")
        try:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            return Evidence(store.name, None, None, False, f"cannot read {path} ({exc.strerror})")
        ev = Evidence(store.name, f"{store.name}-mariadb-audit.txt", None, True, "")
        window = []
        for row in csv.reader(lines, quotechar="'", escapechar="\\"):
            if len(row) < 9:
                continue
            try:
                at = datetime.strptime(row[0], "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                continue
            if at < start or (end is not None and at > end):
                continue
            window.append(",".join(row))
            host, operation, database, target = row[3], row[6], row[7], row[8]
            ev.addresses.setdefault(host, classify_address(store, host))
            if ev.addresses[host] != "unknown":
                continue
            names = [f"{database}.{target}" if database and "." not in target else target] if operation == "READ" \
                else [n.strip("`") for n in FROM.findall(target)] if operation == "QUERY" else []
            if names:
                ev.read(host, names)
        ev.sha256 = _save(folder, str(ev.artefact), ("\n".join(window) + "\n").encode())
        ev.note = f"{len(window)} audit events in the window"
        return ev


@collectors.register("redis")
class RedisTrail(Collector):
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path, *,
                timeout: float = 30.0) -> Evidence:
        from piiguard.checks.redis import RedisTarget

        target = RedisTarget(store, timeout=timeout)
        try:
            session = target.session
            log = session.acl_log()
            clients = session.client_list()
        finally:
            target.close()
        raw = repr({"acl_log": log, "clients": [{k: c.get(k) for k in ("addr", "user", "age", "cmd")}
                                                for c in clients]}).encode()
        ev = Evidence(store.name, f"{store.name}-redis-trail.txt", None, False,
                      "Redis keeps no record of successful reads: who read what in the window cannot be known; "
                      "ACL LOG lists refused attempts only, CLIENT LIST the clients connected now")
        ev.sha256 = _save(folder, str(ev.artefact), raw)
        for c in clients:
            address = str(c.get("addr", "")).rsplit(":", 1)[0]
            if address:
                ev.addresses[address] = classify_address(store, address)
        return ev


@collectors.register("clickhouse")
class ClickHouseQueryLog(Collector):
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path, *,
                timeout: float = 30.0) -> Evidence:
        from piiguard.engines.clickhouse import post

        until = (end or datetime.now(start.tzinfo)).strftime("%Y-%m-%d %H:%M:%S")
        query = ("SELECT toString(address), user, query FROM system.query_log WHERE type = 1 AND "
                 f"event_time BETWEEN toDateTime('{start.strftime('%Y-%m-%d %H:%M:%S')}', 'UTC') AND "
                 f"toDateTime('{until}', 'UTC') FORMAT TSV")
        body = post(store, query, timeout=timeout)
        ev = Evidence(store.name, f"{store.name}-clickhouse-query-log.tsv", None, True, "")
        ev.sha256 = _save(folder, str(ev.artefact), body.encode())
        for line in body.splitlines():
            address, _user, sql = [*line.split("\t", 2), "", ""][:3]
            address = address.removeprefix("::ffff:")
            ev.addresses[address] = classify_address(store, address)
            if ev.addresses[address] == "unknown":
                tables = [t.strip("`") for t in re.findall(r"\bFROM\s+([\w.`]+)", sql, flags=re.IGNORECASE)]
                if tables:
                    ev.read(address, tables)
        ev.note = f"{len(body.splitlines())} queries in the window"
        return ev


@collectors.register("opensearch")
class OpenSearchAudit(Collector):
    """The security plugin's ``security-auditlog-*`` indices: each event's remote address, and the
    indices or REST path it touched. With the plugin's default configuration, successful reads are
    not audited (the AUTHENTICATED and GRANTED_PRIVILEGES categories are off): the note says so."""

    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path, *,
                timeout: float = 30.0) -> Evidence:
        import json

        from opensearchpy import exceptions as oe

        from piiguard.connectors.opensearch import errors
        from piiguard.engines.opensearch import client

        es = client(store, timeout)
        window = {"gte": start.isoformat()} | ({"lte": end.isoformat()} if end is not None else {})
        body = {"size": 10_000, "sort": [{"@timestamp": "asc"}], "query": {"range": {"@timestamp": window}}}
        try:
            with errors(store):
                hits = es.search(index="security-auditlog-*", body=body)["hits"]["hits"]
        except oe.NotFoundError:
            return Evidence(store.name, None, None, False, "no security-auditlog index: the cluster kept no trail")
        events = [h["_source"] for h in hits]
        ev = Evidence(store.name, f"{store.name}-opensearch-audit.jsonl", None, True, "")
        ev.sha256 = _save(folder, str(ev.artefact), "".join(json.dumps(e, sort_keys=True) + "\n"
                                                           for e in events).encode())
        granted = 0
        for e in events:
            address = str(e.get("audit_request_remote_address") or "")
            if not address:
                continue
            ev.addresses.setdefault(address, classify_address(store, address))
            if e.get("audit_category") in ("GRANTED_PRIVILEGES", "AUTHENTICATED"):
                granted += 1
            if ev.addresses[address] == "unknown":
                touched = [str(i) for i in e.get("audit_trace_indices") or e.get("audit_trace_resolved_indices") or []]
                path = str(e.get("audit_rest_request_path") or "")
                if not touched and "/_search" in path:
                    touched = [path.split("/_search")[0].strip("/") or "*"]
                ev.read(address, [t for t in touched if not t.startswith(".")])
        ev.note = f"{len(events)} audit events in the window" + (
            "" if granted else "; successful requests are not audited here (AUTHENTICATED and GRANTED_PRIVILEGES "
                               "are off): what was read cannot be known")
        return ev


def collect(store: Store, start: datetime, end: datetime | None, folder: Path, *,
            timeout: float = 30.0) -> Evidence:
    """The store's access evidence for the window; every network step bounded by ``timeout``."""
    if store.engine not in collectors:
        return Evidence(store.name, None, None, False,
                        f"piiguard has no evidence collector for {store.engine} yet: nothing was collected")
    return collectors.get(store.engine)().collect(store, start, end, folder, timeout=timeout)
