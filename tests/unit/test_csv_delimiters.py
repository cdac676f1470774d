"""A CSV's delimiter is found from its first lines (``,`` ``;`` tab ``|``, quote-aware) or forced by the store's
``delimiter`` option: a ``;`` export (the usual European Excel one) is read, scanned, scoped and copied."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.config import ConfigError, load_config
from piiguard.connectors.files import Files, sniff_delimiter
from piiguard.masking.pipeline import find_collection
from piiguard.model import Store
from piiguard.response.incidents import open_by_hand
from piiguard.response.scope import find_scope
from piiguard.scanner import scan

N = 60


def export(path: Path, delimiter: str, rows: int = N) -> dict[str, list[str]]:
    """An export with quoted fields that hold every other delimiter."""
    data = synthetic.rows(rows, seed=7)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(["customer_id", "email", "note"])
    for i in range(rows):
        w.writerow([data["customer_id"][i], data["email"][i], "a,b;c|d\te"])  # always quoted
    path.write_text(buf.getvalue(), encoding="utf-8")
    return {"customer_id": data["customer_id"], "email": data["email"]}


def read_whole(store: Store, name: str) -> list[dict[str, str | None]]:
    with Files(store) as c:
        info = find_collection(c, name)
        return [r for b in c.read(info, ["customer_id", "email", "note"], 1000) for r in b.to_pylist()]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_scan_and_whole_read_find_the_delimiter(tmp_path: Path, delimiter: str) -> None:
    data = export(tmp_path / "export.csv", delimiter)
    store = Store("files", "files", path=str(tmp_path))
    result = scan([store], sample_size=100).stores[0]
    assert result.problems == ()
    (coll,) = result.collections
    assert {f.field: f.pii_type for f in coll.fields if f.pii_type} == \
        {"customer_id": "customer-identifier", "email": "email"}
    rows = read_whole(store, "export.csv")
    assert [r["email"] for r in rows] == data["email"]
    assert {r["note"] for r in rows} == {"a,b;c|d\te"}  # a quoted field's delimiters are text


@pytest.mark.parametrize("option", [";", "semicolon"])
def test_the_store_option_forces_the_delimiter(tmp_path: Path, option: str) -> None:
    (tmp_path / "one.csv").write_text("a;b\n1;2\n")  # one row: nothing to be consistent with
    store = Store("files", "files", path=str(tmp_path), options={"delimiter": option})
    with Files(store) as c:
        info = find_collection(c, "one.csv")
        assert [r for b in c.read(info, ["a", "b"], 10) for r in b.to_pylist()] == [{"a": "1", "b": "2"}]


def test_a_forced_wrong_delimiter_says_nothing_was_read(tmp_path: Path) -> None:
    export(tmp_path / "export.csv", ";")
    (tmp_path / "export.csv").write_text("x,y,z\n" + (tmp_path / "export.csv").read_text().split("\n", 1)[1])
    store = Store("files", "files", path=str(tmp_path), options={"delimiter": ","})
    result = scan([store], sample_size=100).stores[0]
    (problem,) = result.problems
    assert "no row could be read" in problem.message and "classified" not in problem.message.split(":")[0]
    assert "delimiter" in (problem.hint or "")
    assert "@" not in problem.message + (problem.hint or "")


def test_the_delimiter_option_is_validated(tmp_path: Path) -> None:
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"stores:\n  - name: f\n    engine: files\n    path: {tmp_path}\n"
                   "    options:\n      delimiter: ';'\n")
    assert [s.options["delimiter"] for s in load_config(cfg).stores] == [";"]
    cfg.write_text(f"stores:\n  - name: f\n    engine: files\n    path: {tmp_path}\n"
                   "    options:\n      delimiter: '#'\n")
    with pytest.raises(ConfigError, match="delimiter"):
        load_config(cfg)


@pytest.mark.parametrize("delimiter", [";", "|"], ids=["semicolon", "pipe"])
def test_an_incident_scope_reads_the_file(tmp_path: Path, delimiter: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    data = export(folder / "export.csv", delimiter)
    store = Store("files", "files", path=str(folder))
    with Catalog(tmp_path / "c.db") as cat:
        scan([store], catalog=cat)
        incident = cat.incident(open_by_hand(cat, "files", "2026-11-30T08:00:00+00:00"))
        assert incident is not None
        scope = find_scope(cat, incident, {"files": store}, b"k" * 32)
    assert set(data["customer_id"]) <= set(scope.people)
    assert "email" in {t.split(" (")[0] for t in scope.people[data["customer_id"][3]]}


_cell = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([",", ";", "\t", "|"]), st.integers(min_value=2, max_value=6),
       st.lists(st.lists(_cell, min_size=6, max_size=6), min_size=1, max_size=20))
def test_sniffing_finds_the_writers_delimiter(delimiter: str, width: int, body: list[list[str]]) -> None:
    """Whatever the cells hold (other delimiters, quotes), a file written with quoting of every field
    is read back with its own delimiter."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow([f"h{i}" for i in range(width)])
    for row in body:
        w.writerow(row[:width])
    assert sniff_delimiter(buf.getvalue(), True, ",") == delimiter
