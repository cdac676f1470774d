"""Benchmark of copy-link ACCURACY: does ``fingerprints.match`` link copies of prod, and how many people?

    python bench/copy_links.py [--people 20000] [--limit 100000] [--keep DIR]

Sources (registered, scanned with ``piiguard.scanner.scan``, fingerprinted with ``fingerprints.build``):

- ``prod``: a SQLite ``customers`` table of N people made by ``piiguard.synthetic`` (e-mail, full name)
  with ``customer_id`` as zero-padded text (``0010000042``).
- ``legacy``: a SQLite ``customers`` table of N *other* people whose ``customer_id`` is the INTEGER
  1..N — the known weak spot (small sequential keys match any integer column of that range). It is
  there to measure that weak spot: every link to it from a copy is counted as a false link.

Copies (one store each, no server): subsets of prod (5/30/60/100 %), extra people not in prod (0/50 %
of the copy), renamed columns, shuffled rows, e-mails upper-cased or padded with spaces, ids as
integers or zero-padded text, ids only, e-mails only; and negatives (other people, a column 1..N,
booleans and common values).

Two splits. TUNING: what the code's authors used (``piiguard.synthetic``'s en_US generator, English
names like ``member_email``/``ref``, SQLite). HELD-OUT: what nobody tuned on (Faker de_DE / ja_JP /
pt_BR for the extra people and the negatives, obfuscated column names, CSV with ``;``, Parquet with
int64 ids, JSON lines with nested paths). Nothing in src/ may be changed because of held-out results
(docs/benchmark.md).

Baseline in the same run: an exact Python set of prod's normalised values per field (the ground-truth
estimator: a copy's distinct normalised values that are in it), its time and memory.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from faker import Faker  # noqa: E402

from piiguard import synthetic  # noqa: E402
from piiguard.catalog import Catalog  # noqa: E402
from piiguard.config import parse_config  # noqa: E402
from piiguard.discovery import fingerprints as fp  # noqa: E402
from piiguard.model import Store  # noqa: E402
from piiguard.scanner import scan  # noqa: E402

ID_BASE = 10_000_000  # prod's ids: 10,000,000 + i, stored as "00" + 8 digits
Row = dict[str, Any]


# Data --------------------------------------------------------------------------------------------------

@dataclass
class Prod:
    emails: list[str]
    names: list[str]
    ids: list[int]


def make_prod(n: int) -> Prod:
    cols = tuple(c for c in synthetic.COLUMNS if c.name in ("email", "full_name"))
    data = synthetic.rows(n, seed=31, columns=cols)
    return Prod([str(e) for e in data["email"]], [str(x) for x in data["full_name"]],
                [ID_BASE + i for i in range(n)])


def strangers(n: int, locale: str | None, seed: int, avoid: set[str], id_base: int) -> list[Row]:
    """``n`` people in no source: the synthetic generator (locale None) or Faker of ``locale``; e-mails
    of a source dropped (Faker repeats)."""
    out: list[Row] = []
    if locale is None:
        cols = tuple(c for c in synthetic.COLUMNS if c.name in ("email", "full_name"))
        data = synthetic.rows(n * 2 + 100, seed=seed, columns=cols)
        pairs = zip(data["email"], data["full_name"], strict=True)
    else:
        fake = Faker(locale)
        fake.seed_instance(seed)
        pairs = ((fake.email(), fake.name()) for _ in range(n * 3 + 100))
    for e, name in pairs:
        if len(out) == n:
            break
        if str(e).casefold() not in avoid:
            out.append({"id": id_base + len(out), "email": str(e), "name": str(name)})
    return out


def prod_people(prod: Prod, share: float, rnd: random.Random) -> list[Row]:
    chosen = rnd.sample(range(len(prod.ids)), round(len(prod.ids) * share))
    return [{"id": prod.ids[i], "email": prod.emails[i], "name": prod.names[i]} for i in chosen]


# Writers: rows of physical column → value ----------------------------------------------------------------

def write_sqlite(path: Path, rows: list[Row]) -> Store:
    cols = list(rows[0])
    types = {c: "INTEGER" if isinstance(rows[0][c], (int, bool)) else "TEXT" for c in cols}
    with sqlite3.connect(path / "copy.db") as db:
        db.execute(f"CREATE TABLE t ({', '.join(f'{chr(34)}{c}{chr(34)} {types[c]}' for c in cols)})")
        db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})", [tuple(r[c] for c in cols)
                                                                              for r in rows])
    db.close()
    return Store(path.name, "sqlite", path=str(path / "copy.db"))


def write_csv(path: Path, rows: list[Row], delimiter: str = ";") -> Store:
    with open(path / "export.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(list(rows[0]))
        w.writerows([list(r.values()) for r in rows])
    return Store(path.name, "files", path=str(path))


def write_parquet(path: Path, rows: list[Row]) -> Store:
    cols = list(rows[0])
    arrays = {}
    for c in cols:
        vals = [r[c] for r in rows]
        kind = pa.bool_() if isinstance(vals[0], bool) else pa.int64() if isinstance(vals[0], int) else pa.string()
        arrays[c] = pa.array(vals, type=kind)
    pq.write_table(pa.table(arrays), path / "part-0.parquet")
    return Store(path.name, "files", path=str(path))


def write_jsonl(path: Path, rows: list[Row]) -> Store:
    """Dotted names become nested objects: ``contact.mail`` → {"contact": {"mail": …}}."""
    with open(path / "events.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            doc: dict[str, Any] = {}
            for name, v in r.items():
                *parents, leaf = name.split(".")
                at = doc
                for p in parents:
                    at = at.setdefault(p, {})
                at[leaf] = v
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return Store(path.name, "files", path=str(path))


WRITERS: dict[str, Callable[[Path, list[Row]], Store]] = {
    "sqlite": write_sqlite, "csv;": write_csv, "parquet": write_parquet, "jsonl": write_jsonl}


# Variants ----------------------------------------------------------------------------------------------

@dataclass
class Variant:
    name: str
    split: str  # "tuning" or "held-out"
    positive: bool
    fmt: str
    rows: list[Row]  # physical
    true_people: int  # prod people in it
    note: str


def shape(people: list[Row], cols: dict[str, str], *, id_as: str = "text", email: Callable[[str], str] = str,
          rnd: random.Random, shuffle: bool = True) -> list[Row]:
    """Logical rows (id, email, name) → physical rows named by ``cols`` (logical → physical), shuffled."""
    out = []
    for p in people:
        r: Row = {}
        for logical, physical in cols.items():
            if logical == "id":
                r[physical] = p["id"] if id_as == "int" else f"{p['id']:010d}"
            elif logical == "email":
                r[physical] = email(p["email"])
            else:
                r[physical] = p[logical]
        out.append(r)
    if shuffle:
        rnd.shuffle(out)
    return out


def spaced(e: str) -> str:
    return f"  {e} "


def upper_half(e: str) -> str:
    return e.upper() if zlib.crc32(e.encode()) % 2 else e


def variants(prod: Prod, avoid: set[str], rnd: random.Random) -> list[Variant]:
    n = len(prod.ids)
    out: list[Variant] = []
    natural = {"id": "customer_id", "email": "email", "name": "full_name"}
    renamed = {"email": "member_email", "id": "ref", "name": "display"}

    def add(name: str, split: str, fmt: str, share: float, extra: float, cols: dict[str, str], note: str,
            locale: str | None = None, seed: int = 0, repeat: int = 1,
            extras_first: bool = False, **kw: Any) -> None:
        people = prod_people(prod, share, rnd)
        others = strangers(round(len(people) * extra), locale, seed, avoid, 30_000_000 + seed * 100_000) \
            if extra else []
        ordered = others + people if extras_first else people + others
        rows = [p for p in ordered for _ in range(rnd.randint(1, repeat))]  # an orders table: repeats
        out.append(Variant(name, split, True, fmt, shape(rows, cols, rnd=rnd, **kw), len(people), note))

    # tuning: the authors' generator (synthetic, en_US), English names, SQLite
    for share in (0.05, 0.30, 0.60, 1.00):
        add(f"t-subset-{share:.0%}", "tuning", "sqlite", share, 0, natural, "natural names, text ids")
    add("t-30%+50%-extra", "tuning", "sqlite", 0.30, 0.5, renamed, "member_email/ref, extras synthetic", seed=41)
    add("t-60%+50%-extra", "tuning", "sqlite", 0.60, 0.5, renamed, "member_email/ref, extras synthetic", seed=42)
    add("t-upper+int-ids", "tuning", "sqlite", 0.30, 0.5, renamed, "half e-mails UPPER, ids INTEGER", seed=43,
        id_as="int", email=upper_half)
    add("t-spaces", "tuning", "sqlite", 0.60, 0, renamed, "e-mails with spaces", email=spaced)
    add("t-ids-only", "tuning", "sqlite", 0.30, 0.5, {"id": "ref", "name": "display"}, "no e-mail", seed=44)
    add("t-orders-repeats", "tuning", "sqlite", 0.30, 0.5, {"id": "customer_ref", "email": "buyer_email"},
        "each person 1-5 rows", seed=46, repeat=5)
    add("t-ordered-prod-1st", "tuning", "sqlite", 0.30, 2.0, renamed,
        "NOT shuffled: prod's people first, then 2x extras", seed=47, shuffle=False)
    add("t-emails-only", "tuning", "sqlite", 0.30, 0.5, {"email": "member_email"}, "no id", seed=45)

    # held-out: other locales, obfuscated names, other formats
    add("h-parquet-de", "held-out", "parquet", 0.30, 0.5, {"id": "c1", "email": "c2", "name": "c3"},
        "Parquet int64 ids, c1.., extras de_DE", "de_DE", 51, id_as="int")
    add("h-csv;-ja", "held-out", "csv;", 0.60, 0.5, {"name": "x_7f", "email": "qzv", "id": "k0_a"},
        "CSV ;, random names, text ids, extras ja_JP", "ja_JP", 52)
    add("h-jsonl-pt", "held-out", "jsonl", 0.05, 0.5, {"id": "a.k9", "email": "contact.mail", "name": "p.n"},
        "JSON lines nested, int ids, extras pt_BR", "pt_BR", 53, id_as="int")
    add("h-parquet-100%", "held-out", "parquet", 1.00, 0, {"email": "f_01", "id": "f_02"},
        "Parquet, all people, UPPER half, int64 ids", id_as="int", email=upper_half)
    add("h-csv;-spaces-de", "held-out", "csv;", 0.30, 0.5, {"email": "wq8e", "name": "zz"},
        "CSV ;, e-mails only with spaces, extras de_DE", "de_DE", 54, email=spaced)
    add("h-jsonl-ids-ja", "held-out", "jsonl", 0.60, 0.5, {"id": "meta.r.v", "name": "n"},
        "JSON lines nested, ids only as text, extras ja_JP", "ja_JP", 55)

    add("h-parquet-repeats", "held-out", "parquet", 0.30, 0.5, {"id": "u", "email": "v"},
        "Parquet, each person 1-5 rows, extras pt_BR", "pt_BR", 56, id_as="int", repeat=5)

    add("h-csv;-extras-first", "held-out", "csv;", 0.30, 2.0, {"email": "q1", "id": "q2"},
        "NOT shuffled, extras (de_DE) first", "de_DE", 57, shuffle=False, extras_first=True)

    # negatives
    def neg(name: str, split: str, fmt: str, rows: list[Row], note: str) -> None:
        out.append(Variant(name, split, False, fmt, rows, 0, note))

    other = strangers(n, None, 61, avoid, 40_000_000)
    neg("t-neg-other-people", "tuning", "sqlite", shape(other, natural, rnd=rnd), "synthetic seed 61, ids 40M+")
    neg("t-neg-seq-ints", "tuning", "sqlite", [{"n": i + 1, "label": f"row {i + 1}"} for i in range(n)],
        "INTEGER 1..N beside text")
    neg("t-neg-bools", "tuning", "sqlite",
        [{"is_active": rnd.random() < 0.8, "plan": rnd.choice(("free", "plus", "pro")),
          "login_count": rnd.randint(0, 500)} for _ in range(n)], "booleans, enums, counts 0..500")
    for loc, fmt, seed, cols in (("de_DE", "parquet", 71, {"id": "c1", "email": "c2", "name": "c3"}),
                                 ("ja_JP", "csv;", 72, {"email": "x_7f", "name": "qq", "id": "r2"}),
                                 ("pt_BR", "jsonl", 73, {"id": "a.k9", "email": "contact.mail", "name": "p.n"})):
        people = strangers(n, loc, seed, avoid, 50_000_000 + seed * 100_000)
        neg(f"h-neg-{loc}", "held-out", fmt, shape(people, cols, rnd=rnd, id_as="int"), f"Faker {loc}")
    neg("h-neg-seq-ints", "held-out", "parquet", [{"x_3a": i + 1, "v": rnd.random() < 0.5} for i in range(n)],
        "Parquet int64 1..N")
    neg("h-neg-seq-ints-half", "held-out", "csv;", [{"k": i + 1} for i in range(n // 2)],
        "CSV ; 1..N/2")
    neg("h-neg-counter-10M", "held-out", "parquet",
        [{"invoice_no": ID_BASE + n // 4 + i, "paid": rnd.random() < 0.5} for i in range(n)],
        "int64 invoice numbers from 10,005,000: prod's id range, other meaning")
    neg("h-neg-common", "held-out", "jsonl",
        [{"s": {"ok": rnd.random() < 0.5, "lvl": rnd.choice(("low", "mid", "high")), "n": rnd.randint(1, 9)}}
         for _ in range(n)], "JSON lines booleans, enums, digits")
    return out


# Baseline: exact sets of normalised values --------------------------------------------------------------

def exact_sets(fields: dict[str, tuple[list[str], fp.Kind]]) -> dict[str, tuple[set[str], fp.Kind]]:
    out = {}
    for name, (values, kind) in fields.items():
        out[name] = ({x for v in values if (x := fp.normalise(v, kind)) is not None}, kind)
    return out


def exact_estimate(sets: dict[str, tuple[set[str], fp.Kind]], rows: list[Row]) -> tuple[int, list[str]]:
    """The copy's best field: its distinct normalised values found in a source field's set."""
    best, fields = 0, []
    for col in rows[0]:
        vals = [str(r[col]) if not isinstance(r[col], bool) else str(r[col]).lower() for r in rows]
        for src, (s, kind) in sets.items():
            got = len({x for v in vals if (x := fp.normalise(v, kind)) is not None} & s)
            if got > 0:
                fields.append(f"{col}={src}:{got}")
            best = max(best, got)
    return best, fields


def pairs(link: Any) -> str:
    return ",".join(f"{a}={b}" for a, b in zip(link.fields, link.source_fields, strict=True))


# Run ---------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=100_000, help="records read per collection by match")
    parser.add_argument("--sample", type=int, default=2_000,
                        help="a second match of each positive copy reading only this many records (0: none)")
    parser.add_argument("--keep", type=Path, help="write the stores here and keep them")
    args = parser.parse_args()
    n = args.people
    key = os.urandom(32)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-links-"))
    work.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(13)
    print(f"people {n:,}, match limit {args.limit:,}, cores {os.cpu_count()}, work {work}")

    t = time.perf_counter()
    prod = make_prod(n)
    legacy = strangers(n, None, 97, {e.casefold() for e in prod.emails}, 0)
    with sqlite3.connect(work / "prod.db") as db:
        db.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT, full_name TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                       [(f"{i:010d}", e, x) for i, e, x in zip(prod.ids, prod.emails, prod.names, strict=True)])
    with sqlite3.connect(work / "legacy.db") as db:
        db.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, email TEXT, full_name TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                       [(i + 1, p["email"], p["name"]) for i, p in enumerate(legacy)])
    avoid = {e.casefold() for e in prod.emails} | {p["email"].casefold() for p in legacy}
    copies = variants(prod, avoid, rnd)
    print(f"generate {time.perf_counter() - t:.1f} s (not counted)")

    cfg = parse_config({"stores": [{"name": "prod", "url": f"sqlite://{work / 'prod.db'}"},
                                   {"name": "legacy", "url": f"sqlite://{work / 'legacy.db'}"}]})
    catalog = work / "catalog.db"
    with Catalog(catalog) as cat:
        t = time.perf_counter()
        scan([Store("prod", "sqlite", path=str(work / "prod.db")),
              Store("legacy", "sqlite", path=str(work / "legacy.db"))], catalog=cat, sample_size=2000)
        scan_s = time.perf_counter() - t
        t = time.perf_counter()
        built = fp.build(cfg, cat, key, ["prod", "legacy"])
        build_s = time.perf_counter() - t
    print(f"scan {scan_s:.1f} s; build {build_s:.1f} s: " + "; ".join(
        f"{b.store}.{b.collection}.{b.field} ({b.kind.value}, {b.people:,} people)" for b in built))
    if not any(b.store == "legacy" and b.kind is fp.Kind.KEY for b in built):
        print("NOTE: legacy's INTEGER 1..N customer_id was not fingerprinted (not chosen as the subject key)")

    # Baseline sets of prod (and legacy), normalised, exact.
    tracemalloc.start()
    t = time.perf_counter()
    sets = exact_sets({"email": (prod.emails, fp.Kind.EMAIL),
                       "customer_id": ([f"{i:010d}" for i in prod.ids], fp.Kind.KEY)})
    base_build = time.perf_counter() - t
    base_mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    legacy_sets = exact_sets({"legacy.email": ([p["email"] for p in legacy], fp.Kind.EMAIL),
                              "legacy.customer_id": ([str(i + 1) for i in range(n)], fp.Kind.KEY)})
    with Catalog(catalog) as cat:
        bloom_bytes = sum(s.bloom.bits // 8 for s in fp.sources(cat, key) if s.store == "prod")
    print(f"baseline exact sets of prod's 2 fields: build {base_build:.2f} s, {base_mem / 1e6:.1f} MB "
          f"(prod's 2 Bloom sets: {bloom_bytes / 1e3:.0f} KB)")

    results = []
    print()
    print(f"{'variant':<22} {'split':<8} {'fmt':<7} {'rows':>6} {'true':>6} {'est':>6} {'exact':>6} {'rel.err':>8} "
          f"{'linked':<6} {'false':>5} {'sampled':>13}  fields matched / links | note")
    for v in copies:
        folder = work / v.name.replace("%", "pct").replace(";", "semi").replace("+", "_")
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        store = WRITERS[v.fmt](folder, v.rows)
        values = len(v.rows) * len(v.rows[0])
        with Catalog(catalog) as cat:
            t = time.perf_counter()
            links = fp.match(store, cat, key, limit=args.limit)
            match_s = time.perf_counter() - t
            sampled = fp.match(store, cat, key, limit=args.sample) if args.sample and v.positive else []
        t = time.perf_counter()
        exact, _ = exact_estimate(sets, v.rows)
        exact_s = time.perf_counter() - t
        legacy_exact, _ = exact_estimate(legacy_sets, v.rows)
        to_prod = [x for x in links if x.source_store == "prod"]
        false = [x for x in links if x.source_store != "prod"] + ([] if v.positive else to_prod)
        est = to_prod[0].people if to_prod else 0
        rel = abs(est - v.true_people) / v.true_people if v.positive and v.true_people else None
        s_est = next((x.people for x in sampled if x.source_store == "prod"), 0)
        s_rel = abs(s_est - v.true_people) / v.true_people if v.positive and args.sample else None
        fields = "; ".join(f"{x.source_store}: {pairs(x)} ({x.people:,})" for x in links) or "-"
        to_legacy = sum(x.source_store == "legacy" for x in links)
        results.append({"v": v, "est": est, "to_legacy": to_legacy, "rel": rel,
                        "linked": bool(to_prod), "false": len(false),
                        "values": values, "match_s": match_s, "exact_s": exact_s, "exact": exact,
                        "legacy_exact": legacy_exact, "s_est": s_est, "s_rel": s_rel})
        print(f"{v.name:<22} {v.split:<8} {v.fmt:<7} {len(v.rows):>6,} {v.true_people:>6,} {est:>6,} {exact:>6,} "
              f"{'-' if rel is None else f'{rel:.1%}':>8} {'yes' if to_prod else 'no':<6} {len(false):>5} "
              f"{'-' if s_rel is None else f'{s_est:,} {s_rel:.0%}':>13}  "
              f"{fields} | {v.note}" + (f" [exact in legacy: {legacy_exact:,}]" if legacy_exact else ""))
        if args.keep is None:
            shutil.rmtree(folder)

    print()
    for split in ("tuning", "held-out"):
        mine = [r for r in results if r["v"].split == split]
        pos = [r for r in mine if r["v"].positive]
        neg = [r for r in mine if not r["v"].positive]
        errs = [r["rel"] for r in pos if r["rel"] is not None]
        s_errs = [r["s_rel"] for r in pos if r["s_rel"] is not None]
        s_linked = sum(r["s_est"] > 0 for r in pos)
        ex_errs = [abs(r["exact"] - r["v"].true_people) / r["v"].true_people for r in pos]
        vals = sum(r["values"] for r in mine)
        ms = sum(r["match_s"] for r in mine)
        es = sum(r["exact_s"] for r in mine)
        false_pos = sum(r["false"] for r in pos)
        print(f"[{split}] recall {sum(r['linked'] for r in pos)}/{len(pos)} copies linked; false links on "
              f"negatives {sum(r['false'] for r in neg)} ({sum(r['false'] - r['to_legacy'] for r in neg)} to prod, "
              f"{sum(r['to_legacy'] for r in neg)} to legacy's 1..N key; of {len(neg)} negatives: "
              f"{', '.join(r['v'].name for r in neg if r['false']) or 'none'}); false links on positives "
              f"{false_pos}; estimate rel. error median {statistics.median(errs):.1%}, worst {max(errs):.1%}; "
              f"sampled ({args.sample:,} records) linked {s_linked}/{len(pos)}, rel. error median "
              f"{statistics.median(s_errs) if s_errs else 0:.1%}, worst {max(s_errs, default=0):.1%}; "
              f"exact baseline median {statistics.median(ex_errs):.1%}, worst {max(ex_errs):.1%}; "
              f"match {vals / ms:,.0f} values/s ({ms:.1f} s over {vals:,} values, read+hash+test); "
              f"baseline exact {vals / es:,.0f} values/s")
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
