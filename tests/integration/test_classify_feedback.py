"""A person's word over the classifier's, and watch noticing new fields, on a real PostgreSQL.

Overrides in the ``classify:`` section force a type or "not PII"; scan records them with the
classifier's own decision as the runner-up, copy masks by them and scope identifies people by them.
``explain`` reads a decision back without a value; ``watch`` alerts on a column added by ``ALTER
TABLE`` and classifies it at the re-scan it brings forward."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pg_connect
from servers import PASSWORD, Server

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.config import Config, parse_config
from piiguard.masking.pipeline import plan_copy
from piiguard.model import Classification, Store
from piiguard.response.incidents import open_by_hand
from piiguard.response.scope import find_scope
from piiguard.scanner import scan
from piiguard.watch.schema import NEW_FIELD
from piiguard.watch.service import Watcher

N = 300
COLS = tuple(c for c in synthetic.COLUMNS if c.name in ("customer_id", "email", "phone"))
DATA = synthetic.rows(N, seed=14, columns=COLS)
PLANS = ("basic", "plus", "family")  # not PII by any detector: a plan name
DB = "feedback"


@pytest.fixture(scope="module")
def shop(postgres: Server) -> Server:
    with pg_connect(postgres) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    with pg_connect(postgres, DB) as conn:
        conn.execute("CREATE TABLE customers (customer_id text PRIMARY KEY, email text, phone text, plan text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO customers VALUES (%s, %s, %s, %s)",
                            [(str(DATA["customer_id"][i]), str(DATA["email"][i]), str(DATA["phone"][i]),
                              PLANS[i % 3]) for i in range(N)])
        conn.execute("ANALYZE")
    return postgres


@pytest.fixture(autouse=True)
def _password(pg_password: str) -> None:
    """Every store here reads PGPASSWORD."""


def store(server: Server, name: str = "shop", database: str = DB) -> Store:
    return Store(name, "postgres", host="127.0.0.1", port=server.port, database=database, user="postgres",
                 password_env="PGPASSWORD")


def config(*overrides: dict[str, str]) -> Config:
    return parse_config({"classify": {"overrides": list(overrides)}})


def fields(cat: Catalog) -> dict[str, Classification]:
    return {f.field: f for f in cat.decisions() if f.collection == "public.customers"}


def test_an_override_forces_a_type_and_not_pii_keeping_the_classifiers_word(shop: Server, tmp_path: Path) -> None:
    cfg = config({"field": "shop.public.customers.email", "type": "none", "reason": "test addresses only"},
                 {"field": "shop.*.customers.pl*", "type": "username", "reason": "handles, says the owner"})
    with Catalog(tmp_path / "c.db") as cat:
        scan([store(shop)], config=cfg, catalog=cat, sample_size=N)
        got = fields(cat)
        held = {name for _c, name, _t, _conf in cat.pii_fields("shop")}
    email, plan, phone = got["email"], got["plan"], got["phone"]
    assert email.pii_type is None and email.evidence is not None
    assert (email.evidence.decided_by, email.evidence.runner_up) == ("override", "email")
    assert email.evidence.runner_up_share == 1.0 and "test addresses only" in " ".join(email.evidence.notes)
    assert plan.pii_type == "username" and plan.evidence is not None
    assert (plan.evidence.decided_by, plan.evidence.runner_up) == ("override", "none")
    assert phone.pii_type == "phone" and phone.evidence is not None and phone.evidence.decided_by != "override"
    assert "email" not in held and {"plan", "phone"} <= held  # what scope and stores read follows it


def test_without_overrides_the_classifier_decides(shop: Server, tmp_path: Path) -> None:
    """The baseline the override test departs from: its forced decisions are not the classifier's."""
    with Catalog(tmp_path / "c.db") as cat:
        scan([store(shop)], catalog=cat, sample_size=N)
        got = fields(cat)
    assert got["email"].pii_type == "email" and got["plan"].pii_type is None


@pytest.fixture(scope="module")
def warehouse(shop: Server) -> Iterator[Server]:
    with pg_connect(shop) as conn:
        conn.execute("DROP DATABASE IF EXISTS feedback_wh")
        conn.execute("CREATE DATABASE feedback_wh")
    yield shop


def test_copy_masks_by_the_override(shop: Server, warehouse: Server) -> None:
    target = store(warehouse, "wh", "feedback_wh")
    plain = plan_copy(store(shop), "customers", target, "customers_copy", config=parse_config({}))
    cfg = config({"field": "shop.public.customers.plan", "type": "username"},
                 {"field": "shop.public.customers.phone", "type": "none"})
    forced = plan_copy(store(shop), "customers", target, "customers_copy", config=cfg)
    before = {r.field: r for r in plain.rules}
    after = {r.field: r for r in forced.rules}
    assert (before["plan"].pii_type, before["plan"].masker) == (None, "drop")  # not PII: denied by default
    assert after["plan"].pii_type == "username" and after["plan"].masker not in ("drop", "keep")
    assert before["phone"].pii_type == "phone" and before["phone"].masker != "drop"
    assert (after["phone"].pii_type, after["phone"].masker) == (None, "drop")


def _scope_field(cat: Catalog, shop: Server) -> Any:
    incident = cat.incident(open_by_hand(cat, "shop", "2026-11-03T08:00:00+00:00"))
    assert incident is not None
    scope = find_scope(cat, incident, {"shop": store(shop)}, b"k" * 32, timeout=10)
    return scope.collections["shop.public.customers"]["field"], scope


def test_scope_identifies_people_by_the_recorded_decision(shop: Server, tmp_path: Path) -> None:
    with Catalog(tmp_path / "plain.db") as cat:
        scan([store(shop)], catalog=cat, sample_size=N)
        plain, _ = _scope_field(cat, shop)
    cfg = config({"field": "shop.public.customers.customer_id", "type": "none", "reason": "a test"})
    with Catalog(tmp_path / "forced.db") as cat:
        scan([store(shop)], config=cfg, catalog=cat, sample_size=N)
        forced, scope = _scope_field(cat, shop)
    assert plain == "customer_id" and forced == "email"
    assert len(scope.people) == N


def piiguard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "PGPASSWORD": PASSWORD})


def _no_value(text: str) -> None:
    values = {str(v) for c in COLS for v in DATA[c.name]}
    assert not [v for v in values if v in text], "a value from the table is in the output"


def test_explain_and_scan_json_carry_the_evidence_and_no_value(shop: Server, tmp_path: Path) -> None:
    (tmp_path / "piiguard.yaml").write_text(
        f"stores:\n  - name: shop\n    url: {shop.url(user='postgres', database=DB)}\n    password_env: PGPASSWORD\n"
        "classify:\n  overrides:\n    - field: shop.public.customers.plan\n      type: username\n"
        "      reason: handles\n")
    scanned = piiguard("scan", "-f", "json", "--catalog", "c.db", "--sample", str(N), cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    doc = json.loads(scanned.stdout)
    by_name = {f["field"]: f for f in doc["fields"]}
    assert by_name["email"]["evidence"]["decided_by"] == "detector"
    assert by_name["email"]["evidence"]["detector"] == "email" and by_name["email"]["evidence"]["share"] == 1.0
    assert by_name["plan"]["evidence"]["decided_by"] == "override"
    text = piiguard("explain", "shop.public.customers.email", "--catalog", "c.db", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "decided by: detector" in text.stdout and "values matched: 100.0%" in text.stdout
    assert "context words: email" in text.stdout
    as_json = piiguard("explain", "shop.public.customers.plan", "--catalog", "c.db", "-f", "json", cwd=tmp_path)
    explained = json.loads(as_json.stdout)
    assert explained["kind"] == "explain" and explained["pii_type"] == "username"
    assert explained["evidence"]["decided_by"] == "override" and explained["evidence"]["runner_up"] == "none"
    unknown = piiguard("explain", "shop.public.customers.emial", "--catalog", "c.db", cwd=tmp_path)
    assert unknown.returncode == 2 and "shop.public.customers.email" in unknown.stderr
    for out in (scanned, text, as_json, unknown):
        _no_value(out.stdout + out.stderr)


def test_watch_alerts_on_an_added_column_and_classifies_it_at_the_rescan(shop: Server, tmp_path: Path) -> None:
    with pg_connect(shop) as conn:
        conn.execute("DROP DATABASE IF EXISTS feedback_watch")
        conn.execute(f"CREATE DATABASE feedback_watch TEMPLATE {DB}")
    watched = store(shop, "watched", "feedback_watch")
    with Catalog(tmp_path / "c.db") as cat:
        watcher = Watcher([watched], cat, [], timeout=10)
        watcher.rescan()  # watch scans when it starts
        assert not [a for a in watcher.cycle(inside=True) if a.check == NEW_FIELD]
        assert not watcher.rescan_due.is_set()
        with pg_connect(shop, "feedback_watch") as conn:
            conn.execute("ALTER TABLE customers ADD COLUMN backup_email text")
            conn.execute("UPDATE customers SET backup_email = email")
        opened = [a for a in watcher.cycle(inside=True) if a.check == NEW_FIELD]
        assert [a.event for a in opened] == ["opened"] and "customers.backup_email" in opened[0].evidence
        assert watcher.rescan_due.is_set()
        watcher.rescan()
        added = {f.field: f for f in cat.decisions() if f.store == "watched"}["backup_email"]
        assert added.pii_type == "email"
        resolved = [a for a in watcher.cycle(inside=True) if a.check == NEW_FIELD]
        assert [a.event for a in resolved] == ["resolved"]
