"""Alerts that say what happened and deliveries that say when they did not: fail → error → fail is
one opened alert; a TCP syslog peer that closes, a webhook that answers 500 and an SMTP server without
STARTTLS are failed deliveries — counted, logged without values, and `watch --once` exits 1."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import Listener, Mailbox
from servers import PASSWORD, REDIS_ADMIN, Server, free_port, redis_admin

from piiguard.catalog import Catalog
from piiguard.errors import ConfigError, DeliveryFailed
from piiguard.model import Store
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import Email, Syslog, Webhook

ALERT = {"event": "opened", "store": "cache", "check": "redis.no-auth", "severity": "critical",
         "at": "2026-11-25T20:00:00+00:00", "evidence": "INFO was answered", "pii_types": [],
         "subjects_estimate": None, "dedupe_key": "cache:redis.no-auth:opened:1", "title": "t"}


def open_up(server: Server) -> None:
    redis_admin(server).execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "-@all", "+info")


def close_down(server: Server) -> None:
    redis_admin(server).execute_command("ACL", "SETUSER", "default", "reset", "off")


def store(server: Server) -> Store:
    return Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env="PIIGUARD_W_PW")


def test_fail_error_fail_is_one_opened_alert(cache: Server, listener: Listener, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The store goes unreachable (its port closed) between two failing cycles: the failure never
    ended, so there is no second ``opened``; the pass afterwards resolves it once."""
    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    open_up(cache)
    try:
        with Catalog(tmp_path / "c.db") as cat:
            watcher = Watcher([store(cache)], cat, [Webhook(listener.url)], timeout=2)
            first = watcher.cycle(inside=False)
            assert [a.event for a in first if a.check == "redis.no-auth"] == ["opened"]
            watcher.stores = [replace(store(cache), port=free_port())]  # nothing listens there: error
            assert watcher.cycle(inside=False) == []
            assert ("cache", "redis.no-auth", "error") in [r[:3] for r in cat.findings("cache")]
            watcher.stores = [store(cache)]
            assert watcher.cycle(inside=False) == []  # fail again: the same failure, still open
            close_down(cache)
            watcher.stores = [replace(store(cache), port=free_port())]
            watcher.cycle(inside=False)
            watcher.stores = [store(cache)]
            resolved = watcher.cycle(inside=False)  # fail → error → pass: resolved, once
            assert [a.event for a in resolved if a.check == "redis.no-auth"] == ["resolved"]
            watcher.deliver()
    finally:
        close_down(cache)
    assert listener.events("redis.no-auth") == ["opened", "resolved"]


@pytest.fixture
def closing_peer() -> Iterator[tuple[int, list[str]]]:
    """A real TCP server on 127.0.0.1 that accepts each connection and closes it unread (``close``) or
    resets it (``reset``); the mode is the list's last element."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    mode = ["close"]
    accepted = []

    def run() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(mode[-1])
            if mode[-1] == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    yield srv.getsockname()[1], mode
    srv.close()


def test_tcp_syslog_peer_that_closes_is_a_failed_delivery(closing_peer: tuple[int, list[str]]) -> None:
    port, mode = closing_peer
    for how in ("close", "reset"):
        mode.append(how)
        with pytest.raises(OSError):
            Syslog("127.0.0.1", port, transport="tcp", timeout=2).send(ALERT)
    with pytest.raises(OSError):  # nothing listening at all
        Syslog("127.0.0.1", free_port(), transport="tcp", timeout=2).send(ALERT)


def test_tcp_syslog_receiver_that_reads_is_delivered() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got: list[bytes] = []

    def run() -> None:
        conn, _ = srv.accept()
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        got.append(data)
        conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        Syslog("127.0.0.1", srv.getsockname()[1], transport="tcp", timeout=2).send(ALERT)
        thread.join(5)
    finally:
        srv.close()
    length, _, message = got[0].partition(b" ")
    assert int(length) == len(message) and b'check="redis.no-auth"' in message


def test_failed_deliveries_are_counted_logged_without_values_and_retried(
        cache: Server, closing_peer: tuple[int, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from prometheus_client import generate_latest

    port, _ = closing_peer
    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    open_up(cache)
    sink = Syslog("127.0.0.1", port, transport="tcp", timeout=2)
    try:
        with Catalog(tmp_path / "c.db") as cat, caplog.at_level(logging.WARNING, logger="piiguard.watch.service"):
            watcher = Watcher([store(cache)], cat, [sink], timeout=2)
            queued = watcher.cycle(inside=False)
            assert queued
            # each alert is tried (one failing never holds back the next), each failure counted
            assert watcher.deliver() == 0 and watcher.failed_deliveries == len(queued)
            assert cat.pending(sink.id, now="9999") != []  # still queued for the retry
            metrics = generate_latest(watcher.metrics.registry).decode()
    finally:
        close_down(cache)
    assert f'piiguard_alert_delivery_failures_total{{sink="{sink.id}"}} {len(queued)}.0' in metrics
    records = [r for r in caplog.records if r.name == "piiguard.watch.service" and "delivery" in r.getMessage()]
    assert len(records) == len(queued)
    for record in records:
        line = record.getMessage()
        assert sink.id in line and "failed" in line and "INFO was answered" not in line and "default" not in line


def test_smtp_without_starttls_gets_no_credentials(smtp_server: tuple[Mailbox, int]) -> None:
    """aiosmtpd with no STARTTLS: a sink with a login refuses to be built without TLS, and one that asks
    for STARTTLS fails the delivery before any AUTH command is sent."""
    import smtplib

    mailbox, port = smtp_server
    with pytest.raises(ConfigError) as err:
        Email("127.0.0.1", port, "piiguard@localhost", ["oncall@localhost"], username="piiguard", password="pw")
    assert "TLS" in str(err.value) and "pw" not in str(err.value).replace("password", "")
    with pytest.raises(smtplib.SMTPNotSupportedError):
        Email("127.0.0.1", port, "piiguard@localhost", ["oncall@localhost"], starttls=True, username="piiguard",
              password="smtp-secret").send(ALERT)
    assert mailbox.messages == []
    Email("127.0.0.1", port, "piiguard@localhost", ["oncall@localhost"]).send(ALERT)  # no login: plain is fine
    assert len(mailbox.messages) == 1


def test_watch_once_exits_1_when_a_delivery_failed(cache: Server, listener: Listener, tmp_path: Path) -> None:
    env = {**os.environ, "PIIGUARD_W_PW": PASSWORD}
    url = f"redis://{REDIS_ADMIN}@127.0.0.1:{cache.port}/0?password_env=PIIGUARD_W_PW"
    hook = listener.url + "?token=hook-secret-123"
    base = [sys.executable, "-m", "piiguard", "watch", "--once", url, "--catalog", str(tmp_path / "c.db"),
            "--timeout", "2", "--webhook", hook]
    open_up(cache)
    listener.failing = True
    try:
        run = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
        again = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)  # no new alert
        listener.failing = False
        ok = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
    finally:
        close_down(cache)
    assert run.returncode == 1, run.stderr
    assert "delivery" in run.stderr and "hook-secret-123" not in run.stderr + run.stdout
    assert again.returncode == 1, again.stderr  # the queued alert is retried at once, and fails again
    assert ok.returncode == 0, ok.stderr
    assert listener.events("redis.no-auth") == ["opened"]  # delivered once, by the run that could


def test_a_window_opened_by_an_inside_cycle_probe_survives_frequent_cycles(
        cache: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """redis.weak-password guesses passwords, so it runs with the inside audits only; the frequent
    cycles in between (redis.no-auth passes: a password is asked for) must not close its window."""
    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    redis_admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "on", ">foobared", "-@all", "+info")
    try:
        with Catalog(tmp_path / "c.db") as cat:
            watcher = Watcher([store(cache)], cat, [], timeout=2)
            watcher.cycle(inside=True)
            (window,) = cat.exposures("cache")
            assert window.closed_at is None and window.checks == "redis.weak-password"
            watcher.cycle(inside=False)
            watcher.cycle(inside=False)
            assert cat.exposures("cache")[0].closed_at is None
            close_down(cache)
            watcher.cycle(inside=True)  # the audit proves it closed
            assert cat.exposures("cache")[0].closed_at is not None
    finally:
        close_down(cache)


def test_smtp_that_refuses_one_recipient_is_a_failed_delivery() -> None:
    """smtplib returns partial refusals instead of raising: one recipient not reached is a failure."""
    from aiosmtpd.controller import Controller

    class PickyMailbox(Mailbox):
        async def handle_RCPT(self, server: object, session: object, envelope: Any, address: str,
                              options: object) -> str:
            if address.startswith("gone@"):
                return "550 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    box, port = PickyMailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(DeliveryFailed, match="1 of 2 recipient"):
            Email("127.0.0.1", port, "piiguard@localhost", ["oncall@localhost", "gone@localhost"]).send(ALERT)
    finally:
        controller.stop()
    assert len(box.messages) == 1  # the other recipient got it; the failure is still reported
