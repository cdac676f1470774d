"""Canary customers on real PostgreSQL and MariaDB: plan, plant, find in a copy, remove only our rows."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsondoc
import pytest
from conftest import my_connect, pg_connect
from servers import PASSWORD, Server

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.config import Config, load_config
from piiguard.discovery import canaries
from piiguard.discovery.canary_values import Deriver, ValueKind
from piiguard.errors import ConfigError, UsageError
from piiguard.scanner import scan

KEY = "canary-test-key-7Qm2xVb9-Lp4Wz8R-nT6s"  # varied: a repeated "k" is refused as a key
N = 300
COLS = tuple(c for c in synthetic.COLUMNS if c.name in (
    "customer_id", "email", "full_name", "phone", "device_mac", "wifi_ssid", "device_serial", "avatar_url",
    "alexa_refresh_token"))
DATA = synthetic.rows(N, seed=31, columns=COLS)
NAMES = [c.name for c in COLS]


def _config(tmp_path: Path, store: dict[str, Any], **canary: str) -> Config:
    path = tmp_path / "piiguard.yaml"
    path.write_text(json.dumps({
        "stores": [store],
        "discovery": {"key_env": "PIIGUARD_DISCOVERY_KEY",
                      "canary": {"domain": "canary.example.com", "trap_url": "https://trap.example.com",
                                 **canary}}}))
    return load_config(path)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("PIIGUARD_DISCOVERY_KEY", KEY)
    return KEY.encode()


Engine = tuple[Callable[[str], list[tuple[Any, ...]]], Callable[[str], None], dict[str, Any], str, str]


@pytest.fixture(params=["postgres", "mariadb"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A production table on the engine: (query, execute, store config, collection, copy database)."""
    server: Server = request.getfixturevalue(request.param)
    if request.param == "postgres":
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        with pg_connect(server) as conn:
            for db in ("canary_prod", "canary_copy"):
                conn.execute(f"DROP DATABASE IF EXISTS {db}")
                conn.execute(f"CREATE DATABASE {db}")

        def query(sql: str, db: str = "canary_prod") -> list[tuple[Any, ...]]:
            with pg_connect(server, db) as conn:
                return list(conn.execute(sql).fetchall())

        def execute(sql: str, db: str = "canary_prod", params: Any = None) -> None:
            with pg_connect(server, db) as conn:
                conn.execute(sql, params)

        cols = ", ".join(f"{n} text" + (" NOT NULL" if n == "email" else "") for n in NAMES)
        execute(f"CREATE TABLE customers (id serial PRIMARY KEY, {cols}, signup date NOT NULL, "
                "score integer NOT NULL, notes text, UNIQUE (email))")
        store = {"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{server.port}/canary_prod",
                 "password_env": "PGPASSWORD"}
        collection, copy_url = "public.customers", f"postgresql://postgres@127.0.0.1:{server.port}/canary_copy"
        insert = "INSERT INTO customers ({}) VALUES ({})"
    else:
        monkeypatch.setenv("MYSQL_PWD", PASSWORD)
        with my_connect(server, None) as conn, conn.cursor() as cur:
            for db in ("canary_prod", "canary_copy"):
                cur.execute(f"DROP DATABASE IF EXISTS {db}")
                cur.execute(f"CREATE DATABASE {db}")

        def query(sql: str, db: str = "canary_prod") -> list[tuple[Any, ...]]:
            with my_connect(server, db) as conn, conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())

        def execute(sql: str, db: str = "canary_prod", params: Any = None) -> None:
            with my_connect(server, db) as conn, conn.cursor() as cur:
                cur.execute(sql, params)

        cols = ", ".join(f"{n} varchar(255)" + (" NOT NULL" if n == "email" else "") for n in NAMES)
        execute(f"CREATE TABLE customers (id int AUTO_INCREMENT PRIMARY KEY, {cols}, signup date NOT NULL, "
                "score int NOT NULL, notes text, UNIQUE (email))")
        store = {"name": "prod", "url": f"mysql://root@127.0.0.1:{server.port}/canary_prod",
                 "password_env": "MYSQL_PWD"}
        collection, copy_url = "canary_prod.customers", f"mysql://root@127.0.0.1:{server.port}/canary_copy"
        insert = "INSERT INTO customers ({}) VALUES ({})"
    rows = [(*(str(DATA[n][i]) for n in NAMES), "2020-01-01", i) for i in range(N)]
    conn_exec = insert.format(", ".join([*NAMES, "signup", "score"]), ", ".join(["%s"] * (len(NAMES) + 2)))
    for r in rows:
        execute(conn_exec, params=r)
    return query, execute, store, collection, copy_url  # type: ignore[return-value]


def _scanned(tmp_path: Path, cfg: Config) -> Catalog:
    cat = Catalog(tmp_path / "c.db")
    scan(["prod"], config=cfg, catalog=cat, sample_size=N)
    return cat


def _values(cfg: Config, cat: Catalog, key: bytes, canary_id: int) -> list[dict[str, Any]]:
    found = next(c for c in cat.canaries() if c["id"] == canary_id)
    kinds = {f: ValueKind(k) for f, k in found["fields"].items()}
    return Deriver(key, found["nonce"], "canary.example.com", "https://trap.example.com").rows(found["count"], kinds)


def test_plan_apply_find_remove(engine: Engine, key: bytes, tmp_path: Path, leaks: Any) -> None:
    query, execute, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    store = cfg.stores[0]
    with _scanned(tmp_path, cfg) as cat:
        planned = canaries.plan(cfg, cat, key, store, collection, 10)
        kinds = {f.name: f.kind for f in planned.fields}
        assert kinds["email"] is ValueKind.EMAIL and kinds["alexa_refresh_token"] is ValueKind.TOKEN
        assert kinds["device_mac"] is ValueKind.MAC and kinds["avatar_url"] is ValueKind.LINK
        assert kinds["signup"] is ValueKind.DATE and kinds["score"] is ValueKind.INTEGER  # required, no PII
        assert "notes" not in kinds and "id" not in kinds  # nullable / filled by the engine
        assert query("SELECT count(*) FROM customers") == [(N,)]  # a plan changes nothing
        assert cat.canaries() == []

        canary_id = canaries.apply(cfg, cat, key, store, planned)
        values = _values(cfg, cat, key, canary_id)
        leaks.seed([str(v) for row in values for v in row.values() if isinstance(v, str)], "canary")
        assert query("SELECT count(*) FROM customers") == [(N + 10,)]
        emails = sorted(r["email"] for r in values)
        assert sorted(r[0] for r in query("SELECT email FROM customers WHERE email LIKE '%@canary.example.com'")) \
            == emails
        assert all(v["device_mac"][1] in "26ae" for v in values)  # locally administered MACs
        matchable = [f for f in planned.fields if f.kind.matchable]
        assert len(matchable) >= 7 and len(cat.canaries()[0]["digests"]) == 10 * len(matchable) * 32
        # planting again is refused, nothing doubles
        with pytest.raises(UsageError, match="already holds canary set"):
            canaries.plan(cfg, cat, key, store, collection, 10)
        assert query("SELECT count(*) FROM customers") == [(N + 10,)]

        # a later copy: half the rows, renamed columns, another database
        execute("CREATE TABLE members (member_email varchar(255), ref varchar(255), token varchar(255))",
                db="canary_copy")
        copied = query("SELECT email, customer_id, alexa_refresh_token FROM customers WHERE id % 2 = 0")
        for r in copied:
            execute("INSERT INTO members VALUES (%s, %s, %s)", db="canary_copy", params=r)
        in_copy = sum(1 for r in copied if r[0] in emails)
        copy_store = dataclasses.replace(store, name="copy", database="canary_copy")
        links = canaries.find(copy_store, cat, key)
        assert [(link.collection.rpartition(".")[2], link.source_store, link.via, link.people)
                for link in links] == [("members", "prod", "canary", in_copy)]
        assert set(links[0].fields) == {"member_email", "ref", "token"}
        assert set(links[0].source_fields) == {"email", "customer_id", "alexa_refresh_token"}
        assert [h["channel"] for h in cat.canary_hits(canary_id)] == ["scan"]
        # the planted table itself is no copy of itself
        assert canaries.find(store, cat, key) == []

        # a real customer who shares a canary's e-mail in another row is never removed
        execute("DELETE FROM customers WHERE email = %s", params=(emails[0],))
        execute("INSERT INTO customers (email, customer_id, signup, score) VALUES (%s, 'real-customer-1', "
                "'2021-01-01', 1)", params=(emails[0],))
        shown = canaries.remove(cfg, cat, key, canary_id)
        assert shown.deleted is None and query("SELECT count(*) FROM customers") == [(N + 10,)]
        done = canaries.remove(cfg, cat, key, canary_id, apply=True)
        assert done.deleted == 9
        assert query("SELECT count(*) FROM customers") == [(N + 1,)]
        assert query("SELECT customer_id FROM customers WHERE email LIKE '%@canary.example.com'") == \
            [("real-customer-1",)]
        assert cat.canaries()[0]["status"] == "removed"
        with pytest.raises(UsageError, match="was removed"):
            canaries.remove(cfg, cat, key, canary_id, apply=True)
    raw = (tmp_path / "c.db").read_bytes()
    assert emails[1].encode() not in raw


def test_cli_plant_list_remove(engine: Engine, key: bytes, tmp_path: Path) -> None:
    query, _, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    _scanned(tmp_path, cfg).close()
    env = {**os.environ}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "piiguard", "canary", *args, "-c", str(tmp_path / "piiguard.yaml"),
                               "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, env=env,
                              timeout=120)

    env.pop("PIIGUARD_DISCOVERY_KEY")
    keyless = run("plant", f"prod.{collection}", "--count", "5", "--apply")
    assert keyless.returncode == 2 and "discovery.key_env" in keyless.stderr, keyless.stderr
    env["PIIGUARD_DISCOVERY_KEY"] = KEY
    shown = run("plant", f"prod.{collection}", "--count", "5")
    assert shown.returncode == 0, shown.stderr
    assert "email: email" in shown.stdout and "not shown" in shown.stdout
    assert "@canary.example.com" not in shown.stdout
    assert query("SELECT count(*) FROM customers") == [(N,)]
    planted = run("plant", f"prod.{collection}", "--count", "5", "--apply")
    assert planted.returncode == 0, planted.stderr
    assert query("SELECT count(*) FROM customers") == [(N + 5,)]
    again = run("plant", f"prod.{collection}", "--count", "5", "--apply")
    assert again.returncode == 2 and "already holds canary set 1" in again.stderr + again.stdout
    listed = jsondoc.check(run("list", "--format", "json").stdout, "canaries")
    assert [(c["id"], c["count"], c["status"]) for c in listed["canaries"]] == [(1, 5, "planted")]
    assert run("remove", "1").returncode == 0 and query("SELECT count(*) FROM customers") == [(N + 5,)]
    removed = run("remove", "1", "--apply")
    assert removed.returncode == 0, removed.stderr
    assert "removed 5 row(s)" in removed.stdout and query("SELECT count(*) FROM customers") == [(N,)]
    for out in (shown, planted, again, removed):
        assert "@canary.example.com" not in out.stdout + out.stderr


def test_missing_settings_and_engines(key: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      engine: Engine) -> None:
    _, _, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    with _scanned(tmp_path, cfg) as cat:
        no_domain = Config(stores=cfg.stores, discovery=cfg.discovery.__class__(
            key_env="PIIGUARD_DISCOVERY_KEY", canary=cfg.discovery.canary.__class__(trap_url="https://t.example")))
        with pytest.raises(ConfigError, match=r"discovery\.canary\.domain"):
            canaries.plan(no_domain, cat, key, cfg.stores[0], collection, 3)
        with pytest.raises(UsageError, match="no scan of"):
            canaries.plan(cfg, cat, key, cfg.stores[0], collection.rpartition(".")[0] + ".nope", 3)
        for bad in (0, -1, canaries.MAX_COUNT + 1):
            with pytest.raises(UsageError, match="--count"):
                canaries.plan(cfg, cat, key, cfg.stores[0], collection, bad)
        redis = cfg.stores[0].__class__(name="cache", engine="redis", host="127.0.0.1", port=6379)
        with pytest.raises(UsageError, match="PostgreSQL and MariaDB"):
            canaries.plan(cfg, cat, key, redis, "keys", 3)
        assert cat.canaries() == []


def test_an_interrupted_plant_is_resumed_not_doubled(engine: Engine, key: bytes, tmp_path: Path) -> None:
    """The set is recorded as planned before its insert; if the process dies after the insert but before
    the set is marked planted, the next plant finds the rows there and only marks it."""
    from piiguard.discovery import canary_values as cv
    from piiguard.discovery.canary_sql import open_table
    from piiguard.discovery.fingerprints import key_id

    query, _, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    store = cfg.stores[0]
    with _scanned(tmp_path, cfg) as cat:
        first = canaries.plan(cfg, cat, key, store, collection, 4)
        kinds = {f.name: f.kind for f in first.fields}
        rows = Deriver(key, first.nonce, "canary.example.com", "https://trap.example.com").rows(4, kinds)
        canary_id = cat.add_canary(store.name, collection, 4, first.nonce, key_id(key),
                                   {f: k.value for f, k in kinds.items()}, cv.digests(key, rows, kinds))
        table = open_table(store, collection, 10)
        table.insert(rows)  # ... and the process died here
        table.close()
        again = canaries.plan(cfg, cat, key, store, collection, 4)
        assert again.resumes == canary_id and any("resumes canary set" in line for line in again.lines())
        assert canaries.apply(cfg, cat, key, store, again) == canary_id
        assert query("SELECT count(*) FROM customers") == [(N + 4,)]
        assert [c["status"] for c in cat.canaries()] == ["planted"]


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_found_in_a_copy_on_another_engine(engine: Engine, mariadb: Server, key: bytes, tmp_path: Path,
                                           leaks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted in PostgreSQL, copied into MariaDB with renamed columns, the link kept whole and a serial
    inside a JSON document: still proof of the copy, down to which fields."""
    query, _, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    with _scanned(tmp_path, cfg) as cat:
        canary_id = canaries.apply(cfg, cat, key, cfg.stores[0], canaries.plan(cfg, cat, key, cfg.stores[0],
                                                                               collection, 6))
        values = _values(cfg, cat, key, canary_id)
        leaks.seed([str(v) for row in values for v in row.values() if isinstance(v, str)], "canary")
        copied = query("SELECT email, avatar_url, device_serial FROM customers WHERE id > 200")
        monkeypatch.setenv("MYSQL_PWD", PASSWORD)
        with my_connect(mariadb, None) as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS canary_leads")
            cur.execute("CREATE DATABASE canary_leads")
            cur.execute("CREATE TABLE canary_leads.leads (contact varchar(255), picture varchar(255), extra json)")
            cur.executemany("INSERT INTO canary_leads.leads VALUES (%s, %s, %s)",
                            [(e, a, json.dumps({"device": {"serial": s}})) for e, a, s in copied])
        copy = load_config(_write(tmp_path, {"name": "leads", "url": f"mysql://root@127.0.0.1:{mariadb.port}/"
                                             "canary_leads", "password_env": "MYSQL_PWD"})).stores[0]
        links = canaries.find(copy, cat, key)
    assert [(link.collection, link.source_store, link.source_collection, link.people) for link in links] == \
        [("canary_leads.leads", "prod", "public.customers", 6)]
    pairs = set(zip(links[0].fields, links[0].source_fields, strict=True))
    assert {("contact", "email"), ("picture", "avatar_url")} <= pairs
    assert ("extra", "device_serial") in pairs  # inside the JSON document


def _write(tmp_path: Path, store: dict[str, Any]) -> Path:
    path = tmp_path / "copy.yaml"
    path.write_text(json.dumps({"stores": [store]}))
    return path


def test_find_reads_only_the_named_collections_and_up_to_the_limit(tmp_path: Path, leaks: Any) -> None:
    """A SQLite dump holding canaries in two tables, the canaries after 50 decoy rows in one: the
    collections filter and the read limit are honoured (and a set under another key is not looked at)."""
    import sqlite3

    from piiguard.discovery import canary_values as cv
    from piiguard.discovery.fingerprints import key_id
    from piiguard.model import Store

    key = KEY.encode()
    fields = {"email": ValueKind.EMAIL, "token": ValueKind.TOKEN}
    rows = Deriver(key, "nonce-s", "canary.example.com").rows(5, fields)
    leaks.seed([v for r in rows for v in r.values()], "canary")
    dump = tmp_path / "dump.db"
    leaks.source(dump)
    with sqlite3.connect(dump) as db:
        for table in ("a", "b"):
            db.execute(f"CREATE TABLE {table} (mail text, secret text)")
            db.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(f"decoy{i}@example.org", "-") for i in range(50)])
            db.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(r["email"], r["token"]) for r in rows])
    with Catalog(tmp_path / "c.db") as cat:
        cid = cat.add_canary("prod", "public.customers", 5, "nonce-s", key_id(key),
                             {f: k.value for f, k in fields.items()}, cv.digests(key, rows, fields))
        cat.set_canary(cid, "planted")
        other = cat.add_canary("prod", "public.accounts", 5, "nonce-s", key_id(b"o" * 32),
                               {f: k.value for f, k in fields.items()}, cv.digests(b"o" * 32, rows, fields))
        cat.set_canary(other, "planted")
        store = Store(name="dump", engine="sqlite", path=str(dump))
        both = canaries.find(store, cat, key)
        assert [(link.collection, link.source_collection, link.people, link.share) for link in both] == \
            [("a", "public.customers", 5, 1.0), ("b", "public.customers", 5, 1.0)]
        assert [link.collection for link in canaries.find(store, cat, key, collections=["b"])] == ["b"]
        assert canaries.find(store, cat, key, limit=50) == []  # the canaries are past the first 50 rows
        assert [link.people for link in canaries.find(store, cat, key, limit=52)] == [2, 2]
