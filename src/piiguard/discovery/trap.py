"""The trap: where a canary's token, link or e-mail lands when someone uses leaked data.

``watch`` serves it (``discovery.canary.trap``, optionally ``discovery.canary.smtp``). A request or a
mail that carries a planted canary value is proof of access: it is recorded with time and source
address, alerted through the configured sinks and entered on an incident's timeline.

Both servers face whoever holds the leaked data, so both are bounded: a request line, each header
line and the headers as a whole are cut off (at most 100 headers), only the first 64 KB of a body or
a message is read, each client has a deadline for its whole exchange (a slow drip is cut, not
waited for), and at most ``max_clients`` are served at once (more are closed at once). The HTTP
answer is one fixed body, whatever was asked: nothing of the request is ever echoed, and a client
cannot tell a canary hit from a miss.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import logging
import re
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from piiguard.catalog import Catalog
from piiguard.discovery import canary_values as cv
from piiguard.discovery.canaries import PlantedSet, planted_sets
from piiguard.discovery.settings import CanarySettings
from piiguard.errors import UsageError

log = logging.getLogger(__name__)
BODY_LIMIT = 64 * 1024
LINE_LIMIT = 8 * 1024
HEADER_LIMIT = 100
DEADLINE = 10.0  # seconds a client has for its whole request or mail
MAX_CLIENTS = 64
MESSAGE_LIMIT = 16 * BODY_LIMIT  # a mail past 1 MB is refused (552) and the session closed
DECODE_LIMIT = 256  # base64-looking words decoded per request
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nCache-Control: no-store\r\n"
          b"Connection: close\r\n\r\nok\n")
# a request whose framing is invalid (differing Content-Length values, an unknown transfer coding):
# decided by its headers alone, never by whether it held a canary
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
               b"Cache-Control: no-store\r\nConnection: close\r\n\r\nbad\n")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


@dataclass(frozen=True)
class Hit:
    canary_id: int
    store: str  # where the canary was planted
    collection: str
    channel: str  # http | smtp
    source: str  # the client's address:port
    at: str  # ISO time
    incident_id: int | None = None


class _Cut(Exception):
    """The client overstepped a bound (size, count or time): stop reading it."""


class _Reader:
    """Reads a socket line by line under one deadline for the whole exchange."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buffer = sock, time.monotonic() + deadline, b""

    def _fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Cut("deadline")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(16384)
        except (TimeoutError, OSError) as exc:
            raise _Cut("read") from exc
        self.buffer += chunk
        return bool(chunk)

    def line(self, limit: int = LINE_LIMIT) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > limit:
                raise _Cut("line too long")
            if not self._fill():
                raise _Cut("closed")
        line, _, self.buffer = self.buffer.partition(b"\n")
        if len(line) > limit:
            raise _Cut("line too long")
        return line

    def long_line(self, limit: int, cap: int) -> tuple[bytes, int]:
        """A line's first ``limit`` bytes and its length, reading past ``limit`` (and dropping the rest)
        up to ``cap`` bytes; a longer line is returned as soon as it passes ``cap``."""
        head: bytes | None = None
        dropped = 0
        while b"\n" not in self.buffer:
            if len(self.buffer) > limit:
                head = self.buffer[:limit] if head is None else head
                dropped += len(self.buffer)
                self.buffer = b""
                if dropped > cap:
                    return head, dropped
            if not self._fill():
                raise _Cut("closed")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return (line[:limit] if head is None else head), dropped + len(line)

    def take(self, n: int) -> bytes:
        while len(self.buffer) < n and self._fill():
            pass
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


def _decoded(texts: list[str]) -> list[str]:
    """The text of base64 (standard or URL-safe) words in ``texts``: a canary in an ``Authorization:
    Basic`` header, a cookie or a query parameter is often encoded. Bounded: the first
    ``DECODE_LIMIT`` words, each up to a line's length."""
    out = []
    words = (m.group(0) for t in texts for m in _BASE64.finditer(t))
    for word in itertools.islice((w for w in words if len(w) <= LINE_LIMIT), DECODE_LIMIT):
        plain = word.replace("-", "+").replace("_", "/").rstrip("=")
        if len(plain) % 4 == 1:
            continue
        try:
            text = base64.b64decode(plain + "=" * (-len(plain) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        user, _, password = text.partition(":")  # Basic credentials: user-id ":" password (RFC 7617)
        out += [text, urllib.parse.unquote_plus(text), user, password]
    return out


def _length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's Content-Length: 0 without one, None when invalid. Equal repeated values (``25, 25``,
    or the header twice) are one length (https://www.rfc-editor.org/rfc/rfc9110#section-8.6)."""
    values = {v.strip() for k, v in headers if k == b"content-length" for v in v.split(b",")}
    if not values:
        return 0
    if len(values) != 1 or not next(iter(values)).isdigit():
        return None
    return int(next(iter(values)))


def _chunked(reader: _Reader, body: list[bytes]) -> None:
    """Decode a chunked body into ``body`` (its pieces, to be joined) up to ``BODY_LIMIT`` bytes; a
    malformed chunk ends it (what came before still counts). https://www.rfc-editor.org/rfc/rfc9112#section-7.1"""
    left = BODY_LIMIT
    while left > 0:
        size = reader.line().split(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size) or int(size, 16) == 0:
            return
        piece = reader.take(min(int(size, 16), left))
        body.append(piece)
        left -= len(piece)
        if len(piece) < int(size, 16):
            return
        reader.line()  # the CRLF after the chunk's data


def _address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"discovery.canary.{what}: {text[:60]!r} is not host:port", hint="e.g. 0.0.0.0:8990")
    return host.strip("[]"), int(port)


def check_listen(settings: CanarySettings) -> None:
    """Bind each configured listen address (``trap``, ``smtp``) and close it at once: what ``watch
    --once`` does instead of serving, so an address that is not this host's (or a port in use) is the
    same UsageError, exit 2, as when watch starts the trap."""
    for what, where in (("trap", settings.trap), ("smtp", settings.smtp)):
        if not where:
            continue
        host, port = _address(where, what)
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as _Server binds
                sock.bind((host, port))
        except OSError as exc:
            raise UsageError(_LISTEN_FAILED.format(what=what, where=where, why=exc.strerror or exc),
                             hint=_LISTEN_HINT) from exc


_LISTEN_FAILED = "discovery.canary.{what}: cannot listen on {where} ({why})"
_LISTEN_HINT = "is another process using the port, or is the address not this host's?"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Callable[[socket.socket, str], None],
                 max_clients: int) -> None:
        self.serve = handler
        self.slots = threading.BoundedSemaphore(max_clients)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, socketserver.BaseRequestHandler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: closed, not queued
            return
        super().process_request(request, client_address)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        host, port = client_address[0], client_address[1]
        source = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.serve(request, source)
        except Exception:  # hostile input must never stop the trap; only the fact is logged
            log.warning("trap: a client from %s caused an internal error; it was closed", source, exc_info=False)
        finally:
            self.slots.release()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # handled in finish_request; the default prints a traceback with the client's bytes


class Trap:
    """Listens on ``settings.trap`` (and ``settings.smtp``) in threads; ``on_hit`` is called once per hit,
    after it is recorded in the catalog at ``catalog_path``."""

    def __init__(self, settings: CanarySettings, catalog_path: Path, key: bytes,
                 on_hit: Callable[[Hit], None] | None = None, *, max_clients: int = MAX_CLIENTS,
                 deadline: float = DEADLINE) -> None:
        if not settings.trap and not settings.smtp:
            raise UsageError("discovery.canary.trap is not set: the trap has nowhere to listen",
                             hint="set discovery.canary.trap, e.g. 0.0.0.0:8990")
        self.settings, self.catalog_path, self.key, self.on_hit = settings, Path(catalog_path), key, on_hit
        self.max_clients, self.deadline = max_clients, deadline
        self._servers: list[_Server] = []
        self._lock = threading.Lock()  # the catalog is used by one thread at a time
        self._catalog: Catalog | None = None
        self._sets: list[PlantedSet] = []
        self._index: dict[bytes, tuple[PlantedSet, cv.ValueKind]] = {}
        self._version: tuple[object, ...] | None = None

    def start(self) -> None:
        self._catalog = Catalog(self.catalog_path)
        self._reload()
        try:
            for what, where, serve in (("trap", self.settings.trap, self._http), ("smtp", self.settings.smtp,
                                                                                  self._smtp)):
                if where:
                    self._servers.append(self._listen(what, where, serve))
        except UsageError:
            for server in self._servers:  # never served: shutdown() would wait for serve_forever forever
                server.server_close()
            self._servers = []
            self.stop()
            raise
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="piiguard-trap", daemon=True).start()
        log.info("trap listening on %s; %d canary set(s) armed", ", ".join(self.addresses), len(self._sets))

    def _listen(self, what: str, where: str, serve: Callable[[socket.socket, str], None]) -> _Server:
        address = _address(where, what)
        try:
            return _Server(address, serve, self.max_clients)
        except OSError as exc:
            raise UsageError(_LISTEN_FAILED.format(what=what, where=where, why=exc.strerror or exc),
                             hint=_LISTEN_HINT) from exc

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []
        with self._lock:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None

    @property
    def addresses(self) -> list[str]:
        """Where it listens (host:port), once started."""
        out = []
        for server in self._servers:
            host, port = server.server_address[0], server.server_address[1]
            out.append(f"[{host!s}]:{port}" if ":" in str(host) else f"{host!s}:{port}")
        return out

    # Matching ----------------------------------------------------------------------------------------

    def _reload(self) -> None:
        """Re-read the planted sets when the catalog's canaries changed (one cheap query per request)."""
        assert self._catalog is not None
        version = self._catalog.canary_version()
        if version == self._version:
            return
        self._sets = planted_sets(self._catalog, self.key)
        self._index = {d: (s, kind) for s in self._sets for d, (_, _, kind) in s.by_digest.items()}
        self._version = version

    def _match(self, text: str) -> dict[int, tuple[PlantedSet, set[str]]]:
        found: dict[int, tuple[PlantedSet, set[str]]] = {}
        for candidate in cv.candidates(text):
            got = self._index.get(cv.digest(self.key, candidate))
            if got is not None:
                found.setdefault(got[0].canary_id, (got[0], set()))[1].add(got[1].value)
        return found

    def _seen(self, channel: str, source: str, text: str) -> None:
        with self._lock:
            if self._catalog is None:
                return
            self._reload()
            hits = self._match(text)
            recorded = [self._record(s, kinds, channel, source) for s, kinds in hits.values()]
        for hit in recorded:
            log.warning("canary of %s.%s used: %s from %s", hit.store, hit.collection, hit.channel, hit.source)
            if self.on_hit is not None:
                self.on_hit(hit)

    def _record(self, s: PlantedSet, kinds: set[str], channel: str, source: str) -> Hit:
        assert self._catalog is not None
        cat, at = self._catalog, datetime.now(UTC).isoformat(timespec="seconds")
        detail = f"{', '.join(sorted(kinds))} by {channel}"
        payload = {"canary_id": s.canary_id, "store": s.store, "collection": s.collection, "channel": channel,
                   "source": source, "at": at, "kinds": sorted(kinds)}
        incident_id = self._open_incident(s)
        if incident_id is None:
            incident_id = cat.open_incident(f"canary of {s.store}.{s.collection} used", [s.store], at, [], None)
        cat.event(incident_id, "canary-used", payload)
        cat.record_canary_hit(s.canary_id, channel, source, detail=detail, incident_id=incident_id, at=at)
        return Hit(s.canary_id, s.store, s.collection, channel, source, at, incident_id)

    def _open_incident(self, s: PlantedSet) -> int | None:
        """The open incident an earlier hit of this set opened, if any: later hits go on its timeline."""
        assert self._catalog is not None
        for hit in reversed(self._catalog.canary_hits(s.canary_id)):
            incident = self._catalog.incident(int(hit["incident_id"])) if hit["incident_id"] else None
            if incident is not None and incident["status"] == "open":
                return int(incident["id"])
        return None

    # HTTP --------------------------------------------------------------------------------------------

    def _http(self, sock: socket.socket, source: str) -> None:
        reader, parts, answer = _Reader(sock, self.deadline), [], ANSWER
        headers: list[tuple[bytes, bytes]] = []
        body: list[bytes] = []  # joined once read: a value may straddle two chunks
        try:
            parts.append(reader.line())
            for _ in range(HEADER_LIMIT + 1):
                line = reader.line()
                if not line.strip():
                    break
                parts.append(line)
                name, _, value = line.partition(b":")
                headers.append((name.strip().lower(), value.strip()))
            else:
                raise _Cut("too many headers")
            codings = [c.strip().lower() for k, v in headers if k == b"transfer-encoding" for c in v.split(b",")]
            length = _length(headers)
            if codings and codings[-1] == b"chunked":  # it overrides a Content-Length (RFC 9112 6.3)
                _chunked(reader, body)
            elif codings or length is None:
                answer = BAD_REQUEST
                body.append(reader.buffer[:BODY_LIMIT])  # what already arrived still counts
            elif length:
                body.append(reader.take(min(length, BODY_LIMIT)))
        except _Cut:
            pass  # what arrived before the cut is still looked at: a value in a request line counts
        finally:
            with contextlib.suppress(OSError):
                sock.sendall(answer)
        text = b"\n".join([*parts, b"".join(body)]).decode("utf-8", "replace")
        unquoted = urllib.parse.unquote_plus(text)
        target = parts[0].decode("utf-8", "replace") if parts else ""
        encoded = [v.decode("utf-8", "replace") for _, v in headers] + [target, urllib.parse.unquote_plus(target)]
        self._seen("http", source, "\n".join([text, unquoted, *_decoded(encoded)]))

    # SMTP --------------------------------------------------------------------------------------------

    def _smtp(self, sock: socket.socket, source: str) -> None:
        reader, seen = _Reader(sock, self.deadline), []
        domain = (self.settings.domain or "").lower()
        mail, accepted = False, 0  # the transaction: MAIL given, recipients accepted

        def say(line: str) -> None:
            sock.sendall(line.encode() + b"\r\n")

        try:
            say("220 piiguard ESMTP")
            for _ in range(200):  # commands per session
                line = reader.line(1024).decode("utf-8", "replace").strip()
                verb = line[:4].upper()
                if verb in ("HELO", "EHLO", "RSET"):
                    mail, accepted = False, 0
                    say("250 piiguard" if verb != "RSET" else "250 ok")
                elif verb == "MAIL":
                    mail, accepted = True, 0
                    say("250 ok")
                elif verb == "NOOP":
                    say("250 ok")
                elif verb == "RCPT":
                    address = line.partition(":")[2].strip().strip("<>").lower()
                    if domain and address.endswith("@" + domain):
                        seen.append(address)
                        accepted += 1
                        say("250 ok")
                    else:
                        say("550 no such user")
                elif verb == "DATA":
                    if not accepted:  # RFC 5321 3.3: no valid recipient, no message (a RCPT before MAIL
                        # is still taken: a canary address in it is a use)
                        say("554 5.5.1 no valid recipients" if mail else "503 5.5.1 MAIL and RCPT first")
                        continue
                    mail, accepted = False, 0
                    say("354 end with <CRLF>.<CRLF>")
                    text, fits, ended = self._message(reader)
                    seen.append(text)
                    if not ended:  # past 1 MB: the rest is not read, so the session cannot go on
                        say("552 5.3.4 message too big; closing")
                        break
                    say("250 ok" if fits else "552 5.3.4 message too big (or a line over 8 KB)")
                elif verb == "QUIT":
                    say("221 bye")
                    break
                else:
                    say("502 command not implemented")
        except (_Cut, OSError):
            pass
        if seen:
            self._seen("smtp", source, "\n".join(seen))

    @staticmethod
    def _message(reader: _Reader) -> tuple[str, bool, bool]:
        """The first 64 KB of a mail's DATA, whether it kept to the bounds (lines up to 8 KB, up to 1 MB),
        and whether its end was read. Cut by the deadline, what was kept is still scanned."""
        kept: list[bytes] = []
        size, fits, ended = 0, True, False
        with contextlib.suppress(_Cut):
            while True:
                line, length = reader.long_line(LINE_LIMIT, MESSAGE_LIMIT - size)
                if length <= LINE_LIMIT and line.rstrip(b"\r") == b".":
                    ended = True
                    break
                fits = fits and length <= LINE_LIMIT
                if size < BODY_LIMIT:
                    kept.append(line[: BODY_LIMIT - size])
                size += length + 1
                if size > MESSAGE_LIMIT:
                    fits = False
                    break
        return b"\n".join(kept).decode("utf-8", "replace"), fits, ended
