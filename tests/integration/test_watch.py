"""watch against a real Redis whose protection is switched off and on while it runs, with a real HTTP
listener as the webhook: alerts arrive, exposure windows open and close, and a SIGKILLed watcher
restarted loses nothing and repeats nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import Listener, Mailbox
from servers import PASSWORD, REDIS_ADMIN, Server, free_port, redis_admin

from piiguard.catalog import Catalog
from piiguard.model import Store
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import Email, Syslog, Webhook

admin = redis_admin


def open_up(server: Server) -> None:  # what an operator "just testing something" does
    admin(server).execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "-@all", "+info")


def close_down(server: Server) -> None:
    admin(server).execute_command("ACL", "SETUSER", "default", "reset", "off")


def store(server: Server) -> Store:
    return Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env="PIIGUARD_W_PW")


def test_alerts_and_exposure_window(cache: Server, listener: Listener, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    close_down(cache)
    with Catalog(tmp_path / "c.db") as cat:
        watcher = Watcher([store(cache)], cat, [Webhook(listener.url)], timeout=2)
        assert watcher.cycle() == [] and watcher.deliver() == 0  # all passing: nothing to say
        open_up(cache)
        opened = watcher.cycle(inside=False)  # an outside probe alone notices
        assert [a.check for a in opened] == ["redis.no-auth"]
        assert watcher.deliver() == 1
        (exposure,) = cat.exposures("cache")
        assert exposure.closed_at is None and exposure.checks == "redis.no-auth"
        assert watcher.cycle() and watcher.deliver() >= 1  # the inside audit adds default-user-nopass
        close_down(cache)
        watcher.cycle()
        watcher.deliver()
        assert watcher.cycle() == [] and watcher.deliver() == 0  # no change: no alert
        (exposure,) = cat.exposures("cache")
        assert exposure.closed_at is not None and exposure.closed_at >= exposure.opened_at
    assert listener.events("redis.no-auth") == ["opened", "resolved"]
    alert = next(a for a in listener.received if a["check"] == "redis.no-auth")
    assert {"event", "store", "check", "severity", "at", "dedupe_key", "pii_types"} <= set(alert)
    assert alert["store"] == "cache" and alert["severity"] == "critical"


def test_every_kind_of_sink_receives_the_alert(cache: Server, listener: Listener, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               smtp_server: tuple[Mailbox, int]) -> None:
    """A real HTTP listener, a real SMTP server (aiosmtpd) and real syslog listeners over UDP and TCP."""
    mailbox, smtp_port = smtp_server
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    tcp.settimeout(5)
    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    close_down(cache)
    try:
        sinks = [Webhook(listener.url), Email("127.0.0.1", smtp_port, "piiguard@localhost", ["oncall@localhost"]),
                 Syslog("127.0.0.1", udp.getsockname()[1], transport="udp"),
                 Syslog("127.0.0.1", tcp.getsockname()[1], transport="tcp")]
        with Catalog(tmp_path / "c.db") as cat:
            watcher = Watcher([store(cache)], cat, sinks, timeout=2)
            watcher.cycle()
            open_up(cache)
            watcher.cycle(inside=False)
            received: dict[str, bytes] = {}

            def accept() -> None:
                conn, _ = tcp.accept()
                received["tcp"] = conn.recv(65536)
                conn.close()

            thread = threading.Thread(target=accept)
            thread.start()
            assert watcher.deliver() == 4
            thread.join(5)
        datagram = udp.recv(65536)
    finally:
        udp.close()
        tcp.close()
        close_down(cache)
    assert listener.events("redis.no-auth") == ["opened"]
    assert len(mailbox.messages) == 1 and "redis.no-auth opened" in mailbox.messages[0]
    assert datagram.startswith(b"<130>1 ") and b'check="redis.no-auth"' in datagram  # local0.crit
    length, _, message = received["tcp"].partition(b" ")
    assert int(length) == len(message) and message.startswith(b"<130>1 ")


def test_metrics_and_health(cache: Server, listener: Listener, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    from piiguard.watch.metrics import Metrics, serve

    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    close_down(cache)
    metrics = Metrics(interval=1)
    server = serve(metrics, "127.0.0.1", free_port())
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as unhealthy:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
        assert unhealthy.value.code == 503  # no cycle yet
        with Catalog(tmp_path / "c.db") as cat:
            watcher = Watcher([store(cache)], cat, [Webhook(listener.url)], timeout=2, metrics=metrics)
            watcher.cycle()
            open_up(cache)
            watcher.cycle(inside=False)
            watcher.deliver()
        assert urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200
        text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        close_down(cache)
    assert 'piiguard_probes_total{store="cache"}' in text
    assert "piiguard_open_exposures 1.0" in text and "piiguard_open_findings 1.0" in text
    assert "piiguard_change_to_alert_seconds_count 1.0" in text


def test_a_failing_sink_is_retried_and_delivered_once(cache: Server, listener: Listener, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIIGUARD_W_PW", PASSWORD)
    close_down(cache)
    with Catalog(tmp_path / "c.db") as cat:
        watcher = Watcher([store(cache)], cat, [Webhook(listener.url)], timeout=2)
        watcher.cycle()
        open_up(cache)
        listener.failing = True
        watcher.cycle(inside=False)
        assert watcher.deliver() == 0 and listener.received == []
    listener.failing = False
    time.sleep(1.2)  # the first retry is due after a second
    with Catalog(tmp_path / "c.db") as cat:  # a restarted watcher, same catalog, same sink
        again = Watcher([store(cache)], cat, [Webhook(listener.url)], timeout=2)
        assert again.deliver() == 1 and again.deliver() == 0
    assert listener.events("redis.no-auth") == ["opened"]
    close_down(cache)


def test_sigkill_and_restart_lose_nothing_and_repeat_nothing(cache: Server, listener: Listener,
                                                             tmp_path: Path) -> None:
    close_down(cache)
    env = {**os.environ, "PIIGUARD_W_PW": PASSWORD}
    cmd = [sys.executable, "-m", "piiguard", "watch", f"redis://{REDIS_ADMIN}@127.0.0.1:{cache.port}/0"
           "?password_env=PIIGUARD_W_PW", "--webhook", listener.url, "--interval", "0.3", "--inside-every", "1",
           "--catalog", str(tmp_path / "c.db"), "--timeout", "2"]

    def until(condition: Any, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert condition()

    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        open_up(cache)
        until(lambda: "opened" in listener.events("redis.no-auth"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    close_down(cache)  # changed while nobody watched
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(lambda: "resolved" in listener.events("redis.no-auth"))
        time.sleep(1.5)  # a few more cycles: nothing new must be sent
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
    # Delivery is at least once: a kill between the receiver's 204 and the catalog's record of it resends
    # that alert once, with the same dedupe key, which a receiver drops. Nothing else may repeat.
    distinct = list({a["dedupe_key"]: a for a in listener.received if a["check"] == "redis.no-auth"}.values())
    assert [a["event"] for a in distinct] == ["opened", "resolved"]
    assert len(listener.received) - len({a["dedupe_key"] for a in listener.received}) <= 1
    with Catalog(tmp_path / "c.db") as cat:
        (exposure,) = cat.exposures()
        assert exposure.store == f"127.0.0.1:{cache.port}/0" and exposure.closed_at is not None


def test_smtp_with_starttls_and_login(tmp_path: Path) -> None:
    """The SMTP sink upgrades with STARTTLS (verifying the server's certificate) and logs in."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()

    def authenticator(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"piiguard", b"smtp-secret")
        return AuthResult(success=ok)

    port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port, server_hostname="localhost", tls_context=context,
                      require_starttls=True, authenticator=authenticator, auth_require_tls=True)
    smtp.start()
    try:
        alert = {"event": "opened", "store": "cache", "check": "redis.no-auth", "severity": "critical",
                 "at": "2026-11-25T20:00:00+00:00", "evidence": "INFO was answered", "pii_types": [],
                 "subjects_estimate": None, "dedupe_key": "cache:redis.no-auth:opened:1", "title": "t"}
        Email("localhost", port, "piiguard@localhost", ["oncall@localhost"], starttls=True, username="piiguard",
              password="smtp-secret", cafile=str(cert)).send(alert)
        with pytest.raises(Exception):  # noqa: B017 — a wrong password must not deliver
            Email("localhost", port, "piiguard@localhost", ["oncall@localhost"], starttls=True, username="piiguard",
                  password="wrong", cafile=str(cert)).send(alert)
    finally:
        smtp.stop()
    assert len(mailbox.messages) == 1 and "redis.no-auth opened" in mailbox.messages[0]


def test_command_line_sinks_are_built_like_configured_ones(cache: Server, tmp_path: Path,
                                                           smtp_server: tuple[Mailbox, int]) -> None:
    """``--smtp`` and ``--syslog`` go through the same builder as ``alerts:`` in piiguard.yaml."""
    mailbox, smtp_port = smtp_server
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    env = {**os.environ, "PIIGUARD_W_PW": PASSWORD}
    url = f"redis://{REDIS_ADMIN}@127.0.0.1:{cache.port}/0?password_env=PIIGUARD_W_PW"
    base = [sys.executable, "-m", "piiguard", "watch", "--once", url, "--catalog", str(tmp_path / "c.db"),
            "--timeout", "2"]
    open_up(cache)
    try:
        bad = subprocess.run([*base, "--smtp", "no-port"], env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "--smtp takes host:port" in bad.stderr
        run = subprocess.run([*base, "--smtp", f"127.0.0.1:{smtp_port}", "--smtp-to", "oncall@localhost",
                              "--syslog", f"udp://127.0.0.1:{udp.getsockname()[1]}"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        datagrams = [udp.recv(65536) for _ in mailbox.messages]  # one datagram per alert, as one mail
    finally:
        udp.close()
        close_down(cache)
    assert any("redis.no-auth opened" in m for m in mailbox.messages)
    assert any(b'check="redis.no-auth"' in d for d in datagrams)
