"""What a sweep inside ``watch`` could not do is said, not swallowed: each problem is a WARNING line
naming its setting or address once, with its hint; ``watch --once`` exits 2 when the discovery key
is unusable (as plain watch does when its trap needs the key) and the plain loop says each problem
once, not once per sweep. Real catalog, real fingerprints of a real SQLite store, a real sweep of a
loopback address."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from open_redis import HOST, port_on
from servers import free_port

from piiguard.catalog import Catalog
from piiguard.cli.common import read_config
from piiguard.discovery.fingerprints import build
from piiguard.scanner import scan

GOOD = "problems-test-key-0123456789abcdef"


def fingerprinted(tmp_path: Path, *, every: float = 60, trap: bool = False) -> tuple[Path, Path]:
    """A config whose catalog holds a fingerprint of prod.customers (built under GOOD)."""
    source, catalog, config = tmp_path / "prod.db", tmp_path / "c.db", tmp_path / "watch.yaml"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE customers (email TEXT)")
    db.executemany("INSERT INTO customers VALUES (?)", [(f"person.{i}@shop-example.org",) for i in range(40)])
    db.commit()
    db.close()
    canary = f"  canary:\n    domain: canary.example.com\n    trap: 127.0.0.1:{free_port()}\n" if trap else ""
    config.write_text(f"catalog: {catalog}\nstores:\n  - name: prod\n    engine: sqlite\n    path: {source}\n"
                      f"discovery:\n  networks: [{HOST}/32]\n  ports: [{port_on(HOST)}]\n  every: {every}\n"
                      f"  timeout: 0.5\n  key_env: PIIGUARD_P_KEY\n{canary}")
    cfg = read_config(config)
    assert cfg is not None
    os.environ["PIIGUARD_P_KEY"] = GOOD
    try:
        with Catalog(catalog) as cat:
            scan(list(cfg.stores), config=cfg, catalog=cat)
            assert build(cfg, cat, GOOD.encode())
    finally:
        del os.environ["PIIGUARD_P_KEY"]
    return config, catalog


def watch(config: Path, catalog: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "piiguard", *extra, "watch", "-c", str(config), "--catalog", str(catalog)]


def env(key: str) -> dict[str, str]:
    return {**os.environ, "PIIGUARD_P_KEY": key, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}


@pytest.mark.parametrize("trap", [False, True], ids=["sweep-only", "with-trap"])
def test_watch_once_with_a_short_key_exits_2_and_says_which_setting_once(tmp_path: Path, trap: bool) -> None:
    config, catalog = fingerprinted(tmp_path, trap=trap)
    run = subprocess.run([*watch(config, catalog), "--once"], env=env("short"), capture_output=True,
                         text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out[-2000:]
    assert "discovery.key_env: the key holds 5 bytes" in out, out[-2000:]
    assert "discovery.key_env: discovery.key_env" not in out  # the setting is said once
    assert "head -c 32" in out  # the hint comes along
    assert "short" not in out.replace("PIIGUARD_P_KEY", "")  # never the key itself


def test_watch_once_with_the_key_is_clean(tmp_path: Path) -> None:
    config, catalog = fingerprinted(tmp_path)
    run = subprocess.run([*watch(config, catalog), "--once"], env=env(GOOD), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "problem" not in run.stderr


def test_the_plain_loop_goes_on_and_says_a_lasting_problem_once(tmp_path: Path) -> None:
    config, catalog = fingerprinted(tmp_path, every=0.3)
    log = tmp_path / "watch.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([*watch(config, catalog, "-v"), "--interval", "0.5"], env=env("short"),
                                stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count("discovery sweep:") < 4 and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-2000:]  # a sweep's problem does not stop watch
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    text = log.read_text()
    assert text.count("discovery sweep:") >= 4, text[-2000:]
    assert text.count("discovery.key_env: the key holds 5 bytes") == 1, text[-3000:]
    assert "WARNING" in next(line for line in text.splitlines() if "the key holds" in line)
