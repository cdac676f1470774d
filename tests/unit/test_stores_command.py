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
