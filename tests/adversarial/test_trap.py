"""The trap on a real socket: canary values in a request or a mail are hits; nothing else is, and no
client — random bytes, oversized headers, slow drips, a crowd — crashes it or learns anything."""

from __future__ import annotations

import base64
import contextlib
import logging
import smtplib
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import free_port

from piiguard.catalog import Catalog
from piiguard.discovery import canary_values as cv
from piiguard.discovery.fingerprints import key_id
from piiguard.discovery.settings import CanarySettings
from piiguard.discovery.trap import ANSWER, BAD_REQUEST, Hit, Trap

KEY = b"t" * 32
DOMAIN = "canary.example.com"
FIELDS = {"email": cv.ValueKind.EMAIL, "token": cv.ValueKind.TOKEN, "avatar": cv.ValueKind.LINK,
          "serial": cv.ValueKind.SERIAL, "signup": cv.ValueKind.DATE}


def _plant(cat: Catalog, nonce: str, collection: str = "public.customers", count: int = 3) -> list[dict[str, Any]]:
    rows = cv.Deriver(KEY, nonce, DOMAIN, "https://trap.example.com").rows(count, FIELDS)
    canary_id = cat.add_canary("prod", collection, count, nonce, key_id(KEY), {f: k.value for f, k in FIELDS.items()},
                               cv.digests(KEY, rows, FIELDS))
    cat.set_canary(canary_id, "planted")
    return rows


class Running:
    def __init__(self, trap: Trap, rows: list[dict[str, Any]], hits: list[Hit], catalog: Path) -> None:
        self.trap, self.rows, self.hits, self.catalog = trap, rows, hits, catalog
        host, _, port = trap.addresses[0].rpartition(":")
        self.http = (host, int(port))
        host, _, port = trap.addresses[1].rpartition(":")
        self.smtp = (host, int(port))

    def raw(self, data: bytes, *, wait: float = 5.0) -> bytes:
        out = b""
        with socket.create_connection(self.http, timeout=wait) as s:
            try:  # the trap may answer and close before a large request is all sent
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            try:
                while chunk := s.recv(4096):
                    out += chunk
            except OSError:
                pass
        return out

    def settle(self, n: int, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.hits) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # and no more than n


@pytest.fixture
def running(tmp_path: Path, leaks: Any) -> Iterator[Running]:
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        rows = _plant(cat, "n1")
    leaks.seed([str(v) for r in rows for v in r.values()], "canary")
    leaks.seed([cv.matched_form(r["avatar"], cv.ValueKind.LINK) for r in rows], "canary-link-token")
    hits: list[Hit] = []
    trap = Trap(CanarySettings(domain=DOMAIN, trap=f"127.0.0.1:{free_port()}", smtp=f"127.0.0.1:{free_port()}"),
                path, KEY, hits.append, max_clients=8, deadline=1.5)
    trap.start()
    yield Running(trap, rows, hits, path)
    trap.stop()


def _get(r: Running, path: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> bytes:
    req = urllib.request.Request(f"http://{r.http[0]}:{r.http[1]}{path}", data=body, headers=headers or {},
                                 method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return bytes(resp.read())


def test_token_in_header_path_and_body_each_one_hit(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    row = running.rows[0]
    answers = [_get(running, "/api/me", {"Authorization": f"Bearer {row['token']}"})]
    running.settle(1)
    answers.append(_get(running, urllib.parse.urlsplit(row["avatar"]).path))  # the planted link, followed
    running.settle(2)
    answers.append(_get(running, "/login", body=f"user={row['email'].replace('@', '%40')}&x=1".encode()))
    running.settle(3)
    # the token twice in one request is still one hit
    answers.append(_get(running, f"/x?t={row['token']}", {"X-Token": row["token"]}))
    running.settle(4)
    assert len(running.hits) == 4
    assert {h.channel for h in running.hits} == {"http"}
    assert all(h.source.startswith("127.0.0.1:") and h.store == "prod" and h.canary_id == 1 for h in running.hits)
    assert set(answers) == {b"ok\n"}  # the same fixed body, hit or not
    with Catalog(running.catalog) as cat:
        hits = cat.canary_hits(1)
        assert [h["channel"] for h in hits] == ["http"] * 4
        assert {h["incident_id"] for h in hits} == {running.hits[0].incident_id}  # one incident, four entries
        incident = cat.incident(int(running.hits[0].incident_id or 0))
        assert incident is not None and incident["title"] == "canary of prod.public.customers used"
        kinds = [e["kind"] for e in cat.timeline(int(incident["id"]))]
        assert kinds.count("canary-used") == 4
        assert "token by http" in hits[0]["detail"] and "link by http" in hits[1]["detail"]
        assert "email by http" in hits[2]["detail"]
    assert "canary of prod.public.customers used: http from 127.0.0.1:" in caplog.text
    logged = caplog.text.lower()
    assert not [f for f, v in row.items() if FIELDS[f].matchable and cv.matched_form(v, FIELDS[f]).lower() in logged]


def test_mail_to_a_canary_address_is_one_hit(running: Running) -> None:
    row = running.rows[1]
    with smtplib.SMTP(*running.smtp, timeout=5) as smtp:
        smtp.sendmail("someone@elsewhere.example", [row["email"]], f"Subject: hi\r\n\r\nhello {row['email']}\r\n")
        refused = pytest.raises(smtplib.SMTPRecipientsRefused)
        with refused:
            smtp.sendmail("a@elsewhere.example", ["nobody@elsewhere.example"], "Subject: x\r\n\r\nx\r\n")
    running.settle(1)
    assert [(h.channel, h.source.split(":")[0]) for h in running.hits] == [("smtp", "127.0.0.1")]
    with Catalog(running.catalog) as cat:
        assert "email by smtp" in cat.canary_hits(1)[0]["detail"]


def test_requests_without_canaries_give_no_hit(running: Running) -> None:
    other = cv.Deriver(KEY, "never-planted", DOMAIN, "https://trap.example.com").rows(2, FIELDS)
    for path in ("/", "/c/" + cv.matched_form(other[0]["avatar"], cv.ValueKind.LINK), "/favicon.ico"):
        assert _get(running, path, {"Authorization": f"Bearer {other[0]['token']}"}) == b"ok\n"
    assert _get(running, "/login", body=f"email={other[1]['email']}&serial={running.rows[0]['signup']}".encode()) \
        == b"ok\n"
    running.settle(1, 0.5)
    assert running.hits == []
    with Catalog(running.catalog) as cat:
        assert cat.canary_hits() == [] and cat.incidents() == []


def test_a_set_planted_later_is_armed_without_restart(running: Running, leaks: Any) -> None:
    with Catalog(running.catalog) as cat:
        rows = _plant(cat, "n2", "public.accounts")
    leaks.seed([str(v) for r in rows for v in r.values()], "canary")
    _get(running, "/", {"Cookie": f"s={rows[0]['serial']}"})
    running.settle(1)
    assert [(h.canary_id, h.collection) for h in running.hits] == [(2, "public.accounts")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_crash_it_nor_hit(running: Running, data: bytes) -> None:
    answer = running.raw(data)
    assert answer in (ANSWER, BAD_REQUEST, b"")
    assert running.hits == []


def test_oversized_and_slow_clients_are_cut_and_it_still_serves(running: Running) -> None:
    token = running.rows[2]["token"]
    huge_line = b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n\r\n"
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(500)) + b"\r\n"
    big_body = b"POST / HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n" + b"z" * 300_000
    for data in (huge_line, many, big_body):
        assert running.raw(data) in (ANSWER, b"")
    # slowloris: more slow clients than slots (8), each dripping; all are cut by the deadline
    slow = [socket.create_connection(running.http) for _ in range(12)]
    time.sleep(0.3)
    assert running.raw(b"GET / HTTP/1.0\r\n\r\n") == b""  # the slots are full: closed, not queued
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            for s in slow:
                with contextlib.suppress(OSError):
                    s.send(b"X")
            time.sleep(0.2)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    time.sleep(2.5)  # past the 1.5 s deadline: the slots are free again
    try:
        assert _get(running, "/", {"X-Api": token}) == b"ok\n"
    finally:
        stop.set()
        dripper.join()
        for s in slow:
            s.close()
    running.settle(1)
    assert len(running.hits) == 1 and running.hits[0].channel == "http"


SMTP_LINES = st.lists(st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"EHLO x", b"MAIL FROM:<a@b.example>", b"RCPT TO:<>", b"RCPT TO:<x@canary.example.com>",
                     b"DATA", b".", b"RSET", b"QUIT", b"RCPT TO:" + b"A" * 2000])), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=SMTP_LINES)
def test_hostile_smtp_sessions_never_crash_it_nor_hit(running: Running, lines: list[bytes]) -> None:
    with socket.create_connection(running.smtp, timeout=5) as s:
        with contextlib.suppress(OSError):
            s.sendall(b"\r\n".join(lines) + b"\r\n")
            s.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            greeting = s.recv(64)
            assert greeting.startswith(b"220 ")
            while s.recv(4096):
                pass
    assert running.hits == []
    with smtplib.SMTP(*running.smtp, timeout=5) as smtp:  # and it still serves
        assert smtp.noop()[0] == 250


def _request(head: str, body: bytes) -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=8), ext=st.booleans())
def test_a_chunked_body_is_decoded(running: Running, cuts: list[int], ext: bool) -> None:
    before = len(running.hits)
    body, chunks = f"user={running.rows[0]['email']}&x=1".encode(), b""
    for cut in [*cuts, len(f"user={running.rows[0]['email']}&x=1")]:  # split anywhere, a canary across chunks too
        piece, body = body[:cut], body[cut:]
        if piece:
            chunks += b"%x%s\r\n%s\r\n" % (len(piece), b";a=b" if ext else b"", piece)
    answer = running.raw(_request("POST /login HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n",
                                  chunks + b"0\r\n\r\n"))
    running.settle(before + 1)
    assert answer == ANSWER and len(running.hits) == before + 1


def test_repeated_content_lengths_equal_are_read_differing_are_refused_and_scanned(running: Running) -> None:
    body = f"user={running.rows[0]['email']}".encode()
    n = len(body)
    assert running.raw(_request(f"POST / HTTP/1.1\nContent-Length: {n}, {n}\n", body)) == ANSWER
    running.settle(1)
    assert running.raw(_request(f"POST / HTTP/1.1\nContent-Length: {n}\nContent-Length: {n}\n", body)) == ANSWER
    running.settle(2)
    refused = running.raw(_request(f"POST / HTTP/1.1\nContent-Length: {n}, {n + 3}\n", body))
    assert refused.startswith(b"HTTP/1.1 400 ") and b"@" not in refused
    running.settle(3)
    assert len(running.hits) == 3
    refused = running.raw(_request("POST / HTTP/1.1\nTransfer-Encoding: gzip\n", body))  # not chunked last
    assert refused.startswith(b"HTTP/1.1 400 ")
    running.settle(4)
    assert len(running.hits) == 4


ENCODINGS = {
    "basic-email": lambda r: ("/", {"Authorization": "Basic " + base64.b64encode(f"{r['email']}:pw".encode()).decode()}),
    "basic-token": lambda r: ("/", {"Authorization": "Basic " + base64.b64encode(f"u:{r['token']}".encode()).decode()}),
    "query-b64url": lambda r: ("/x?t=" + base64.urlsafe_b64encode(r["token"].encode()).decode().rstrip("="), {}),
    "query-b64-quoted": lambda r: ("/x?e=" + urllib.parse.quote(base64.b64encode(r["email"].encode()).decode()), {}),
    "cookie-b64": lambda r: ("/", {"Cookie": "s=" + base64.b64encode(f'{{"e":"{r["email"]}"}}'.encode()).decode()}),
}


@pytest.mark.parametrize("how", list(ENCODINGS))
def test_a_base64_canary_in_auth_header_or_query_is_a_hit(running: Running, how: str) -> None:
    path, headers = ENCODINGS[how](running.rows[1])
    assert _get(running, path, headers) == b"ok\n"
    running.settle(1)
    assert len(running.hits) == 1 and running.hits[0].channel == "http"
    other = cv.Deriver(KEY, "never-planted", DOMAIN, "https://trap.example.com").rows(1, FIELDS)[0]
    path, headers = ENCODINGS[how](other)
    assert _get(running, path, headers) == b"ok\n"
    running.settle(2, 0.5)
    assert len(running.hits) == 1  # an encoded value that was never planted is no hit


class _Session:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"220 ")

    def say(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def reply(self) -> bytes:
        return bytes(self.file.readline())

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _envelope(s: _Session) -> None:
    assert s.say(b"EHLO me").startswith(b"250")
    assert s.say(b"MAIL FROM:<a@elsewhere.example>").startswith(b"250")
    assert s.say(b"RCPT TO:<postmaster@" + DOMAIN.encode() + b">").startswith(b"250")  # no canary
    assert s.say(b"DATA").startswith(b"354")


def test_a_mail_with_a_line_over_8_kb_is_refused_but_its_first_64_kb_are_scanned(running: Running) -> None:
    s = _Session(running.smtp)
    try:
        _envelope(s)
        s.sock.sendall(f"Subject: x\r\n\r\nkey {running.rows[2]['token']}\r\n".encode() + b"y" * 20_000 + b"\r\n.\r\n")
        assert s.reply().startswith(b"552 ")
        assert s.say(b"NOOP").startswith(b"250")  # the session goes on
        assert s.say(b"QUIT").startswith(b"221")
    finally:
        s.close()
    running.settle(1)
    assert [h.channel for h in running.hits] == ["smtp"]


def test_a_mail_over_1_mb_is_refused_but_its_first_64_kb_are_scanned(running: Running) -> None:
    s = _Session(running.smtp)
    try:
        _envelope(s)
        sent = s.sock.send(f"Subject: x\r\n\r\nkey {running.rows[2]['token']}\r\n".encode())
        line = b"z" * 1022 + b"\r\n"
        while sent <= 16 * 64 * 1024:  # exactly past 1 MB, so the trap reads all that was sent
            s.sock.sendall(line)
            sent += len(line)
        assert s.reply().startswith(b"552 ")
    finally:
        s.close()
    running.settle(1)
    assert [h.channel for h in running.hits] == ["smtp"]


def test_data_without_an_accepted_recipient_is_refused(running: Running) -> None:
    s = _Session(running.smtp)
    try:
        assert s.say(b"EHLO me").startswith(b"250")
        assert s.say(b"DATA").startswith(b"503 ")  # no MAIL
        assert s.say(b"MAIL FROM:<a@elsewhere.example>").startswith(b"250")
        assert s.say(b"RCPT TO:<b@elsewhere.example>").startswith(b"550 ")
        assert s.say(b"DATA").startswith(b"554 ")
        # what the client sends next are commands, not a message
        assert s.say(f"hello {running.rows[0]['token']}".encode()).startswith(b"502 ")
        assert s.say(b"QUIT").startswith(b"221")
    finally:
        s.close()
    running.settle(1, 0.5)
    assert running.hits == []
