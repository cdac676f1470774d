"""piiguard copy against real servers: PostgreSQL → PostgreSQL / ClickHouse / Parquet / CSV, MariaDB →
PostgreSQL. The source is the synthetic, labelled customer table (every PII type piiguard knows)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import my_connect, pg_connect
from helpers import Listener
from servers import PASSWORD, Server, start_clickhouse, start_postgres, stop_clickhouse, stop_postgres

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.checker import run_checks
from piiguard.config import parse_config
from piiguard.errors import ConfigError, CopyRefused
from piiguard.masking.lineage import emit
from piiguard.masking.pipeline import CopyPlan, plan_copy, run_copy
from piiguard.model import Status, Store

ROWS = 3000
PW = "PIIGUARD_COPY_PW"
KEY_A, KEY_B = b"a" * 32, b"b" * 32
ALLOW = {"plan": "keep", "sku": "keep", "install_date": "keep"}


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)


@pytest.fixture(scope="module")
def source(postgres: Server) -> dict[str, list[Any]]:
    data = synthetic.rows(ROWS, seed=11)
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS prod_copy")
        conn.execute("CREATE DATABASE prod_copy")
    with pg_connect(postgres, "prod_copy") as conn:
        cols = list(data)
        conn.execute(f"CREATE TABLE customers ({', '.join(f'{c} text' for c in cols)})")
        with conn.cursor().copy(f"COPY customers ({', '.join(cols)}) FROM STDIN") as copy:
            for row in zip(*(data[c] for c in cols), strict=True):
                copy.write_row([str(v) for v in row])
        conn.execute("CREATE TABLE orders (order_no bigint, email text, sku text)")
        with conn.cursor().copy("COPY orders FROM STDIN") as copy:
            for i in range(ROWS * 2):
                copy.write_row([i, data["email"][i % 1000], f"SKU-{i % 40}"])
    return data


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Server]:
    server = start_postgres(hardened=True)
    yield server
    stop_postgres(server)


def pg_store(server: Server, name: str, database: str = "postgres") -> Store:
    return Store(name, "postgres", host="127.0.0.1", port=server.port, database=database, user="postgres",
                 password_env=PW)


def config(prod: Store, **masking: dict[str, Any]) -> Any:
    return parse_config({"masking": {f"{prod.name}.{k}": v for k, v in masking.items()}})


def copy(plan: CopyPlan, catalog: Path, key: bytes = KEY_A, **kw: Any) -> Any:
    with Catalog(catalog) as cat:
        return run_copy(plan, key, cat, owner="analytics", purpose="churn model", expires=date(2027, 1, 31), **kw)


def rows(server: Server, query: str) -> list[tuple[Any, ...]]:
    with pg_connect(server) as conn:
        return conn.execute(query).fetchall()


def digests(values: Any) -> set[str]:
    return {hashlib.sha256(str(v).encode()).hexdigest() for v in values if v not in (None, "")}


def test_plan_masks_by_type_and_denies_by_default(postgres: Server, source: dict[str, list[Any]],
                                                  warehouse: Server) -> None:
    prod = pg_store(postgres, "prod", "prod_copy")
    plan = plan_copy(prod, "customers", pg_store(warehouse, "wh"), "analytics_customers",
                     config=config(prod, **{"public.customers": ALLOW}))
    rules = {r.field: (r.masker, r.reason) for r in plan.rules}
    assert rules["email"][0] == "pseudonym" and rules["customer_id"][0] == "pseudonym"
    assert rules["full_name"][0] == "fake-name" and rules["phone"][0] == "keep-prefix"
    assert rules["birth_date"][0] == "year" and rules["last_login_ip"][0] == "ip-prefix"
    assert rules["device_mac"][0] == "mac-vendor" and rules["support_notes"][0] == "redact-text"
    for secret in ("alexa_refresh_token", "api_key", "password_hash"):
        assert rules[secret] == ("drop", rules[secret][1]) and "never copied" in rules[secret][1]
    assert rules["login_count"] == ("drop", "not recognised: denied by default (allow it with keep)")
    assert rules["plan"][0] == "keep"
    assert plan.blocking == () and plan.subject_field == "customer_id"
    assert rows(warehouse, "SELECT to_regclass('analytics_customers')") == [(None,)]  # planning wrote nothing


def test_secret_needs_a_waiver_to_be_copied(postgres: Server, source: dict[str, list[Any]], warehouse: Server) -> None:
    prod = pg_store(postgres, "prod", "prod_copy")
    with pytest.raises(ConfigError, match="api_key: holds api-key, which is never copied"):
        plan_copy(prod, "customers", pg_store(warehouse, "wh"), "x",
                  config=config(prod, **{"public.customers": {"api_key": "keep"}}))
    plan = plan_copy(prod, "customers", pg_store(warehouse, "wh"), "x", config=config(
        prod, **{"public.customers": {"api_key": {"mask": "pseudonym", "waiver": "key rotation audit SEC-7"}}}))
    rule = next(r for r in plan.rules if r.field == "api_key")
    assert rule.masker == "pseudonym" and "SEC-7" in rule.reason


def test_copy_holds_no_raw_value_of_a_masked_type(postgres: Server, source: dict[str, list[Any]],
                                                  warehouse: Server, tmp_path: Path) -> None:
    prod = pg_store(postgres, "prod", "prod_copy")
    plan = plan_copy(prod, "customers", pg_store(warehouse, "wh"), "analytics_customers",
                     config=config(prod, **{"public.customers": ALLOW}))
    result = copy(plan, tmp_path / "c.db", batch_rows=700)  # several batches
    assert result.rows == ROWS and result.subjects == ROWS
    copied = [r.field for r in plan.rules if r.copied]
    target = rows(warehouse, f"SELECT {', '.join(copied)} FROM analytics_customers")
    assert len(target) == ROWS
    in_target = digests(v for row in target for v in row)
    for rule in plan.rules:
        if rule.masker in ("keep", "drop", "fake-name", "redact-text"):
            continue
        assert not digests(source[rule.field]) & in_target, f"a raw {rule.field} value reached the copy"
    # Fake names come from the same kind of list real names do, so a fake may equal some customer's real
    # name by chance; what must hold is that each row's name was replaced, consistently.
    with pg_connect(postgres, "prod_copy") as conn:
        originals = conn.execute("SELECT first_name, full_name FROM customers").fetchall()
    fakes = rows(warehouse, "SELECT first_name, full_name FROM analytics_customers")
    mapping: dict[str, set[str]] = {}
    for (real_first, _), (fake_first, _) in zip(originals, fakes, strict=True):
        mapping.setdefault(real_first, set()).add(fake_first)
    assert all(len(f) == 1 for f in mapping.values())  # consistent: one fake per real first name
    same = sum(1 for o, f in zip(originals, fakes, strict=True) if o[1] == f[1])
    assert same <= ROWS // 100
    assert {"alexa_refresh_token", "api_key", "password_hash", "login_count"}.isdisjoint(copied)
    emails = [r[copied.index("email")] for r in target]
    assert all(e.endswith("@pseudonym.invalid") for e in emails)
    assert {r[copied.index("birth_date")] for r in target} <= {str(y) for y in range(1930, 2012)}
    # Free text keeps its words; every PII span in it is gone.
    notes = [r[copied.index("support_notes")] for r in target]
    with_pii = [n for n in source["support_notes"] if re.search(r"@|[0-9]{3}", n)]
    assert with_pii and not digests(with_pii) & digests(notes)
    assert not any(re.search(r"@|[0-9]{3}", n) for n in notes)
    assert {"<email>", "<address>", "<phone>", "<ip>", "<number>"} <= set(re.findall(r"<[a-z]+>", " ".join(notes)))
    with Catalog(tmp_path / "c.db") as cat:
        (registered,) = cat.copies()
    assert registered["status"] == "active" and registered["subjects"] == ROWS
    assert registered["key_id"] not in KEY_A.decode() and len(registered["key_id"]) == 16
    assert registered["transforms"]["email"]["masker"] == "pseudonym"
    catalog_text = (tmp_path / "c.db").read_bytes()
    assert source["email"][0].encode() not in catalog_text and KEY_A not in catalog_text


def test_joins_work_within_a_copy_and_copies_with_other_keys_are_unlinkable(
        postgres: Server, source: dict[str, list[Any]], warehouse: Server, tmp_path: Path) -> None:
    prod, wh = pg_store(postgres, "prod", "prod_copy"), pg_store(warehouse, "wh")
    cfg = config(prod, **{"public.customers": ALLOW, "public.orders": {"order_no": "keep", "sku": "keep"}})
    copy(plan_copy(prod, "customers", wh, "j_customers", config=cfg), tmp_path / "c.db")
    copy(plan_copy(prod, "orders", wh, "j_orders", config=cfg), tmp_path / "c.db")
    copy(plan_copy(prod, "customers", wh, "k_customers", config=cfg), tmp_path / "c.db", key=KEY_B)
    joined = rows(warehouse, "SELECT count(*) FROM j_orders o JOIN j_customers c ON c.email = o.email")
    with pg_connect(postgres, "prod_copy") as conn:
        expected = conn.execute("SELECT count(*) FROM orders o JOIN customers c ON c.email = o.email").fetchall()
    assert joined == expected and joined[0][0] > 0
    linked = rows(warehouse, "SELECT count(*) FROM j_customers a JOIN k_customers b ON a.customer_id = b.customer_id")
    assert linked == [(0,)]


def test_refused_when_the_target_is_exposed(postgres: Server, source: dict[str, list[Any]], tmp_path: Path) -> None:
    prod = pg_store(postgres, "prod", "prod_copy")
    exposed = pg_store(postgres, "plain")  # no TLS: postgres.tls-off (high)
    plan = plan_copy(prod, "customers", exposed, "leak", config=config(prod))
    assert "postgres.tls-off" in {f.check for f in plan.blocking}
    with pytest.raises(CopyRefused, match=r"postgres\.tls-off"):
        copy(plan, tmp_path / "c.db")
    assert rows(postgres, "SELECT to_regclass('leak')") == [(None,)]
    accepted = plan_copy(prod, "customers", exposed, "accepted", config=config(prod),
                         accepted_risk="TLS terminates at the VPC edge")
    copy(accepted, tmp_path / "c.db")
    with Catalog(tmp_path / "c.db") as cat:
        assert cat.copies()[-1]["accepted_risk"] == "TLS terminates at the VPC edge"
    with pg_connect(postgres) as conn:
        conn.execute("DROP TABLE accepted")


def test_refused_into_a_clickhouse_without_password(postgres: Server, source: dict[str, list[Any]],
                                                    tmp_path: Path) -> None:
    from servers import clickhouse_users

    server = start_clickhouse()
    try:
        (server.data / "conf" / "users.xml").write_text(clickhouse_users(password=False))
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=b"SYSTEM RELOAD CONFIG",
                                                      headers={"X-ClickHouse-User": "default",
                                                               "X-ClickHouse-Key": PASSWORD}), timeout=10).read()
        target = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default",
                       options={"tcp_port": str(server.tcp_port)})  # type: ignore[attr-defined]
        prod = pg_store(postgres, "prod", "prod_copy")
        plan = plan_copy(prod, "customers", target, "customers", config=config(prod))
        assert "clickhouse.default-no-password" in {f.check for f in plan.blocking}
    finally:
        stop_clickhouse(server)


def test_into_clickhouse(postgres: Server, source: dict[str, list[Any]], tmp_path: Path) -> None:
    server = start_clickhouse()
    try:
        target = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default", password_env=PW,
                       options={"tcp_port": str(server.tcp_port),  # type: ignore[attr-defined]
                                "config_dir": str(server.data / "conf")})
        prod = pg_store(postgres, "prod", "prod_copy")
        plan = plan_copy(prod, "customers", target, "default.customers", config=config(
            prod, **{"public.customers": ALLOW}))
        assert plan.blocking == ()
        assert copy(plan, tmp_path / "c.db").rows == ROWS
        import urllib.request
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}/?query=SELECT%20count(),%20countIf(email%20"
                                     "LIKE%20'%25@pseudonym.invalid')%20FROM%20default.customers",
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read().decode().split() == [str(ROWS), str(ROWS)]
    finally:
        stop_clickhouse(server)


def test_from_mariadb_into_postgres(mariadb: Server, warehouse: Server, tmp_path: Path) -> None:
    data = synthetic.rows(500, seed=5, columns=synthetic.COLUMNS[:8])
    with my_connect(mariadb) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS members")
        cur.execute(f"CREATE TABLE members ({', '.join(f'{c} TEXT' for c in data)})")
        cur.executemany(f"INSERT INTO members VALUES ({', '.join(['%s'] * len(data))})",
                        list(zip(*data.values(), strict=True)))
    source = Store("shop", "mysql", host="127.0.0.1", port=mariadb.port, database="app", user="root", password_env=PW)
    plan = plan_copy(source, "members", pg_store(warehouse, "wh"), "members", config=None)
    assert copy(plan, tmp_path / "c.db").rows == 500
    emails = rows(warehouse, "SELECT email FROM members")
    assert not digests(data["email"]) & digests(e for (e,) in emails)


@pytest.mark.parametrize("name", ["customers.parquet", "exports/customers.csv"])
def test_into_files(postgres: Server, source: dict[str, list[Any]], tmp_path: Path, name: str) -> None:
    prod = pg_store(postgres, "prod", "prod_copy")
    target = Store("lake", "files", path=str(tmp_path / "lake"))
    plan = plan_copy(prod, "customers", target, name, config=config(prod, **{"public.customers": ALLOW}))
    copy(plan, tmp_path / "c.db")
    path = tmp_path / "lake" / name
    table = pq.read_table(path) if name.endswith(".parquet") else pacsv.read_csv(path)  # with its header row
    assert table.num_rows == ROWS and oct(path.stat().st_mode & 0o777) == "0o600"
    assert not digests(source["email"]) & digests(table.column("email").to_pylist())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_failure_mid_copy_leaves_the_target_as_it_was(postgres: Server, source: dict[str, list[Any]],
                                                      warehouse: Server, tmp_path: Path) -> None:
    prod, wh = pg_store(postgres, "prod", "prod_copy"), pg_store(warehouse, "wh")
    plan = plan_copy(prod, "customers", wh, "stable", config=config(prod, **{"public.customers": ALLOW}))
    copy(plan, tmp_path / "c.db")
    before = rows(warehouse, "SELECT customer_id FROM stable ORDER BY 1")

    def crash_after_first_batch(n: int) -> None:
        raise KeyboardInterrupt  # the operator's Ctrl-C, or a dying process, halfway through

    with pytest.raises(KeyboardInterrupt):
        copy(plan, tmp_path / "c.db", key=KEY_B, batch_rows=500, progress=crash_after_first_batch)
    assert rows(warehouse, "SELECT customer_id FROM stable ORDER BY 1") == before
    assert rows(warehouse, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_piiguard\\_%'") == [(0,)]
    with Catalog(tmp_path / "c.db") as cat:
        assert [c["status"] for c in cat.copies()] == ["active", "failed"]


def test_cli_plan_registry_expiry_and_lineage(postgres: Server, source: dict[str, list[Any]], warehouse: Server,
                                              tmp_path: Path, listener: Listener) -> None:
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "key").chmod(0o600)  # a key file others can read is refused
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(json.dumps({
        "stores": [{"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/prod_copy",
                    "password_env": PW},
                   {"name": "wh", "url": f"postgresql://postgres@127.0.0.1:{warehouse.port}/postgres",
                    "password_env": PW}],
        "masking": {"prod.public.customers": ALLOW}}))
    base = [sys.executable, "-m", "piiguard"]
    env = {**os.environ, PW: PASSWORD}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args, "-c", str(cfg), "--catalog", str(tmp_path / "c.db")],
                              capture_output=True, text=True, env=env, timeout=120)

    planned = run("copy", "prod.customers", "wh.cli_customers", "--plan")
    assert planned.returncode == 0, planned.stderr
    assert "pseudonym" in planned.stdout and "never copied" in planned.stdout
    assert rows(warehouse, "SELECT to_regclass('cli_customers')") == [(None,)]
    done = run("copy", "prod.customers", "wh.cli_customers", "--key-file", str(tmp_path / "key"), "--owner", "bi",
               "--purpose", "dashboards", "--expires", "2030-01-01", "--lineage", listener.url)
    assert done.returncode == 0, done.stderr
    assert source["email"][0] not in done.stdout + done.stderr
    (event,) = listener.received
    fields = event["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert fields["email"]["inputFields"][0]["transformations"][0]["masking"] is True
    assert fields["plan"]["inputFields"][0]["transformations"][0]["masking"] is False
    assert "api_key" not in fields
    listed = subprocess.run([*base, "copies", "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True,
                            env={**env, "COLUMNS": "250"})
    assert "cli_customers" in listed.stdout and "bi" in listed.stdout
    with Catalog(tmp_path / "c.db") as cat:  # time passes: the copy expires
        cat.db.execute("UPDATE copies SET expires = '2020-01-01'")
        cat.db.commit()
        findings = run_checks([pg_store(warehouse, "wh")], catalog=cat, record=False).findings
    assert [f.status for f in findings if f.check == "copy.expired"] == [Status.FAIL]
    dry = run("copies", "expire")
    assert dry.returncode == 0 and "would remove copy" in dry.stdout
    assert rows(warehouse, "SELECT to_regclass('cli_customers')") != [(None,)]
    applied = run("copies", "expire", "--apply")
    assert applied.returncode == 0 and "removed copy" in applied.stdout, applied.stderr
    assert rows(warehouse, "SELECT to_regclass('cli_customers')") == [(None,)]
    with Catalog(tmp_path / "c.db") as cat:
        assert cat.copies()[0]["status"] == "removed"


def test_lineage_to_a_file(tmp_path: Path) -> None:
    record = {"id": 7, "created": "2026-11-25T00:00:00+00:00", "source_store": "prod", "source_collection": "users",
              "target_store": "wh", "target_collection": "users",
              "transforms": {"email": {"masker": "pseudonym"}, "token": {"masker": "drop"}}}
    emit(record, f"file:{tmp_path / 'lineage.jsonl'}")
    event = json.loads((tmp_path / "lineage.jsonl").read_text().splitlines()[0])
    assert event["eventType"] == "COMPLETE" and event["job"]["name"] == "copy.7"
    assert list(event["outputs"][0]["facets"]["columnLineage"]["fields"]) == ["email"]
