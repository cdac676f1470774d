"""clickhouse.default-no-password on the variants users run: a store named by its HTTP port only
(the native port left at its default, where nothing of this server listens), and the native port
closed or firewalled (a port that accepts and never answers). The open door is a critical failure
from the port that answers; the unreachable one is evidence, not an error for the whole check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import PASSWORD, Server, clickhouse_users, free_port, start_clickhouse, stop_clickhouse

from piiguard.checker import check_store, run_checks
from piiguard.model import Status, Store


@pytest.fixture(scope="module")
def insecure() -> Iterator[Server]:
    server = start_clickhouse()
    (server.data / "conf" / "users.xml").write_text(clickhouse_users(password=False))
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=b"SYSTEM RELOAD CONFIG",
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
    urllib.request.urlopen(request, timeout=10).read()
    yield server
    stop_clickhouse(server)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections (the kernel's backlog) and never says a word: a firewall that drops replies."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def door(store: Store) -> tuple[Status, str]:
    (finding,) = [f for f in check_store(store, timeout=2) if f.check == "clickhouse.default-no-password"]
    return finding.status, finding.evidence


def test_named_by_its_http_port_only(insecure: Server) -> None:
    (finding,) = [f for f in run_checks([f"clickhouse://127.0.0.1:{insecure.port}"], timeout=2).findings
                  if f.check == "clickhouse.default-no-password"]
    assert finding.status is Status.FAIL and f"HTTP {insecure.port}" in finding.evidence


@pytest.mark.parametrize("native", ["closed", "silent"])
def test_native_port_closed_or_firewalled(insecure: Server, silent_port: int, native: str) -> None:
    port = free_port() if native == "closed" else silent_port
    status, evidence = door(Store("olap", "clickhouse", host="127.0.0.1", port=insecure.port,
                                  options={"tcp_port": str(port)}))
    assert status is Status.FAIL
    assert f"HTTP {insecure.port}" in evidence and f"native {port} could not be reached" in evidence


def test_http_port_closed_native_open(insecure: Server) -> None:
    status, evidence = door(Store("olap", "clickhouse", host="127.0.0.1", port=free_port(),
                                  options={"tcp_port": str(insecure.tcp_port)}))  # type: ignore[attr-defined]
    assert status is Status.FAIL and f"native {insecure.tcp_port}" in evidence  # type: ignore[attr-defined]


def test_both_ports_unreachable_is_an_error() -> None:
    status, _ = door(Store("olap", "clickhouse", host="127.0.0.1", port=free_port(),
                           options={"tcp_port": str(free_port())}))
    assert status is Status.ERROR


def test_the_drivers_failed_connection_is_not_printed(insecure: Server, tmp_path: Path) -> None:
    """Named by its HTTP port, the native port is tried at 9000 where nothing listens: clickhouse-driver
    logs that at WARNING with the exception; the CLI prints neither its text nor a traceback."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run([sys.executable, "-m", "piiguard", "check", f"clickhouse://127.0.0.1:{insecure.port}",
                           "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in done.stderr and "Failed to connect" not in done.stderr, done.stderr
    assert "ConnectionRefusedError" not in done.stderr.replace("(ConnectionRefusedError)", ""), done.stderr


def test_a_library_log_record_is_shown_without_its_text() -> None:
    import io
    import logging

    from piiguard.log import configure

    stream = io.StringIO()
    configure(stream=stream)
    try:
        raise ConnectionRefusedError("value alice@example.org")
    except ConnectionRefusedError:
        logging.getLogger("somelib").warning("row alice@example.org failed", exc_info=True)
    configure()
    assert "alice@example.org" not in stream.getvalue() and "Traceback" not in stream.getvalue()
    assert "somelib" in stream.getvalue() and "ConnectionRefusedError" in stream.getvalue()
