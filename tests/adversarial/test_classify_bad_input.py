"""Bad input to the classifier (issue 14, last section): a column of one repeated value, all NULL, all
empty strings, mixed types across rows, 100 MB values, and a collection of 10,000 columns. Each is
decided or named undecidable (the reason says so), in bounded time and memory. The bounds are
generous (a shared machine); the figures are printed for the record (``pytest -s``)."""

from __future__ import annotations

import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import classifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.classify.engine import MAX_VALUE_CHARS
from piiguard.model import Classification, ScanMode
from piiguard.scanner import scan

MB = 1 << 20


def decide(values: pa.Array, field: str = "c1") -> Classification:
    c = classifier()
    state = c.new_state(field)
    c.observe(state, values)
    return c.decide(state, "s", "t")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


@pytest.mark.parametrize("value", ["person@example.org", "x", "42", "2026-01-01", "Boston", "true"])
@pytest.mark.parametrize("rows", [10, 5000])
def test_one_value_repeated_is_decided_and_says_so(value: str, rows: int) -> None:
    """A constant column is decided on what its one value is (a repeated e-mail is still an e-mail to
    mask), and the reason says it is one value repeated."""
    got = decide(pa.array([value] * rows))
    assert f"one value repeated in all {rows:,} rows" in got.reason
    assert got.distinct == 1 and got.sampled == rows
    assert value not in got.reason


@pytest.mark.parametrize("blank", [None, "", "   ", "\t\n"], ids=["null", "empty", "spaces", "whitespace"])
def test_no_value_is_undecidable(blank: str | None) -> None:
    got = decide(pa.array([blank] * 1000, pa.string()), "email")
    assert got.pii_type is None and got.sampled == 0 and got.nulls == 1000
    assert got.reason == "undecidable: all 1,000 value(s) null or empty"


def _rendered(v: object) -> str | None:
    return None if v is None else str(v)


MIXED = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.dates(), st.datetimes(),
                  st.emails(), st.ip_addresses(), st.text(max_size=40), st.binary(max_size=20), st.uuids())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values=st.lists(MIXED, min_size=1, max_size=300))
def test_mixed_types_across_rows_are_decided_or_not(values: list[object]) -> None:
    """Whatever mixture a dynamically typed column holds (SQLite, JSON, CSV), rendered as text: a decision
    with a confidence in [0, 1] and counts that add up, or none; never an error."""
    got = decide(pa.array([_rendered(v) for v in values], pa.string()))
    assert 0.0 <= got.confidence <= 1.0
    assert got.sampled + got.nulls == len(values) and got.matched <= max(got.sampled, 1)
    assert (got.pii_type is None) == (got.confidence == 0.0)


def test_mixed_sqlite_column_through_a_scan(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v)")  # no declared type: any value per row
        rows = [(i, [i, i / 3, f"person{i}@example.org", b"\x00\xff", None, "text"][i % 6]) for i in range(600)]
        conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
    result = scan([f"sqlite://{tmp_path / 'm.db'}"], mode=ScanMode.FULL)
    (field,) = [f for c in result.stores[0].collections for f in c.fields if f.field == "v"]
    assert field.pii_type != "email"  # one row in six holds one: not an e-mail column
    assert "person1@example.org" not in repr(result)


def _huge(size: int, head: bytes) -> pa.Array:
    """One value of ``size`` bytes starting with ``head``, built as Arrow buffers (no Python string of it)."""
    data = np.full(size, ord("a"), dtype=np.uint8)
    data[:len(head)] = np.frombuffer(head, dtype=np.uint8)
    offsets = np.array([0, size], dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def test_a_100_mb_value_is_cut_before_matching() -> None:
    huge = _huge(100 * MB, b"Notes for person7@example.org ")
    normal = pa.array([f"Reach me at person{i}@example.org please, any time" for i in range(50)])
    values = pa.concat_arrays([huge, normal])
    c = classifier()
    state = c.new_state("notes")
    rss, started = peak_rss(), time.perf_counter()
    tracemalloc.start()
    c.observe(state, values)
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    got = c.decide(state, "s", "t")
    seconds, grown = time.perf_counter() - started, peak_rss() - rss
    print(f"\n100 MB value: {seconds:.2f} s, peak RSS grew {grown / MB:.1f} MB, Python peak {python_peak / MB:.1f} MB")
    assert got.pii_type == "free-text-pii"
    assert f"1 value(s) longer than {MAX_VALUE_CHARS:,} characters cut before matching" in got.reason
    assert seconds < 10 and grown < 50 * MB and python_peak < 20 * MB


def test_10000_columns_are_all_classified_in_bounded_time(tmp_path: Path) -> None:
    # Ten e-mail columns, not more: each is counted for subjects by a read of its own (connector work).
    columns = {f"c{i:05d}": [f"person{i}.{r}@example.org" if i % 1000 == 0 else f"{i * r}" for r in range(20)]
               for i in range(10_000)}
    pq.write_table(pa.table(columns), tmp_path / "wide.parquet")
    rss, started = peak_rss(), time.perf_counter()
    result = scan([f"file://{tmp_path}"], mode=ScanMode.FULL)
    seconds, grown = time.perf_counter() - started, peak_rss() - rss
    print(f"\n10,000 columns × 20 rows: {seconds:.1f} s, peak RSS grew {grown / MB:.0f} MB")
    (collection,) = result.stores[0].collections
    assert len(collection.fields) == 10_000 and not result.problems
    emails = [f for f in collection.fields if f.pii_type == "email"]
    assert len(emails) == 10
    assert seconds < 240 and grown < 1024 * MB
