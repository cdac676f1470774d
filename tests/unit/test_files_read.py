"""The files connector's whole-collection reader: every format, the scan's field paths, whole values,
bounded batches, and nothing skipped silently."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.connectors.base import MAX_VALUE_CHARS, extract, flatten
from piiguard.connectors.files import Files
from piiguard.connectors.records import Paths
from piiguard.errors import CollectionError
from piiguard.masking.pipeline import find_collection
from piiguard.model import Store
from piiguard.scanner import scan

DOCS: list[dict[str, Any]] = [
    {"id": "c1", "profile": {"email": "a@x.io", "phone": "+1 555 0100"},
     "devices": [{"serial": "SN-1", "mac": "aa:bb:cc:00:00:01"}, {"mac": "aa:bb:cc:00:00:02"}], "tags": ["x", "y"]},
    {"id": "c2", "profile": {"email": "b@x.io"}},
]
WANT = {"id": ["c1", "c2"], "profile.email": ["a@x.io", "b@x.io"], "profile.phone": ["+1 555 0100", None],
        "devices[].serial": [["SN-1", None], None], "devices[].mac": [["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"], None],
        "tags[]": [["x", "y"], None]}


def jsonl(docs: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(d) for d in docs) + "\n").encode()


def write(folder: Path, name: str) -> None:
    path = folder / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(DOCS), path)
    elif name.endswith(".json"):
        path.write_text(json.dumps(DOCS))
    elif name.endswith(".gz"):
        path.write_bytes(gzip.compress(jsonl(DOCS)))
    elif name.endswith(".zst"):
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(jsonl(DOCS))
    else:
        path.write_bytes(jsonl(DOCS))


def read_all(folder: Path, name: str, columns: list[str] | None = None, batch_rows: int = 1000
             ) -> tuple[list[str], dict[str, list[Any]], list[pa.RecordBatch]]:
    with Files(Store("f", "files", path=str(folder))) as files:
        info = find_collection(files, name)
        cols = columns if columns is not None else files.columns(info)
        batches = list(files.read(info, cols, batch_rows))
    out: dict[str, list[Any]] = {c: [] for c in cols}
    for b in batches:
        assert b.schema.names == cols
        for c in cols:
            out[c] += b.column(c).to_pylist()
    return cols, out, batches


@pytest.mark.parametrize("name", ["d.jsonl", "d.ndjson", "d.json", "d.jsonl.gz", "d.jsonl.zst", "d.parquet"])
def test_documents_by_the_scans_paths(tmp_path: Path, name: str) -> None:
    plugins.load()
    write(tmp_path, name)
    cols, got, batches = read_all(tmp_path, name)
    assert got == WANT
    assert {str(f.type) for b in batches for f in b.schema if "[]" in f.name} == {"list<item: string>"}
    (collection,) = scan([Store("f", "files", path=str(tmp_path))]).stores[0].collections
    assert {f.field for f in collection.fields} <= set(cols)  # scope finds every field the catalog names


def test_csv_and_tsv_whole_values_and_the_scans_names(tmp_path: Path) -> None:
    long = "x" * (MAX_VALUE_CHARS * 3)
    (tmp_path / "m.csv").write_text(f'id,note\nc1,"{long}"\nc2,"two\nlines"\nc3,\n')
    (tmp_path / "m.tsv").write_text("id\tnote\nc1\thello\n")
    cols, got, _ = read_all(tmp_path, "m.csv")
    assert cols == ["id", "note"] and got == {"id": ["c1", "c2", "c3"], "note": [long, "two\nlines", None]}
    assert read_all(tmp_path, "m.tsv")[1] == {"id": ["c1"], "note": ["hello"]}
    (tmp_path / "h.csv").write_text("a@x.io,+1 555 0100\nb@x.io,+1 555 0101\n")  # a header that is data
    cols, got, _ = read_all(tmp_path, "h.csv")
    assert cols == ["col_1", "col_2"] and got["col_1"] == ["a@x.io", "b@x.io"]


def test_batches_are_bounded_and_a_missing_path_is_null(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_bytes(jsonl([{"id": f"c{i}"} for i in range(25)]))
    _, got, batches = read_all(tmp_path, "d.jsonl", ["id", "nowhere", "nowhere[].x"], batch_rows=10)
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert got["nowhere"] == [None] * 25 and got["nowhere[].x"] == [None] * 25


def test_a_json_line_longer_than_the_scans_limit_is_read_whole(tmp_path: Path) -> None:
    big = "y" * (3 << 20)  # the scan skips lines over 1 MiB; a whole-record reader must not
    (tmp_path / "d.jsonl").write_bytes(jsonl([{"id": "c1", "blob": big}, {"id": "c2"}]))
    assert read_all(tmp_path, "d.jsonl", ["id", "blob"])[1] == {"id": ["c1", "c2"], "blob": [big, None]}


def test_parquet_plain_columns_are_text(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "ok": [True, None], "email": ["a@x.io", None],
                             "raw": pa.array([b"abc", b"\xff"], pa.binary())}), tmp_path / "p.parquet")
    _, got, _ = read_all(tmp_path, "p.parquet")
    assert got == {"id": ["1", "2"], "ok": ["true", None], "email": ["a@x.io", None], "raw": ["abc", None]}


def test_a_parquet_copy_is_read_by_its_column_names(tmp_path: Path) -> None:
    """A copy written to a file names its columns by the source's paths; scope reads them by those names."""
    pq.write_table(pa.table({"member_id": ["p1"], "profile.email": ["u1@pseudonym.invalid"],
                             "devices[].serial": ['["s1",null]']}), tmp_path / "copy.parquet")
    _, got, _ = read_all(tmp_path, "copy.parquet", ["member_id", "profile.email", "devices[].serial"])
    assert got == {"member_id": ["p1"], "profile.email": ["u1@pseudonym.invalid"], "devices[].serial": ['["s1",null]']}


def test_parquet_paths_arrow_follows_match_the_documents_reading(tmp_path: Path) -> None:
    rows = [{"id": "c1", "p": {"e": "a", "q": None}, "d": [{"s": "1"}, None, {"s": None}], "t": ["x", None]},
            {"id": None, "p": None, "d": None, "t": []}, {"id": "c3", "p": {"e": None, "q": "z"}, "d": [], "t": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "n.parquet")
    cols = ["id", "p.e", "p.q", "d[].s", "t[]", "p.missing", "gone"]
    _, got, _ = read_all(tmp_path, "n.parquet", cols, batch_rows=2)
    assert got == {c: [extract(r, [c])[c] for r in rows] for c in cols}


def test_parquet_maps_read_as_the_scan_names_them(tmp_path: Path) -> None:
    table = pa.table({"id": ["c1"], "attrs": pa.array([[("email", "a@x.io")]], pa.map_(pa.string(), pa.string()))})
    pq.write_table(table, tmp_path / "m.parquet")
    cols, got, _ = read_all(tmp_path, "m.parquet")
    assert cols == ["id", "attrs[].key", "attrs[].value"]
    assert got == {"id": ["c1"], "attrs[].key": [["email"]], "attrs[].value": [["a@x.io"]]}


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"id": "c1"}\n{"id": \n', "1 line(s) that are not valid JSON"),
    (b'{"id": "c1"}\n[1, 2]\n', "1 line(s) that are not JSON objects"),
    (b'{"id": "c1"}\n{"id": "\xff"}\n', "1 line(s) not valid UTF-8"),
], ids=["broken", "not-an-object", "not-utf8"])
def test_a_record_that_cannot_be_read_fails_the_read(tmp_path: Path, body: bytes, reason: str) -> None:
    (tmp_path / "d.jsonl").write_bytes(body)
    with pytest.raises(CollectionError, match="could not be read whole") as caught:
        read_all(tmp_path, "d.jsonl", ["id"])
    assert reason in str(caught.value)


def test_an_empty_file_reads_nothing(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_bytes(b"")
    assert read_all(tmp_path, "e.jsonl", ["id"])[2] == []


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                       max_size=3), max_leaves=10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(st.dictionaries(st.text(max_size=4), json_values, max_size=4), min_size=1, max_size=6))
def test_every_line_reads_as_extract_reads_it(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    (tmp_path / "d.jsonl").write_bytes(jsonl(docs))
    cols, got, _ = read_all(tmp_path, "d.jsonl")
    for i, doc in enumerate(docs):
        assert {c: got[c][i] for c in cols} == extract(doc, cols)


@settings(max_examples=200, deadline=None)
@given(docs=st.lists(st.dictionaries(st.text(max_size=4), json_values, max_size=4), min_size=1, max_size=4),
       keep=st.lists(st.booleans(), max_size=12), extra=st.lists(st.sampled_from(["a", "a[]", "a[].b", "x.y[][]"]),
                                                                 max_size=2))
def test_the_readers_pruned_walk_reads_what_extract_reads(docs: list[dict[str, Any]], keep: list[bool],
                                                          extra: list[str]) -> None:
    """Paths walks only toward the wanted paths and labels each key once: the same values as extract."""
    found: dict[str, list[str | None]] = {}
    for doc in docs:
        flatten(doc, "", found)
    wanted = [p for p, k in zip(found, keep + [True] * len(found), strict=False) if k] + extra
    wanted = list(dict.fromkeys(wanted))
    paths = Paths(wanted)
    for doc in docs:
        assert paths.extract(doc) == extract(doc, wanted)
