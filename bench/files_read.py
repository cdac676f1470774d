"""Benchmark for the files reader (what `incident scope` and `copy` read a file export with), beside
the plain way to read the same file in the same process.

    python bench/files_read.py [--rows 1000000] [--format csv|jsonl|parquet|all]

Each format is generated once (member id, e-mail, phone; JSON Lines and Parquet also a nested
profile and a list of devices with serials), then read whole twice: by ``Files.read`` at the
scan's field paths (``profile.email``, ``devices[].serial`` as ``list<string>``), and by the
baseline — Arrow's streaming CSV reader, ``json.loads`` per line, ``ParquetFile.iter_batches`` —
which reads the same bytes without naming paths. Each read runs in a child process, so its peak RSS is
its own. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import Any


def generate(folder: Path, rows: int, fmt: str) -> Path:
    path = folder / f"members.{fmt}"
    if fmt == "csv":
        with path.open("w") as f:
            f.write("id,email,phone\n")
            for i in range(rows):
                f.write(f"mem-{i:08d},user{i}@example.org,+44 20 7946 {i % 10000:04d}\n")
    elif fmt == "jsonl":
        with path.open("w") as f:
            for i in range(rows):
                f.write(json.dumps({"member_id": f"mem-{i:08d}", "profile": {"email": f"user{i}@example.org"},
                                    "devices": [{"serial": f"SN-{i:08d}"}, {"serial": f"SN-{i + 1:08d}"}]}) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, pa.schema([("member_id", pa.string()),
                                               ("profile", pa.struct([("email", pa.string())])),
                                               ("devices", pa.list_(pa.struct([("serial", pa.string())])))])) as w:
            for start in range(0, rows, 100_000):
                n = min(100_000, rows - start)
                w.write_table(pa.Table.from_pylist([
                    {"member_id": f"mem-{i:08d}", "profile": {"email": f"user{i}@example.org"},
                     "devices": [{"serial": f"SN-{i:08d}"}, {"serial": f"SN-{i + 1:08d}"}]}
                    for i in range(start, start + n)]))
    return path


def piiguard_read(path: Path, out: Any) -> None:
    from piiguard import plugins
    from piiguard.connectors.files import Files
    from piiguard.masking.pipeline import find_collection
    from piiguard.model import Store

    plugins.load()
    started = time.monotonic()
    rows = 0
    with Files(Store("bench", "files", path=str(path.parent))) as files:
        info = find_collection(files, path.name)
        columns = files.columns(info)
        for batch in files.read(info, columns, 100_000):
            rows += batch.num_rows
    out.put((rows, time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def baseline_read(path: Path, out: Any) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.monotonic()
    rows = 0
    if path.suffix == ".csv":
        for batch in pacsv.open_csv(path):
            rows += batch.num_rows
    elif path.suffix == ".jsonl":
        with path.open("rb") as f:
            for line in f:
                json.loads(line)
                rows += 1
    else:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000):
            rows += batch.num_rows
    out.put((rows, time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def timed(target: Any, path: Path) -> tuple[int, float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(path, queue))
    child.start()
    result: tuple[int, float, float] = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", default="all", choices=["csv", "jsonl", "parquet", "all"])
    args = parser.parse_args()
    formats = ["csv", "jsonl", "parquet"] if args.format == "all" else [args.format]
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        print(f"{'format':8} {'reader':10} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12}")
        for fmt in formats:
            path = generate(Path(tmp), args.rows, fmt)
            size = path.stat().st_size / 1e6
            figures = {}
            for name, target in (("baseline", baseline_read), ("piiguard", piiguard_read)):
                rows, seconds, rss = timed(target, path)
                figures[name] = seconds
                print(f"{fmt:8} {name:10} {rows:>10,} {seconds:>8.2f} {rows / seconds:>10,.0f} {rss:>12.0f}")
            print(f"{fmt:8} {size:.0f} MB on disk; piiguard / baseline time: "
                  f"{figures['piiguard'] / figures['baseline']:.2f}")
            path.unlink()


if __name__ == "__main__":
    main()
