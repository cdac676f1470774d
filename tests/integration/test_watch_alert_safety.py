"""What a name can do to an alert, and what one alert can do to the others: no CR/LF ever reaches an
e-mail header (a store URL with ``%0ABcc:``), Slack text is escaped (``<!channel>``), and an alert a
sink rejects — once or for good — never holds back the alerts behind it (real SMTP and HTTP
servers on 127.0.0.1)."""

from __future__ import annotations

import email
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import Mailbox
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import free_port

from piiguard.catalog import Catalog
from piiguard.model import Alert, Severity
from piiguard.watch.service import MAX_ATTEMPTS, Watcher
from piiguard.watch.sinks import Email, Webhook, format_5424, slack_escape, slack_text


def alert(store: str, n: int, check: str = "redis.no-auth") -> Alert:
    return Alert(f"{store}:{check}:opened:{n}", "opened", store, check, Severity.CRITICAL,
                 f"2026-11-25T20:00:0{n}+00:00", "t", "INFO was answered", (), None)


def queue(cat: Catalog, sink: str, *alerts: Alert) -> None:
    cat.record_cycle([], lambda _changes: list(alerts), [sink], {})


class Picky(Mailbox):
    """Rejects for good (554) every message whose subject holds ``reject``."""

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        if "reject" in str(email.message_from_bytes(envelope.content)["Subject"]):
            return "554 rejected for good"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def picky_smtp() -> Iterator[tuple[Picky, int]]:
    from aiosmtpd.controller import Controller

    box, port = Picky(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def test_a_newline_in_a_store_name_never_makes_a_header_and_blocks_nothing(
        picky_smtp: tuple[Picky, int], tmp_path: Path) -> None:
    box, port = picky_smtp
    sink = Email("127.0.0.1", port, "piiguard@localhost", ["oncall@localhost"])
    hostile = "127.0.0.1:6379/0\nBcc: x@example.org"  # what redis://127.0.0.1:6379/0%0ABcc:%20x@… is named
    with Catalog(tmp_path / "c.db") as cat:
        queue(cat, sink.id, alert(hostile, 1), alert("reject-me", 2), alert("healthy", 3))
        watcher = Watcher([], cat, [sink])
        assert watcher.deliver(overdue_too=True) == 2  # the rejected one does not hold back the healthy one
        assert watcher.failed_deliveries == 1
    subjects = [email.message_from_string(m) for m in box.messages]
    assert [m["Bcc"] for m in subjects] == [None, None]
    assert not any(line.lower().startswith("bcc") for m in box.messages for line in m.splitlines())
    first = re.sub(r"\r?\n[ \t]", " ", str(subjects[0]["Subject"]))  # a folded header, unfolded
    assert "\\x0aBcc" in first and "healthy" in subjects[1]["Subject"]


def test_an_alert_rejected_for_good_is_dropped_after_its_attempts(picky_smtp: tuple[Picky, int],
                                                                  tmp_path: Path) -> None:
    box, port = picky_smtp
    sink = Email("127.0.0.1", port, "piiguard@localhost", ["oncall@localhost"])
    with Catalog(tmp_path / "c.db") as cat:
        queue(cat, sink.id, alert("reject-me", 1))
        watcher = Watcher([], cat, [sink])
        for _ in range(MAX_ATTEMPTS):
            watcher.deliver(overdue_too=True)
        assert cat.pending(sink.id, "9999") == []  # dropped: not tried again, not even by --once
        assert watcher.failed_deliveries == MAX_ATTEMPTS
        queue(cat, sink.id, alert("later", 2))
        assert watcher.deliver(overdue_too=True) == 1
    assert len(box.messages) == 1


def test_an_alert_in_backoff_does_not_hold_back_the_next_one(tmp_path: Path) -> None:
    """Long-running mode: the earlier alert failed and waits for its backoff; the later is sent now."""
    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ok = body["store"] != "flaky" or len(got) > 0
            if ok:
                got.append(body["store"])
            self.send_response(204 if ok else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = Webhook(f"http://127.0.0.1:{server.server_address[1]}/a")
        with Catalog(tmp_path / "c.db") as cat:
            queue(cat, sink.id, alert("flaky", 1), alert("second", 2))
            assert Watcher([], cat, [sink]).deliver() == 1
        assert got == ["second"]
    finally:
        server.shutdown()


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(store=names, check=names)
def test_no_name_puts_a_control_character_in_a_header_a_line_or_a_slack_command(store: str, check: str) -> None:
    a = {**alert(store, 1, check).payload(), "evidence": f"user {store}"}
    text = slack_escape(slack_text(a))
    assert "<" not in text and ">" not in text and not any(c in text for c in "\r\n\x1b")
    line = format_5424(a).decode()
    assert not any(c in line for c in "\r\n\x1b\x00")


def test_slack_gets_escaped_text(tmp_path: Path) -> None:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        a = {**alert("cache", 1, "redis.acl-weak-password").payload(), "evidence": "weak password: <!channel> & co"}
        Webhook(f"http://127.0.0.1:{server.server_address[1]}/s", slack=True).send(a)
    finally:
        server.shutdown()
    text = json.loads(bodies[0])["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text


def test_watch_once_exits_1_when_checks_could_not_be_decided(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    port = free_port()  # nothing listens there: every check errors
    done = subprocess.run([sys.executable, "-m", "piiguard", "watch", f"redis://127.0.0.1:{port}/0", "--once",
                           "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "could not be decided" in done.stderr and "internal error" not in done.stderr
