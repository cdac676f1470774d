"""Telling engines apart against real servers, each on a free (non-default) 127.0.0.1 port.

PostgreSQL, MariaDB, Redis and ClickHouse are the Debian packages the suite starts; FerretDB,
versitygw and OpenSearch are built by tests/built_servers.py. memcached is the Debian package when
installed. CouchDB and Cassandra cannot run here: they are answered by a minimal scripted peer that
speaks each one's documented protocol (CouchDB's ``GET /`` welcome, docs.couchdb.org "API Basics";
Cassandra's OPTIONS → SUPPORTED frame, native_protocol_v4.spec §4.2.4) — a protocol stand-in, not a
mocked driver. Non-stores: Python's http.server, an nginx-like answer, SSH and SMTP banners, silence.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from adversarial.peers import peer
from built_servers import (
    start_ferretdb,
    start_opensearch,
    start_versitygw,
    stop_ferretdb,
    stop_opensearch,
    stop_versitygw,
)
from conftest import pg_connect
from servers import Server, free_port, missing, redis_admin, start_clickhouse, stop_clickhouse

from piiguard.checks.redis import DEFAULT_PASSWORDS
from piiguard.discovery.base import Endpoint, Kind, Service
from piiguard.discovery.identify import as_store, identify, order, outside_findings, outside_ids
from piiguard.model import Status

LOCAL = "127.0.0.1"


def ident(port: int, timeout: float = 2.0) -> Service:
    return identify(Endpoint(LOCAL, port), timeout=timeout)


def test_probe_order_follows_the_port() -> None:
    assert order(5432)[0] == "postgres" and order(3306)[0] == "banner"
    assert order(9000)[:2] == ["clickhouse-native", "http"]  # ClickHouse native and MinIO: both tried
    assert order(12345)[:3] == ["banner", "http", "redis"]  # an unusual port: what speaks first, then the rest


def test_postgres(postgres: Server) -> None:
    service = ident(postgres.port)
    assert (service.kind, service.engine, service.product) == (Kind.STORE, "postgres", "PostgreSQL")


def test_mariadb_from_its_greeting(mariadb: Server) -> None:
    service = ident(mariadb.port)
    assert (service.kind, service.engine, service.product) == (Kind.STORE, "mysql", "MariaDB")
    assert service.version and service.version[:2] == "10"


@pytest.fixture(scope="module")
def open_redis() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        missing("Redis (Debian package redis-server)")
    port = free_port()
    proc = subprocess.Popen([str(binary), "--port", str(port), "--bind", LOCAL, "--save", "", "--appendonly", "no",
                             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port)
    yield port
    proc.kill()
    proc.wait()


def _wait_port(port: int, seconds: float = 15) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection((LOCAL, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on {port}")


def test_redis_without_auth_says_its_version(open_redis: int) -> None:
    service = ident(open_redis)
    assert (service.kind, service.engine, service.product) == (Kind.STORE, "redis", "Redis")
    assert service.version and service.version.startswith("7")
    findings, is_open = outside_findings(service, timeout=3)
    assert is_open and {f.check for f in findings if f.status is Status.FAIL} >= {"redis.no-auth"}


def test_redis_with_auth_is_redis_without_a_version(cache: Server) -> None:
    service = ident(cache.port)
    assert (service.kind, service.engine, service.version) == (Kind.STORE, "redis", None)
    assert "authentication required" in service.evidence
    findings, is_open = outside_findings(service, timeout=3)
    assert not is_open and findings and all(f.status is not Status.FAIL or not f.check.endswith("no-auth")
                                            for f in findings)


def test_no_password_is_tried_unless_guessing_is_allowed(cache: Server) -> None:
    """The proof is the server's own count: Redis's ACL LOG records every failed AUTH."""
    admin = redis_admin(cache)
    admin.execute_command("ACL", "LOG", "RESET")
    service = ident(cache.port)
    findings, _ = outside_findings(service, timeout=3)
    assert "redis.weak-password" not in {f.check for f in findings}
    assert admin.execute_command("ACL", "LOG") == []
    guessed, _ = outside_findings(service, timeout=3, guess=True)  # the same store, guessing allowed
    assert "redis.weak-password" in {f.check for f in guessed}
    failed_auths = sum(int(e[b"count"]) for e in admin.execute_command("ACL", "LOG") if e[b"reason"] == b"auth")
    assert failed_auths == len(DEFAULT_PASSWORDS)  # the log sees guesses: its silence above is proof
    admin.execute_command("ACL", "LOG", "RESET")


def test_guessing_checks_are_marked() -> None:
    guessing = {"postgres.default-password", "mysql.default-password", "redis.weak-password",
                "opensearch.default-credentials", "s3.default-credentials"}
    for engine in ("postgres", "mysql", "redis", "opensearch", "s3"):
        plain, allowed = set(outside_ids(engine)), set(outside_ids(engine, guess=True))
        assert allowed - plain == {g for g in guessing if g.startswith(engine + ".")}


def test_postgres_log_shows_no_password_attempt(postgres: Server) -> None:
    """PostgreSQL logs every failed password authentication; none may follow outside_findings."""
    with pg_connect(postgres) as conn:
        log_dir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]  # type: ignore[index]
    before = _pg_log(Path(log_dir))
    service = ident(postgres.port)
    findings, _ = outside_findings(service, timeout=3)
    assert "postgres.default-password" not in {f.check for f in findings}
    assert "password authentication failed" not in _pg_log(Path(log_dir))[len(before):]


def _pg_log(data: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(data.rglob("*.log")))


@pytest.fixture(scope="module")
def clickhouse() -> Iterator[Server]:
    server = start_clickhouse()
    yield server
    stop_clickhouse(server)


def test_clickhouse_on_both_ports(clickhouse: Server) -> None:
    over_http = ident(clickhouse.port)
    native = ident(clickhouse.tcp_port)  # type: ignore[attr-defined]
    for service in (over_http, native):
        assert (service.kind, service.engine) == (Kind.STORE, "clickhouse"), service
    assert "/ping" in over_http.evidence and "native" in native.evidence
    store = as_store(native)
    assert store.options["tcp_port"] == str(native.endpoint.port) and store.password_env is None


def test_ferretdb(postgres: Server) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS ferret_identify")
        conn.execute("CREATE DATABASE ferret_identify")
    plain = start_ferretdb(postgres.port, open_backend=True, database="ferret_identify")
    tls_only = start_ferretdb(postgres.port, open_backend=False, tls=True, database="ferret_identify")
    try:
        service, over_tls = ident(plain.port), ident(tls_only.port)
        findings, _ = outside_findings(over_tls, timeout=5)
    finally:
        stop_ferretdb(plain)
        stop_ferretdb(tls_only)
    assert (service.kind, service.engine, service.product) == (Kind.STORE, "mongodb", "FerretDB")
    assert (over_tls.kind, over_tls.engine, over_tls.product) == (Kind.STORE, "mongodb", "FerretDB")
    assert "over TLS" in over_tls.evidence and as_store(over_tls).options["tls"] == "true"
    assert {f.check: f.status for f in findings}.get("mongodb.no-tls") is Status.PASS


def test_versitygw() -> None:
    server = start_versitygw()
    try:
        service = ident(server.port)
        findings, _ = outside_findings(service, timeout=3)
    finally:
        stop_versitygw(server)
    assert (service.kind, service.engine) == (Kind.STORE, "s3"), service
    assert service.product == "versitygw"
    assert findings and "s3.default-credentials" not in {f.check for f in findings}


@pytest.mark.skipif(os.environ.get("CI") != "true" and not os.environ.get("PIIGUARD_OPENSEARCH"),
                    reason="starts an OpenSearch node (JVM, ~30 s on 2 shared cores); runs when CI=true "
                           "or PIIGUARD_OPENSEARCH=1")
def test_opensearch_open_and_secured() -> None:
    plain = start_opensearch(secured=False)
    try:
        open_node = ident(plain.port, timeout=3)
    finally:
        stop_opensearch(plain)
    assert (open_node.kind, open_node.engine, open_node.product) == (Kind.STORE, "opensearch", "OpenSearch")
    assert open_node.version and open_node.version.startswith("2.")
    secured = start_opensearch(secured=True)  # HTTPS: plain GET refused, then TLS
    try:
        locked = ident(secured.port, timeout=3)
    finally:
        stop_opensearch(secured)
    assert (locked.kind, locked.engine, locked.product) == (Kind.STORE, "opensearch", "OpenSearch")
    assert "realm" in locked.evidence and "HTTPS" in locked.evidence
    assert as_store(locked).options["tls"] == "true"


def test_memcached() -> None:
    binary = shutil.which("memcached")
    if binary is None:
        missing("memcached (Debian package memcached)")
    port = free_port()
    proc = subprocess.Popen([str(binary), "-l", LOCAL, "-p", str(port), "-U", "0", "-u", "root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        service = ident(port)
    finally:
        proc.kill()
        proc.wait()
    assert (service.kind, service.engine) == (Kind.IDENTIFY_ONLY, "memcached") and service.version


# --- scripted peers for engines that cannot run here, and servers that are not stores -------------

def _answer(reply: Callable[[bytes], bytes], first: bytes = b"") -> Callable[[socket.socket, threading.Event], None]:
    def run(conn: socket.socket, stop: threading.Event) -> None:
        if first:
            conn.sendall(first)
        conn.settimeout(2)
        data = conn.recv(65536)
        if data:
            conn.sendall(reply(data))

    return run


def _http(body: bytes, *headers: str, status: str = "200 OK") -> Callable[[bytes], bytes]:
    head = "".join(h + "\r\n" for h in headers)
    return lambda _: (f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                      ).encode() + body


def _cql_supported(data: bytes) -> bytes:
    if data[:1] != b"\x04" or data[4] != 0x05:  # only OPTIONS in v4 is answered; anything else hangs up
        return b""

    def s(text: str) -> bytes:
        return struct.pack("!H", len(text)) + text.encode()

    body = struct.pack("!H", 2) + s("CQL_VERSION") + struct.pack("!H", 1) + s("3.4.5") + s("COMPRESSION") + \
        struct.pack("!H", 2) + s("snappy") + s("lz4")
    return b"\x84\x00" + data[2:4] + b"\x06" + struct.pack("!I", len(body)) + body


COUCH = b'{"couchdb":"Welcome","version":"3.3.3","git_sha":"40afbcfc7","uuid":"x","features":[],"vendor":{}}'


def test_couchdb_from_its_welcome() -> None:
    with peer(_answer(_http(COUCH, "Server: CouchDB/3.3.3 (Erlang OTP/24)", "Content-Type: application/json"))) as port:
        service = ident(port)
    assert (service.kind, service.engine, service.version) == (Kind.IDENTIFY_ONLY, "couchdb", "3.3.3")


def test_cassandra_from_supported() -> None:
    with peer(_answer(_cql_supported)) as port:
        service = ident(port)
    assert (service.kind, service.engine) == (Kind.IDENTIFY_ONLY, "cassandra") and "CQL 3.4.5" in service.evidence


def test_python_http_server_is_not_a_store(tmp_path: Path) -> None:
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer((LOCAL, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        service = ident(server.server_address[1])
    finally:
        server.shutdown()
    assert service.kind is Kind.NOT_A_STORE and "HTTP server" in service.evidence


@pytest.mark.parametrize(("name", "behaviour", "said"), [
    ("nginx", _answer(_http(b"<html><body><h1>Welcome to nginx!</h1></body></html>", "Server: nginx/1.22.1")),
     "HTTP server"),
    ("nginx-401", _answer(_http(b"", 'WWW-Authenticate: Basic realm="admin"', status="401 Unauthorized")),
     "HTTP server"),
    ("ssh", _answer(lambda _: b"", first=b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), "SSH server"),
    ("smtp", _answer(lambda _: b"502 5.5.2 Error\r\n", first=b"220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n"),
     "SMTP server"),
])
def test_servers_that_are_not_stores(name: str, behaviour: Callable[[socket.socket, threading.Event], None],
                                     said: str) -> None:
    with peer(behaviour) as port:
        service = ident(port, timeout=1.0)
    assert service.kind is Kind.NOT_A_STORE and service.engine is None, service
    assert said in service.evidence


def test_silence_is_unknown_within_the_budget() -> None:
    from adversarial.peers import silent

    with peer(silent) as port:
        started = time.monotonic()
        service = ident(port, timeout=0.5)
    assert service.kind is Kind.UNKNOWN and "silent" in service.evidence
    assert time.monotonic() - started < 0.5 * 4 + 2  # BUDGET timeouts plus the deadline's slack
