"""``watch --once`` checks the trap's listen address as the loop does (fx8, defect 2): an address that
is not this host's, or a port another process holds, exits 2 naming the setting; a good one is bound
and released (nothing is left listening). Real sockets on 127.0.0.x; binding 8.8.8.8 sends nothing."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from servers import free_port

KEY = "trap-once-test-key-7Qm2xVb9Lp4Wz8Rn"


def run_once(tmp_path: Path, trap: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    source, catalog, config = tmp_path / "prod.db", tmp_path / "c.db", tmp_path / "watch.yaml"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE IF NOT EXISTS customers (email TEXT)")
    db.commit()
    db.close()
    config.write_text(f"catalog: {catalog}\nstores:\n  - name: prod\n    engine: sqlite\n    path: {source}\n"
                      f"discovery:\n  networks: [127.0.0.1/32]\n  key_env: PIIGUARD_TRAP_ONCE_KEY\n"
                      f"  canary:\n    domain: canary.example.com\n    trap: {trap}\n")
    env = {k: v for k, v in os.environ.items() if k != "PIIGUARD_TRAP_ONCE_KEY"}
    if key is not None:
        env["PIIGUARD_TRAP_ONCE_KEY"] = key
    return subprocess.run([sys.executable, "-m", "piiguard", "watch", "-c", str(config), "--once"], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_trap_address_not_of_this_host_exits_2(tmp_path: Path) -> None:
    got = run_once(tmp_path, "8.8.8.8:18995")
    assert got.returncode == 2, got.stderr[-2000:]
    assert "discovery.canary.trap: cannot listen on 8.8.8.8:18995" in got.stderr
    assert "not this host's" in got.stderr


def test_a_trap_port_in_use_exits_2(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        got = run_once(tmp_path, f"127.0.0.1:{holder.getsockname()[1]}")
    finally:
        holder.close()
    assert got.returncode == 2, got.stderr[-2000:]
    assert "discovery.canary.trap: cannot listen on 127.0.0.1:" in got.stderr


def test_no_key_with_a_trap_exits_2(tmp_path: Path) -> None:
    got = run_once(tmp_path, f"127.0.0.1:{free_port()}", key=None)
    assert got.returncode == 2, got.stderr[-2000:]
    assert "PIIGUARD_TRAP_ONCE_KEY is not set" in got.stderr


def test_a_good_trap_address_is_checked_and_released(tmp_path: Path) -> None:
    port = free_port()
    got = run_once(tmp_path, f"127.0.0.1:{port}")
    assert got.returncode == 0, got.stderr[-2000:]
    with socket.socket() as again:  # released: nothing stays bound after --once
        again.bind(("127.0.0.1", port))
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
