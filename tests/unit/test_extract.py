"""The whole-collection reader's document paths: what `extract` returns for each kind of path."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from piiguard.connectors.base import documents_record_batch, extract, flatten

DOC = {"email": "a@x.io", "n": 5, "ok": True,
       "members": [{"email": "b@x.io", "phone": "1"}, {"phone": "2"}, {"email": "c@x.io"}],
       "a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": [{"c": 3}]}]}


def test_plain_paths_are_text_and_absent_paths_none() -> None:
    got = extract(DOC, ["email", "n", "ok", "missing", "missing[].x"])
    assert got == {"email": "a@x.io", "n": "5", "ok": "true", "missing": None, "missing[].x": None}


def test_paths_through_one_array_line_up_by_element() -> None:
    got = extract(DOC, ["members[].email", "members[].phone"])
    assert got["members[].email"] == ["b@x.io", None, "c@x.io"]
    assert got["members[].phone"] == ["1", "2", None]


def test_paths_through_nested_arrays_hold_every_value() -> None:
    assert extract(DOC, ["a[].b[].c"])["a[].b[].c"] == ["1", "2", "3"]


def test_record_batch_types() -> None:
    batch = documents_record_batch([DOC, {}], ["email", "members[].email"])
    assert str(batch.schema.field("email").type) == "string"
    assert str(batch.schema.field("members[].email").type).startswith("list")
    assert batch.column(1).to_pylist() == [["b@x.io", None, "c@x.io"], None]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                       max_size=3), max_leaves=12)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4))
def test_every_value_flatten_finds_extract_finds_too(doc: dict[str, Any]) -> None:
    """The reader and the scan name paths the same way: each non-null scalar flatten sees is read."""
    paths: dict[str, list[str | None]] = {}
    flatten(doc, "", paths)
    got = extract(doc, list(paths))
    for path, values in paths.items():
        seen = got[path]
        items = [seen] if isinstance(seen, str) else [v for v in seen or [] if v is not None]
        if path.count("[]") == 0:
            assert seen is not None
        else:
            assert len(items) >= 1 or all(v is None for v in values)
