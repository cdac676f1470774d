"""Peers that answer HTTP, but not as the engine does: a listing that never ends, a body that is
not XML or not OpenSearch's JSON, a refusal whose body is a page. Each is a problem for that store
(never an internal error for the whole scan, never the body echoed), and the healthy store next to
it is still reported; a listing or scroll that never ends is cut.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from peers import SECRET_ENV, peer

from piiguard import plugins
from piiguard.config import store_from_url
from piiguard.model import Store
from piiguard.scanner import scan

TIMEOUT = 1.5
BOUND = 2 * TIMEOUT + 3
MARK = "PEER-BODY-MARK"  # must never reach a message


@pytest.fixture(scope="module", autouse=True)
def _loaded() -> None:
    plugins.load()


def answering(status: int, body: Callable[[bytes], bytes], content_type: str = "application/xml",
              chunked_forever: bool = False) -> Callable[[socket.socket, threading.Event], None]:
    """Answers every request on the connection with ``status`` and ``body(request)``."""
    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(0.5)
        while not stop.is_set():
            try:
                request = conn.recv(65536)
            except TimeoutError:
                continue
            if not request:
                return
            while b"\r\n\r\n" not in request:  # the whole head, then the body it announces
                more = conn.recv(65536)
                if not more:
                    return
                request += more
            head_part, _, rest = request.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head_part.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                more = conn.recv(65536)
                if not more:
                    return
                rest += more
            head = request.split(b"\r\n", 1)[0]
            reason = b"OK" if status == 200 else b"Forbidden"
            if chunked_forever:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                             % content_type.encode())
                while not stop.wait(0.05):
                    conn.sendall(b"1\r\n<\r\n")
                return
            data = body(request)
            conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                         b"x-amz-request-id: 1\r\n\r\n" % (status, reason, content_type.encode(), len(data)))
            if not head.startswith(b"HEAD"):
                conn.sendall(data)
    return behaviour


def _endless_listing(request: bytes) -> bytes:
    n = time.monotonic_ns()
    return (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
            b'2006-03-01/"><Name>bucket</Name><IsTruncated>true</IsTruncated><KeyCount>1</KeyCount>'
            b"<Contents><Key>k%d.csv</Key><Size>3</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
            b"</Contents><NextContinuationToken>x%d</NextContinuationToken></ListBucketResult>" % (n, n))


def _healthy(tmp_path: Path) -> Store:
    with sqlite3.connect(tmp_path / "ok.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS people (email text)")
        db.execute("INSERT INTO people VALUES ('someone@example.org')")
    return store_from_url(f"sqlite:///{tmp_path / 'ok.db'}", name="src")


def _scan(url: str, tmp_path: Path, **kw: object) -> tuple[float, object]:
    import os

    os.environ.setdefault(SECRET_ENV, "not-a-real-secret")
    hostile = store_from_url(url, name="hostile")
    start = time.monotonic()
    result = scan([_healthy(tmp_path), hostile], timeout=TIMEOUT, **kw)  # type: ignore[arg-type]
    return time.monotonic() - start, result


def _assert_store_problem(result: object) -> None:
    from piiguard.model import ScanResult

    assert isinstance(result, ScanResult)
    healthy, hostile = result.stores
    assert healthy.collections and not healthy.problems, "the healthy store must still be reported"
    assert hostile.problems and not hostile.collections
    for problem in hostile.problems:
        assert MARK not in problem.message and "<?xml" not in problem.message and "[1" not in problem.message
        assert "internal error" not in problem.message


S3 = "s3://probe@127.0.0.1:{port}/bucket?tls=false&password_env=" + SECRET_ENV
OPENSEARCH = "opensearch://probe@127.0.0.1:{port}/?tls=false&password_env=" + SECRET_ENV


def test_s3_listing_that_never_ends_is_cut_by_timeout(tmp_path: Path) -> None:
    with peer(answering(200, _endless_listing)) as port:
        elapsed, result = _scan(S3.format(port=port), tmp_path)
    assert elapsed <= BOUND, f"an endless S3 listing held the scan {elapsed:.1f} s"
    _assert_store_problem(result)


BODIES = {
    "json": (lambda _: b'{"a": [1, 2, 3], "m": "' + MARK.encode() + b'"}', "application/json", False),
    "list": (lambda _: b"[1,2,3]", "application/json", False),
    "text": (lambda _: MARK.encode() + b" not xml at all", "text/plain", False),
    "chunked-forever": (lambda _: b"", "application/xml", True),
}


@pytest.mark.parametrize("shape", list(BODIES))
@pytest.mark.parametrize("engine", ["s3", "opensearch"])
def test_malformed_answer_is_that_stores_problem_and_others_are_reported(
        engine: str, shape: str, tmp_path: Path) -> None:
    body, kind, forever = BODIES[shape]
    with peer(answering(200, body, kind, forever)) as port:
        elapsed, result = _scan((S3 if engine == "s3" else OPENSEARCH).format(port=port), tmp_path)
    assert elapsed <= BOUND, f"{engine} {shape}: {elapsed:.1f} s"
    _assert_store_problem(result)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200),
                      st.recursive(st.none() | st.integers() | st.text(max_size=8),
                                   lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                                         max_size=3),
                                   max_leaves=6).map(lambda v: __import__("json").dumps(v).encode())))
def test_any_200_body_from_opensearch_is_a_store_problem(body: bytes, tmp_path: Path) -> None:
    """Class: whatever a driver raises on an answer becomes that store's problem."""
    with peer(answering(200, lambda _: body, "application/json")) as port:
        _, result = _scan(OPENSEARCH.format(port=port), tmp_path)
    from piiguard.model import ScanResult

    assert isinstance(result, ScanResult)
    healthy, hostile = result.stores
    assert healthy.collections and not healthy.problems
    assert hostile.problems or hostile.collections  # decided either way, never the whole scan's error


def test_opensearch_refusal_never_echoes_the_body(tmp_path: Path) -> None:
    page = b'<?xml version="1.0"?><error>' + MARK.encode() + b"</error>"
    with peer(answering(403, lambda _: page, "application/xml")) as port:
        _, result = _scan(OPENSEARCH.format(port=port), tmp_path)
    _assert_store_problem(result)


def test_opensearch_full_scroll_that_never_ends_stops_past_the_reported_count(tmp_path: Path) -> None:
    import json

    from piiguard.model import ScanMode

    def answer(request: bytes) -> bytes:
        line = request.split(b"\r\n", 1)[0]
        if b"_cat/indices" in line:
            return json.dumps([{"index": "people", "docs.count": "10"}]).encode()
        if b"_search" in line or b"scroll" in line:
            hits = [{"_id": str(i), "_source": {"n": i}} for i in range(10)]
            return json.dumps({"_scroll_id": "s", "hits": {"total": {"value": 10}, "hits": hits},
                               "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}).encode()
        return json.dumps({"version": {"number": "2.11.0", "distribution": "opensearch"},
                           "cluster_name": "c", "tagline": "The OpenSearch Project"}).encode()

    with peer(answering(200, answer, "application/json")) as port:
        elapsed, result = _scan(OPENSEARCH.format(port=port), tmp_path, mode=ScanMode.FULL)
    assert elapsed <= 60, f"a never-ending scroll held the full scan {elapsed:.1f} s"
    from piiguard.model import ScanResult

    assert isinstance(result, ScanResult)
    healthy, hostile = result.stores
    assert healthy.collections
    assert any("scroll" in p.message for p in hostile.problems), (hostile, result.problems)
