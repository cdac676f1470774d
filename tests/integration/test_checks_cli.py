"""`piiguard check` end to end: JSON and SARIF output, exit codes, data context from a scan, catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
from conftest import pg_connect
from servers import Server

from piiguard.catalog import Catalog


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, timeout=120)


def test_check_reports_what_a_failing_store_exposes(postgres: Server, pg_password: str, tmp_path: Path) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS checkdb")
        conn.execute("CREATE DATABASE checkdb")
    with pg_connect(postgres, "checkdb") as conn:
        conn.execute("CREATE TABLE users AS SELECT g AS user_id, 'person' || g || '@example.org' AS email "
                     "FROM generate_series(1, 300) g")
    url, catalog = postgres.url(database="checkdb"), str(tmp_path / "c.db")

    first = cli("check", url, "--format", "json", "--catalog", catalog)
    assert first.returncode == 3, first.stderr  # ssl = off is a high-severity failure
    findings = {f["check"]: f for f in json.loads(first.stdout)["findings"]}
    tls = findings["postgres.tls-off"]
    assert (tls["status"], tls["severity"], tls["vantage"]) == ("fail", "high", "inside")
    assert tls["data_context"].startswith("never scanned") and tls["pii_types"] == []
    assert findings["postgres.trust-auth"]["status"] == "pass"
    for f in findings.values():
        assert {"check", "store", "status", "severity", "vantage", "evidence", "pii_types",
                "subjects_estimate"} <= set(f)

    assert cli("scan", url, "--catalog", catalog).returncode == 0
    second = cli("check", url, "--format", "json", "--catalog", catalog)
    tls = {f["check"]: f for f in json.loads(second.stdout)["findings"]}["postgres.tls-off"]
    assert tls["severity"] == "critical"  # raised: the store holds customer data
    assert tls["pii_types"] == ["customer-identifier", "email"] and tls["subjects_estimate"] == 300
    assert "person1@example.org" not in second.stdout

    with Catalog(catalog) as cat:
        rows = {r[1]: r for r in cat.findings()}
    assert rows["postgres.tls-off"][2] == "fail" and rows["postgres.tls-off"][3] <= rows["postgres.tls-off"][4]

    sarif = json.loads(cli("check", url, "--format", "sarif", "--catalog", catalog).stdout)
    schema = json.loads((Path(__file__).parent.parent / "data" / "sarif-2.1.0.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(sarif)  # the official SARIF 2.1.0 schema
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    failing = [r for r in run["results"] if r["kind"] == "fail"]
    assert any(r["ruleId"] == "postgres.tls-off" and r["level"] == "error" for r in failing)
    assert all(rule_ids[r["ruleIndex"]] == r["ruleId"] for r in run["results"])

    lenient = cli("check", url, "--fail-on", "critical", "--catalog", str(tmp_path / "other.db"))
    assert lenient.returncode == 0, lenient.stdout  # never scanned: nothing is raised to critical


def test_list_and_show_checks() -> None:
    listed = cli("list", "checks", "--engine", "postgres")
    assert listed.returncode == 0 and "postgres.trust-auth" in listed.stdout
    shown = cli("show", "check", "postgres.trust-auth")
    assert "Risk:" in shown.stdout and "Fix:" in shown.stdout


def test_a_waiver_stops_a_failure_from_failing_the_run(postgres: Server, pg_password: str, tmp_path: Path) -> None:
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"stores:\n  - name: pg\n    url: {postgres.url()}\n    tags: {{env: dev}}\n"
                   "policy:\n  skip:\n    - tags: {env: dev}\n      checks: ['*.no-audit']\n"
                   "  waivers:\n    - check: postgres.tls-off\n      store: pg\n      reason: loopback only\n"
                   "      expires: 2999-01-01\n")
    run = cli("check", "-c", str(cfg), "--format", "json", "--catalog", str(tmp_path / "c.db"))
    assert run.returncode == 0, run.stdout + run.stderr
    findings = {f["check"]: f for f in json.loads(run.stdout)["findings"]}
    assert findings["postgres.tls-off"]["status"] == "fail"
    assert findings["postgres.tls-off"]["waiver"] == "waived until 2999-01-01: loopback only"
    assert "postgres.no-audit" not in findings
    assert cli("validate", str(cfg)).returncode == 0
