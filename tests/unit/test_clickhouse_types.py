"""ClickHouse native types → field paths and SQL, for every type a server may report (modern ones too:
Debian's 18.16 server in the integration tests lacks Map, IPv4/IPv6, DateTime64 and JSON)."""

from __future__ import annotations

import pytest

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.clickhouse import leaves, native_type, parse_type, reader_column


@pytest.mark.parametrize(("name", "type_text", "paths"), [
    pytest.param("email", "Nullable(String)", [("email", "text")], id="nullable"),
    pytest.param("country", "LowCardinality(Nullable(String))", [("country", "text")], id="low-cardinality"),
    pytest.param("phones", "Array(String)", [("phones[]", "items")], id="array"),
    pytest.param("grid", "Array(Array(Nullable(String)))", [("grid[]", "items")], id="array-of-arrays"),
    pytest.param("devices.mac", "Array(String)", [("devices[].mac", "items")], id="nested-part"),
    pytest.param("devices", "Nested(serial String, mac String)",
                 [("devices[].serial", "items"), ("devices[].mac", "items")], id="nested-column"),
    pytest.param("pairs", "Array(Tuple(a String, b UInt8))", [("pairs[].a", "items"), ("pairs[].b", "items")],
                 id="array-of-tuples"),
    pytest.param("address", "Tuple(street String, city LowCardinality(String))",
                 [("address.street", "text"), ("address.city", "text")], id="named-tuple"),
    pytest.param("t", "Tuple(String, UInt8)", [("t.1", "text"), ("t.2", "text")], id="tuple"),
    pytest.param("prefs", "Map(String, Array(String))", [("prefs", "document")], id="map"),
    pytest.param("doc", "JSON", [("doc", "json")], id="json"),
    pytest.param("doc", "Object('json')", [("doc", "json")], id="object-json"),
    pytest.param("u", "UUID", [("u", "text")], id="uuid"),
    pytest.param("ip", "IPv4", [("ip", "text")], id="ipv4"),
    pytest.param("ip6", "Nullable(IPv6)", [("ip6", "text")], id="ipv6"),
    pytest.param("at", "DateTime64(3, 'Europe/Berlin')", [("at", "text")], id="datetime64"),
    pytest.param("tier", "Enum8('free' = 1, 'it\\'s' = 2)", [("tier", "text")], id="enum"),
    pytest.param("amount", "Decimal(18, 4)", [("amount", "text")], id="decimal"),
    pytest.param("state", "AggregateFunction(uniq, String)", [], id="aggregate-state"),
    pytest.param("a@b.com", "String", [("<email>", "text")], id="a-column-named-by-pii"),
])
def test_leaves(name: str, type_text: str, paths: list[tuple[str, str]]) -> None:
    assert [(leaf.path, leaf.kind) for leaf in leaves(name, type_text)] == paths


def test_values_are_cut_in_sql() -> None:
    (leaf,) = leaves("notes", "Nullable(String)")
    assert leaf.sql == "substringUTF8(toString(`notes`), 1, 4096)"
    (items,) = leaves("phones", "Array(String)")
    assert "arraySlice(`phones`, 1, 1000)" in items.sql


def test_parse_type_keeps_names_and_literals() -> None:
    t = parse_type("Tuple(a String, b Array(Nullable(UInt8)))")
    assert [(a.field, a.name) for a in t.args] == [("a", "String"), ("b", "Array")]
    assert parse_type("Enum8('a,)' = 1)").name == "Enum8"


@pytest.mark.parametrize(("name", "type_text", "path"), [
    ("email", "Nullable(String)", "email"), ("phones", "Array(String)", "phones[]"),
    ("devices.mac", "Array(String)", "devices[].mac"), ("prefs", "Map(String, String)", "prefs"),
    ("grid", "Array(Array(String))", "grid"),
])
def test_reader_paths(name: str, type_text: str, path: str) -> None:
    assert reader_column(name, type_text)[0] == path


@pytest.mark.parametrize(("type_text", "kind", "array"), [
    pytest.param("IPv4", Kind.IP, False, id="ipv4"),
    pytest.param("Nullable(IPv6)", Kind.IP, False, id="nullable-ipv6"),
    pytest.param("UUID", Kind.UUID, False, id="uuid"),
    pytest.param("Date", Kind.DATE, False, id="date"),
    pytest.param("Date32", Kind.DATE, False, id="date32"),
    pytest.param("DateTime('UTC')", Kind.TIMESTAMP, False, id="datetime"),
    pytest.param("DateTime64(3, 'Europe/Berlin')", Kind.TIMESTAMP, False, id="datetime64"),
    pytest.param("Map(String, String)", Kind.JSON, False, id="map"),
    pytest.param("Array(String)", Kind.TEXT, True, id="array"),
    pytest.param("Array(Array(Nullable(IPv6)))", Kind.IP, True, id="array-of-arrays"),
    pytest.param("LowCardinality(Nullable(String))", Kind.TEXT, False, id="low-cardinality"),
    pytest.param("UInt64", Kind.INTEGER, False, id="uint"),
    pytest.param("Int8", Kind.INTEGER, False, id="int"),
    pytest.param("Float64", Kind.FLOAT, False, id="float"),
    pytest.param("Decimal(18, 4)", Kind.DECIMAL, False, id="decimal"),
    pytest.param("Bool", Kind.BOOLEAN, False, id="bool"),
    pytest.param("Enum8('free' = 1)", Kind.ENUM, False, id="enum"),
    pytest.param("Variant(String, UInt8)", Kind.UNKNOWN, False, id="newer-than-this-module"),
])
def test_native_types(type_text: str, kind: Kind, array: bool) -> None:
    assert native_type(type_text) == NativeType(type_text, kind, array)


@pytest.mark.parametrize("type_text", ["Tuple(a String, b UInt8)", "Nested(serial String, mac String)",
                                       "Array(Tuple(String, String))"])
def test_composite_columns_have_no_single_type(type_text: str) -> None:
    assert native_type(type_text) is None


@pytest.mark.parametrize("type_text", ["DateTime", "Nullable(DateTime64(3))", "Array(DateTime)"])
def test_timestamps_are_read_in_iso_8601(type_text: str) -> None:
    (leaf,) = leaves("at", type_text)
    assert "replaceOne(toString(" in leaf.sql
