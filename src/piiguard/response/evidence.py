"""Access evidence for an exposure window: who connected, from where, and what they read.

One collector per engine, registered like every other plugin. Each writes the raw artefact it read
(a log excerpt, a query log, a client list) to the incident's evidence folder and returns its
SHA-256 with what it found: source addresses classed **allowed** (inside the store's
``allowed_networks``) or **unknown**, and the collections each unknown address read. When the store
kept no trail, the result says so instead of guessing.

- **postgres**: the server log named by the store's ``log_file`` option, as the server writes it
  (stderr with its own ``log_line_prefix``, csvlog, jsonlog; times in its ``log_timezone``):
  log_connections or ``%h``/``%r`` give each session's address; pgaudit's ``AUDIT:`` lines, when
  loaded with ``pgaudit.log`` including ``read``, give what it read. Without pgaudit, connections are
  known and reads are not.
- **mysql** (MariaDB): the server_audit plugin's log named by the store's ``log_file`` option, in the
  server's local time (the ``log_timezone`` option, else the server's offset now).
- **clickhouse**: ``system.query_log`` for the window in UTC (address, user, tables named in the query).
- **opensearch**: the security plugin's audit indices, page by page up to a budget (reads appear only
  when successful requests are audited).
- **redis**: the ``ACL LOG`` (refused attempts) and the current client list. Redis keeps no record
  of successful reads: the result says so.
- Other engines: no collector yet; the result says no evidence was collected.

piiguard's own entries (its user *and* its address, :mod:`piiguard.response.own`) are left out of
what the result lists, counted, and said in the note; ``include_own`` (``--include-own``) keeps them.
The artefact always holds every entry of the window.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from piiguard import safefile
from piiguard.model import Store
from piiguard.registry import Registry
from piiguard.response import pglog
from piiguard.response.own import LOCAL_SOCKET, Identity, identity
from piiguard.response.pglog import LogFormat


@dataclass
class Evidence:
    store: str
    artefact: str | None  # file name in the evidence folder
    sha256: str | None
    trail: bool  # whether the store kept any access trail for the window
    note: str
    addresses: dict[str, str] = field(default_factory=dict)  # address -> allowed | unknown
    reads: dict[str, list[str]] = field(default_factory=dict)  # unknown address -> collections read
    own: int = 0  # entries attributed to piiguard itself (left out unless include_own)
    own_identity: str = ""  # who piiguard is in this trail: user and addresses
    own_included: bool = False

    def read(self, address: str, names: Iterable[str]) -> None:
        """Record the collections an unknown address read, each once, in the order first seen."""
        from piiguard.connectors.labels import label

        reads = self.reads.setdefault(address, [])  # a table's name can be a customer's value: labelled
        reads += [n for n in dict.fromkeys(label(n) for n in names) if n not in reads]

    def summary(self) -> dict[str, Any]:
        return {"store": self.store, "artefact": self.artefact, "sha256": self.sha256, "trail": self.trail,
                "note": self.note, "addresses": self.addresses, "unknown_reads": self.reads,
                "own_entries": self.own, "own_identity": self.own_identity, "own_included": self.own_included}


def classify_address(store: Store, address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return "unknown"
    if ip.is_loopback and not store.allowed_networks:
        return "allowed"
    return "allowed" if any(ip in ipaddress.ip_network(n, strict=False) for n in store.allowed_networks) else "unknown"


class Collector(ABC):
    def __init__(self, who: Identity | None = None, include_own: bool = False) -> None:
        self.who = who or Identity(None, frozenset())
        self.include_own = include_own

    def own(self, ev: Evidence, user: str | None, address: str | None, application: str | None = None) -> bool:
        """Whether a trail entry is piiguard's own and is left out (it is counted either way)."""
        if not self.who.matches(user, address, application):
            return False
        ev.own += 1
        return not self.include_own

    @abstractmethod
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path,
                force: bool = False, *, timeout: float = 30.0) -> Evidence: ...


collectors: Registry[type[Collector]] = Registry("evidence collector", Collector)


def _save(folder: Path, name: str, data: bytes, force: bool) -> str:
    """An artefact, 0600 in a 0700 folder; one already collected is replaced only with ``force`` (its hash
    is on the timeline: silently replacing it would make that entry point at nothing)."""
    safefile.write(folder / name, data, force=force)
    return hashlib.sha256(data).hexdigest()


# An identifier as SQL quotes it ("a""b", `a``b`, with backslash escapes in MySQL and ClickHouse), or bare;
# a bare name runs to the next space or punctuation, so that "alice@example.com" is never cut at "@".
_IDENT = r'(?:"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`|[^\s,;()"`.]+)'
FROM = re.compile(rf'\b(?:FROM|JOIN)\s+({_IDENT}(?:\s*\.\s*{_IDENT})?)', re.IGNORECASE)
_PART = re.compile(_IDENT)


_NAME = re.compile(rf"\s*\(*\s*({_IDENT}(?:\s*\.\s*{_IDENT})?)")
_ALIAS = re.compile(rf"\s+(?:AS\s+)?({_IDENT})", re.IGNORECASE)
_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.DOTALL)
_FROM_AT = re.compile(r"\b(?:FROM|JOIN)\b", re.IGNORECASE)
_NOT_ALIAS = {"where", "join", "left", "right", "inner", "outer", "cross", "full", "on", "using", "group", "order",
              "limit", "union", "final", "sample", "prewhere", "settings", "format", "natural", "straight_join",
              "having", "window", "for", "into", "lateral", "except", "intersect", "array"}


def _unquoted(name: str) -> str:
    parts = []
    for part in _PART.findall(name):
        if part[:1] in ('"', "`") and len(part) > 1:
            q = part[0]
            part = re.sub(r"\\(.)", r"\1", part[1:-1].replace(q * 2, q))
        parts.append(part)
    return ".".join(parts)


def _named(sql: str) -> Iterator[str]:
    for at in _FROM_AT.finditer(sql):
        pos = at.end()
        while (name := _NAME.match(sql, pos)) is not None:
            pos = name.end()
            found = _unquoted(name.group(1))
            if found and found.lower() not in ("select", "with", "values") and not found.startswith(("/*", "--")):
                yield found
            rest = sql[pos:pos + 1]
            if rest == "(":  # a table function (remote('h', db.t), s3(…)): every dotted name in its arguments
                close = sql.find(")", pos)
                inner = sql[pos + 1:close if close >= 0 else len(sql)]
                yield from (_unquoted(m) for m in re.findall(rf"{_IDENT}\s*\.\s*{_IDENT}", inner))
                pos = close + 1 if close >= 0 else len(sql)
            alias = _ALIAS.match(sql, pos)
            if alias is not None and alias.group(1).lower() not in _NOT_ALIAS:
                pos = alias.end()
            comma = re.compile(r"\s*\)*\s*,").match(sql, pos)
            if comma is None:
                break
            pos = comma.end()


def tables(sql: str) -> list[str]:
    """The tables a statement names after FROM or JOIN, unquoted (``"db"."t"``, `` `db`.`t` ``, ``db.t``):
    each of a comma list (``FROM s1, s2``), inside parentheses (``FROM(t)``), and the dotted names in a
    table function's arguments (``remote('h', db.t)``).

    The statement is read twice, as written and with its comments removed, and both readings count:
    comments are not simply skipped (MySQL's ``/*! … */`` runs, ``FROM/**/t`` hides a name from one
    reading only), because a read listed too many is better than one hidden."""
    out: dict[str, None] = {}
    for text in (sql, _COMMENT.sub(" ", sql)):
        out.update(dict.fromkeys(_named(text)))
    return list(out)


AUDIT_AT = re.compile(r"(?:^|[A-Z][A-Z0-9]*:\s+)AUDIT: ")


@collectors.register("postgres")
class PostgresLog(Collector):
    """The server log named by the store's ``log_file`` option, in the format the server writes:
    ``stderr`` with its own ``log_line_prefix``, ``csvlog`` or ``jsonlog``, times in its
    ``log_timezone``. Those settings come from the store's options (``log_line_prefix``,
    ``log_timezone``, ``log_format``) or else from the server itself (``pg_settings``, read-only)."""

    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path,
                force: bool = False, *, timeout: float = 30.0) -> Evidence:
        from piiguard.response.pglog import authorized, csv_rows, received_host, records, sniff

        path = store.options.get("log_file")
        if not path:
            return Evidence(store.name, None, None, False, "no log_file option: the server log was not read")
        try:
            # bytes, decoded: read_text's universal newlines would turn a statement's \r into a line end
            text = Path(path).read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            return Evidence(store.name, None, None, False, f"cannot read {path} ({exc.strerror})")
        fmt, source = log_format(store)
        hosts: dict[str, str] = {}
        sessions: dict[str, tuple[str, str | None]] = {}  # pid -> (user, application) it authenticated as
        window: list[str] = []
        audit = False
        ev = Evidence(store.name, None, None, True, "")
        for record in records(text, fmt):
            if record.at < start or (end is not None and record.at > end):
                continue
            window.append(record.raw)
            # A session's identity comes from the server's own connection records only: the whole
            # message must be one (pglog.RECEIVED/AUTHORIZED), "received" comes before the user is known,
            # and a session is bound once, by its first "authorized", until the pid's next "received".
            received = received_host(record.message) if not record.user else None
            host = record.host or received
            if received:  # a new session on this pid (pids are reused): what is known of the old one goes
                sessions.pop(record.pid, None)
            if host:
                hosts[record.pid] = host
            claimed = authorized(record.message)
            if (claimed is not None and record.pid not in sessions
                    and (record.user is None or record.user == claimed[0])):
                sessions[record.pid] = claimed
            session = sessions.get(record.pid)
            who = host or hosts.get(record.pid, LOCAL_SOCKET)
            user = record.user or (session[0] if session else None)
            application = record.application if record.application is not None else (
                session[1] if session else None)
            if received or self.own(ev, user, who, application):
                continue  # the session's user is not known yet, or it is piiguard's own
            if host or record.pid in hosts:
                ev.addresses.setdefault(who, classify_address(store, who))
            # Where the prefix prints client text (%a, %u, %d), an application_name holding "LOG:  …" moves
            # where the message seems to start: every "AUDIT: " after a severity is read, so that none
            # is hidden (a forged one can only add reads to its own session).
            for at in AUDIT_AT.finditer(record.message):
                audit = True
                row = next(csv_rows(record.message[at.end():]), [])
                if len(row) > 7 and row[3] == "READ" and ev.addresses.get(who) != "allowed":
                    # pgaudit.log_relation = on names each relation; otherwise the statement's FROM does
                    ev.read(who, [row[6]] if row[6] else tables(row[7]))
        ev.artefact = f"{store.name}-postgres-log.txt"
        ev.sha256 = _save(folder, ev.artefact, ("\n".join(window) + "\n").encode(), force)
        ev.note = (f"{len(window)} log records in the window ({sniff(text)}, log_timezone {fmt.timezone}, "
                   f"settings from {source}); " +
                   ("pgaudit recorded what each session read" if audit else
                    "no pgaudit lines: connections are known, what they read is not"))
        return ev


def log_format(store: Store) -> tuple[LogFormat, str]:
    """How the store's server writes its log, and where that was learned: the store's options win
    (an archived log may predate today's settings), then the server's settings, then the defaults."""
    from piiguard.response.pglog import LogFormat

    options = store.options
    keys = ("log_format", "log_line_prefix", "log_timezone")
    settings: dict[str, str] = {}
    source = "the store's options"
    if not all(k in options for k in keys):
        from piiguard.checks.postgres import PostgresTarget
        from piiguard.errors import StoreError

        target = PostgresTarget(store, timeout=3)
        try:
            settings = target.settings
            source = "the server's settings"
        except StoreError:
            source = "the defaults (the server could not be asked)"
        finally:
            target.close()
    destinations = [d.strip() for d in settings.get("log_destination", "stderr").split(",")]
    # the log_file names one file: a csv/json destination the server writes wins over plain stderr
    server_format = next((d for d in ("jsonlog", "csvlog") if d in destinations), "stderr")
    return LogFormat(options.get("log_format", server_format),
                     options.get("log_line_prefix", settings.get("log_line_prefix", "%m [%p] ")),
                     options.get("log_timezone", settings.get("log_timezone", "UTC"))), source


@collectors.register("mysql")
class MariaDBAudit(Collector):
    """MariaDB's server_audit plugin log (the store's ``log_file`` option): CONNECT lines give each
    connection's address, TABLE events (``READ``) and queries give what it read."""

    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path,
                force: bool = False, *, timeout: float = 30.0) -> Evidence:
        path = store.options.get("log_file")
        if not path:
            return Evidence(store.name, None, None, False, "no log_file option: the audit log was not read")
        try:
            lines = pglog.lines(Path(path).read_bytes().decode("utf-8", errors="replace"))  # at \n only
        except OSError as exc:
            return Evidence(store.name, None, None, False, f"cannot read {path} ({exc.strerror})")
        zone, zone_source = self.log_zone(store, timeout)  # asked after the log is read: its events are not in it
        ev = Evidence(store.name, f"{store.name}-mariadb-audit.txt", None, True, "")
        window = []
        for row in csv.reader(lines, quotechar="'", escapechar="\\"):
            if len(row) < 9:
                continue
            try:  # the plugin writes the server's local time
                at = datetime.strptime(row[0], "%Y%m%d %H:%M:%S").replace(tzinfo=zone).astimezone(UTC)
            except ValueError:
                continue
            if at < start or (end is not None and at > end):
                continue
            window.append(",".join(row))
            user, host, operation, database, target = row[2], row[3], row[6], row[7], row[8]
            if self.own(ev, user, host):
                continue
            ev.addresses.setdefault(host, classify_address(store, host))
            if ev.addresses[host] != "unknown":
                continue
            names = [f"{database}.{target}" if database and "." not in target else target] if operation == "READ" \
                else tables(target) if operation == "QUERY" else []
            if names:
                ev.read(host, names)
        ev.sha256 = _save(folder, str(ev.artefact), ("\n".join(window) + "\n").encode(), force)
        ev.note = f"{len(window)} audit events in the window (times in {zone_source})"
        return ev

    @staticmethod
    def log_zone(store: Store, timeout: float) -> tuple[tzinfo, str]:
        """The zone server_audit's times are in: the server's local time (its ``SYSTEM`` zone, whatever
        ``time_zone`` says). The store's ``log_timezone`` option (IANA) wins; else the server's offset now."""
        if store.options.get("log_timezone"):
            return pglog.zone(store.options["log_timezone"]), f"log_timezone {store.options['log_timezone']}"
        from piiguard.checks.mysql import MySQLTarget
        from piiguard.engines.mysql import driver_errors
        from piiguard.errors import PiiguardError

        target = MySQLTarget(store, timeout=min(timeout, 5))
        caught: tuple[type[BaseException], ...] = (PiiguardError, TypeError, *driver_errors())
        try:
            target.rows("SET SESSION time_zone = 'SYSTEM'")
            ((seconds,),) = target.rows("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())")
        except caught:  # UTC then, and the note says so
            return UTC, "UTC (the server's time zone could not be asked)"
        finally:
            target.close()
        offset = timedelta(minutes=round(int(seconds) / 60))
        return timezone(offset), f"the server's offset now, UTC{'+' if offset >= timedelta(0) else '-'}" \
                                 f"{abs(offset).seconds // 3600:02d}:{abs(offset).seconds % 3600 // 60:02d}"


@collectors.register("redis")
class RedisTrail(Collector):
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path,
                force: bool = False, *, timeout: float = 30.0) -> Evidence:
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
        ev.sha256 = _save(folder, str(ev.artefact), raw, force)
        for c in clients:
            address = str(c.get("addr", "")).rsplit(":", 1)[0]
            if address and not self.own(ev, str(c.get("user") or "default"), address):
                ev.addresses[address] = classify_address(store, address)
        return ev


@collectors.register("clickhouse")
class ClickHouseQueryLog(Collector):
    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path,
                force: bool = False, *, timeout: float = 30.0) -> Evidence:
        from piiguard.engines.clickhouse import post

        # event_time is compared in UTC: the window's ends are converted to UTC before they are written
        since, until = _utc(start).strftime("%Y-%m-%d %H:%M:%S"), _utc(end or datetime.now(UTC)).strftime(
            "%Y-%m-%d %H:%M:%S")
        # address is an IPv6 FixedString(16): toString would give its raw bytes
        query = ("SELECT IPv6NumToString(address), user, query FROM system.query_log WHERE type = 1 AND "
                 f"event_time BETWEEN toDateTime('{since}', 'UTC') AND toDateTime('{until}', 'UTC') FORMAT TSV")
        body = post(store, query, timeout=timeout)
        ev = Evidence(store.name, f"{store.name}-clickhouse-query-log.tsv", None, True, "")
        ev.sha256 = _save(folder, str(ev.artefact), body.encode(), force)
        rows = tsv_rows(body)
        for address, user, sql in rows:
            address = address.removeprefix("::ffff:")
            if self.own(ev, user, address):
                continue
            ev.addresses[address] = classify_address(store, address)
            if ev.addresses[address] == "unknown":
                names = tables(sql)
                if names:
                    ev.read(address, names)
        ev.note = f"{len(rows)} queries in the window"
        return ev


_TSV_ESCAPES = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "'": "'", "\\": "\\"}


def tsv_rows(body: str, width: int = 3) -> list[list[str]]:
    """ClickHouse's TabSeparated rows: one a line at ``\\n`` only (a value's newlines and tabs are
    escaped; U+2028, \\x85 and the like are not, and are no line end), fields unescaped."""
    out = []
    for line in pglog.lines(body):
        fields = [re.sub(r"\\(.)", lambda m: _TSV_ESCAPES.get(m.group(1), m.group(1)), f) for f in line.split("\t")]
        out.append([*fields, *[""] * width][:width])
    return out


def _utc(at: datetime) -> datetime:
    """An aware time in UTC; a naive one is taken as UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@collectors.register("opensearch")
class OpenSearchAudit(Collector):
    """The security plugin's ``security-auditlog-*`` indices: each event's remote address, and the
    indices or REST path it touched. With the plugin's default configuration, successful reads are
    not audited (the AUTHENTICATED and GRANTED_PRIVILEGES categories are off): the note says so.
    Events are read ``page`` at a time, ``budget`` at most: the note says how many the budget left."""

    page = 1000
    budget = 200_000

    def collect(self, store: Store, start: datetime, end: datetime | None, folder: Path,
                force: bool = False, *, timeout: float = 30.0) -> Evidence:
        import json

        from opensearchpy import exceptions as oe

        from piiguard.connectors.opensearch import errors
        from piiguard.engines.opensearch import client

        es = client(store, timeout)
        window = {"gte": start.isoformat()} | ({"lte": end.isoformat()} if end is not None else {})
        # every event of the window, a page at a time (search_after on time, then _id: unique), up to the budget
        body: dict[str, Any] = {"size": self.page, "sort": [{"@timestamp": "asc"}, {"_id": "asc"}],
                                "track_total_hits": True, "query": {"range": {"@timestamp": window}}}
        events: list[dict[str, Any]] = []
        total = 0
        try:
            with errors(store):
                while True:
                    found = es.search(index="security-auditlog-*", body=body)["hits"]
                    hits = found["hits"]
                    if "search_after" not in body:  # the window's size when paging started
                        total = int(found.get("total", {}).get("value", 0))
                    events += [h["_source"] for h in hits][:self.budget - len(events)]
                    if len(hits) < self.page or len(events) >= self.budget:
                        break
                    body["search_after"] = hits[-1]["sort"]
        except oe.NotFoundError:
            return Evidence(store.name, None, None, False, "no security-auditlog index: the cluster kept no trail")
        unread = max(0, total - len(events)) if len(events) >= self.budget else 0
        ev = Evidence(store.name, f"{store.name}-opensearch-audit.jsonl", None, True, "")
        ev.sha256 = _save(folder, str(ev.artefact), "".join(json.dumps(e, sort_keys=True) + "\n"
                                                           for e in events).encode(), force)
        granted = 0
        for e in events:
            address = str(e.get("audit_request_remote_address") or "")
            if not address or self.own(ev, str(e.get("audit_request_effective_user") or ""), address):
                continue
            ev.addresses.setdefault(address, classify_address(store, address))
            if e.get("audit_category") in ("GRANTED_PRIVILEGES", "AUTHENTICATED"):
                granted += 1
            if ev.addresses[address] == "unknown":
                touched = [str(i) for i in e.get("audit_trace_indices") or e.get("audit_trace_resolved_indices") or []]
                path = str(e.get("audit_rest_request_path") or "")
                if not touched and "/_search" in path:
                    touched = [path.split("/_search")[0].strip("/") or "*"]
                ev.read(address, touched)  # system indices too: an outsider reading .opendistro_security matters
        ev.note = f"{len(events)} audit events in the window" + (
            f" ({unread} more were not read: the budget is {self.budget} events)" if unread else "") + (
            "" if granted else "; successful requests are not audited here (AUTHENTICATED and GRANTED_PRIVILEGES "
                               "are off): what was read cannot be known")
        return ev


def collect(store: Store, start: datetime, end: datetime | None, folder: Path, force: bool = False, *,
            timeout: float = 30.0, include_own: bool = False) -> Evidence:
    """The store's access evidence for the window; every network step bounded by ``timeout``.
    piiguard's own entries are left out and counted unless ``include_own``."""
    if store.engine not in collectors:
        return Evidence(store.name, None, None, False,
                        f"piiguard has no evidence collector for {store.engine} yet: nothing was collected")
    start, end = _utc(start), None if end is None else _utc(end)  # every collector compares in UTC
    collector = collectors.get(store.engine)(identity(store), include_own)
    ev = collector.collect(store, start, end, folder, force, timeout=timeout)
    ev.own_identity, ev.own_included = collector.who.describe(), include_own
    if ev.own:
        ev.note += (f"; {ev.own} entries attributed to piiguard itself ({ev.own_identity}) "
                    + ("are included (--include-own)" if include_own else
                       "were left out: anyone using piiguard's credentials from its host would be too; "
                       "--include-own lists them"))
    return ev
