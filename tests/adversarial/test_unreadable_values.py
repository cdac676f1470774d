"""No value and no Arrow type crashes a scan: it is read, or counted as a problem on its collection,
and the other collections are still read (Hypothesis where it fits)."""

from __future__ import annotations

import datetime
import decimal
import json
import sqlite3
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.connectors.base import Batch
from piiguard.model import CollectionInfo, ScanMode
from piiguard.scanner import scan

from .test_readers import CONTROL, control_read, problems, run

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Any code point, lone surrogates (U+D800–DFFF) included: JSON's \uXXXX escape can write each of them.
texts = st.one_of(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12),
                  st.tuples(st.text(max_size=4), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                            st.text(max_size=4)).map("".join))


@SETTINGS
@given(values=st.lists(texts, min_size=1, max_size=6))
def test_any_json_string_in_jsonl_and_sqlite_json(values: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        d.mkdir()
        (d / "control.csv").write_text(CONTROL)
        # ensure_ascii: every surrogate is written as a \udXXX escape, as the tester's file had it
        (d / "gen.jsonl").write_text("".join(json.dumps({"v": v}) + "\n" for v in values))
        result, _ = run(d)
        control_read(result)
        gen = {c.name: c for c in result.stores[0].collections}["gen.jsonl"]
        lone = sum(1 for v in values if any(0xD800 <= ord(ch) <= 0xDFFF for ch in v))
        if lone:
            assert any("lone surrogates" in m for m in problems(result, "gen.jsonl"))
        assert gen.rows_read == len(values)

        db = Path(tmp) / "s.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (doc JSON)")
            conn.execute("CREATE TABLE u (email TEXT)")
            conn.executemany("INSERT INTO t VALUES (?)", [(json.dumps({"k": v}),) for v in values])
            conn.executemany("INSERT INTO u VALUES (?)", [(f"u{i}@example.com",) for i in range(5)])
        out = scan([f"sqlite://{db}"], mode=ScanMode.FULL)
        cols = {c.name: c for c in out.stores[0].collections}
        assert cols["u"].rows_read == 5 and [f.pii_type for f in cols["u"].fields] == ["email"]
        assert cols["t"].rows_read == len(values)
        if lone:
            assert any("lone surrogates" in p.message for p in out.problems if p.collection == "t")


def _sparse_union() -> pa.Array:
    return pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()),
                                     [pa.array(["u0@example.com", None]), pa.array([None, 7])])


ARROW_TYPES = {
    "map": lambda: pa.array([[("email", "m0@example.com")], []], pa.map_(pa.string(), pa.string())),
    "dictionary": lambda: pa.array(["d0@example.com", "d1@example.com"]).dictionary_encode(),
    "large_list": lambda: pa.array([["l0@example.com"], None], pa.large_list(pa.string())),
    "fixed_size_list": lambda: pa.array([["a", "b"], ["c", "d"]], pa.list_(pa.string(), 2)),
    "fixed_size_binary": lambda: pa.array([b"ab", b"\xff\xfe"], pa.binary(2)),
    "decimal256": lambda: pa.array([decimal.Decimal("1.50"), None], pa.decimal256(40, 2)),
    "duration": lambda: pa.array([datetime.timedelta(seconds=5), None], pa.duration("s")),
    "list<struct<map>>": lambda: pa.array([[{"x": [("k", "n0@example.com")]}], None],
                                          pa.list_(pa.struct([("x", pa.map_(pa.string(), pa.string()))]))),
}


@pytest.mark.parametrize("kind", sorted(ARROW_TYPES))
def test_every_parquet_type_is_read_or_named(tmp_path: Path, kind: str) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "control.csv").write_text(CONTROL)
    pq.write_table(pa.table({"c": ARROW_TYPES[kind]()}), d / "t.parquet")
    result, _ = run(d)
    control_read(result)
    t = {c.name: c for c in result.stores[0].collections}["t.parquet"]
    assert t.rows_read == 2
    assert not any("internal error" in m for m in problems(result, "t.parquet"))
    if kind in ("map", "list<struct<map>>"):
        assert "email" in [f.pii_type for f in t.fields]  # the map's values are classified


def test_union_column_in_memory_is_read() -> None:
    """Parquet cannot store a union, but Arrow-backed readers (S3 Arrow IPC later) can meet one."""
    from piiguard.connectors.files import _Leaves
    from piiguard.connectors.streams import Tally

    leaves = _Leaves(Tally(), inferred=False)
    leaves.add("u", _sparse_union())
    columns = leaves.columns
    assert set(columns) == {"u.0", "u.1"} and columns["u.0"].to_pylist()[0] == "u0@example.com"


def test_a_collection_that_crashes_loses_only_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error no reader anticipated is a problem on that collection (type only), not a lost scan."""
    from piiguard.connectors.files import Files

    d = tmp_path / "d"
    d.mkdir()
    (d / "control.csv").write_text(CONTROL)
    (d / "bad.csv").write_text("email\nz@example.com\n")
    real = Files.sample

    def sample(self: Files, collection: CollectionInfo, n: int) -> Batch:
        if collection.name == "bad.csv":
            raise RuntimeError("secret-value@example.com")  # a message that quotes a value
        return real(self, collection, n)

    monkeypatch.setattr(Files, "sample", sample)
    result = scan([f"file://{d}"])
    control_read(result)
    assert problems(result, "bad.csv") == ["could not be read: internal error (RuntimeError)"]
