"""Canary customers on real PostgreSQL and MariaDB: plan, plant, find in a copy, remove only our rows."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
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
from piiguard.discovery import canary_values as cv
from piiguard.discovery.canary_values import Deriver, ValueKind
from piiguard.errors import CollectionError, ConfigError, UsageError
from piiguard.model import ScanMode
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
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A production table on the engine: (query, execute, store config, collection, copy database).

    One connection per database for the whole test: a login per statement made the 300-row setup
    alone take 25–40 s per case on MariaDB."""
    server: Server = request.getfixturevalue(request.param)
    postgres = request.param == "postgres"
    monkeypatch.setenv("PGPASSWORD" if postgres else "MYSQL_PWD", PASSWORD)
    if postgres:
        with pg_connect(server) as conn:
            for db in ("canary_prod", "canary_copy"):
                conn.execute(f"DROP DATABASE IF EXISTS {db}")
                conn.execute(f"CREATE DATABASE {db}")
    else:
        with my_connect(server, None) as conn, conn.cursor() as cur:
            for db in ("canary_prod", "canary_copy"):
                cur.execute(f"DROP DATABASE IF EXISTS {db}")
                cur.execute(f"CREATE DATABASE {db}")
    conns: dict[str, Any] = {}

    def cursor(db: str) -> Any:
        if db not in conns:
            conns[db] = pg_connect(server, db) if postgres else my_connect(server, db)
        return conns[db].cursor()

    def query(sql: str, db: str = "canary_prod") -> list[tuple[Any, ...]]:
        with cursor(db) as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def execute(sql: str, db: str = "canary_prod", params: Any = None) -> None:
        with cursor(db) as cur:
            cur.execute(sql, params)

    if postgres:
        cols = ", ".join(f"{n} text" + (" NOT NULL" if n == "email" else "") for n in NAMES)
        execute(f"CREATE TABLE customers (id serial PRIMARY KEY, {cols}, signup date NOT NULL, "
                "score integer NOT NULL, notes text, UNIQUE (email))")
        store = {"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{server.port}/canary_prod",
                 "password_env": "PGPASSWORD"}
        collection, copy_url = "public.customers", f"postgresql://postgres@127.0.0.1:{server.port}/canary_copy"
    else:
        cols = ", ".join(f"{n} varchar(255)" + (" NOT NULL" if n == "email" else "") for n in NAMES)
        execute(f"CREATE TABLE customers (id int AUTO_INCREMENT PRIMARY KEY, {cols}, signup date NOT NULL, "
                "score int NOT NULL, notes text, UNIQUE (email))")
        store = {"name": "prod", "url": f"mysql://root@127.0.0.1:{server.port}/canary_prod",
                 "password_env": "MYSQL_PWD"}
        collection, copy_url = "canary_prod.customers", f"mysql://root@127.0.0.1:{server.port}/canary_copy"
    rows = [(*(str(DATA[n][i]) for n in NAMES), "2020-01-01", i) for i in range(N)]
    insert = "INSERT INTO customers ({}) VALUES ({})".format(
        ", ".join([*NAMES, "signup", "score"]), ", ".join(["%s"] * (len(NAMES) + 2)))
    with cursor("canary_prod") as cur:
        cur.executemany(insert, rows)
    yield query, execute, store, collection, copy_url  # type: ignore[misc]
    for conn in conns.values():
        conn.close()


def _scanned(tmp_path: Path, cfg: Config) -> Catalog:
    cat = Catalog(tmp_path / "c.db")
    scan(["prod"], config=cfg, catalog=cat, sample_size=N)
    return cat


def _values(cfg: Config, cat: Catalog, key: bytes, canary_id: int) -> list[dict[str, Any]]:
    found = next(c for c in cat.canaries() if c["id"] == canary_id)
    recorded = {f: cv.decode_kind(k) for f, k in found["fields"].items()}
    return Deriver(key, found["nonce"], "canary.example.com", "https://trap.example.com").rows(
        found["count"], {f: k for f, (k, _) in recorded.items()}, shapes={f: s for f, (_, s) in recorded.items()})


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

        # a row that holds a canary's e-mail but not its other values is a customer's: it is never removed,
        # and since that canary's row is then missing, nothing is (the set stays planted)
        execute("UPDATE customers SET customer_id = 'real-customer-1' WHERE email = %s", params=(emails[0],))
        shown = canaries.remove(cfg, cat, key, canary_id)
        assert shown.deleted is None and query("SELECT count(*) FROM customers") == [(N + 10,)]
        with pytest.raises(CollectionError, match=r"9 row\(s\) hold its values, 10 were planted") as refused:
            canaries.remove(cfg, cat, key, canary_id, apply=True)
        assert refused.value.exit_code == 1 and "canary set 1" in str(refused.value)
        assert query("SELECT count(*) FROM customers") == [(N + 10,)] and cat.canaries()[0]["status"] == "planted"
        first = next(v for v in values if v["email"] == emails[0])
        execute("UPDATE customers SET customer_id = %s WHERE email = %s", params=(first["customer_id"], emails[0]))
        done = canaries.remove(cfg, cat, key, canary_id, apply=True)
        assert done.deleted == 10
        assert query("SELECT count(*) FROM customers") == [(N,)]
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


VARIANTS = {  # what a case-insensitive, PAD SPACE collation (MariaDB's default) takes for the same value
    "upper": str.upper, "lower": str.lower, "trailing-space": lambda v: v + " ", "swapcase-space": lambda v: v.swapcase() + "  "}


def _insert(execute: Callable[..., None], row: dict[str, Any]) -> None:
    names = list(row)
    execute(f"INSERT INTO customers ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
            params=[row[n] for n in names])


def test_remove_deletes_only_its_own_rows_byte_for_byte(engine: Engine, key: bytes, tmp_path: Path,
                                                        leaks: Any) -> None:
    query, execute, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    mysql = "mysql" in store_cfg["url"]
    with _scanned(tmp_path, cfg) as cat:
        canary_id = canaries.apply(cfg, cat, key, cfg.stores[0], canaries.plan(cfg, cat, key, cfg.stores[0],
                                                                               collection, 3))
        values = _values(cfg, cat, key, canary_id)
        leaks.seed([str(v) for row in values for v in row.values() if isinstance(v, str)], "canary")
        execute("ALTER TABLE customers DROP INDEX email" if mysql else
                "ALTER TABLE customers DROP CONSTRAINT customers_email_key")
        text = {f for f, v in values[0].items() if isinstance(v, str) and f not in ("signup",)}
        for variant in VARIANTS.values():  # customers' rows equal to canary 0 under the collation only
            _insert(execute, {**values[0], **{f: variant(values[0][f]) for f in text}})
        _insert(execute, values[1])  # an exact copy of canary 1: not planted by piiguard
        before = query("SELECT count(*) FROM customers")
        assert before == [(N + 3 + len(VARIANTS) + 1,)]
        with pytest.raises(CollectionError, match=r"4 row\(s\) hold its values, 3 were planted; 1 of them have an "
                                                  "exact copy") as refused:
            canaries.remove(cfg, cat, key, canary_id, apply=True)
        assert "@canary.example.com" not in str(refused.value).lower()
        assert query("SELECT count(*) FROM customers") == before and cat.canaries()[0]["status"] == "planted"
        execute("DELETE FROM customers WHERE id = (SELECT m FROM (SELECT max(id) AS m FROM customers) AS t)")
        assert canaries.remove(cfg, cat, key, canary_id, apply=True).deleted == 3
        assert query("SELECT count(*) FROM customers") == [(N + len(VARIANTS),)]  # every variant is still there
        assert cat.canaries()[0]["status"] == "removed"


def test_remove_of_a_changed_set_is_refused_and_it_stays_planted(engine: Engine, key: bytes,
                                                                 tmp_path: Path) -> None:
    query, execute, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    _scanned(tmp_path, cfg).close()
    env = {**os.environ, "PIIGUARD_DISCOVERY_KEY": KEY}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "piiguard", "canary", *args, "-c", str(tmp_path / "piiguard.yaml"),
                               "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, env=env,
                              timeout=120)

    assert run("plant", f"prod.{collection}", "--count", "2", "--apply").returncode == 0
    concat = "CONCAT('x', email)" if "mysql" in store_cfg["url"] else "'x' || email"
    execute(f"UPDATE customers SET email = {concat} WHERE email LIKE '%%@canary.example.com'")
    removed = run("remove", "1", "--apply")
    assert removed.returncode == 1, removed.stdout + removed.stderr
    out = removed.stdout + removed.stderr
    assert "canary set 1" in out and "customers" in out and "0 row(s) hold its values, 2 were planted" in out
    assert "stays planted" in out and "hint" in out and "removed 0" not in out and "@canary" not in out
    assert query("SELECT count(*) FROM customers") == [(N + 2,)]
    listed = jsondoc.check(run("list", "--format", "json").stdout, "canaries")
    assert [c["status"] for c in listed["canaries"]] == ["planted"]
    again = run("plant", f"prod.{collection}", "--count", "2", "--apply")
    assert again.returncode == 2 and "already holds canary set 1" in again.stdout + again.stderr
@pytest.mark.parametrize("dense", [False, True], ids=["sparse-ids", "nearly-full-ids"])
def test_planted_numbers_fall_inside_the_observed_range_and_never_collide(
        engine: Engine, key: bytes, tmp_path: Path, dense: bool) -> None:
    """A required integer key with no default (ids of 100000–999999), a bigint and a numeric: canaries
    get values inside each column's observed range, no id an existing row (or another canary) holds —
    on a nearly full range the ids past its max — and remove and find still work on exactly them."""
    import random

    query, execute, store_cfg, collection, _ = engine
    schema = collection.rpartition(".")[0]
    execute("CREATE TABLE accounts (id integer PRIMARY KEY, email varchar(255) NOT NULL, "
            "legacy_no bigint NOT NULL, balance numeric(10, 2) NOT NULL)")
    rnd = random.Random(7)
    ids = list(range(100_000, 100_000 + N + 3)) if dense else rnd.sample(range(100_000, 1_000_000), N)
    if dense:
        for gap in (100_050, 100_150, 100_250):
            ids.remove(gap)
    for i, (account, email) in enumerate(zip(ids, DATA["email"], strict=False)):
        execute("INSERT INTO accounts VALUES (%s, %s, %s, %s)",
                params=(account, str(email), 5_000_000_000 + 7 * i, f"{10 + i}.25"))
    cfg = _config(tmp_path, store_cfg)
    store = cfg.stores[0]
    with _scanned(tmp_path, cfg) as cat:
        planned = canaries.plan(cfg, cat, key, store, f"{schema}.accounts", 20)
        by_name = {f.name: f for f in planned.fields}
        assert by_name["id"].unique and not by_name["legacy_no"].unique
        assert "inside its observed range" in "\n".join(planned.lines())
        assert not any(str(ids[0]) in line or "100000" in line for line in planned.lines())  # no real value shown
        canary_id = canaries.apply(cfg, cat, key, store, planned)
        emails = {r["email"] for r in _values(cfg, cat, key, canary_id)}
        got = [(int(a), int(b), float(c)) for a, b, c in
               query("SELECT id, legacy_no, balance FROM accounts") if a not in set(ids)]
        planted_ids = [a for a, _, _ in got]
        assert len(got) == 20 and len(set(planted_ids)) == 20  # 20 new ids: none collided
        lo, hi = min(ids), max(ids)
        if dense:  # three gaps and 32 draws each: most go past the max, each to the next free id
            assert all(lo <= a <= hi + 20 for a in planted_ids)
        else:
            assert all(lo <= a <= hi for a in planted_ids)
        assert all(5_000_000_000 <= b <= 5_000_000_000 + 7 * (N - 1) for _, b, _ in got)
        assert all(10 <= c <= 10 + N for _, _, c in got)
        # a copy of the e-mails is still found, and remove deletes exactly the planted rows
        execute("CREATE TABLE mail (address varchar(255))", db="canary_copy")
        for (email,) in query("SELECT email FROM accounts"):
            execute("INSERT INTO mail VALUES (%s)", db="canary_copy", params=(email,))
        copy_store = dataclasses.replace(store, name="copy", database="canary_copy")
        assert [link.people for link in canaries.find(copy_store, cat, key)] == [20]
        done = canaries.remove(cfg, cat, key, canary_id, apply=True)
        assert done.deleted == 20
        assert sorted(a for (a,) in query("SELECT id FROM accounts")) == sorted(ids)
        assert not emails & {e for (e,) in query("SELECT email FROM accounts")}


def test_planted_user_names_follow_the_shape_of_the_columns_own(engine: Engine, key: bytes, tmp_path: Path,
                                                                leaks: Any) -> None:
    """Handles like ``k.miller1987``: the canaries' user names use the column's character classes and
    lengths (no fixed name_xxxxxxxx form), copy no customer's, are found in a copy and removed exactly."""
    import random

    query, execute, store_cfg, collection, _ = engine
    schema = collection.rpartition(".")[0]
    execute("CREATE TABLE logins (email varchar(255) NOT NULL, username varchar(40))")
    rnd = random.Random(3)
    handles = [f"{rnd.choice('abcdefghjk')}.{str(DATA['full_name'][i]).split()[-1].lower()}{rnd.randint(1950, 2010)}"
               for i in range(N)]
    for email, handle in zip(DATA["email"], handles, strict=False):
        execute("INSERT INTO logins VALUES (%s, %s)", params=(str(email), handle))
    cfg = _config(tmp_path, store_cfg)
    store = cfg.stores[0]
    with _scanned(tmp_path, cfg) as cat:
        planned = canaries.plan(cfg, cat, key, store, f"{schema}.logins", 12)
        field = next(f for f in planned.fields if f.name == "username")
        assert field.kind is ValueKind.USERNAME and field.shape is not None
        canary_id = canaries.apply(cfg, cat, key, store, planned)
        values = _values(cfg, cat, key, canary_id)
        leaks.seed([str(v) for row in values for v in row.values() if isinstance(v, str)], "canary")
        planted = {u for (u,) in query("SELECT username FROM logins")} - set(handles)
        assert planted == {r["username"] for r in values} and len(planted) == 12
        lengths = sorted(len(h) for h in handles)
        for u in planted:
            assert not re.fullmatch(r"[a-z]+_[a-z2-7]{8}", u)  # not the fixed form an attacker filters
            assert set(u) <= set("abcdefghijklmnopqrstuvwxyz0123456789.") and lengths[0] <= len(u) <= lengths[-1]
        execute("CREATE TABLE handles (login varchar(255))", db="canary_copy")
        for u in planted:
            execute("INSERT INTO handles VALUES (%s)", db="canary_copy", params=(u,))
        copy_store = dataclasses.replace(store, name="copy", database="canary_copy")
        assert [link.people for link in canaries.find(copy_store, cat, key)] == [12]
        assert canaries.remove(cfg, cat, key, canary_id, apply=True).deleted == 12
        assert sorted(u for (u,) in query("SELECT username FROM logins")) == sorted(handles)
def _table(store: Any) -> str:
    """The scan's table, as `piiguard scan` prints it."""
    import io
    from datetime import UTC, datetime

    from rich.console import Console

    from piiguard.model import ScanResult
    from piiguard.report import render_table

    out, now = io.StringIO(), datetime.now(UTC)
    render_table(ScanResult(None, ScanMode.FULL, 1, now, now, (store,)), Console(file=out, width=300))
    return out.getvalue()


def test_planted_canaries_are_nobody(engine: Engine, key: bytes, tmp_path: Path, leaks: Any) -> None:
    """5 canaries planted among N customers: the fingerprint counts N people, the scope lists N (and says
    it left 5 records out; without the key, that they may be counted), notices skip the 5 — by the canary
    domain, and by value alone when the domain is not set."""
    from piiguard.discovery import fingerprints
    from piiguard.response import notices
    from piiguard.response.incidents import open_by_hand
    from piiguard.response.scope import SubjectFile, find_scope, keyed, write_subjects

    _, _, store_cfg, collection, _ = engine
    cfg = _config(tmp_path, store_cfg)
    prod = cfg.stores[0]
    scope_key = b"s" * 32
    with _scanned(tmp_path, cfg) as cat:
        canary_id = canaries.apply(cfg, cat, key, prod, canaries.plan(cfg, cat, key, prod, collection, 5))
        values = _values(cfg, cat, key, canary_id)
        leaks.seed([str(v) for row in values for v in row.values() if isinstance(v, str)], "canary")
        rescan = scan(["prod"], config=cfg, catalog=cat, sample_size=N + 5, mode=ScanMode.FULL).stores[0]
        assert rescan.subjects is not None and (rescan.subjects.estimate, rescan.subjects.canaries) == (N, 5)
        assert "excludes 5 planted canaries" in _table(rescan)
        built = {b.field: b.people for b in fingerprints.build(cfg, cat, key, ["prod"])}
        assert built["email"] == N, built
        incident = cat.incident(open_by_hand(cat, "prod", "2026-11-03T08:00:00+00:00"))
        assert incident is not None
        keyless = find_scope(cat, incident, {"prod": prod}, scope_key)
        assert len(keyless.people) == N + 5 and any("may be counted" in w for w in keyless.warnings)
        found = find_scope(cat, incident, {"prod": prod}, scope_key, canary_key=key)
        assert len(found.people) == N and "left out 5 record(s) of planted canaries" in " ".join(found.warnings)
        assert not {str(r[f]) for r in values for f in r} & set(found.people)
        subjects = tmp_path / "private" / "subjects.csv"
        subjects.parent.mkdir()
        leaks.holds_people(subjects.parent)
        write_subjects(keyless, subjects, key=scope_key)  # canaries in the list: notices must still skip them
        cat.set_scope(int(incident["id"]), keyed(keyless, scope_key))
        options = notices.NoticeOptions(store="prod", table="customers", subject_column="customer_id",
                                        email_column="email", rate=0)
        for canaries_filter, spool in ((notices.Canaries.of("canary.example.com", cat, None), "by-domain"),
                                       (notices.Canaries.of(None, cat, key), "by-value")):
            if spool == "by-value":  # a second incident: the first one's people are notified
                incident = cat.incident(open_by_hand(cat, "prod", "2026-11-03T08:00:00+00:00"))
                assert incident is not None
                cat.set_scope(int(incident["id"]), keyed(keyless, scope_key))
            checked = SubjectFile(subjects, cat, int(incident["id"]), scope_key)
            checked.check()
            sent, missing, skipped = notices.send(cat, incident, checked, scope_key, options, prod,
                                                  {"name": "Privacy", "email": "privacy@camco.example"},
                                                  spool=tmp_path / "private" / spool,
                                                  canaries=canaries_filter)
            assert (sent, missing, skipped) == (N, 0, 5), spool
            written = "".join(p.read_text() for p in (tmp_path / "private" / spool).iterdir())
            assert "@canary.example.com" not in written
