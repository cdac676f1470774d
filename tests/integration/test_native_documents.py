"""Native types from real document stores: an OpenSearch index's mapping (ip, geo_point in every form
it accepts, date, keyword, numbers) and FerretDB's BSON types (ObjectId, datetime, timestamp, int32/64,
double, bool, binary, arrays, sub-documents; FerretDB 1.24 drops the connection on a Decimal128, which
the unit tests cover from encoded BSON); and their samples, the same documents once on every run
(FerretDB 1.24 has no ``$sample``: its sample is the seeded runs)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import bson
import pytest
from built_servers import Ferret, OpenSearch, start_ferretdb, start_opensearch, stop_ferretdb, stop_opensearch
from conftest import pg_connect
from servers import Server

from piiguard.classify.types import Kind
from piiguard.connectors.mongodb import MongoConnector
from piiguard.connectors.opensearch import OpenSearchConnector
from piiguard.model import CollectionInfo, Estimate
from piiguard.scanner import scan

DOCS = 600
MAPPING = {"properties": {
    "last_ip": {"type": "ip"}, "home": {"type": "geo_point"}, "seen": {"type": "date"},
    "plan": {"type": "keyword"}, "logins": {"type": "long"}, "active": {"type": "boolean"},
    "score": {"type": "float"}, "note": {"type": "text"},
    "devices": {"properties": {"addr": {"type": "ip"}, "at": {"type": "geo_point"}}}}}
# the forms OpenSearch accepts for one point (https://opensearch.org/docs/latest/field-types/supported-field-types/geo-point/)
FORMS = [lambda la, lo: {"lat": la, "lon": lo}, lambda la, lo: f"{la},{lo}", lambda la, lo: [lo, la],
         lambda la, lo: f"POINT ({lo} {la})"]


def point(i: int) -> tuple[float, float]:
    return round(40 + i / 1000, 4), round(-3 - i / 1000, 4)


@pytest.fixture(scope="module")
def node() -> Iterator[OpenSearch]:
    server = start_opensearch(secured=False)  # one light node: only its documents are under test
    lines = []
    for i in range(DOCS):
        la, lo = point(i)
        lines.append({"index": {"_index": "people", "_id": str(i)}})
        lines.append({"last_ip": f"198.51.100.{i % 250}", "home": FORMS[i % 4](la, lo),
                      "seen": 1704164645000 + i * 1000 if i % 2 else f"2024-01-02T03:{i % 60:02d}:05Z",
                      "plan": "gold", "logins": i, "active": bool(i % 2), "score": i / 3, "note": "hello there",
                      "devices": [{"addr": f"10.0.{i // 250}.{i % 250}", "at": [lo, la]}]})
    server.json("PUT", "/people", {"mappings": MAPPING, "settings": {"number_of_shards": 2}})
    status, _ = server.request("POST", "/_bulk?refresh=true", ("\n".join(json.dumps(x) for x in lines) + "\n").encode())
    assert status == 200
    yield server
    stop_opensearch(server)


def test_opensearch_fields_are_typed_by_the_mapping(node: OpenSearch) -> None:
    with OpenSearchConnector(node.store()) as conn:
        info = next(c for c in conn.collections() if c.name == "people")
        batch = conn.sample(info, 200)
    got = {p: (t.name, t.kind, t.array) for p, t in batch.types.items()}
    assert got == {"last_ip": ("ip", Kind.IP, False), "home": ("geo_point", Kind.GEO_POINT, False),
                   "seen": ("date", Kind.TIMESTAMP, False), "plan": ("keyword", Kind.TEXT, False),
                   "logins": ("long", Kind.INTEGER, False), "active": ("boolean", Kind.BOOLEAN, False),
                   "score": ("float", Kind.FLOAT, False), "note": ("text", Kind.TEXT, False),
                   "devices[].addr": ("ip", Kind.IP, True), "devices[].at": ("geo_point", Kind.GEO_POINT, True)}
    # every form of a point is one "lat,lon" value, never paths home.lat / home[]
    assert not [p for p in batch.columns if p.startswith(("home.", "home[]"))]
    logins = batch.columns["logins"].to_pylist()
    wanted = {f"{la!r},{lo!r}" for la, lo in map(point, (int(i) for i in logins))}
    assert set(batch.columns["home"].to_pylist()) == wanted == set(batch.columns["devices[].at"].to_pylist())
    assert all(s.startswith("2024-01-02T") for s in batch.columns["seen"].to_pylist())  # epoch millis as ISO


def test_opensearch_sample_is_the_same_documents_once(node: OpenSearch) -> None:
    with OpenSearchConnector(node.store()) as conn:
        info = next(c for c in conn.collections() if c.name == "people")
        first, second = (conn.sample(info, 200).columns["logins"].to_pylist() for _ in range(2))
        full = [v for b in conn.batches(info, 250) for v in b.columns["logins"].to_pylist()]
    assert first == second and len(set(first)) == len(first) == 200
    assert sorted(full, key=int) == [str(i) for i in range(DOCS)]  # the full scan: every document once


def test_opensearch_scan_carries_native_types(node: OpenSearch) -> None:
    result = scan([node.store()]).stores[0]
    people = next(c for c in result.collections if c.name == "people")
    fields = {f.field: f for f in people.fields}
    assert fields["last_ip"].pii_type == "ip-address" and fields["last_ip"].native_type == "ip"
    assert fields["seen"].native_type == "date" and fields["seen"].pii_type != "free-text-pii"


@pytest.fixture(scope="module")
def ferret(postgres: Server) -> Iterator[Ferret]:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS ferret_native")
        conn.execute("CREATE DATABASE ferret_native")
    server = start_ferretdb(postgres.port, open_backend=False, tls=False, database="ferret_native")
    admin = server.admin()
    admin.shop.people.insert_many([{
        "_id": bson.ObjectId(f"{i:024x}"), "born": dt.datetime(1950 + i % 50, 1 + i % 12, 1 + i % 28),
        "synced": bson.Timestamp(1704164645 + i, 1), "visits": i, "points": bson.Int64(2**40 + i), "ratio": i / 7,
        "vip": i % 3 == 0, "token": bson.Binary(uuid.UUID(int=i).bytes, 4), "blob": bson.Binary(b"\xff" * 4),
        "emails": [f"p{i}@example.com"], "address": {"zip": f"{10000 + i}", "geo": {"lat": 1.5, "lon": 2.5}},
        "mixed": i if i % 2 else str(i)} for i in range(DOCS)])
    admin.close()
    yield server
    stop_ferretdb(server)


def test_ferretdb_fields_carry_bson_types(ferret: Ferret) -> None:
    with MongoConnector(ferret.store()) as conn:
        info = next(c for c in conn.collections() if c.name == "shop.people")
        batch = conn.sample(info, 100)
    got = {p: (t.name, t.kind, t.array) for p, t in batch.types.items()}
    assert got == {"_id": ("objectId", Kind.UUID, False), "born": ("date", Kind.TIMESTAMP, False),
                   "synced": ("timestamp", Kind.TIMESTAMP, False), "visits": ("int", Kind.INTEGER, False),
                   "points": ("long", Kind.INTEGER, False), "ratio": ("double", Kind.FLOAT, False),
                   "vip": ("bool", Kind.BOOLEAN, False), "token": ("binData(uuid)", Kind.UUID, False),
                   "blob": ("binData", Kind.BINARY, False), "emails[]": ("string", Kind.TEXT, True),
                   "address.zip": ("string", Kind.TEXT, False), "address.geo.lat": ("double", Kind.FLOAT, False),
                   "address.geo.lon": ("double", Kind.FLOAT, False)}  # "mixed": ints and strings, no type
    ids = [int(h, 16) for h in batch.columns["_id"].to_pylist()]
    assert batch.columns["token"].to_pylist() == [str(uuid.UUID(int=i)) for i in ids]
    assert all(len(b) == 19 and b[10] == "T" for b in batch.columns["born"].to_pylist())


def test_ferretdb_sample_runs_are_the_same_documents_once(ferret: Ferret) -> None:
    with MongoConnector(ferret.store()) as conn:
        # as rows_estimate says: the runs stay inside it even when the server holds more
        info = CollectionInfo("shop.people", DOCS, Estimate.APPROXIMATE)
        first, second = (conn.sample_runs(info, 100).columns["_id"].to_pylist() for _ in range(2))
        other = conn.sample_runs(CollectionInfo("shop.people", DOCS - 1, Estimate.APPROXIMATE), 100)
        sampled = conn.sample(info, 100).columns["_id"].to_pylist()
    assert first == second == sampled and len(set(first)) == len(first) == 100  # no $sample: the runs
    assert other.rows == 100
