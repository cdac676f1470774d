"""Peers that look like they took an alert and did not: a webhook that redirects, a syslog receiver
that accepts and closes unread (at once or later), one that never accepts. Each is a failed
delivery. Real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from piiguard.watch.sinks import Syslog, Webhook

ALERT = {"event": "opened", "store": "cache", "check": "redis.no-auth", "severity": "critical",
         "at": "2026-11-25T20:00:00+00:00", "evidence": "INFO was answered", "pii_types": [],
         "subjects_estimate": None, "dedupe_key": "cache:redis.no-auth:opened:1", "title": "t"}


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str]]]:
    """POST /hook answers with the status in the path (/hook/302) pointing at /ok, which answers 200 to anything."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            if self.path.startswith("/hook/"):
                self.send_response(int(self.path.rsplit("/", 1)[1]))
                self.send_header("Location", "/ok")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308, 300, 304])
def test_a_webhook_that_redirects_is_a_failed_delivery(redirecting: tuple[str, list[str]], status: int) -> None:
    base, seen = redirecting
    with pytest.raises(OSError):
        Webhook(f"{base}/hook/{status}").send(ALERT)
    assert seen == [f"POST /hook/{status}"]  # the redirect was not followed


def test_a_webhook_that_answers_200_is_delivered(redirecting: tuple[str, list[str]]) -> None:
    base, seen = redirecting
    Webhook(f"{base}/ok").send(ALERT)
    assert seen == ["POST /ok"]


def _server(behaviour: str) -> tuple[socket.socket, threading.Thread]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def run() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if behaviour == "sleep-close":
                time.sleep(0.5)  # the kernel has acknowledged the message; nobody read it
            elif behaviour == "read-close":
                while conn.recv(4096):
                    pass
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return srv, thread


@pytest.mark.parametrize("behaviour", ["sleep-close", "close"])
def test_a_syslog_receiver_that_closes_unread_is_a_failed_delivery(behaviour: str) -> None:
    srv, _ = _server(behaviour)
    try:
        with pytest.raises(OSError):
            Syslog("127.0.0.1", srv.getsockname()[1], transport="tcp", timeout=2).send(ALERT)
    finally:
        srv.close()


def test_a_syslog_listener_that_never_accepts_is_a_failed_delivery() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)  # never accepted: the queue fills, the kernel may still acknowledge data
    fillers = []
    for _ in range(2):  # fill the accept queue; a filler that is not let in any more is fine
        with contextlib.suppress(OSError):
            fillers.append(socket.create_connection(srv.getsockname(), timeout=0.5))
    try:
        started = time.monotonic()
        with pytest.raises(OSError):
            Syslog("127.0.0.1", srv.getsockname()[1], transport="tcp", timeout=1).send(ALERT)
        assert time.monotonic() - started < 10
    finally:
        for f in fillers:
            f.close()
        srv.close()


def test_a_syslog_receiver_that_reads_and_closes_is_delivered() -> None:
    srv, _ = _server("read-close")
    try:
        Syslog("127.0.0.1", srv.getsockname()[1], transport="tcp", timeout=2).send(ALERT)
    finally:
        srv.close()
