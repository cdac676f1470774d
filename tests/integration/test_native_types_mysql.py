"""MariaDB native types from information_schema, values rendered as text in SQL, and a sampler that
never reads a row twice."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from conftest import my_connect
from hypothesis import given
from hypothesis import strategies as st
from servers import Server

from piiguard.catalog import Catalog
from piiguard.classify.types import Kind, NativeType
from piiguard.config import store_from_url
from piiguard.connectors.mysql import SAMPLE_RANGES, MySQL, sample_ranges
from piiguard.model import CollectionInfo, Estimate
from piiguard.scanner import scan

N = 40
BIG = 5000

EXPECTED = {
    "id": NativeType("int(11)", Kind.INTEGER), "ip": NativeType("inet6", Kind.IP),
    "uid": NativeType("uuid", Kind.UUID), "born": NativeType("date", Kind.DATE),
    "seen": NativeType("datetime(3)", Kind.TIMESTAMP), "changed": NativeType("timestamp", Kind.TIMESTAMP),
    "raw": NativeType("varbinary(16)", Kind.BINARY), "photo": NativeType("blob", Kind.BINARY),
    "amount": NativeType("decimal(10,2)", Kind.DECIMAL), "active": NativeType("tinyint(1)", Kind.BOOLEAN),
    "level": NativeType("tinyint(4)", Kind.INTEGER), "mood": NativeType("enum('calm','busy')", Kind.ENUM),
    "note": NativeType("varchar(200)", Kind.TEXT),
}


@pytest.fixture(scope="module")
def natives(mariadb: Server) -> Server:
    with my_connect(mariadb, None) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS natives")
        cur.execute("CREATE DATABASE natives")
        cur.execute("USE natives")
        cur.execute("""CREATE TABLE natives.every_type (id INT PRIMARY KEY, ip INET6, uid UUID, born DATE,
            seen DATETIME(3), changed TIMESTAMP NULL, raw VARBINARY(16), photo BLOB, amount DECIMAL(10,2),
            active TINYINT(1), level TINYINT, mood ENUM('calm','busy'), note VARCHAR(200))""")
        cur.execute(f"""INSERT INTO natives.every_type SELECT seq, CONCAT('::ffff:10.0.0.', seq), UUID(),
            '1980-01-01' + INTERVAL seq DAY, '2024-03-01 12:00:00.250' + INTERVAL seq HOUR, '2024-03-01 12:00:00',
            UNHEX('00ff'), UNHEX('00ff'), seq * 1.5, seq % 2, seq, 'calm', CONCAT('note ', seq)
            FROM seq_1_to_{N}""")
        cur.execute("CREATE TABLE natives.events (id INT PRIMARY KEY, kind VARCHAR(10))")
        cur.execute(f"INSERT INTO natives.events SELECT seq * 3, 'click' FROM seq_1_to_{BIG}")
    return mariadb


def _connector(server: Server) -> MySQL:
    return MySQL(store_from_url(server.url(database="natives")))


INFO = CollectionInfo("natives.every_type", N, Estimate.APPROXIMATE, ("id",))


@pytest.mark.parametrize("read", ["sample", "batches"])
def test_every_column_has_its_native_kind(natives: Server, my_password: str, read: str) -> None:
    with _connector(natives) as my:
        batch = my.sample(INFO, 100) if read == "sample" else next(iter(my.batches(INFO, 1000)))
    assert batch.types == EXPECTED


def test_values_are_rendered_as_text(natives: Server, my_password: str) -> None:
    with _connector(natives) as my:
        cols = {k: v.to_pylist() for k, v in my.sample(INFO, 100).columns.items()}
    assert cols["ip"][0] == "::ffff:10.0.0.1"  # INET6 as text (the driver hands over bytes otherwise)
    assert len(cols["uid"][0]) == 36 and cols["uid"][0].count("-") == 4
    assert cols["born"][0] == "1980-01-02"
    assert cols["seen"][0] == "2024-03-01T13:00:00.250" and cols["changed"][0] == "2024-03-01T12:00:00"
    assert cols["amount"][0] == "1.50" and cols["active"][:2] == ["1", "0"]


def test_scan_records_the_native_type(natives: Server, my_password: str, tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([natives.url(database="natives")], catalog=cat, sample_size=100)
    fields = {(c.name, f.field): f for c in result.stores[0].collections for f in c.fields}
    ip = fields[("natives.every_type", "ip")]
    assert ip.native_type == "inet6" and ip.evidence.native_type == "inet6"
    assert fields[("natives.every_type", "seen")].pii_type != "free-text-pii"


def test_sample_of_a_big_table_reads_each_row_once_and_the_same_rows_every_run(
        natives: Server, my_password: str) -> None:
    info = CollectionInfo("natives.events", BIG, Estimate.APPROXIMATE, ("id",))
    with _connector(natives) as my:
        ids = [my.sample(info, 200).columns["id"].to_pylist() for _ in range(2)]
    assert len(ids[0]) >= 100 and len(set(ids[0])) == len(ids[0])  # no row twice
    assert ids[0] == ids[1]  # seeded, not drawn anew per run


@given(lo=st.integers(-10**12, 10**12), span=st.integers(0, 10**9), seed=st.text(max_size=20))
def test_sample_ranges_are_disjoint_cover_their_keys_and_are_seeded(lo: int, span: int, seed: str) -> None:
    hi = lo + span
    ranges = sample_ranges(lo, hi, seed)
    assert ranges == sample_ranges(lo, hi, seed)
    assert 1 <= len(ranges) <= SAMPLE_RANGES
    assert all(lo <= a < b <= hi + 1 for a, b in ranges)
    assert all(b <= c for (_, b), (c, _) in itertools.pairwise(ranges))  # disjoint, in key order


def test_an_inet4_column_under_a_name_that_says_nothing_is_ip_addresses(mariadb: Server, my_password: str,
                                                                         tmp_path: Path) -> None:
    """MariaDB 10.10's INET4 (the suite's server is 10.11): the type alone decides, the values are read
    as dotted quads, not the four bytes the driver hands over."""
    with my_connect(mariadb, None) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS natives4")
        cur.execute("USE natives4")
        cur.execute("DROP TABLE IF EXISTS natives4.t")
        cur.execute("CREATE TABLE natives4.t (id INT PRIMARY KEY, c07 INET4)")
        cur.execute(f"INSERT INTO natives4.t SELECT seq, CONCAT('192.0.2.', seq) FROM seq_1_to_{N}")
    info = CollectionInfo("natives4.t", N, Estimate.APPROXIMATE, ("id",))
    with MySQL(store_from_url(mariadb.url(database="natives4"))) as my:
        batch = my.sample(info, 100)
    assert batch.types["c07"] == NativeType("inet4", Kind.IP)
    assert sorted(batch.columns["c07"].to_pylist())[:2] == ["192.0.2.1", "192.0.2.10"]
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([mariadb.url(database="natives4")], catalog=cat, sample_size=100)
    c07 = next(f for c in result.stores[0].collections for f in c.fields if f.field == "c07")
    assert (c07.pii_type, c07.evidence.decided_by if c07.evidence else None) == ("ip-address", "native-type")
