"""A copy's list columns (document paths through arrays, ``devices[].serial``): every item is masked
exactly as the field's masker masks a value of its own, nulls (of lists and of items) and lengths kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.masking.maskers import DEFAULTS
from piiguard.masking.pipeline import BatchMasker, FieldRule, as_text

KEY = b"list-masking-key-0123456789"
FIELDS = ("email", "device-serial", "phone", "mac-address", "first-name")  # pseudonym, keep-prefix, mac-vendor, fake


@pytest.fixture(scope="module")
def masker() -> Iterator[BatchMasker]:
    plugins.load()
    rules = [FieldRule(f"{t}[]", t, *DEFAULTS[t], "") for t in FIELDS]
    rules += [FieldRule(t, t, *DEFAULTS[t], "") for t in FIELDS]  # the same masker on a plain column
    m = BatchMasker(rules, KEY, None, threads=2)
    yield m
    m.close()


items = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["a@x.io", "SN-00000001", "3c:5a:b4:00:01:02"]))
lists = st.lists(st.one_of(st.none(), st.lists(items, max_size=5)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=lists, start=st.integers(0, 3))
def test_every_item_masked_nulls_and_lengths_kept(masker: BatchMasker, rows: list[list[str | None] | None],
                                                  start: int) -> None:
    values = pa.array(rows, pa.list_(pa.string())).slice(min(start, len(rows) - 1))  # sliced: offsets not at 0
    flat = [v for row in values.to_pylist() for v in (row or [])]
    columns = {f"{t}[]": values for t in FIELDS} | {t: pa.array(flat or [None], pa.string()) for t in FIELDS}
    n = max(len(values), len(columns[FIELDS[0]]))
    batch = pa.RecordBatch.from_pydict({k: _pad(v, n) for k, v in columns.items()})
    out, _ = masker(batch)
    for t in FIELDS:
        got = out.column(f"{t}[]").to_pylist()[:len(values)]
        alone = iter(out.column(t).to_pylist())  # each item masked on its own, as a plain value
        for before, after in zip(values.to_pylist(), got, strict=True):
            if before is None:
                assert after is None
                continue
            assert after is not None and len(after) == len(before)
            for raw, masked in zip(before, after, strict=True):
                assert masked == next(alone)
                assert (masked is None) == (raw is None)


def _pad(values: pa.Array, n: int) -> pa.Array:
    """A column of length ``n`` (a record batch's columns are all as long)."""
    if len(values) == n:
        return values
    return pa.concat_arrays([values, pa.nulls(n - len(values), values.type)])


def test_a_pseudonym_is_per_item_and_text_targets_get_json_arrays(masker: BatchMasker) -> None:
    serials = pa.array([["SN-00000001", None, "SN-00000002"], None, []], pa.list_(pa.string()))
    plain = pa.array(["SN-00000001", "SN-00000002", None], pa.string())
    batch = pa.RecordBatch.from_pydict({**{f"{t}[]": serials for t in FIELDS}, **{t: plain for t in FIELDS}})
    out, _ = masker(batch)
    first, second, _ = out.column("device-serial").to_pylist()
    assert out.column("device-serial[]").to_pylist() == [[first, None, second], None, []]
    assert first != second and "SN-" not in str(first)
    text: list[Any] = as_text(out).column("device-serial[]").to_pylist()
    assert [None if v is None else json.loads(v) for v in text] == [[first, None, second], None, []]
    assert as_text(out).column("device-serial").type == pa.string()
