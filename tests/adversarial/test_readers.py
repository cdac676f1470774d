"""Readers never truncate silently and never crash, whatever the file holds (Hypothesis).

Generated CSV and JSON Lines files with ragged rows, random headers (Rich markup included), random
nesting and random bytes are scanned through the files connector: the scan returns, every row it did
not read is counted in a problem on that collection, the other collection in the folder is still read,
and no generated value appears in the JSON report, the table or the catalog.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from piiguard.catalog import Catalog
from piiguard.connectors.labels import header_is_data
from piiguard.model import ProblemKind, ScanMode, ScanResult
from piiguard.report import render_json, render_table
from piiguard.scanner import scan

SETTINGS = settings(max_examples=int(__import__('os').environ.get('HA_EXAMPLES', '25')), deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTROL = "email\n" + "".join(f"ctl{i}@example.com\n" for i in range(20))  # a well-formed neighbour

# Values carry a unique marker so that finding one in an output cannot be a coincidence.
values = st.integers(0, 10**9).map(lambda i: f"zq{i}x@example.com")
header_cells = st.one_of(st.sampled_from(["[/]", "[bold]x[/bold]", "[link=https://example.org]l[/link]", ":smile:",
                                          "email", "\x1b[2J", "a,b", 'q"uote', ""]),
                         st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))


def run(folder: Path) -> tuple[ScanResult, str]:
    catalog = folder.parent / "c.db"
    with Catalog(catalog) as cat:
        result = scan([f"file://{folder}"], catalog=cat, mode=ScanMode.FULL)
    table = io.StringIO()
    render_table(result, Console(file=table, width=250), all_fields=True)
    text = render_json(result) + table.getvalue()
    for f in folder.parent.glob("c.db*"):
        text += f.read_bytes().decode("utf-8", "replace")
    return result, text


def problems(result: ScanResult, collection: str) -> list[str]:
    return [p.message for p in result.problems if p.collection == collection and p.kind is ProblemKind.COLLECTION]


def control_read(result: ScanResult) -> None:
    c = {c.name: c for c in result.stores[0].collections}["control.csv"]
    assert c.rows_read == 20 and [f.pii_type for f in c.fields] == ["email"]


@SETTINGS
@given(header=st.lists(header_cells, min_size=1, max_size=5),
       rows=st.lists(st.lists(values, min_size=1, max_size=7), min_size=1, max_size=40))
def test_generated_csv(header: list[str], rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        d.mkdir()
        (d / "control.csv").write_text(CONTROL)
        quoted = [",".join('"' + c.replace('"', '""') + '"' for c in header)]
        body = "\n".join(quoted + [",".join(r) for r in rows]) + "\n"
        (d / "gen.csv").write_text(body)
        result, text = run(d)
        control_read(result)
        gen = {c.name: c for c in result.stores[0].collections}.get("gen.csv")
        assert gen is not None
        ragged = sum(1 for r in rows if len(r) != len(header))
        records = len(rows) + (1 if header_is_data(header, rows[:50]) else 0)  # a data-like header is a record
        messages = problems(result, "gen.csv")
        if ragged and gen.rows_read == 0:  # nothing read: said plainly, not "the rest was classified"
            assert f"no row could be read: {ragged:,} row(s) with the wrong number of fields skipped" in messages
        elif ragged:
            assert f"{ragged:,} row(s) with the wrong number of fields skipped; {gen.rows_read:,} row(s) read" \
                in messages
        else:
            assert messages == [] and gen.rows_read == records
        assert gen.rows_read + ragged == records  # every row is read or counted
        for r in rows:
            for v in r:
                assert v not in text


def nested(depth: int, leaf: str) -> object:
    doc: object = {"email": leaf}
    for i in range(depth):
        doc = {f"k{i % 3}": doc} if i % 2 else [doc]
    return {"wrap": doc}


@SETTINGS
@given(depths=st.lists(st.integers(0, 300), min_size=1, max_size=6), garbage=st.binary(max_size=64),
       leaf=values)
@example(depths=[62], garbage=b"\xbb", leaf="jane.roe@example.org")  # Arrow passed over the lone bad line
def test_generated_jsonl_nesting_and_bytes(depths: list[int], garbage: bytes, leaf: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        d.mkdir()
        (d / "control.csv").write_text(CONTROL)
        lines = [json.dumps(nested(n, leaf)).encode() for n in depths]
        garbage = garbage.replace(b"\n", b" ")
        (d / "gen.jsonl").write_bytes(b"\n".join([*lines, garbage]) + b"\n")
        result, text = run(d)  # never a RecursionError, whatever the depth
        control_read(result)
        messages = problems(result, "gen.jsonl")
        if any(n + 1 >= 64 for n in depths):
            assert any("nested deeper than 64 levels" in m for m in messages)
        bad_garbage = garbage.strip() != b"" and not _is_json_object(garbage)
        if bad_garbage:
            assert any(("not valid" in m or "not JSON objects" in m) for m in messages), messages
        if not bad_garbage and all(n + 1 < 64 for n in depths):
            assert messages == []
        assert leaf not in text


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


@SETTINGS
@given(noise=st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=10), leaf=values)
def test_random_bytes_in_a_csv_column(noise: list[bytes], leaf: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        d.mkdir()
        (d / "control.csv").write_text(CONTROL)
        cells = [b'"' + n.replace(b'"', b'""') + b'"' for n in noise]
        (d / "gen.csv").write_bytes(b"email,blob\n" + b"".join(leaf.encode() + b"," + c + b"\n" for c in cells))
        result, text = run(d)
        control_read(result)
        # Each byte sequence that is not UTF-8 is replaced (U+FFFD) and counted, the row still read.
        invalid = sum(n.decode("utf-8", "replace").count("\ufffd") - n.count("\ufffd".encode()) for n in noise)
        messages = problems(result, "gen.csv")
        gen = {c.name: c for c in result.stores[0].collections}["gen.csv"]
        assert gen.rows_read == len(noise)
        if invalid:
            assert f"{invalid:,} byte sequence(s) not valid UTF-8 skipped; {gen.rows_read:,} row(s) read" in messages
        assert leaf not in text


def test_a_100_mb_line_is_skipped_and_counted(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    with (d / "big.jsonl").open("w") as f:
        f.write('{"email": "first.one@example.com"}\n')
        f.write('{"blob": "' + "x" * 100_000_000 + '"}\n')
        f.writelines(f'{{"email": "after{i}@example.com"}}\n' for i in range(50))
    (d / "control.csv").write_text(CONTROL)
    result, text = run(d)
    control_read(result)
    big = {c.name: c for c in result.stores[0].collections}["big.jsonl"]
    assert big.rows_read == 51 and [f.field for f in big.fields] == ["email"]
    assert problems(result, "big.jsonl") == ["1 line(s) longer than 1 MiB skipped; 51 row(s) read"]
    assert "after3@example.com" not in text


def test_ten_thousand_deep_jsonl_and_truncated_parquet(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000
    (d / "deep.jsonl").write_text(deep + "\n" + '{"email": "kept@example.com"}\n')
    table = pa.table({"email": [f"p{i}@example.com" for i in range(50_000)]})
    pq.write_table(table, d / "whole.parquet", row_group_size=10_000)
    data = (d / "whole.parquet").read_bytes()
    (d / "cut.parquet").write_bytes(data[: len(data) // 2])  # no footer: unreadable, said so
    (d / "control.csv").write_text(CONTROL)
    result, _ = run(d)
    control_read(result)
    assert problems(result, "deep.jsonl") == ["1 line(s) nested deeper than 64 levels skipped; 1 row(s) read"]
    assert problems(result, "cut.parquet") and "cannot read the file" in problems(result, "cut.parquet")[0]
    assert {c.name: c.rows_read for c in result.stores[0].collections}["whole.parquet"] == 50_000


def test_ragged_rows_are_a_problem_through_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "r.csv").write_text("email,n\n" + "".join(f"r{i}@example.com,{i}\n" for i in range(30))
                                    + "extra@example.com,1,2\n")
    cli = subprocess.run([sys.executable, "-m", "piiguard", "scan", f"file://{tmp_path}/r.csv", "--format", "json",
                          "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1
    report = json.loads(cli.stdout)
    assert report["stores"][0]["problems"][0]["message"] == \
        "1 row(s) with the wrong number of fields skipped; 30 row(s) read"
    assert "extra@" not in cli.stdout + cli.stderr


def test_corrupt_parquet_page_stops_with_the_rows_read_counted(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    pq.write_table(pa.table({"email": [f"p{i}@example.com" for i in range(50_000)]}), d / "x.parquet",
                   row_group_size=10_000)
    column = pq.ParquetFile(d / "x.parquet").metadata.row_group(3).column(0)
    data = bytearray((d / "x.parquet").read_bytes())
    data[column.data_page_offset + 40:column.data_page_offset + 240] = b"\xff" * 200  # footer intact
    (d / "x.parquet").write_bytes(bytes(data))
    (d / "control.csv").write_text(CONTROL)
    result, _ = run(d)
    control_read(result)
    read = {c.name: c.rows_read for c in result.stores[0].collections}["x.parquet"]
    assert 0 < read < 40_000
    assert problems(result, "x.parquet") == [
        f"reading stopped: the file is malformed or ends early (OSError); {read:,} row(s) read before it"]


def test_an_over_long_csv_row_is_skipped_and_counted(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "wide.csv").write_text("email,blob\n" + "".join(f"w{i}@example.com,x\n" for i in range(10))
                                + "long@example.com," + "y" * 5_000_000 + "\n"
                                + "".join(f"v{i}@example.com,x\n" for i in range(10)))
    (d / "control.csv").write_text(CONTROL)
    result, text = run(d)
    control_read(result)
    assert {c.name: c.rows_read for c in result.stores[0].collections}["wide.csv"] == 20
    assert problems(result, "wide.csv") == ["1 line(s) longer than 1 MiB skipped; 20 row(s) read"]
    assert "long@example.com" not in text
