"""copy.expired is a registered check like every other: documented (`piiguard show check`), a SARIF
rule, and subject to skip rules, severity overrides and waivers — decided against a real PostgreSQL
target that still holds the expired copy's table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pg_connect
from servers import PASSWORD, Server

from piiguard.catalog import Catalog
from piiguard.checker import run_checks
from piiguard.config import parse_config
from piiguard.model import Severity, Status, Store
from piiguard.report.findings import render_sarif

PW = "PIIGUARD_EXPIRED_PW"


@pytest.fixture
def expired(postgres: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, Path]:
    monkeypatch.setenv(PW, PASSWORD)
    with pg_connect(postgres) as conn:
        conn.execute("DROP TABLE IF EXISTS old_export")
        conn.execute("CREATE TABLE old_export (customer_id int)")
    store = Store("wh", "postgres", host="127.0.0.1", port=postgres.port, user="postgres", password_env=PW)
    with Catalog(tmp_path / "c.db") as cat:
        copy_id = cat.add_copy({"source_store": "prod", "source_collection": "customers", "target_store": "wh",
                                "target_engine": "postgres", "target_collection": "old_export", "transforms": {},
                                "key_id": "k1", "owner": "bi", "purpose": "dashboards", "expires": "2020-01-01",
                                "accepted_risk": ""})
        cat.finish_copy(copy_id, "active", rows=0, subjects=0)
    return store, tmp_path / "c.db"


def expired_finding(store: Store, catalog: Path, policy: dict[str, object] | None = None) -> list[object]:
    cfg = parse_config({"policy": policy}) if policy else None
    with Catalog(catalog) as cat:
        return [f for f in run_checks([store], config=cfg, catalog=cat, record=False, only=["copy.expired"]).findings
                if f.check == "copy.expired"]


def test_copy_expired_fails_and_policy_applies_to_it(expired: tuple[Store, Path], postgres: Server) -> None:
    store, catalog = expired
    (f,) = expired_finding(store, catalog)
    assert f.status is Status.FAIL and "old_export" in f.evidence and "owner bi" in f.evidence  # type: ignore[attr-defined]
    (low,) = expired_finding(store, catalog, {"severity": {"copy.expired": "low"}})
    assert low.severity is Severity.LOW  # type: ignore[attr-defined]
    (waived,) = expired_finding(store, catalog, {"waivers": [{"check": "copy.expired", "store": "wh",
                                                              "reason": "legal hold", "expires": "2999-01-01"}]})
    assert waived.status is Status.FAIL and "legal hold" in waived.waiver  # type: ignore[attr-defined]
    assert expired_finding(store, catalog, {"skip": [{"tags": {}, "checks": ["copy.*"]}]}) == []
    sarif = json.loads(render_sarif((f,), "0"))  # type: ignore[arg-type]
    (rule,) = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rule["id"] == "copy.expired" and "Fix:" in rule["fullDescription"]["text"]
    with pg_connect(postgres) as conn:
        conn.execute("DROP TABLE old_export")  # gone: nothing left to fail, the finding passes (watch resolves)
    (gone,) = expired_finding(store, catalog)
    assert gone.status is Status.PASS  # type: ignore[attr-defined]


def test_show_check_documents_copy_expired() -> None:
    shown = subprocess.run([sys.executable, "-m", "piiguard", "show", "check", "copy.expired"], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "Risk:" in shown.stdout and "copies expire" in shown.stdout
