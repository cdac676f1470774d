"""Hostile peers against identification: random banners, random HTTP answers, hang-ups, drips and a
10 MB banner. Whatever a peer does, identify() returns (never raises) within its budget, calls
nothing a store unless the bytes were that engine's protocol, and keeps only clean text."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adversarial.peers import drip, endless, peer
from piiguard.discovery import probes
from piiguard.discovery.base import Endpoint, Kind, Service, clean
from piiguard.discovery.identify import BUDGET, identify

TIMEOUT = 0.3
Behaviour = Callable[[socket.socket, threading.Event], None]
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


def run(behaviour: Behaviour, timeout: float = TIMEOUT) -> tuple[Service, float]:
    with peer(behaviour) as port:
        started = time.monotonic()
        service = identify(Endpoint("127.0.0.1", port), timeout=timeout)
        return service, time.monotonic() - started


def assert_clean(service: Service) -> None:
    for text in (service.product, service.version):
        assert text is None or (clean(text) == text and len(text) <= 40), text
    assert _PRINTABLE.match(service.evidence), service.evidence
    assert service.engine is None or service.engine.isidentifier()


def speaks_first(data: bytes, then: bytes = b"") -> Behaviour:
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)
        conn.settimeout(0.2)
        while not stop.is_set():
            try:
                if conn.recv(65536) == b"":
                    return
            except TimeoutError:
                continue
            if then:
                conn.sendall(then)

    return behave


def answers(reply: bytes) -> Behaviour:
    """Says nothing first; answers whatever arrives with ``reply`` and hangs up."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        with contextlib.suppress(TimeoutError):
            if conn.recv(65536):
                conn.sendall(reply)

    return behave


FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(min_size=1, max_size=300), st.binary(max_size=300))
def test_random_banners_are_never_stores_unless_mysql_framed(banner: bytes, reply: bytes) -> None:
    service, took = run(speaks_first(banner, reply))
    assert_clean(service)
    if service.kind in (Kind.STORE, Kind.IDENTIFY_ONLY):
        assert service.engine == "mysql"
        assert probes.looks_like_mysql(banner) or probes.mysql_refusal(service.endpoint, banner) is not None
    assert took < BUDGET * TIMEOUT + 2


STATUS = st.sampled_from([200, 204, 301, 400, 401, 403, 404, 500, 503])
HEADER = st.tuples(st.sampled_from(["Server", "WWW-Authenticate", "Content-Type", "X-Thing"]),
                   st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60))
BODY = st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode),
                 st.sampled_from([b'{"name":"x"}', b"<Error><Code>Nope</Code></Error>", b"Ok.", b"OK\n",
                                  b'{"version": 7}', b'{"couchdb": "Hello"}', b"<html>nginx</html>"]))
_MARKERS = (b"version", b"ListAllMyBucketsResult", b"<Code>", b"couchdb", b"Ok.\n", b"clickhouse-client")


@FAST
@given(STATUS, st.lists(HEADER, max_size=4), BODY)
def test_random_http_answers_are_not_stores(status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    head = "".join(f"{k}: {v.strip()}\r\n" for k, v in headers if v.strip())
    reply = f"HTTP/1.1 {status} X\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    service, took = run(answers(reply))
    assert_clean(service)
    if service.kind in (Kind.STORE, Kind.IDENTIFY_ONLY):  # only a body or realm in an engine's own grammar
        assert any(m in body for m in _MARKERS) or "security" in head.lower(), service
    assert took < BUDGET * TIMEOUT + 2


@pytest.mark.parametrize("first", [b"J\x00\x00\x00\x0a5.7.", b"SSH-2.0-", b"\x10\x00\x00"])
def test_a_peer_that_closes_after_the_first_bytes(first: bytes) -> None:
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(first)

    service, took = run(behave)
    assert service.kind is not Kind.STORE
    assert_clean(service)
    if first.startswith(b"J"):  # a MySQL greeting cut short: named as the probe it broke
        assert service.kind is Kind.UNKNOWN and "closed the connection during the MySQL probe" in service.evidence
    assert took < BUDGET * TIMEOUT + 2


def test_a_peer_that_hangs_up_on_every_request_is_unknown_and_says_so() -> None:
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        with contextlib.suppress(TimeoutError):
            conn.recv(16)  # the first bytes of a request, then gone mid-exchange

    service, _ = run(behave)
    assert service.kind is Kind.UNKNOWN and "closed the connection during the" in service.evidence


@pytest.mark.parametrize("behaviour", [drip, endless], ids=["drip", "endless"])
def test_dripping_and_endless_peers_are_bounded(behaviour: Behaviour) -> None:
    """One byte a second (each read succeeds within the timeout) or bytes without end: only the
    probes' deadlines and the endpoint's budget end them."""
    service, took = run(behaviour, timeout=1.0)
    assert service.kind is not Kind.STORE
    assert_clean(service)
    assert took < BUDGET * 1.0 + 2.5


def test_a_ten_megabyte_banner() -> None:
    big = b"220 " + b"A" * (10 << 20)
    service, took = run(speaks_first(big))
    assert service.kind is Kind.NOT_A_STORE and service.product == "220"
    assert took < BUDGET * TIMEOUT + 2


def test_a_ten_megabyte_http_body_is_cut() -> None:
    body = b'{"version": {"number": "' + b"9" * (10 << 20) + b'"}}'
    service, took = run(answers(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    assert service.kind is not Kind.STORE and took < BUDGET * TIMEOUT + 3


def _error_packet(code: int, text: bytes) -> bytes:
    payload = b"\xff" + code.to_bytes(2, "little") + text
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


@pytest.mark.parametrize(("packet", "kind"), [
    (_error_packet(1130, b"Host '127.0.0.1' is not allowed to connect to this MariaDB server"), Kind.STORE),
    (_error_packet(1040, b"Too many connections"), Kind.STORE),
    (_error_packet(1045, b"Access denied"), Kind.NOT_A_STORE),  # not a pre-handshake refusal
    (_error_packet(1130, b"x")[:-1], Kind.NOT_A_STORE),  # its length does not match: not the protocol
])
def test_a_mysql_refusal_instead_of_a_greeting(packet: bytes, kind: Kind) -> None:
    """MariaDB/MySQL send an ERR packet (0xff, error number, message) in place of the handshake to a
    host they refuse (MySQL protocol docs, "ERR_Packet"); the frame must be exact."""
    service, _ = run(speaks_first(packet))
    assert service.kind is kind, service
    if kind is Kind.STORE:
        assert service.engine == "mysql" and service.version is None


_VALID_REPLY = {"redis": (b"+PONG", b"-NOAUTH", b"-DENIED"), "postgres": (b"N", b"S"), "memcached": (b"VERSION ",)}


@FAST
@given(st.binary(min_size=1, max_size=300))
def test_random_answers_to_client_first_probes(reply: bytes) -> None:
    """A peer that waits, then answers every probe with the same bytes: a store only when those bytes
    begin as that engine's answer does."""
    service, took = run(answers(reply))
    assert_clean(service)
    if service.kind in (Kind.STORE, Kind.IDENTIFY_ONLY):
        assert service.engine in _VALID_REPLY and reply.startswith(_VALID_REPLY[service.engine]), (service, reply)
    assert took < BUDGET * TIMEOUT + 2


def test_identify_all_keeps_order_and_bounds_concurrency() -> None:
    """Four silent peers with two workers take two budgets; results come back in the order given."""
    from adversarial.peers import silent
    from piiguard.discovery.identify import identify_all

    with peer(silent) as quiet, peer(speaks_first(b"SSH-2.0-x\r\n")) as ssh:
        endpoints = [Endpoint("127.0.0.1", p) for p in (quiet, ssh, quiet, ssh, quiet, quiet)]
        started = time.monotonic()
        services = identify_all(endpoints, timeout=0.2, concurrency=2)
        took = time.monotonic() - started
    assert [s.endpoint for s in services] == endpoints
    assert [s.kind for s in services] == [Kind.UNKNOWN, Kind.NOT_A_STORE] * 2 + [Kind.UNKNOWN] * 2
    assert took >= 2 * BUDGET * 0.2  # four silent endpoints, two at a time


def test_a_postgres_like_peer_that_closes_mid_startup_is_named_by_that_probe() -> None:
    """Answers SSLRequest with N as PostgreSQL does, then hangs up on the startup message."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        with contextlib.suppress(TimeoutError):
            if conn.recv(8) == b"\x00\x00\x00\x08\x04\xd2\x16\x2f":
                conn.sendall(b"N")
                conn.recv(1024)

    service, _ = run(behave)
    assert service.kind is Kind.UNKNOWN
    assert service.evidence == "closed the connection during the PostgreSQL probe"


def test_a_port_that_stopped_listening_is_unknown_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        service = identify(Endpoint("127.0.0.1", port), timeout=1.0)
    assert (service.kind, service.evidence) == (Kind.UNKNOWN, "no longer accepts connections")
    assert time.monotonic() - started < 1.0


def _reply(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(h + "\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


ES_ROOT = (b'{"name":"n1","cluster_name":"c","version":{"number":"8.15.0","build_flavor":"default"},'
           b'"tagline":"You Know, for Search"}')
MINIO_DENIED = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>x</Message></Error>'


@pytest.mark.parametrize(("reply", "engine", "product"), [
    (_reply("200 OK", ES_ROOT, "Content-Type: application/json"), "opensearch", "Elasticsearch"),
    (_reply("401 Unauthorized", b'{"error":{"type":"security_exception"}}',
            'WWW-Authenticate: Basic realm="security" charset="UTF-8"'), "opensearch", "Elasticsearch"),
    (_reply("403 Forbidden", MINIO_DENIED, "Server: MinIO", "Content-Type: application/xml"), "s3", "MinIO"),
    (_reply("200 OK", b"<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>", "Server: SeaweedFS S3"),
     "s3", "SeaweedFS"),
    (_reply("403 Forbidden", b"<Error><Code>Forbidden</Code></Error>", "Server: MinIO"), None, None),  # no S3 code
    (_reply("401 Unauthorized", b"", 'WWW-Authenticate: Basic realm="Restricted"'), None, None),
], ids=["es-open", "es-secured", "minio-denied", "seaweedfs-list", "not-an-s3-code", "other-realm"])
def test_http_answers_in_an_engines_documented_grammar(reply: bytes, engine: str | None, product: str | None) -> None:
    """Elasticsearch's root and its X-Pack 401 (realm "security"), S3 errors and listings with the
    implementation's Server header — as each documents them; near misses stay HTTP servers."""
    service, _ = run(answers(reply), timeout=1.0)
    assert (service.engine, service.product if engine else None) == (engine, product), service
    assert service.kind is (Kind.STORE if engine else Kind.NOT_A_STORE)
