"""ClickHouse and Redis as scanned engines, against real servers on free (non-default) ports.

ClickHouse: a table of native types (Nullable, LowCardinality, Array, Nested, UUID, Tuple, Enum,
Decimal, DateTime; Map and IPv4 where the server has them — Debian's 18.16 has neither), one table
without a sampling key, and the ``system`` database beside them. Redis: hashes, JSON strings, plain
strings and sets, keyed by ids and e-mails. Each scan must find the PII fields and the number of
people; ``read()`` must return exactly what was written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from servers import (
    PASSWORD,
    REDIS_ADMIN,
    Server,
    clickhouse_query,
    clickhouse_supports,
    start_clickhouse,
    start_redis,
    stop_clickhouse,
    stop_redis,
)

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.connectors.clickhouse import ClickHouse
from piiguard.connectors.redis import KEY_FIELD, Redis
from piiguard.model import CollectionInfo, Estimate, ScanMode, Store
from piiguard.report import render_json
from piiguard.scanner import scan

N = 300
CH_ENV, REDIS_ENV = "PIIGUARD_TEST_CH_SCAN_PW", "PIIGUARD_TEST_REDIS_SCAN_PW"


@pytest.fixture(scope="module")
def olap() -> Iterator[tuple[Server, dict[str, list[Any]], bool, bool]]:
    server = start_clickhouse()
    data = synthetic.rows(N, seed=21)
    has_map = clickhouse_supports(server, "map('a', 'b')")
    has_ipv4 = clickhouse_supports(server, "toIPv4('1.2.3.4')")
    extra = (", prefs Map(String, String)" if has_map else "") + (", ip4 IPv4" if has_ipv4 else "")
    clickhouse_query(server, "CREATE DATABASE shop")
    clickhouse_query(server, "CREATE TABLE shop.customers (n UInt32, customer_id UUID, email Nullable(String), "
               "gender LowCardinality(String), phones Array(String), devices Nested(serial String, mac String), "
               "address Tuple(String, String), tier Enum8('free' = 1, 'pro' = 2), balance Decimal(10, 2), "
               f"seen DateTime, notes Nullable(String){extra}) "
               "ENGINE = MergeTree ORDER BY intHash32(n) SAMPLE BY intHash32(n)",
       allow_experimental_low_cardinality_type="1")
    clickhouse_query(server, "CREATE TABLE shop.logins (email String, ip String) ENGINE = MergeTree ORDER BY tuple()")
    rows = []
    for i in range(N):
        row: dict[str, Any] = {
            "n": i, "customer_id": data["customer_id"][i], "email": None if i % 10 == 0 else data["email"][i],
            "gender": data["gender"][i], "phones": [data["phone"][i], data["phone"][(i + 1) % N]],
            "devices.serial": [data["device_serial"][i]], "devices.mac": [data["device_mac"][i]],
            "address": [data["street_address"][i], data["city"][i]], "tier": "pro" if i % 3 else "free",
            "balance": i + 0.25, "seen": "2026-11-30 10:00:00", "notes": None}
        if has_map:
            row["prefs"] = {"wifi": data["wifi_ssid"][i]}
        if has_ipv4:
            row["ip4"] = "10.1.2.3"
        rows.append(row)
    clickhouse_query(server, "INSERT INTO shop.customers FORMAT JSONEachRow", "\n".join(json.dumps(r) for r in rows).encode())
    clickhouse_query(server, "INSERT INTO shop.logins FORMAT JSONEachRow",
       "\n".join(json.dumps({"email": data["email"][i], "ip": data["last_login_ip"][i]}) for i in range(N)).encode())
    yield server, data, has_map, has_ipv4
    stop_clickhouse(server)


def ch_store(server: Server, monkeypatch: pytest.MonkeyPatch, database: str | None = None) -> Store:
    monkeypatch.setenv(CH_ENV, PASSWORD)
    return Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default", password_env=CH_ENV,
                 database=database)


def test_clickhouse_scan_finds_fields_and_people(olap: tuple[Server, dict[str, list[Any]], bool, bool],
                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server, data, has_map, _ = olap
    assert server.port != 8123
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([ch_store(server, monkeypatch)], catalog=cat, sample_size=50).stores[0]
    print(render_json(scan([ch_store(server, monkeypatch)], sample_size=50)))  # searched by the leak fixture
    assert result.problems == ()
    names = {c.name for c in result.collections}
    assert names == {"shop.customers", "shop.logins"}  # system is not scanned
    customers = next(c for c in result.collections if c.name == "shop.customers")
    assert customers.rows_estimate == N and customers.rows_estimate_kind is Estimate.EXACT
    assert customers.rows_read == 50  # a sample through SAMPLE, not the table
    found = {f.field: f.pii_type for f in customers.fields if f.pii_type}
    assert found["email"] == "email"
    assert found["phones[]"] == "phone"
    assert found["devices[].mac"] == "mac-address"
    assert found["devices[].serial"] == "device-serial"
    assert found["customer_id"] == "customer-identifier"
    assert found["address.1"] == "street-address"
    if has_map:
        assert found["prefs.wifi"] == "wifi-ssid"
    assert "tier" not in found and "balance" not in found
    assert result.subjects is not None
    assert (result.subjects.field, result.subjects.estimate, result.subjects.kind) == \
        ("customer_id", len(set(data["customer_id"])), Estimate.EXACT)
    logins = next(c for c in result.collections if c.name == "shop.logins")  # no sampling key: rand() filter
    assert 0 < logins.rows_read <= 50
    assert {f.field: f.pii_type for f in logins.fields if f.pii_type} == {"email": "email", "ip": "ip-address"}


def test_clickhouse_full_scan_and_database_option(olap: tuple[Server, dict[str, list[Any]], bool, bool],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server, _, _, _ = olap
    from piiguard.model import ScanMode
    result = scan([ch_store(server, monkeypatch, database="shop")], mode=ScanMode.FULL, batch_rows=64).stores[0]
    assert result.problems == ()
    assert {c.name: c.rows_read for c in result.collections} == {"shop.customers": N, "shop.logins": N}
    with ClickHouse(ch_store(server, monkeypatch, database="system")) as c:
        assert all(i.name.startswith("system.") for i in c.collections())  # asked for by name only


def test_clickhouse_read_returns_exactly_the_rows(olap: tuple[Server, dict[str, list[Any]], bool, bool],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server, data, _, _ = olap
    with ClickHouse(ch_store(server, monkeypatch)) as c:
        info = next(i for i in c.collections() if i.name == "shop.customers")
        columns = c.columns(info)
        assert columns[:7] == ["n", "customer_id", "email", "gender", "phones[]", "devices[].serial", "devices[].mac"]
        batches = list(c.read(info, ["n", "customer_id", "email", "phones[]", "devices[].mac", "notes"], 37))
    assert all(b.num_rows <= 37 for b in batches)
    rows = [r for b in batches for r in b.to_pylist()]
    assert len(rows) == N
    by_n = {int(r["n"]): r for r in rows}
    assert set(by_n) == set(range(N))
    for i, r in by_n.items():
        assert r["customer_id"] == data["customer_id"][i]
        assert r["email"] == (None if i % 10 == 0 else data["email"][i])
        assert r["phones[]"] == [data["phone"][i], data["phone"][(i + 1) % N]]
        assert r["devices[].mac"] == [data["device_mac"][i]]
        assert r["notes"] is None


def test_clickhouse_read_is_read_only(olap: tuple[Server, dict[str, list[Any]], bool, bool],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server, _, _, _ = olap
    from piiguard.errors import StoreError
    with ClickHouse(ch_store(server, monkeypatch)) as c, pytest.raises(StoreError, match="Code: 164"):
        c._query("CREATE TABLE shop.nope (a UInt8) ENGINE = Memory")  # readonly=1 rides on every query


READONLY_USERS = """<yandex>
  <profiles><default><log_queries>1</log_queries></default><ro><readonly>1</readonly></ro></profiles>
  <users>
    <default><password_sha256_hex>{hashed}</password_sha256_hex><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <reader><password_sha256_hex>{hashed}</password_sha256_hex><networks><ip>127.0.0.1</ip></networks>
      <profile>ro</profile><quota>default</quota></reader>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def test_clickhouse_scan_as_a_readonly_profile_user(olap: tuple[Server, dict[str, list[Any]], bool, bool],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The least-privilege user (``readonly = 1`` in its profile) may override no setting: the scan still
    runs, with readonly alone."""
    import hashlib

    from servers import clickhouse_users

    server, data, _, _ = olap
    users = server.data / "conf" / "users.xml"
    users.write_text(READONLY_USERS.format(hashed=hashlib.sha256(PASSWORD.encode()).hexdigest()))
    clickhouse_query(server, "SYSTEM RELOAD CONFIG")
    try:
        store = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="reader", password_env=CH_ENV,
                      database="shop")
        monkeypatch.setenv(CH_ENV, PASSWORD)
        result = scan([store], sample_size=50).stores[0]
        assert result.problems == ()
        assert result.subjects is not None and result.subjects.estimate == len(set(data["customer_id"]))
        with ClickHouse(store) as c:
            info = next(i for i in c.collections() if i.name == "shop.customers")
            assert sum(b.num_rows for b in c.read(info, ["email"], 100)) == N
    finally:
        users.write_text(clickhouse_users())
        clickhouse_query(server, "SYSTEM RELOAD CONFIG")


# --- Redis ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kv() -> Iterator[tuple[Server, dict[str, list[Any]]]]:
    server = start_redis()
    data = synthetic.rows(N, seed=22)
    r = redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD, db=3)
    pipe = r.pipeline(transaction=False)
    for i in range(N):
        cid = data["customer_id"][i]
        pipe.hset(f"customer:{cid}", mapping={"email": data["email"][i], "phone": data["phone"][i],
                                              "profile": json.dumps({"mac": data["device_mac"][i],
                                                                     "ssid": data["wifi_ssid"][i]})})
        pipe.set(f"session:{data['email'][i]}", json.dumps({"customer": cid, "ip": data["last_login_ip"][i]}))
        pipe.set(f"avatar:{i}", data["avatar_url"][i])
        pipe.sadd(f"devices:{cid}", data["device_serial"][i])
    pipe.set("feature:flags", "on")
    for i in range(6):  # a pattern of mixed types, two of them too big for one command
        pipe.hset(f"mixed:{i}", "a", f"value-{i}")
    pipe.rpush("mixed:100", *[f"item-{j}" for j in range(2500)])
    pipe.sadd("mixed:101", *[f"member-{j}" for j in range(2500)])
    pipe.set("mixed:102", "plain")
    pipe.hset("mixed:103", mapping={"a": "big", **{f"f{j}": f"v{j}" for j in range(2500)}})  # paged by HSCAN
    pipe.execute()
    r.close()
    yield server, data
    stop_redis(server)


def redis_store(server: Server, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv(REDIS_ENV, PASSWORD)
    return Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env=REDIS_ENV,
                 database="3")


def commandstats(server: Server) -> dict[str, int]:
    r = redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD)
    try:
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}
    finally:
        r.close()


def test_redis_scan_finds_fields_and_people_without_keys(kv: tuple[Server, dict[str, list[Any]]],
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server, data = kv
    admin = redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD)
    admin.config_resetstat()
    admin.close()
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([redis_store(server, monkeypatch)], catalog=cat, sample_size=100).stores[0]
    print(render_json(scan([redis_store(server, monkeypatch)], sample_size=100)))  # searched by the leak fixture
    calls = commandstats(server)
    assert "keys" not in calls and "sort" not in calls and calls["scan"] >= 1
    assert result.problems == ()
    by_name = {c.name: c for c in result.collections}
    assert set(by_name) == {"customer:*", "session:*", "avatar:*", "devices:*", "mixed:*", "*:*"}  # feature:flags alone: *:*
    assert by_name["customer:*"].rows_estimate == N
    customer = {f.field: f.pii_type for f in by_name["customer:*"].fields if f.pii_type}
    assert customer == {KEY_FIELD: "customer-identifier", "email": "email", "phone": "phone",
                        "profile.mac": "mac-address", "profile.ssid": "wifi-ssid"}
    session = {f.field: f.pii_type for f in by_name["session:*"].fields if f.pii_type}
    assert session[KEY_FIELD] == "email" and session["customer"] == "customer-identifier"
    assert session["ip"] == "ip-address"
    # a unique id in the key of a collection holding PII links its records to people
    assert {f.field: f.pii_type for f in by_name["avatar:*"].fields if f.pii_type} == \
        {KEY_FIELD: "customer-identifier", "value": "personal-media-url"}
    assert {f.field: f.pii_type for f in by_name["devices:*"].fields if f.pii_type}["members[]"] == "device-serial"
    assert result.subjects is not None and result.subjects.estimate == len(set(data["customer_id"]))


def test_redis_read_returns_exactly_the_keys(kv: tuple[Server, dict[str, list[Any]]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server, data = kv
    with Redis(redis_store(server, monkeypatch)) as c:
        infos = {i.name: i for i in c.collections()}
        customer: CollectionInfo = infos["customer:*"]
        assert c.columns(customer)[0] == KEY_FIELD
        got = [r for b in c.read(customer, [KEY_FIELD, "email", "profile.mac"], 64) for r in b.to_pylist()]
        sessions = [r for b in c.read(infos["session:*"], [KEY_FIELD, "customer"], 1000) for r in b.to_pylist()]
        flags = [r for b in c.read(infos["*:*"], [KEY_FIELD, "value"], 10) for r in b.to_pylist()]
        mixed = {r[KEY_FIELD]: r for b in c.read(infos["mixed:*"], [KEY_FIELD, "a", "members[]", "value"], 3)
                 for r in b.to_pylist()}
        (big,) = c._documents(infos["mixed:*"], [b"mixed:103"], whole=True)  # the one big hash: every field
        assert len(big) == 1 + 1 + 2500 and big["f2499"] == "v2499"
    assert len(got) == N
    expected = {data["customer_id"][i]: (data["email"][i], data["device_mac"][i]) for i in range(N)}
    assert {r[KEY_FIELD]: (r["email"], r["profile.mac"]) for r in got} == expected
    assert sorted((r[KEY_FIELD], r["customer"]) for r in sessions) == \
        sorted((data["email"][i], data["customer_id"][i]) for i in range(N))
    assert flags == [{KEY_FIELD: "feature:flags", "value": "on"}]
    assert len(mixed) == 10 and mixed["103"]["a"] == "big"
    assert [mixed[str(i)]["a"] for i in range(6)] == [f"value-{i}" for i in range(6)]
    assert mixed["100"]["members[]"] == [f"item-{j}" for j in range(2500)]  # in order, page by page
    assert sorted(mixed["101"]["members[]"]) == sorted(f"member-{j}" for j in range(2500))
    assert mixed["102"]["value"] == "plain" and mixed["102"]["a"] is None


def test_redis_scan_from_the_cli(kv: tuple[Server, dict[str, list[Any]]], monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = kv
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    run = subprocess.run([sys.executable, "-m", "piiguard", "scan", f"redis://{REDIS_ADMIN}@127.0.0.1:{server.port}/3",
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert {c["collection"] for c in out["stores"][0]["collections"]} >= {"customer:*", "session:*"}


def test_clickhouse_binary_strings_do_not_stop_a_scan_or_a_read(
        olap: tuple[Server, dict[str, list[Any]], bool, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """A FixedString(16) of raw MD5 bytes (common in ClickHouse) is not UTF-8 in JSON output."""
    server, data, _, _ = olap
    clickhouse_query(server, "CREATE TABLE shop.hashed (email String, digest FixedString(16)) ENGINE = MergeTree ORDER BY email")
    clickhouse_query(server, "INSERT INTO shop.hashed SELECT email, MD5(email) FROM shop.customers WHERE isNotNull(email)")
    try:
        result = scan([ch_store(server, monkeypatch, database="shop")], sample_size=50).stores[0]
        assert result.problems == ()
        hashed = next(c for c in result.collections if c.name == "shop.hashed")
        assert {f.field: f.pii_type for f in hashed.fields if f.pii_type}["email"] == "email"
        with ClickHouse(ch_store(server, monkeypatch, database="shop")) as c:
            info = next(i for i in c.collections() if i.name == "shop.hashed")
            got = [r for b in c.read(info, ["email", "digest"], 100) for r in b.to_pylist()]
        assert sorted(r["email"] for r in got) == sorted(e for i, e in enumerate(data["email"]) if i % 10)
    finally:
        clickhouse_query(server, "DROP TABLE shop.hashed")


def test_clickhouse_error_after_the_first_rows_is_named_not_quoted(
        olap: tuple[Server, dict[str, list[Any]], bool, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """ClickHouse sends its error text after the rows already streamed (HTTP 200 is gone by then): the
    reader stops with its code, never its text, which can quote data."""
    server, _, _, _ = olap
    clickhouse_query(server, "CREATE TABLE shop.fails (n UInt64, boom UInt8 ALIAS throwIf(n > 150000)) "
               "ENGINE = MergeTree ORDER BY n")
    clickhouse_query(server, "INSERT INTO shop.fails SELECT number FROM system.numbers LIMIT 200000")
    from piiguard.errors import CollectionError
    try:
        with ClickHouse(ch_store(server, monkeypatch, database="shop")) as c:
            info = next(i for i in c.collections() if i.name == "shop.fails")
            with pytest.raises(CollectionError) as read:
                for _ in c.read(info, ["n", "boom"], 10_000):
                    pass
            with pytest.raises(CollectionError) as batches:
                for _ in c.batches(info, 10_000):
                    pass
    finally:
        clickhouse_query(server, "DROP TABLE shop.fails")
    for err in (read.value, batches.value):
        assert "part way" in str(err) and "throwIf" not in str(err) and "displayText" not in str(err)


SCOPE_KEY = b"test-scope-key-0123456789abcdef"


def test_incident_scope_reads_clickhouse_and_redis(olap: tuple[Server, dict[str, list[Any]], bool, bool],
                                                   kv: tuple[Server, dict[str, list[Any]]],
                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Scope goes through the same reader: exactly the people each store holds, with their categories."""
    from piiguard.response.incidents import open_by_hand
    from piiguard.response.scope import find_scope

    (olap_server, olap_data, _, _), (kv_server, kv_data) = olap, kv
    stores = {"olap": ch_store(olap_server, monkeypatch, database="shop"), "cache": redis_store(kv_server, monkeypatch)}
    with Catalog(tmp_path / "c.db") as cat:
        scan(list(stores.values()), catalog=cat)
        for name, data in (("olap", olap_data), ("cache", kv_data)):
            incident = cat.incident(open_by_hand(cat, name, "2026-11-30T08:00:00+00:00"))
            assert incident is not None
            scope = find_scope(cat, incident, {name: stores[name]}, SCOPE_KEY)
            people = set(scope.people)
            if name == "olap":  # shop.customers by customer_id; shop.logins has no key but the e-mail
                assert people == set(data["customer_id"]) | set(data["email"])
                cid = data["customer_id"][1]
                # every PII field the reader can read: an Array(String) (phones[]) and a Nested one's items too
                assert {"email", "phone", "mac-address"} <= {t.split(" (")[0] for t in scope.people[cid]}
                assert scope.collections["olap.shop.customers"]["field"] == "customer_id"
            else:  # customer:* and devices:* by the id in the key, session:* by the customer field
                assert set(data["customer_id"]) <= people
                cid = data["customer_id"][1]
                assert {"email", "phone"} <= {t.split(" (")[0] for t in scope.people[cid]}


def test_redis_scan_over_tls(kv: tuple[Server, dict[str, list[Any]]], monkeypatch: pytest.MonkeyPatch) -> None:
    from piiguard.config import store_from_url

    server, data = kv
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    store = store_from_url(f"rediss://{REDIS_ADMIN}@127.0.0.1:{server.tls_port}/3?ssl_cert_reqs=none")  # type: ignore[attr-defined]
    result = scan([store], sample_size=50).stores[0]
    assert result.problems == ()
    assert {c.name for c in result.collections} >= {"customer:*", "session:*"}
    with Redis(store) as c:
        info = next(i for i in c.collections() if i.name == "customer:*")
        assert sum(b.num_rows for b in c.read(info, [KEY_FIELD], 100)) == len(set(data["customer_id"]))


def test_redis_scope_counts_each_person_once_and_reads_every_scanned_field(
        kv: tuple[Server, dict[str, list[Any]]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Sessions keyed by their own uuid name no one by their key (their e-mail field does); profiles keyed
    by e-mail are the same people: 40, under one kind. A field in a handful of 3,000 keys (beyond any
    sample of the reader's columns) is read for them too."""
    from piiguard.response.incidents import open_by_hand
    from piiguard.response.scope import find_scope

    server, _ = kv
    r = redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD, db=5)
    r.flushdb()
    pipe = r.pipeline(transaction=False)
    emails = [f"member.{i}@example.org" for i in range(40)]
    for i, e in enumerate(emails):
        pipe.set(f"sess:{uuid.UUID(int=1000 + i)}", json.dumps({"email": e, "ip": f"203.0.113.{i}"}))
        pipe.hset(f"profile:{e}", mapping={"city": "Berlin", "phone": f"+49 30 5555 {i:04d}"})
    rare = {7, 1500, 2999}
    for i in range(3000):
        pipe.hset(f"contact:{i:06d}", mapping={"email": f"contact.{i}@example.org", "note": "x",
                                               **({"tel": f"+1 415 555 {i:04d}"} if i in rare else {})})
    pipe.execute()
    r.close()
    monkeypatch.setenv(REDIS_ENV, PASSWORD)
    store = Store("kv5", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env=REDIS_ENV,
                  database="5")
    with Catalog(tmp_path / "c.db") as cat:
        scan([store], catalog=cat, mode=ScanMode.FULL)
        incident = cat.incident(open_by_hand(cat, "kv5", "2026-11-30T08:00:00+00:00"))
        assert incident is not None
        scope = find_scope(cat, incident, {"kv5": store}, SCOPE_KEY)
    assert {w: c["field"] for w, c in scope.collections.items()} == {
        "kv5.sess:*": "email", "kv5.profile:*": "<key>", "kv5.contact:*": "<key>"}
    assert set(emails) <= set(scope.people) and len(scope.people) == 40 + 3000
    assert {"email", "phone", "ip-address"} <= {t.split(" (")[0] for t in scope.people[emails[3]]}
    # contacts by their customer number, the others by e-mail: the list mixes kinds, and says so
    assert len(scope.warnings) == 1 and "customer-identifier: kv5.contact:*" in scope.warnings[0]
    for i in rare:
        assert "phone" in scope.people[f"{i:06d}"]
    assert "phone" not in scope.people["000008"]


def test_clickhouse_tables_named_by_emails_are_scoped_each_by_label(
        olap: tuple[Server, dict[str, list[Any]], bool, bool], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Two tables named by customers' e-mails: two catalog collections (``<email>``, ``<email>~2``, in raw-name
    order), both scoped, with an Array(String) of phones read too; no raw name in any error or hint."""
    from piiguard.errors import UsageError
    from piiguard.masking.pipeline import find_collection
    from piiguard.response.incidents import open_by_hand
    from piiguard.response.scope import find_scope, scope_lines

    server, _, _, _ = olap
    owners = ["jane.roe@victim.example", "john.doe@victim.example"]
    clickhouse_query(server, "CREATE DATABASE IF NOT EXISTS named")
    for n, owner in enumerate(owners):
        clickhouse_query(server, f"CREATE TABLE named.`{owner}` (customer_id String, email String, tels Array(String)) "
                   "ENGINE = MergeTree ORDER BY customer_id")
        rows = "".join(json.dumps({"customer_id": f"CUST-{n}{i:05d}", "email": f"buyer.{n}.{i}@example.org",
                                   "tels": [f"+1 415 555 {n}{i:03d}"]}) + "\n" for i in range(30))
        clickhouse_query(server, f"INSERT INTO named.`{owner}` FORMAT JSONEachRow", rows.encode())
    store = ch_store(server, monkeypatch, database="named")
    with Catalog(tmp_path / "c.db") as cat:
        scan([store], catalog=cat, mode=ScanMode.FULL)
        incident = cat.incident(open_by_hand(cat, "olap", "2026-11-30T08:00:00+00:00"))
        assert incident is not None
        scope = find_scope(cat, incident, {"olap": store}, SCOPE_KEY)
    assert set(scope.collections) == {"olap.<email>", "olap.<email>~2"}
    assert len(scope.people) == 60
    assert all("phone" in {t.split(" (")[0] for t in types} for types in scope.people.values())
    shown = json.dumps(scope.limits()) + "".join(scope.sources) + "".join(scope_lines(scope))
    assert not [o for o in owners if o in shown]
    with ClickHouse(store) as c:
        assert find_collection(c, "<email>~2").name.endswith(owners[1])
        with pytest.raises(UsageError) as exc:
            find_collection(c, "<email>~7")
        assert not [o for o in owners if o in f"{exc.value} {exc.value.hint}"]
def test_redis_key_of_ten_thousand_segments_does_not_stop_the_scan(kv: tuple[Server, dict[str, list[Any]]],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One key of 10,000 ``:`` places once made the whole store unscannable (a RecursionError); now it is
    a collection like any other and the other keys are scanned."""
    server, _ = kv
    r = redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD, db=6)
    deep = ":".join(["x"] + [str(i) for i in range(10_000)])
    r.flushdb()
    r.set(deep, "v")
    for i in range(5):
        r.hset(f"customer:cust-{i}", mapping={"email": f"user{i}@example.com"})
    r.close()
    store = Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env=REDIS_ENV,
                  database="6")
    monkeypatch.setenv(REDIS_ENV, PASSWORD)
    result = scan([store], sample_size=100).stores[0]
    assert result.problems == ()
    by_name = {c.name: c for c in result.collections}
    assert by_name["customer:*"].rows_estimate == 5
    assert {f.field: f.pii_type for f in by_name["customer:*"].fields if f.pii_type}["email"] == "email"
    with Redis(store) as c:
        infos = {i.name: i for i in c.collections()}
        (wide,) = [i for name, i in infos.items() if name != "customer:*"]  # its name is shortened
        rows = [row for b in c.read(wide, [KEY_FIELD, "value"], 10) for row in b.to_pylist()]
    assert rows == [{KEY_FIELD: deep, "value": "v"}]


@pytest.mark.parametrize(("user", "password"), [("default", "not-the-password"), ("nobody", PASSWORD)],
                         ids=["wrong-password", "unknown-user"])
def test_clickhouse_refused_credentials_are_an_authentication_failure(
        olap: tuple[Server, dict[str, list[Any]], bool, bool], monkeypatch: pytest.MonkeyPatch,
        user: str, password: str) -> None:
    """ClickHouse's auth codes (193 wrong password, 192 unknown user, 516 on newer servers) are an
    AuthenticationFailed with a hint, over HTTP and the native port, not "ClickHouse refused (Code: 193)"."""
    from piiguard.engines import clickhouse as engine
    from piiguard.errors import AuthenticationFailed

    server = olap[0]
    monkeypatch.setenv(CH_ENV, password)
    store = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user=user, password_env=CH_ENV)
    with pytest.raises(AuthenticationFailed) as http:
        engine.post(store, "SELECT 1", timeout=10)
    assert "credentials" in http.value.detail and "password_env" in (http.value.hint or "")
    assert password not in str(http.value)
    client = engine.native(store, 10, port=server.tcp_port, user=user, password=password)  # type: ignore[attr-defined]
    with pytest.raises(AuthenticationFailed) as native:
        engine.native_call(store, 10, client, "SELECT 1")
    assert "password_env" in (native.value.hint or "") and password not in str(native.value)
    (problem,) = scan([store], sample_size=10).stores[0].problems
    assert "refused the credentials" in problem.message and "password_env" in (problem.hint or "")
