"""Checks that do not exist on an engine variant say so: on versitygw (no bucket logging API) and
FerretDB (no listen addresses reported) a hardened store is ``not-applicable`` on those checks, with
the reason in the table, JSON and SARIF, and ``piiguard check`` exits 0 instead of 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from built_servers import Ferret, S3Server, start_ferretdb, start_versitygw, stop_ferretdb, stop_versitygw
from conftest import pg_connect
from servers import Server

from piiguard.model import Store

SCHEMA = Path(__file__).parent.parent / "data" / "sarif-2.1.0.json"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # the table's status column whole
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def config(tmp_path: Path, store: Store) -> Path:
    options = "".join(f"      {k}: '{v}'\n" for k, v in store.options.items())
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"stores:\n  - name: {store.name}\n    engine: {store.engine}\n    host: {store.host}\n"
                   f"    port: {store.port}\n    user: {store.user}\n    password_file: {store.password_file}\n"
                   + (f"    options:\n{options}" if options else ""))
    return cfg


@pytest.fixture(scope="module")
def gateway() -> Iterator[S3Server]:
    server = start_versitygw()
    server.client().create_bucket(Bucket="private")
    yield server
    stop_versitygw(server)


@pytest.fixture(scope="module")
def ferret(postgres: Server) -> Iterator[Ferret]:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS ferret_na")
        conn.execute("CREATE DATABASE ferret_na")
    server = start_ferretdb(postgres.port, open_backend=False, tls=True, database="ferret_na")
    yield server
    stop_ferretdb(server)


@pytest.mark.parametrize(("which", "check", "reason"), [
    ("s3", "s3.no-access-logging", "does not implement bucket logging"),
    ("mongodb", "mongodb.bind-all", "does not report its listen addresses"),
])
def test_hardened_variant_is_not_applicable_and_exits_0(request: pytest.FixtureRequest, tmp_path: Path, which: str,
                                                        check: str, reason: str) -> None:
    server = request.getfixturevalue("gateway" if which == "s3" else "ferret")
    cfg, catalog = config(tmp_path, server.store()), str(tmp_path / "c.db")
    as_json = cli("check", "-c", str(cfg), "--format", "json", "--catalog", catalog)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    findings = {f["check"]: f for f in json.loads(as_json.stdout)["findings"]}
    assert findings[check]["status"] == "not-applicable" and reason in findings[check]["evidence"]
    assert {f["status"] for f in findings.values()} == {"pass", "not-applicable"}

    sarif = cli("check", "-c", str(cfg), "--format", "sarif", "--catalog", catalog)
    assert sarif.returncode == 0, sarif.stderr
    doc = json.loads(sarif.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (result,) = [r for r in doc["runs"][0]["results"] if r["ruleId"] == check]
    assert (result["kind"], result["level"]) == ("notApplicable", "none") and reason in result["message"]["text"]

    table = cli("check", "-c", str(cfg), "--catalog", catalog)
    assert table.returncode == 0 and "not-applicable" in table.stdout and "1 not applicable" in table.stdout
