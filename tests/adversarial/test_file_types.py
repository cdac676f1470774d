"""Every file in a folder is read or counted: compressed CSV and JSON Lines (.gz, .zst), .json as
JSON Lines or one array, and the files of unknown type as one problem that names none of them."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.model import ScanMode
from piiguard.scanner import scan

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(path: Path, data: bytes, compression: str | None) -> None:
    if compression == "gzip":
        path.write_bytes(gzip.compress(data))
    elif compression == "zstd":
        with pa.CompressedOutputStream(str(path), "zstd") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@SETTINGS
@given(kind=st.sampled_from(["csv", "jsonl", "json-lines", "json-array"]),
       compression=st.sampled_from([None, "gzip", "zstd"]), rows=st.integers(1, 200),
       unknown=st.lists(st.sampled_from(["notes.txt", "export", "kunde@example.com.bin", "x.csv.bz2",
                                         "x.parquet.gz"]), unique=True, max_size=5),
       mode=st.sampled_from([ScanMode.SAMPLE, ScanMode.FULL]))
def test_every_file_is_read_or_counted(kind: str, compression: str | None, rows: int, unknown: list[str],
                                       mode: ScanMode) -> None:
    emails = [f"t{i}@example.com" for i in range(rows)]
    data = {"csv": ("email\n" + "".join(e + "\n" for e in emails)).encode(),
            "jsonl": "".join(json.dumps({"email": e}) + "\n" for e in emails).encode(),
            "json-lines": "".join(json.dumps({"email": e}) + "\n" for e in emails).encode(),
            "json-array": json.dumps([{"email": e} for e in emails], indent=1).encode()}[kind]
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "json-lines": ".json", "json-array": ".json"}[kind]
    suffix += {None: "", "gzip": ".gz", "zstd": ".zst"}[compression]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        d.mkdir()
        _write(d / f"data{suffix}", data, compression)
        for name in unknown:
            (d / name).write_text("kunde@example.com\n")
        result = scan([f"file://{d}"], mode=mode)
        cols = {c.name: c for c in result.stores[0].collections}
        got = cols[f"data{suffix}"]
        assert got.rows_read == min(rows, 1000) and [f.pii_type for f in got.fields] == ["email"]
        messages = [(p.collection, p.message) for p in result.problems]
        assert messages == ([(".", f"{len(unknown)} file(s) of unknown type not read")] if unknown else [])
        assert "kunde@" not in repr(result)
