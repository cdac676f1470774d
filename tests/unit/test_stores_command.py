"""``piiguard stores`` on SQLite (no server): a store only a scan by URL recorded, a password file's
reference (never its content), and the text of a machine with nothing configured."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import jsondoc
from typer.testing import CliRunner

from piiguard.catalog import Catalog
from piiguard.scanner import scan

runner = CliRunner()
SECRET = "stores-command-secret-value"


def stores(*args: str, fmt: str = "json") -> str:
    from piiguard.cli import app

    done = runner.invoke(app, ["stores", *args, "--format", fmt], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.stdout


def test_configured_and_scanned_by_url(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?)", [(f"c-{i:05d}", f"b{i}@shop.example.org")
                                                                  for i in range(20)])
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        scan([f"sqlite://{db}"], catalog=cat)
    secret = tmp_path / "pw"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    config = tmp_path / "piiguard.yaml"
    config.write_text(json.dumps({"stores": [{"name": "warehouse", "url": "postgresql://bi@127.0.0.1:1/wh",
                                              "password_file": str(secret), "tags": {"env": "prod"}}]}))
    out = stores("--catalog", str(catalog), "-c", str(config))
    assert SECRET not in out
    warehouse, scanned = jsondoc.check(out, "stores")["stores"]
    assert (warehouse["name"], warehouse["configured"], warehouse["last_scan"]) == ("warehouse", True, None)
    assert warehouse["credentials"] == {"kind": "file", "reference": str(secret), "present": True}
    assert (scanned["configured"], scanned["engine"], scanned["credentials"]) == (False, "sqlite", None)
    assert scanned["last_scan"]["subjects_estimate"] == 20 and "email" in scanned["last_scan"]["pii_types"]
    assert SECRET not in stores("--catalog", str(catalog), "-c", str(config), fmt="text")


def test_nothing_known_says_so(tmp_path: Path) -> None:
    assert jsondoc.check(stores("--catalog", str(tmp_path / "c.db")), "stores")["stores"] == []
    assert "no stores" in stores("--catalog", str(tmp_path / "c.db"), fmt="text")


def test_the_text_table_through_a_pipe_cuts_no_address_or_name(tmp_path: Path) -> None:
    """Not on a terminal (a pipe, a CI log) Rich lays tables out for 80 columns: an unregistered store's
    address was cut to ``127.0.0…`` and its name to ``(unregi…``. A real pipe, a real subprocess."""
    import os
    import subprocess
    import sys

    from piiguard.discovery.base import Discovered, Endpoint, Kind, Service

    found = [Discovered(Service(Endpoint(f"127.0.0.{i}", 16379 + i), Kind.STORE, "redis", "Redis", "7.0.15"),
                        open=i % 2 == 0) for i in range(21, 25)]
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        cat.record_discovered(found)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run([sys.executable, "-m", "piiguard", "stores", "--catalog", str(catalog)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    for d in found:
        assert f"{d.service.endpoint.address} (unregistered)" in done.stdout, done.stdout
    assert "OPEN from outside" in done.stdout and "asks for credentials" in done.stdout
    assert "…" not in done.stdout
