"""piiguard copy against real servers: PostgreSQL → PostgreSQL / ClickHouse / Parquet / CSV, MariaDB →
PostgreSQL. The source is the synthetic, labelled customer table (every PII type piiguard knows)."""

from __future__ import annotations

import dataclasses
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
from piiguard.errors import ConfigError, CopyRefused, StoreError, UsageError
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


@pytest.fixture(scope="module")
def olap() -> Iterator[Server]:
    """One hardened ClickHouse for the copies into it: each test writes its own table."""
    server = start_clickhouse()
    yield server
    stop_clickhouse(server)


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


def test_into_clickhouse(postgres: Server, source: dict[str, list[Any]], olap: Server, tmp_path: Path) -> None:
    server = olap
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


# Own only what you made ----------------------------------------------------------------------------


def table_digest(server: Server, table: str) -> str:
    """Every row of the table, hashed in a fixed order: equal digests mean untouched data."""
    ((digest,),) = rows(server, f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")
    return str(digest)


def cli(tmp_path: Path, postgres: Server, warehouse: Server) -> Any:
    """``piiguard …`` with prod, wh (PostgreSQL) and lake (a folder) configured, and one catalog."""
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "key").chmod(0o600)  # a key file others can read is refused
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(json.dumps({
        "stores": [{"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/prod_copy",
                    "password_env": PW},
                   {"name": "wh", "url": f"postgresql://postgres@127.0.0.1:{warehouse.port}/postgres",
                    "password_env": PW},
                   {"name": "lake", "url": f"file://{tmp_path / 'lake'}"}],
        "masking": {"prod.public.customers": ALLOW}}))
    env = {**os.environ, PW: PASSWORD, "COLUMNS": "250"}

    def run(*args: str, write: bool = False) -> subprocess.CompletedProcess[str]:
        extra = ["--key-file", str(tmp_path / "key"), "--owner", "bi", "--purpose", "dashboards"] if write else []
        return subprocess.run([sys.executable, "-m", "piiguard", *args, *extra, "-c", str(cfg),
                               "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, env=env,
                              timeout=180)
    return run


def test_a_foreign_postgres_table_is_refused_untouched_until_replace(
        postgres: Server, source: dict[str, list[Any]], warehouse: Server, tmp_path: Path) -> None:
    with pg_connect(warehouse) as conn:
        conn.execute("DROP TABLE IF EXISTS crm_export")
        conn.execute("CREATE TABLE crm_export (id int, note text)")
        conn.execute("INSERT INTO crm_export SELECT i, 'note ' || i FROM generate_series(1, 500) i")
    before = table_digest(warehouse, "crm_export")
    run = cli(tmp_path, postgres, warehouse)
    planned = run("copy", "prod.customers", "wh.crm_export", "--plan")
    assert planned.returncode == 0, planned.stderr
    assert ("target exists and is not a piiguard copy of this source: would be refused / replaced with --replace"
            in planned.stdout)
    refused = run("copy", "prod.customers", "wh.crm_export", write=True)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not a piiguard copy" in refused.stderr and "--replace" in refused.stderr
    assert table_digest(warehouse, "crm_export") == before
    with Catalog(tmp_path / "c.db") as cat:
        assert cat.copies() == []  # refused before it was registered: nothing was started
    planned = run("copy", "prod.customers", "wh.crm_export", "--plan", "--replace")
    assert "would be replaced (--replace)" in planned.stdout
    replaced = run("copy", "prod.customers", "wh.crm_export", "--replace", write=True)
    assert replaced.returncode == 0, replaced.stderr
    assert rows(warehouse, "SELECT count(*) FROM crm_export") == [(ROWS,)]
    planned = run("copy", "prod.customers", "wh.crm_export", "--plan")  # now it is piiguard's copy of prod
    assert "target is piiguard copy 1 of this source: it is replaced" in planned.stdout


def test_only_a_live_copy_of_the_same_source_is_replaced(postgres: Server, source: dict[str, list[Any]],
                                                         warehouse: Server, tmp_path: Path) -> None:
    prod, wh = pg_store(postgres, "prod", "prod_copy"), pg_store(warehouse, "wh")
    cfg = config(prod, **{"public.customers": ALLOW, "public.orders": {"order_no": "keep", "sku": "keep"}})
    plan = plan_copy(prod, "customers", wh, "reborn", config=cfg)
    copy(plan, tmp_path / "c.db")
    copy(plan, tmp_path / "c.db", key=KEY_B)  # its own copy of the same source: replaced, no --replace needed
    with Catalog(tmp_path / "c.db") as cat:
        first, second = cat.copies()
    assert (first["status"], second["status"]) == ("replaced", "active")
    assert [o["kind"] for o in second["objects"]] == ["table"] and second["objects"][0]["name"] == "public.reborn"
    orders = plan_copy(prod, "orders", wh, "reborn", config=cfg)
    with pytest.raises(UsageError, match="not a piiguard copy of this source") as refused:
        copy(orders, tmp_path / "c.db")  # a copy of another source is not this source's to replace
    assert "--replace" in str(refused.value.hint)
    # the same name, another table: someone dropped the copy and made their own in its place
    with pg_connect(warehouse) as conn:
        conn.execute("DROP TABLE reborn")
        conn.execute("CREATE TABLE reborn AS SELECT * FROM generate_series(1, 10) AS id")
    before = table_digest(warehouse, "reborn")
    with pytest.raises(UsageError, match="not a piiguard copy"):
        copy(plan, tmp_path / "c.db")
    assert table_digest(warehouse, "reborn") == before
    with Catalog(tmp_path / "c.db") as cat:
        assert len(cat.copies()) == 2
    copy(dataclasses.replace(plan, replace=True), tmp_path / "c.db")
    assert rows(warehouse, "SELECT count(*) FROM reborn") == [(ROWS,)]


def test_two_copies_into_one_target_expiring_the_first_keeps_the_second(
        postgres: Server, source: dict[str, list[Any]], warehouse: Server, tmp_path: Path) -> None:
    run = cli(tmp_path, postgres, warehouse)
    with pg_connect(warehouse) as conn:
        conn.execute("DROP TABLE IF EXISTS shared_copy")
    for _ in range(2):
        done = run("copy", "prod.customers", "wh.shared_copy", write=True)
        assert done.returncode == 0, done.stderr
    second = table_digest(warehouse, "shared_copy")
    with Catalog(tmp_path / "c.db") as cat:
        assert [c["status"] for c in cat.copies()] == ["replaced", "active"]
        cat.db.execute("UPDATE copies SET expires = '2020-01-01' WHERE id = 1")
        cat.db.commit()
    assert "no expired copy" in run("copies", "expire", "--apply").stdout  # the replaced one is not live
    with Catalog(tmp_path / "c.db") as cat:  # even a registry that still calls the first one live …
        cat.db.execute("UPDATE copies SET status = 'active' WHERE id = 1")
        cat.db.commit()
    applied = run("copies", "expire", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "copy 1: wh.shared_copy now holds something this copy did not make: kept" in applied.stdout
    assert table_digest(warehouse, "shared_copy") == second  # … leaves the second copy's data
    with Catalog(tmp_path / "c.db") as cat:
        assert [c["status"] for c in cat.copies()] == ["removed", "active"]
        cat.db.execute("UPDATE copies SET expires = '2020-01-01' WHERE id = 2")
        cat.db.commit()
    assert "would remove copy 2: public.shared_copy" in run("copies", "expire").stdout
    applied = run("copies", "expire", "--apply")
    assert "removed copy 2: public.shared_copy" in applied.stdout, applied.stdout + applied.stderr
    assert rows(warehouse, "SELECT to_regclass('shared_copy')") == [(None,)]


def test_a_foreign_file_is_refused_untouched_and_expiry_removes_only_what_the_copy_made(
        postgres: Server, source: dict[str, list[Any]], warehouse: Server, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "exports").mkdir(parents=True)
    (lake / "exports" / "customers.csv").write_bytes(b"id,name\n1,someone else's file\n")
    run = cli(tmp_path, postgres, warehouse)
    planned = run("copy", "prod.customers", "lake.exports/customers.csv", "--plan")
    assert "target exists and is not a piiguard copy of this source: would be refused" in planned.stdout
    refused = run("copy", "prod.customers", "lake.exports/customers.csv", write=True)
    assert refused.returncode == 2 and "--replace" in refused.stderr
    assert (lake / "exports" / "customers.csv").read_bytes() == b"id,name\n1,someone else's file\n"
    assert sorted(p.name for p in (lake / "exports").iterdir()) == ["customers.csv"]
    assert run("copy", "prod.customers", "lake.exports/customers.csv", "--replace", write=True).returncode == 0
    assert pacsv.read_csv(lake / "exports" / "customers.csv").num_rows == ROWS
    done = run("copy", "prod.customers", "lake.new/deep/customers.parquet", write=True)
    assert done.returncode == 0, done.stderr
    (lake / "new" / "notes.txt").write_text("someone's notes, next to the copy")
    with Catalog(tmp_path / "c.db") as cat:
        objects = cat.copies()[-1]["objects"]
        cat.db.execute("UPDATE copies SET expires = '2020-01-01'")
        cat.db.commit()
    assert [(o["kind"], o["name"]) for o in objects] == [("file", "new/deep/customers.parquet"),
                                                         ("folder", "new/deep"), ("folder", "new")]
    assert run("copies", "expire", "--apply").returncode == 0
    assert not (lake / "exports" / "customers.csv").exists() and not (lake / "new" / "deep").exists()
    assert (lake / "new" / "notes.txt").read_text() == "someone's notes, next to the copy"  # its folder stays


def ch_query(server: Server, query: str) -> str:
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=query.encode(),
                                 headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(r.read().decode())


def test_a_foreign_clickhouse_table_is_refused_untouched_until_replace(
        postgres: Server, source: dict[str, list[Any]], olap: Server, tmp_path: Path) -> None:
    server = olap
    target = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default", password_env=PW,
                   options={"tcp_port": str(server.tcp_port),  # type: ignore[attr-defined]
                            "config_dir": str(server.data / "conf")})
    ch_query(server, "CREATE TABLE default.events (id UInt32, what String) ENGINE = Log")
    ch_query(server, "INSERT INTO default.events SELECT number, toString(number) FROM system.numbers LIMIT 700")
    digest = "SELECT count(), sum(cityHash64(id, what)) FROM default.events"
    before = ch_query(server, digest)
    prod = pg_store(postgres, "prod", "prod_copy")
    cfg = config(prod, **{"public.customers": ALLOW})
    with Catalog(tmp_path / "c.db") as cat:
        plan = plan_copy(prod, "customers", target, "default.events", config=cfg, catalog=cat)
    assert plan.target_owner is not None and plan.target_owner.state.value == "foreign"
    assert plan.target_owner.verdict(False).endswith("would be refused / replaced with --replace")
    with pytest.raises(UsageError, match="not a piiguard copy") as refused:
        copy(plan, tmp_path / "c.db")
    assert refused.value.exit_code == 2 and "--replace" in str(refused.value.hint)
    assert ch_query(server, digest) == before
    assert "events__piiguard" not in ch_query(server, "SHOW TABLES FROM default")
    copy(dataclasses.replace(plan, replace=True), tmp_path / "c.db")
    assert ch_query(server, "SELECT count() FROM default.events").strip() == str(ROWS)
    copy(plan, tmp_path / "c.db")  # now it is this source's copy: replaced without --replace
    # dropped and made again with the very same columns, at once: not the copy any more
    create = ch_query(server, "SHOW CREATE TABLE default.events FORMAT TSVRaw").strip()
    ch_query(server, "DROP TABLE default.events")
    ch_query(server, create)
    with pytest.raises(UsageError, match="not a piiguard copy"):
        copy(plan, tmp_path / "c.db")
    assert ch_query(server, "SELECT count() FROM default.events").strip() == "0"
    with Catalog(tmp_path / "c.db") as cat:  # a table under the next copy's staging name is not ours either
        decoy = f"default.events__piiguard_{max(c['id'] for c in cat.copies()) + 1}"
    ch_query(server, f"CREATE TABLE {decoy} (id UInt32) ENGINE = Log")
    ch_query(server, f"INSERT INTO {decoy} SELECT number FROM system.numbers LIMIT 9")
    with pytest.raises(StoreError, match="ClickHouse refused"):
        copy(dataclasses.replace(plan, replace=True), tmp_path / "c.db")
    assert ch_query(server, f"SELECT count() FROM {decoy}").strip() == "9"


def test_expiry_never_cascades_into_what_depends_on_a_copy(postgres: Server, source: dict[str, list[Any]],
                                                           warehouse: Server, tmp_path: Path) -> None:
    run = cli(tmp_path, postgres, warehouse)
    with pg_connect(warehouse) as conn:
        conn.execute("DROP VIEW IF EXISTS gold_customers")
        conn.execute("DROP TABLE IF EXISTS viewed_copy")
    assert run("copy", "prod.customers", "wh.viewed_copy", write=True).returncode == 0
    with pg_connect(warehouse) as conn:  # someone built on the copy
        conn.execute("CREATE VIEW gold_customers AS SELECT customer_id, plan FROM viewed_copy")
    with Catalog(tmp_path / "c.db") as cat:
        cat.db.execute("UPDATE copies SET expires = '2020-01-01'")
        cat.db.commit()
    applied = run("copies", "expire", "--apply")
    assert applied.returncode == 1
    assert "other objects (views, foreign keys) depend on the copy: not removed" in applied.stdout
    assert rows(warehouse, "SELECT count(*) FROM gold_customers") == [(ROWS,)]
    with Catalog(tmp_path / "c.db") as cat:
        assert [c["status"] for c in cat.copies()] == ["active"]  # still registered: expiry will try again
    with pg_connect(warehouse) as conn:
        conn.execute("DROP VIEW gold_customers")
    assert run("copies", "expire", "--apply").returncode == 0
    assert rows(warehouse, "SELECT to_regclass('viewed_copy')") == [(None,)]
