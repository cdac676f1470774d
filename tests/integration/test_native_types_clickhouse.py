"""ClickHouse native types from system.columns, on a real server: kinds in ``Batch.types``, timestamps
in ISO 8601, array items one value each, the same sample every run. (Debian's 18.16 server has no
IPv4/IPv6 or Map: those are tested where the server has them, and in tests/unit/test_clickhouse_types.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import PASSWORD, Server, clickhouse_query, clickhouse_supports, start_clickhouse, stop_clickhouse

from piiguard.catalog import Catalog
from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.clickhouse import ClickHouse
from piiguard.model import CollectionInfo, Estimate, Store
from piiguard.scanner import scan

N = 2000
CH_ENV = "PIIGUARD_TEST_CH_NATIVE_PW"


@pytest.fixture(scope="module")
def olap() -> Iterator[tuple[Server, bool]]:
    server = start_clickhouse()
    has_ip = clickhouse_supports(server, "toIPv6('::1')")
    clickhouse_query(server, "CREATE DATABASE natives")
    clickhouse_query(server, "CREATE TABLE natives.every_type (n UInt32, uid UUID, born Date, seen DateTime, "
               "email Nullable(String), emails Array(String), score Float64"
               f"{', ip IPv6, ip4 IPv4' if has_ip else ''}) ENGINE = MergeTree ORDER BY n")
    rows = [{"n": i, "uid": f"00000000-0000-4000-8000-{i:012d}", "born": "1980-01-02", "seen": "2024-03-01 12:00:00",
             "email": f"user{i}@example.com", "emails": [f"a{i}@example.com", f"b{i}@example.org"], "score": i / 3,
             **({"ip": f"2001:db8::{i:x}", "ip4": "10.1.2.3"} if has_ip else {})} for i in range(N)]
    clickhouse_query(server, "INSERT INTO natives.every_type FORMAT JSONEachRow", "\n".join(json.dumps(r) for r in rows).encode())
    yield server, has_ip
    stop_clickhouse(server)


@pytest.fixture
def store(olap: tuple[Server, bool], monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv(CH_ENV, PASSWORD)
    return Store("olap", "clickhouse", host="127.0.0.1", port=olap[0].port, user="default", password_env=CH_ENV,
                 database="natives")


INFO = CollectionInfo("natives.every_type", N, Estimate.EXACT, ("n",))


@pytest.mark.parametrize("read", ["sample", "batches"])
def test_every_column_has_its_native_kind(olap: tuple[Server, bool], store: Store, read: str) -> None:
    with ClickHouse(store) as conn:
        batch = conn.sample(INFO, 100) if read == "sample" else next(iter(conn.batches(INFO, 5000)))
    expected = {"n": NativeType("UInt32", Kind.INTEGER), "uid": NativeType("UUID", Kind.UUID),
                "born": NativeType("Date", Kind.DATE), "seen": NativeType("DateTime", Kind.TIMESTAMP),
                "email": NativeType("Nullable(String)", Kind.TEXT),
                "emails[]": NativeType("Array(String)", Kind.TEXT, array=True),
                "score": NativeType("Float64", Kind.FLOAT)}
    if olap[1]:
        expected |= {"ip": NativeType("IPv6", Kind.IP), "ip4": NativeType("IPv4", Kind.IP)}
    assert batch.types == expected


def test_values_are_rendered_canonically(olap: tuple[Server, bool], store: Store) -> None:
    with ClickHouse(store) as conn:
        cols = {k: v.to_pylist() for k, v in conn.sample(INFO, 100).columns.items()}
    assert set(cols["seen"]) == {"2024-03-01T12:00:00"} and set(cols["born"]) == {"1980-01-02"}
    assert all(len(u) == 36 for u in cols["uid"])
    assert len(cols["emails[]"]) == 2 * len(cols["n"]) and all(" " not in e for e in cols["emails[]"])
    if olap[1]:
        assert all(":" in ip and "/" not in ip for ip in cols["ip"])


def test_a_table_without_sampling_key_samples_the_same_rows_every_run(store: Store) -> None:
    with ClickHouse(store) as conn:
        runs = [conn.sample(INFO, 100).columns["n"].to_pylist() for _ in range(2)]
    assert len(set(runs[0])) == len(runs[0]) and runs[0] == runs[1]
    assert len(runs[0]) < N  # a sample, not the table


def test_scan_records_the_native_type(store: Store, tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([store], catalog=cat, sample_size=100)
    fields = {f.field: f for c in result.stores[0].collections for f in c.fields}
    assert fields["seen"].native_type == "DateTime" and fields["seen"].pii_type != "free-text-pii"
    assert fields["emails[]"].native_type == "Array(String)" and fields["emails[]"].pii_type == "email"
