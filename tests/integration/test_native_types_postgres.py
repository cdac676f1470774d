"""PostgreSQL native types: every column's kind from the catalog, values rendered canonically in SQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import pg_connect
from servers import Server

from piiguard.catalog import Catalog
from piiguard.classify.types import Kind, NativeType
from piiguard.config import parse_config, store_from_url
from piiguard.connectors.postgres import Postgres
from piiguard.masking.pipeline import plan_copy, run_copy
from piiguard.model import CollectionInfo, Estimate, Store
from piiguard.scanner import scan

N = 40

EXPECTED = {
    "ip": NativeType("inet", Kind.IP), "ip6": NativeType("inet", Kind.IP), "net": NativeType("cidr", Kind.NETWORK),
    "mac": NativeType("macaddr", Kind.MAC), "mac8": NativeType("macaddr8", Kind.MAC),
    "uid": NativeType("uuid", Kind.UUID), "born": NativeType("date", Kind.DATE),
    "seen": NativeType("timestamp without time zone", Kind.TIMESTAMP),
    "seen_tz": NativeType("timestamp with time zone", Kind.TIMESTAMP),
    "at": NativeType("time without time zone", Kind.TIME), "took": NativeType("interval", Kind.INTERVAL),
    "amount": NativeType("numeric(10,2)", Kind.DECIMAL), "n": NativeType("integer", Kind.INTEGER),
    "big": NativeType("bigint", Kind.INTEGER), "ratio": NativeType("double precision", Kind.FLOAT),
    "ok": NativeType("boolean", Kind.BOOLEAN), "raw": NativeType("bytea", Kind.BINARY),
    "emails": NativeType("text[]", Kind.TEXT, array=True), "ips": NativeType("inet[]", Kind.IP, array=True),
    "stamps": NativeType("timestamp without time zone[]", Kind.TIMESTAMP, array=True),
    "mood": NativeType("mood", Kind.ENUM), "home": NativeType("host_address", Kind.IP),
    "homes": NativeType("host_address[]", Kind.IP, array=True), "note": NativeType("text", Kind.TEXT),
}


@pytest.fixture(scope="module")
def natives(postgres: Server) -> Server:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS natives")
        conn.execute("CREATE DATABASE natives")
    with pg_connect(postgres, "natives") as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
        conn.execute("CREATE DOMAIN host_address AS inet")
        conn.execute("""CREATE TABLE every_type (
            ip inet, ip6 inet, net cidr, mac macaddr, mac8 macaddr8, uid uuid, born date, seen timestamp,
            seen_tz timestamptz, at time, took interval, amount numeric(10,2), n integer, big bigint,
            ratio double precision, ok boolean, raw bytea, emails text[], ips inet[], stamps timestamp[],
            mood mood, home host_address, homes host_address[], note text, doc jsonb)""")
        conn.execute(f"""INSERT INTO every_type SELECT
            ('10.0.' || g || '.7')::inet, ('2001:db8::' || g)::inet, ('10.' || g || '.0.0/16')::cidr,
            '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', gen_random_uuid(),
            date '1970-01-01' + g * 300, timestamp '2024-03-01 12:00:00' + g * interval '1 hour',
            timestamptz '2024-03-01 12:00:00+00', time '08:30:00', interval '2 days', g * 1.5, g, g * 1000,
            g / 3.0, g % 2 = 0, '\\x00ff'::bytea,
            ARRAY['user' || g || '@example.com', 'other' || g || '@example.org'],
            ARRAY[('192.168.1.' || g)::inet, '::1'::inet], ARRAY[timestamp '2024-01-02 03:04:05'],
            'calm', ('172.16.0.' || g)::inet, ARRAY[('172.16.1.' || g)::inet],
            'see the attached note ' || g, jsonb_build_object('k', g)
            FROM generate_series(1, {N}) g""")
        # a scan's ISO 8601 must not depend on the database's DateStyle
        conn.execute("ALTER DATABASE natives SET DateStyle = 'SQL, DMY'")
        conn.execute("ANALYZE")
    return postgres


def _connector(server: Server) -> Postgres:
    return Postgres(store_from_url(server.url(database="natives")))


INFO = CollectionInfo("public.every_type", N, Estimate.APPROXIMATE)


@pytest.mark.parametrize("read", ["sample", "batches"])
def test_every_column_has_its_native_kind(natives: Server, pg_password: str, read: str) -> None:
    with _connector(natives) as pg:
        batch = pg.sample(INFO, 100) if read == "sample" else next(iter(pg.batches(INFO, 1000)))
    assert {k: v for k, v in batch.types.items()} == EXPECTED  # jsonb is walked into paths, typed by its leaves
    assert "doc.k" in batch.columns


def test_values_are_rendered_canonically(natives: Server, pg_password: str) -> None:
    with _connector(natives) as pg:
        cols = {k: v.to_pylist() for k, v in pg.sample(INFO, 100).columns.items()}
    assert cols["ip"][0] == "10.0.1.7" and cols["ip6"][0] == "2001:db8::1"  # no /32, no /128
    assert cols["home"][0] == "172.16.0.1"  # a domain over inet is rendered as inet
    assert cols["net"][0] == "10.1.0.0/16"  # a network keeps its mask
    assert cols["born"][0] == "1970-10-28"
    assert cols["seen"][0] == "2024-03-01T13:00:00"
    assert cols["seen_tz"][0].startswith("2024-03-01T")
    # array items one value each: e-mails are not prose, inet items lose their /32 too
    assert len(cols["emails"]) == 2 * N and all(" " not in e for e in cols["emails"])
    assert cols["emails"][:2] == ["user1@example.com", "other1@example.org"]
    assert cols["ips"][:2] == ["192.168.1.1", "::1"]
    assert cols["homes"][0] == "172.16.1.1"
    assert cols["stamps"][0] == "2024-01-02T03:04:05"


def test_scan_records_the_native_type(natives: Server, pg_password: str, tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([natives.url(database="natives")], catalog=cat, sample_size=100)
    fields = {f.field: f for c in result.stores[0].collections for f in c.fields}
    assert fields["ip"].native_type == "inet" and fields["ip"].evidence.native_type == "inet"
    assert fields["emails"].native_type == "text[]" and fields["emails"].pii_type == "email"
    assert fields["seen"].native_type == "timestamp without time zone"
    assert fields["seen"].pii_type != "free-text-pii"


def test_copy_keeps_inet_cidr_timestamp_and_array_columns_masked_per_item(
        natives: Server, pg_password: str, tmp_path: Path) -> None:
    with pg_connect(natives, "natives") as conn:
        conn.execute("DROP TABLE IF EXISTS devices")
        conn.execute("CREATE TABLE devices (last_ip inet, net cidr, seen timestamp, emails text[], ips inet[])")
        conn.execute("""INSERT INTO devices SELECT ('10.0.' || g % 250 || '.' || g % 200 + 1)::inet,
            ('10.' || g % 250 || '.0.0/16')::cidr, timestamp '2024-03-01 12:00:00' + g * interval '1 minute',
            ARRAY['user' || g || '@example.com', 'other' || g || '@example.org'], ARRAY[('192.168.7.' || g % 250)::inet]
            FROM generate_series(1, 300) g""")
    prod = store_from_url(natives.url(database="natives"), name="prod")
    plan = plan_copy(prod, "devices", Store("lake", "files", path=str(tmp_path / "lake")), "devices.parquet",
                     config=parse_config({"masking": {"prod.public.devices": {"net": "keep", "seen": "keep"}}}))
    rules = {r.field: r.masker for r in plan.rules}
    assert rules == {"last_ip": "ip-prefix", "net": "keep", "seen": "keep", "emails": "pseudonym",
                     "ips": "ip-prefix"}
    with Catalog(tmp_path / "c.db") as cat:
        run_copy(plan, b"k" * 32, cat, owner="analytics", purpose="test", expires=date(2027, 1, 31))
    table = pq.read_table(tmp_path / "lake" / "devices.parquet").to_pydict()
    assert table["last_ip"][0] == "10.0.1.0/24"  # masked to its network: the /32 of ::text hid it from the masker
    assert table["net"][0] == "10.1.0.0/16" and table["seen"][0] == "2024-03-01T12:01:00"
    emails = json.loads(table["emails"][0])  # a text target: the list as a JSON array
    assert len(emails) == 2 and all(e.endswith("@pseudonym.invalid") for e in emails)  # item by item
    assert json.loads(table["ips"][0]) == ["192.168.7.0/24"]
