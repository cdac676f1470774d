"""Native types from what a file or an embedded database says: Arrow/Parquet logical types, JSON Lines
dates Arrow infers as timestamps, CSV date columns, SQLite declared types; BSON types and OpenSearch
geo points (pure functions of decoded values); and the seeded, disjoint sample runs."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.classify.types import Kind
from piiguard.connectors.base import Batch
from piiguard.connectors.files import Files
from piiguard.connectors.mongodb import typed_batch
from piiguard.connectors.osmapping import geo, mapped_types, render, typed
from piiguard.connectors.sampling import runs
from piiguard.connectors.sqlite import SQLite, declared
from piiguard.model import Store

U = uuid.UUID("12345678-1234-5678-1234-567812345678")


def scanned(path: Path, n: int = 100) -> Batch:
    with Files(Store("f", "files", path=str(path))) as f:
        (info,) = f.collections()
        return f.sample(info, n)


PARQUET = [  # id, Arrow array (a value and a null), kind, array, the value's text
    ("int8", pa.array([7, None], pa.int8()), Kind.INTEGER, False, "7"),
    ("uint64", pa.array([7, None], pa.uint64()), Kind.INTEGER, False, "7"),
    ("float32", pa.array([1.5, None], pa.float32()), Kind.FLOAT, False, "1.5"),
    ("bool", pa.array([True, None]), Kind.BOOLEAN, False, "true"),
    ("decimal", pa.array([Decimal("12.30"), None], pa.decimal128(6, 2)), Kind.DECIMAL, False, "12.30"),
    ("date32", pa.array([dt.date(1990, 1, 2), None], pa.date32()), Kind.DATE, False, "1990-01-02"),
    ("date64", pa.array([dt.date(1990, 1, 2), None], pa.date64()), Kind.DATE, False, "1990-01-02"),
    ("timestamp", pa.array([dt.datetime(2024, 5, 6, 7, 8, 9), None], pa.timestamp("s")), Kind.TIMESTAMP, False,
     "2024-05-06T07:08:09.000"),  # Parquet has no seconds unit: milliseconds
    # Parquet's own midnight timestamps stay timestamps: the writer said so
    ("midnight", pa.array([dt.datetime(2024, 5, 6), None], pa.timestamp("ms")), Kind.TIMESTAMP, False,
     "2024-05-06T00:00:00.000"),
    ("timestamptz", pa.array([dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC), None], pa.timestamp("us", "UTC")),
     Kind.TIMESTAMP, False, "2024-05-06T07:08:09.000000Z"),
    ("time", pa.array([dt.time(7, 8, 9), None], pa.time32("s")), Kind.TIME, False, "07:08:09.000"),
    ("string", pa.array(["x", None]), Kind.TEXT, False, "x"),
    ("binary", pa.array([b"\xff\xfe", None]), Kind.BINARY, False, None),
    ("fixed16", pa.array([U.bytes, None], pa.binary(16)), Kind.UUID, False, str(U)),
    ("uuid", pa.ExtensionArray.from_storage(pa.uuid(), pa.array([U.bytes, None], pa.binary(16))), Kind.UUID, False,
     str(U)),
    ("dictionary", pa.array(["x", None]).dictionary_encode(), Kind.TEXT, False, "x"),
    ("list", pa.array([[3, 4], None], pa.list_(pa.int32())), Kind.INTEGER, True, "3"),
]


@pytest.mark.parametrize(("name", "arr", "kind", "array", "text"), PARQUET, ids=[p[0] for p in PARQUET])
def test_parquet_logical_types(tmp_path: Path, name: str, arr: pa.Array, kind: Kind, array: bool,
                               text: str | None) -> None:
    pq.write_table(pa.table({name: arr}), tmp_path / "t.parquet")
    batch = scanned(tmp_path / "t.parquet")
    path = f"{name}[]" if array else name
    assert (batch.types[path].kind, batch.types[path].array) == (kind, array)
    assert batch.columns[path].to_pylist()[0] == text
    if not array:
        assert batch.columns[path].to_pylist()[1] is None  # a null stays null, never "None"


def test_parquet_struct_fields_are_typed_by_path(tmp_path: Path) -> None:
    person = pa.array([{"born": dt.date(1990, 1, 2), "device": {"id": U.bytes}, "scores": [1.0]}, None],
                      pa.struct([("born", pa.date32()), ("device", pa.struct([("id", pa.binary(16))])),
                                 ("scores", pa.list_(pa.float64()))]))
    tags = pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64()))
    pq.write_table(pa.table({"person": person, "tags": tags, "nothing": pa.nulls(2)}), tmp_path / "t.parquet")
    types = {p: (t.kind, t.array) for p, t in scanned(tmp_path / "t.parquet").types.items()}
    assert types == {"person.born": (Kind.DATE, False), "person.device.id": (Kind.UUID, False),
                     "person.scores[]": (Kind.FLOAT, True), "tags[].key": (Kind.TEXT, True),
                     "tags[].value": (Kind.INTEGER, True)}  # an all-null column says nothing


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1))), min_size=1, max_size=30)
       .filter(lambda ds: any(ds)))
def test_jsonl_dates_arrow_infers_as_timestamps_stay_dates(tmp_path: Path, dates: list[dt.date | None]) -> None:
    lines = [json.dumps({"born": d and d.isoformat(), "nested": {"born": d and d.isoformat()}}) for d in dates]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    batch = scanned(tmp_path / "d.jsonl")
    want = [d and d.isoformat() for d in dates]
    for path in ("born", "nested.born"):
        assert batch.columns[path].to_pylist() == want  # never "1990-01-02 00:00:00"
        assert batch.types[path].kind is Kind.DATE


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 1, 1)).map(
    lambda t: t.replace(microsecond=0)), min_size=1, max_size=30).filter(
    lambda ts: any(t.time() != dt.time() for t in ts)))
def test_jsonl_timestamps_are_iso_timestamps(tmp_path: Path, stamps: list[dt.datetime]) -> None:
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"at": [t.isoformat()]}) + "\n" for t in stamps))
    batch = scanned(tmp_path / "t.jsonl")
    assert batch.columns["at[]"].to_pylist() == [t.isoformat() for t in stamps]
    assert (batch.types["at[]"].kind, batch.types["at[]"].array) == (Kind.TIMESTAMP, True)


def test_jsonl_scalar_types(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"n": 3, "x": 1.5, "b": true, "s": "a", "z": null}\n'
                                      '{"n": null, "x": 2, "b": false, "s": null, "z": null}\n')
    types = {p: t.kind for p, t in scanned(tmp_path / "s.jsonl").types.items()}
    assert types == {"n": Kind.INTEGER, "x": Kind.FLOAT, "b": Kind.BOOLEAN, "s": Kind.TEXT}


@pytest.mark.parametrize(("cells", "kind"), [
    (["1990-01-02", "", "2001-12-31"], Kind.DATE),
    (["2024-01-01T10:00:00", "2024-01-01 10:00:00.5", "2024-01-01T10"], Kind.TIMESTAMP),
    (["2024-01-01T10:00Z", "2024-01-01T10:00:00+02:00"], Kind.TIMESTAMP),
    (["1990-01-02", "yesterday"], None),  # one value that is no date: no type
    (["1990-1-2", "1990-01-02"], None),
    (["2024-01-01T10:00:00", "2024-01-01T10:00Z"], None),  # with and without a zone: no one instant type
    (["1990-01-02", "2024-01-01T10:00:00"], Kind.TIMESTAMP),  # as Arrow infers it
    (["12", "13"], None),  # CSV text is never typed as numbers: a code with leading zeros stays text
    (["", ""], None),
], ids=["dates", "timestamps", "zoned", "one-not-a-date", "not-iso", "zoned-and-not", "dates-and-timestamps",
     "numbers", "empty"])
def test_csv_date_columns_are_typed(tmp_path: Path, cells: list[str], kind: Kind | None) -> None:
    (tmp_path / "c.csv").write_text("name,when\n" + "".join(f"a{i},{c}\n" for i, c in enumerate(cells)))
    batch = scanned(tmp_path / "c.csv")
    assert "name" not in batch.types
    assert (batch.types["when"].kind if "when" in batch.types else None) is kind
    assert [v or "" for v in batch.columns["when"].to_pylist()] == cells  # the text as written


@pytest.mark.parametrize(("decl", "kind"), [
    ("INTEGER", Kind.INTEGER), ("unsigned big int", Kind.INTEGER), ("VARCHAR(40)", Kind.TEXT),
    ("nchar(5)", Kind.TEXT), ("CLOB", Kind.TEXT), ("TEXT", Kind.TEXT), ("BLOB", Kind.BINARY),
    ("REAL", Kind.FLOAT), ("DOUBLE PRECISION", Kind.FLOAT), ("FLOAT", Kind.FLOAT), ("DATE", Kind.DATE),
    ("datetime", Kind.TIMESTAMP), ("TIMESTAMP", Kind.TIMESTAMP), ("TIME", Kind.TIME), ("BOOLEAN", Kind.BOOLEAN),
    ("DECIMAL(10,5)", Kind.DECIMAL), ("NUMERIC", Kind.DECIMAL), ("UUID", Kind.UUID), ("MONEY", Kind.DECIMAL),
    ("", None),
])
def test_sqlite_declared_types_by_affinity(decl: str, kind: Kind | None) -> None:
    native = declared(decl)
    assert (native.kind if native else None) is kind
    assert native is None or native.name == decl


def test_sqlite_batches_carry_declared_types(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, born DATE, seen DATETIME, note, doc JSON, n REAL)")
        conn.execute("""INSERT INTO t VALUES (1, '1990-01-02', '2024-01-01 10:00:00', 'x', '{"a": 1}', 1.5),
                                             (2, NULL, NULL, NULL, NULL, NULL)""")
    with SQLite(Store("s", "sqlite", path=str(db))) as s:
        (info,) = s.collections()
        for batch in (s.sample(info, 10), *s.batches(info, 10)):
            assert {p: t.kind for p, t in batch.types.items()} == {
                "id": Kind.INTEGER, "born": Kind.DATE, "seen": Kind.TIMESTAMP, "n": Kind.FLOAT}
            assert "doc.a" in batch.columns  # the JSON column is its paths, untyped


def test_sqlite_sample_of_a_big_table_is_the_same_rows_once(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        # gaps in the rowids: a run must still stop before the next one starts
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i * 3 if i % 7 else i * 3 + 1, str(i)) for i in
                                                         range(1, 5000)])
    with SQLite(Store("s", "sqlite", path=str(db))) as s:
        (info,) = s.collections()
        first, second = (s.sample(info, 200).columns["id"].to_pylist() for _ in range(2))
    assert first == second
    assert len(set(first)) == len(first) >= 100


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 10**9), n=st.integers(0, 10**5), parts=st.integers(1, 20), seed=st.text(max_size=20))
def test_sample_runs_are_seeded_and_disjoint(size: int, n: int, parts: int, seed: str) -> None:
    got = runs(size, n, parts, seed)
    assert got == runs(size, n, parts, seed)  # the same on every run
    assert sum(length for _, length in got) == min(n, size)
    assert all(start >= 0 and length > 0 and start + length <= size for start, length in got)
    assert all(a + la <= b for (a, la), (b, _) in itertools.pairwise(got))  # ascending, no overlap


def test_sample_runs_are_spread_and_vary_by_collection() -> None:
    a, b = runs(10**6, 1000, 5, "shop.users"), runs(10**6, 1000, 5, "shop.orders")
    assert a != b
    assert len(a) == 5 and a[-1][0] > 10**6 // 2


BSON = [  # id, decoded value, $type name, kind, text
    ("objectId", bson.ObjectId("65a1b2c3d4e5f60718293a4b"), "objectId", Kind.UUID, "65a1b2c3d4e5f60718293a4b"),
    ("date", dt.datetime(2024, 1, 2, 3, 4, 5), "date", Kind.TIMESTAMP, "2024-01-02T03:04:05"),
    ("decimal", bson.Decimal128("12.30"), "decimal", Kind.DECIMAL, "12.30"),
    ("int", 7, "int", Kind.INTEGER, "7"),
    ("long", bson.Int64(7), "long", Kind.INTEGER, "7"),
    ("double", 1.5, "double", Kind.FLOAT, "1.5"),
    ("bool", False, "bool", Kind.BOOLEAN, "false"),
    ("uuid", bson.Binary(U.bytes, 4), "binData(uuid)", Kind.UUID, str(U)),
    ("binary", bson.Binary(b"\xff\x00", 0), "binData", Kind.BINARY, None),
    ("timestamp", bson.Timestamp(1704164645, 1), "timestamp", Kind.TIMESTAMP, "2024-01-02T03:04:05+00:00"),
    ("string", "x", "string", Kind.TEXT, "x"),
]


@pytest.mark.parametrize(("name", "value", "spelt", "kind", "text"), BSON, ids=[b[0] for b in BSON])
def test_bson_types_by_path(name: str, value: Any, spelt: str, kind: Kind, text: str | None) -> None:
    # decoded from BSON bytes, as the driver hands them on
    docs = [bson.decode(bson.encode(d)) for d in ({"v": value, "sub": {"v": value}, "list": [{"v": value}]},
                                                  {"v": None})]
    batch = typed_batch(docs)
    for path, array in (("v", False), ("sub.v", False), ("list[].v", True)):
        assert (batch.types[path].name, batch.types[path].kind, batch.types[path].array) == (spelt, kind, array)
        assert batch.columns[path].to_pylist()[0] == text


def test_bson_field_of_mixed_kinds_has_no_type() -> None:
    batch = typed_batch([{"v": 1}, {"v": "one"}, {"v": bson.Int64(2), "w": 3}, {"w": 4}])
    assert "v" not in batch.types and batch.types["w"].kind is Kind.INTEGER
    assert batch.columns["v"].to_pylist() == ["1", "one", "2"]


@settings(max_examples=100, deadline=None)
@given(lat=st.floats(-90, 90, allow_nan=False), lon=st.floats(-180, 180, allow_nan=False))
def test_every_geo_point_form_renders_as_one_lat_lon(lat: float, lon: float) -> None:
    want = f"{lat!r},{lon!r}"
    for form in ({"lat": lat, "lon": lon}, [lon, lat], f"{lat!r}, {lon!r}", f"{lat}, {lon}", f"POINT ({lon!r} {lat!r})",
                 {"lat": str(lat), "lon": str(lon)}):
        assert geo(form) == want, form
    assert geo([[lon, lat], {"lat": lat, "lon": lon}]) == [want, want]


def test_geohash_is_its_cells_centre() -> None:
    # https://en.wikipedia.org/wiki/Geohash's example: 57.64911, 10.40744
    assert geo("u4pruydqqvj") == "57.649111,10.40744"
    lat, lon = (float(x) for x in geo("u4pruy").split(","))  # a coarser cell, fewer digits
    assert abs(lat - 57.64911) < 0.01 and abs(lon - 10.40744) < 0.01
    assert geo("not a hash!") == "not a hash!"


def test_opensearch_mapping_types_and_renders_by_path() -> None:
    properties = {"ip": {"type": "ip"}, "seen": {"type": "date"}, "since": {"type": "date", "format": "epoch_second"},
                  "loc": {"type": "geo_point"}, "n": {"type": "long"}, "ok": {"type": "boolean"},
                  "devices": {"properties": {"addr": {"type": "ip"}, "place": {"type": "geo_point"}}},
                  "name": {"type": "text", "fields": {"keyword": {"type": "keyword"}}}, "shape": {"type": "geo_shape"}}
    doc = {"ip": "10.0.0.1", "seen": 1704164645000, "since": 1704164645, "loc": {"lat": 52.5, "lon": 13.4},
           "devices": [{"addr": "10.0.0.2", "place": [13.4, 52.5]}], "name": "x", "n": 3, "ok": True}
    rendered = render(doc, properties)
    assert (rendered["seen"], rendered["since"]) == ("2024-01-02T03:04:05+00:00",) * 2
    assert rendered["loc"] == rendered["devices"][0]["place"] == "52.5,13.4"
    assert doc["loc"] == {"lat": 52.5, "lon": 13.4}  # the source document is not changed
    paths = {"ip": 0, "seen": 0, "loc": 0, "devices[].addr": 0, "devices[].place": 0, "name": 0, "n": 0, "ok": 0}
    assert {p: (t.kind, t.array) for p, t in typed(paths, mapped_types(properties)).items()} == {
        "ip": (Kind.IP, False), "seen": (Kind.TIMESTAMP, False), "loc": (Kind.GEO_POINT, False),
        "devices[].addr": (Kind.IP, True), "devices[].place": (Kind.GEO_POINT, True), "name": (Kind.TEXT, False),
        "n": (Kind.INTEGER, False), "ok": (Kind.BOOLEAN, False)}


def test_csv_value_past_the_probe_that_is_no_date_leaves_the_column_untyped(tmp_path: Path) -> None:
    dates = [f"1990-01-{1 + i % 28:02d}" for i in range(200)]
    for cells, kind in ((dates, Kind.DATE), ([*dates, "soon"], None)):
        (tmp_path / "c.csv").write_text("name,when\n" + "".join(f"a{i},{c}\n" for i, c in enumerate(cells)))
        batch = scanned(tmp_path / "c.csv", 1000)
        assert (batch.types["when"].kind if "when" in batch.types else None) is kind
