"""Hostile peers: sockets on 127.0.0.1 that accept a connection and then misbehave.

Used by tests/adversarial/test_hostile_peers.py and bench/hostile_peers.py. Each behaviour is a
function of the accepted socket and a stop event; a peer serves every connection in its own thread
until it is stopped.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

Behaviour = Callable[[socket.socket, threading.Event], None]


def _drain(conn: socket.socket) -> None:
    conn.settimeout(0.2)
    with contextlib.suppress(OSError):
        conn.recv(65536)
    conn.settimeout(None)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts, reads what the client sends, never answers."""
    conn.settimeout(0.2)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            if conn.recv(65536) == b"":
                return


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    """Answers the first message with bytes of no protocol, then stays open and silent."""
    _drain(conn)
    conn.sendall(bytes(range(256)) * 4)
    silent(conn, stop)


def endless(conn: socket.socket, stop: threading.Event) -> None:
    """Streams bytes without end: no line end, and a length prefix (MySQL's 16 MiB maximum) that a
    length-framed protocol reads to the end and then finds more of the same."""
    _drain(conn)
    chunk = b"\xff\xff\xff\x00" + b"a" * 65532
    conn.settimeout(0.5)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            conn.sendall(chunk)


def close(conn: socket.socket, stop: threading.Event) -> None:
    """Hangs up at once."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST


def drip(conn: socket.socket, stop: threading.Event, pace: float = 1.0) -> None:
    """One byte a second (every ``pace`` seconds), forever: every read returns within any timeout
    above the pace, the message never ends. It opens with a little-endian length of 16, a plausible
    frame header for MySQL and MongoDB."""
    _drain(conn)
    for byte in b"\x10\x00\x00\x00":
        conn.sendall(bytes([byte]))
        if stop.wait(pace):
            return
    while not stop.wait(pace):
        conn.sendall(b"a")


def slow_refusal(conn: socket.socket, stop: threading.Event, pace: float = 1.0) -> None:
    """Answers every request after a second (``pace`` seconds), with an HTTP 500 and nothing else:
    quick enough for any read timeout above the pace, slow enough that a tool retrying it per check
    adds up."""
    _drain(conn)
    if not stop.wait(pace):
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def behaviours(pace: float = 1.0) -> dict[str, Behaviour]:
    """Every plain behaviour by name, the timed ones (drip, slow-refusal) taking a step per ``pace``
    seconds: keep the pace below the --timeout under test, so only an overall deadline stops them."""
    return {"silent": silent, "garbage": garbage, "endless": endless, "close": close,
            "drip": functools.partial(drip, pace=pace), "slow-refusal": functools.partial(slow_refusal, pace=pace)}


BEHAVIOURS: dict[str, Behaviour] = behaviours()

SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # PostgreSQL's: answered "S", then TLS as everyone else


@functools.cache
def _server_tls() -> ssl.SSLContext:
    folder = Path(tempfile.mkdtemp(prefix="piiguard-hostile-tls-"))
    key, cert = folder / "k.pem", folder / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", "/CN=hostile", "-days", "1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def over_tls(behaviour: Behaviour) -> Behaviour:
    """``behaviour`` after a completed TLS handshake (a self-signed certificate: the stores under
    test are told not to verify it, so the client goes on to read)."""

    def run(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        if conn.recv(8, socket.MSG_PEEK) == SSL_REQUEST:
            conn.recv(8)
            conn.sendall(b"S")
        with _server_tls().wrap_socket(conn, server_side=True) as wrapped:
            wrapped.settimeout(None)
            behaviour(wrapped, stop)

    return run


def tls_behaviours(pace: float = 1.0) -> dict[str, Behaviour]:
    """The behaviours the TLS variants meet (silent, endless, drip), each after a completed handshake."""
    return {f"tls-{n}": over_tls(b) for n, b in behaviours(pace).items() if n in ("silent", "endless", "drip")}


TLS_BEHAVIOURS: dict[str, Behaviour] = tls_behaviours()


@contextlib.contextmanager
def peer(behaviour: Behaviour) -> Iterator[int]:
    """A listening socket on a free 127.0.0.1 port running ``behaviour``; yields the port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    stop = threading.Event()
    handlers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hanging up on us is expected
            behaviour(conn, stop)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=handle, args=(conn,), daemon=True)
            t.start()
            handlers.append(t)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()
        for t in handlers:
            t.join(2)


def elapsed(step: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Seconds ``step`` took, and what it raised (``None`` when it returned)."""
    start = time.monotonic()
    try:
        step()
    except BaseException as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


# --- the matrix: URL schemes × commands, each a function of the peer's port -------------------------

def _refuse_http(conn: socket.socket, stop: threading.Event) -> None:
    """A ClickHouse HTTP port that refuses the empty password at once, so checks go on to the native port."""
    _drain(conn)
    body = b"Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)\n"
    conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (len(body), body))


SECRET_ENV = "PIIGUARD_HOSTILE_SECRET"  # a password reference, so clients go as far as authenticating
SCHEMES: dict[str, str] = {
    "postgresql": "postgresql://probe@127.0.0.1:{port}/app?password_env={env}",
    "mysql": "mysql://probe@127.0.0.1:{port}/app?password_env={env}",
    "mariadb": "mariadb://probe@127.0.0.1:{port}/app?password_env={env}",
    "redis": "redis://127.0.0.1:{port}/0?password_env={env}",
    "clickhouse-http": "clickhouse://probe@127.0.0.1:{port}/?tcp_port={port}&password_env={env}",
    "clickhouse-native": "clickhouse://probe@127.0.0.1:{http}/?tcp_port={port}&password_env={env}",
    "opensearch": "opensearch://probe@127.0.0.1:{port}/?tls=false&password_env={env}",
    "elasticsearch-tls": "elasticsearch://probe@127.0.0.1:{port}/?password_env={env}",
    "mongodb": "mongodb://probe@127.0.0.1:{port}/app?password_env={env}",
    "s3": "s3://probe@127.0.0.1:{port}/bucket?tls=false&password_env={env}",
}
# The same engines over TLS that is not verified, so a client gets past the handshake to the reads.
TLS_SCHEMES: dict[str, str] = {
    "postgresql+tls": "postgresql://probe@127.0.0.1:{port}/app?sslmode=require&password_env={env}",
    "redis+tls": "rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none&password_env={env}",
    "clickhouse+tls": "clickhouse://probe@127.0.0.1:{port}/?tcp_port={port}&secure=true&verify=false"
                      "&password_env={env}",
    "opensearch+tls": "opensearch://probe@127.0.0.1:{port}/?verify_certs=false&password_env={env}",
    "mongodb+tls": "mongodb://probe@127.0.0.1:{port}/app?tls=true&tlsAllowInvalidCertificates=true"
                   "&password_env={env}",
    "s3+tls": "s3://probe@127.0.0.1:{port}/bucket?verify=false&password_env={env}",
}
COMMANDS = ("scan", "check", "copy", "scope", "evidence", "match")


def run_command(command: str, store: object, timeout: float, folder: str) -> object:
    """One command's network part against ``store``, in process, as the CLI calls it."""
    from datetime import UTC, datetime, timedelta

    from piiguard.model import Store

    assert isinstance(store, Store)
    if command == "scan":
        from piiguard.scanner import scan

        return scan([store], timeout=timeout)
    if command == "check":
        from piiguard.checker import check_store

        return check_store(store, timeout=timeout)
    if command == "copy":
        from piiguard.masking.pipeline import plan_copy

        target = Store("target", "postgres", host="127.0.0.1", port=9, database="copy")
        return plan_copy(store, "customers", target, "customers", timeout=timeout)
    if command == "scope":
        from piiguard.catalog import Catalog
        from piiguard.model import Classification, CollectionResult, Estimate, ScanMode, StoreResult
        from piiguard.response.scope import find_scope

        with Catalog(f"{folder}/catalog.db") as cat:
            scan_id = cat.start_scan(ScanMode.SAMPLE, 10)
            fields = (Classification(store.name, "customers", "email", "email", 1.0, 10, 10),)
            cat.record_store(scan_id, store, StoreResult(store.name, store.engine, store.address, (
                CollectionResult("customers", 10, Estimate.EXACT, 10, fields),), None))
            incident = {"stores": [store.name]}
            return find_scope(cat, incident, {store.name: store}, b"k" * 32, timeout=timeout)
    if command == "match":  # copy fingerprints: a peer that closes mid-read is an error, never "no copy"
        from piiguard.catalog import Catalog
        from piiguard.discovery.fingerprints import match

        with Catalog(f"{folder}/catalog.db") as cat:
            return match(store, cat, b"k" * 32, timeout=timeout)
    if command == "evidence":
        from pathlib import Path

        from piiguard.response.evidence import collect

        start = datetime.now(UTC) - timedelta(hours=1)
        return collect(store, start, None, Path(folder), timeout=timeout)
    raise ValueError(command)


def store_for(scheme: str, port: int, http: int) -> object:
    import os

    from piiguard.config import store_from_url

    os.environ.setdefault(SECRET_ENV, "not-a-real-secret")
    url = {**SCHEMES, **TLS_SCHEMES}[scheme]
    return store_from_url(url.format(port=port, http=http, env=SECRET_ENV), name=f"hostile-{scheme}")


@contextlib.contextmanager
def hostile(behaviour: str, scheme: str, pace: float = 1.0) -> Iterator[object]:
    """The store for ``scheme`` pointing at a peer of its own that behaves as ``behaviour`` (the
    timed behaviours at one step per ``pace`` seconds)."""
    with peer({**behaviours(pace), **tls_behaviours(pace)}[behaviour]) as port, peer(_refuse_http) as http:
        yield store_for(scheme, port, http)
