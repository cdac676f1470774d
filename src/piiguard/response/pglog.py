"""PostgreSQL server logs as the server wrote them: ``stderr`` lines with its own ``log_line_prefix``,
``csvlog`` and ``jsonlog`` (PostgreSQL 15), with times in its ``log_timezone``.

:func:`records` turns a log's text into :class:`Record` values (time in UTC, process id, client
address when the format or the prefix carries one, the message); the evidence collector classes the
addresses and reads pgaudit's ``AUDIT:`` messages from them. Nothing here connects anywhere:
:class:`LogFormat` says how the log was written (the collector reads it from the server with
``SHOW``, or from the store's options).

Limits: in ``stderr`` logs the message text is in the server's ``lc_messages``; without ``%h`` or
``%r`` in the prefix, client addresses come from the English ``connection received: host=`` line.
csvlog and jsonlog carry the address in a field of their own, whatever the language.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PREFIX = "%m [%p] "  # PostgreSQL's default since 10
FORMATS = ("stderr", "csvlog", "jsonlog")
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
ZONE = r"[A-Za-z0-9+\-:/_]+"
# log_line_prefix escapes → (pattern, group name or None). %q ends the part non-session processes print.
ESCAPES = {
    "a": (r".*?", "app"), "u": (r".*?", "user"), "d": (r".*?", None), "b": (r".*?", None), "i": (r".*?", None),
    "r": (r"\S*?", "remote"), "h": (r"\S*?", "host"), "p": (r"\d+", "pid"), "P": (r"\d*", None),
    "t": (rf"{STAMP} {ZONE}", "time"), "m": (rf"{STAMP}\.\d+ {ZONE}", "time"), "n": (r"\d+(?:\.\d+)?", "epoch"),
    "e": (r"[0-9A-Z]{5}", None), "c": (r"[0-9a-f]+\.[0-9a-f]+", None), "l": (r"\d+", None),
    "s": (rf"{STAMP} {ZONE}", None), "v": (r"\S*", None), "x": (r"\d+", None), "Q": (r"-?\d+", None),
}
SEVERITY = r"(?P<severity>[A-Z][A-Z0-9]*):\s+(?P<message>.*)$"
# The server's own connection messages, whole (fullmatch): a forged one inside client text (an
# application_name or user name printed by the prefix) is always followed by the real message's text.
RECEIVED = re.compile(r"connection received: host=(\S+?)(?: port=\d+)?")
# PostgreSQL 12+: "connection authorized: user=U database=D application_name=A" (then SSL/GSS details).
# An application_name with a space matches nothing: that session is never bound, so never piiguard's.
AUTHORIZED = re.compile(r"(?:replication )?connection authorized: user=(\S+)(?: database=\S+)?"
                        r"(?: application_name=(\S*))?(?: SSL enabled \([^()]*\))?(?: GSS \([^()]*\))?")
CSV_TIME, CSV_USER, CSV_PID, CSV_FROM, CSV_MESSAGE, CSV_APPLICATION = 0, 1, 3, 4, 13, 22


@dataclass(frozen=True)
class LogFormat:
    """How a server writes its log: ``destination`` one of :data:`FORMATS`, its ``log_line_prefix``
    (stderr only) and ``log_timezone`` (an IANA name; the abbreviations in the log are ambiguous)."""

    destination: str = "stderr"
    prefix: str = DEFAULT_PREFIX
    timezone: str = "UTC"


@dataclass(frozen=True)
class Record:
    at: datetime  # UTC
    pid: str
    host: str | None  # the client's address, when the record itself says it
    message: str
    raw: str  # the record as written (one line, or one CSV record)
    user: str | None = None  # the session's user, when the format or the prefix (%u) carries it
    application: str | None = None  # its application_name (%a), when carried ("" when it set none)


def prefix_pattern(prefix: str) -> re.Pattern[str]:
    """A regular expression for lines written with ``prefix`` (named groups: time, epoch, pid, host,
    remote, severity, message). Padding (``%-10u``) is allowed for; what follows ``%q`` is optional,
    since processes without a session stop printing the prefix there."""
    parts: list[str] = []
    named: set[str] = set()
    optional_from: int | None = None
    i = 0
    while i < len(prefix):
        m = re.match(r"%(-?\d+)?(.)", prefix[i:])
        if prefix[i] != "%" or m is None:
            parts.append(re.escape(prefix[i]))
            i += 1
            continue
        pad, code = m.group(1), m.group(2)
        i += m.end()
        if code == "%":
            parts.append("%")
        elif code == "q":
            optional_from = len(parts)
        elif code in ESCAPES:
            pattern, name = ESCAPES[code]
            if name is not None and name not in named:
                named.add(name)
                pattern = f"(?P<{name}>{pattern})"
            parts.append(rf"\s*{pattern}\s*" if pad else pattern)
        else:
            parts.append(re.escape(m.group(0)))  # an unknown escape is printed as is
    if optional_from is not None:
        parts = [*parts[:optional_from], "(?:", *parts[optional_from:], ")?"]
    return re.compile("^" + "".join(parts) + SEVERITY)


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def parse_time(text: str, log_timezone: tzinfo) -> datetime | None:
    """``2026-11-03 09:00:01.100 CET`` → UTC. The abbreviation is trusted only when it is UTC/GMT or
    a numeric offset (``+03``, ``-0530``); otherwise the server's log_timezone says what it meant."""
    parts = text.split()
    if len(parts) < 2:
        return None
    abbreviation = parts[2] if len(parts) > 2 else ""
    try:
        naive = datetime.fromisoformat(f"{parts[0]} {parts[1]}")
    except ValueError:
        return None
    offset = re.fullmatch(r"([+-])(\d\d):?(\d\d)?", abbreviation)
    if abbreviation in ("UTC", "GMT", "Z"):
        tz: tzinfo = UTC
    elif offset:
        sign = 1 if offset.group(1) == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0)))
    else:
        tz = log_timezone
    return naive.replace(tzinfo=tz).astimezone(UTC)


def sniff(text: str) -> str:
    """The log's format, told by its first record (a server can switch log_destination while the
    file named in the options stays the same)."""
    first = next((line for line in lines(text) if line.strip()), "")
    if first.startswith("{"):
        return "jsonlog"
    if re.match(rf'^{STAMP}\.\d+ {ZONE},', first):
        return "csvlog"
    return "stderr"


def records(text: str, fmt: LogFormat) -> Iterator[Record]:
    """Every record of the log that can be read; lines of another shape are skipped."""
    tz = zone(fmt.timezone)
    kind = sniff(text)
    if kind == "jsonlog":
        yield from _json_records(text, tz)
    elif kind == "csvlog":
        yield from _csv_records(text, tz)
    else:
        yield from _stderr_records(text, fmt.prefix, tz)


def lines(text: str) -> list[str]:
    """A log's lines as the server ends them: at ``\\n`` only (``\\r\\n`` too). :meth:`str.splitlines`
    also splits at ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029, which
    statements may hold and the server writes as they are: a client could forge records with them."""
    out = text.split("\n")
    if out and out[-1] == "":
        out.pop()
    return [line[:-1] if line.endswith("\r") else line for line in out]


def _stderr_lines(text: str) -> Iterator[tuple[str, str]]:
    """``(first line, whole record)``: the server writes a message's newlines as ``\\n\\t``, so a
    line starting with a tab continues the record before it."""
    first: str | None = None
    whole: list[str] = []
    for line in lines(text):
        if line.startswith("\t") and first is not None:
            whole.append(line)
            continue
        if first is not None:
            yield first, "\n".join(whole)
        first, whole = line, [line]
    if first is not None:
        yield first, "\n".join(whole)


def _stderr_records(text: str, prefix: str, tz: tzinfo) -> Iterator[Record]:
    pattern = prefix_pattern(prefix)
    for line, whole in _stderr_lines(text):
        m = pattern.match(line)
        if m is None:
            continue
        groups = m.groupdict()
        if groups.get("time"):
            at = parse_time(groups["time"], tz)
        elif groups.get("epoch"):
            at = datetime.fromtimestamp(float(groups["epoch"]), UTC)
        else:
            at = None
        if at is None:
            continue  # a record without a time cannot be placed in a window
        host = groups.get("host") or _host_of(groups.get("remote") or "")
        message = groups["message"] + "".join("\n" + more[1:] for more in whole.split("\n")[1:])
        yield Record(at, groups.get("pid") or "", host or None, message, whole,
                     (groups.get("user") or "").strip() or None,
                     groups["app"].strip() if groups.get("app") is not None else None)


def _host_of(remote: str) -> str:
    """``%r`` is ``host(port)``, or ``[local]`` for a socket."""
    return "" if remote in ("", "[local]") else remote.split("(", 1)[0]


def csv_rows(text: str) -> Iterator[list[str]]:
    """CSV rows, skipping the malformed ones instead of stopping (clients write parts of a log).

    No limit on a field's length: the csv module's default (128 KiB) refuses a longer field, and a
    client padding its statement past it would drop its own record, and the next one, from evidence."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(text, newline=""))
    for _ in range(text.count("\n") + text.count("\r") + 2):  # a row per line at most; the reader moves on
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            continue


def _csv_records(text: str, tz: tzinfo) -> Iterator[Record]:
    for row in csv_rows(text):
        if len(row) <= CSV_MESSAGE:
            continue
        at = parse_time(row[CSV_TIME], tz)
        if at is None:
            continue
        source = row[CSV_FROM]
        host = source.rsplit(":", 1)[0] if ":" in source and not source.startswith("[local]") else None
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(row)
        yield Record(at, row[CSV_PID], host or None, row[CSV_MESSAGE], out.getvalue(), row[CSV_USER] or None,
                     row[CSV_APPLICATION] if len(row) > CSV_APPLICATION else None)


def _json_records(text: str, tz: tzinfo) -> Iterator[Record]:
    for line in lines(text):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        at = parse_time(str(entry.get("timestamp", "")), tz)
        if at is None:
            continue
        host, user, application = entry.get("remote_host"), entry.get("user"), entry.get("application_name")
        yield Record(at, str(entry.get("pid", "")), str(host) if host and host != "[local]" else None,
                     str(entry.get("message", "")), line, str(user) if user else None,
                     None if application is None else str(application))


def received_host(message: str) -> str | None:
    m = RECEIVED.fullmatch(message)
    return m.group(1) if m else None


def authorized(message: str) -> tuple[str, str | None] | None:
    """The user and application name of a ``connection authorized`` message (English ``lc_messages``)."""
    m = AUTHORIZED.fullmatch(message)
    return (m.group(1), m.group(2)) if m else None
