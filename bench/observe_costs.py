"""Where a full scan's classification time goes: ``Classifier.observe`` per field and per step (h8).

    python bench/observe_costs.py DIR [--steps] [--before SRC]

Reads every Parquet/CSV file of DIR through the file connector (as a full scan does), keeps the
batches in memory, then observes every field single-threaded with a classifier built the way
scanner.py builds it. Prints MB/s of the files (observe alone, and a threaded full scan), the
slowest fields, and with ``--steps`` the time per step and per detector. With ``--before SRC`` (the
``src`` directory of another checkout, e.g. ``git worktree add /tmp/base issue14``) it runs itself
under that tree and this one, twice each in turn (the machine is shared: take the best), and prints
both MB/s and whether the decisions are the same. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from piiguard import plugins
from piiguard.classify import engine, native
from piiguard.classify.engine import Classifier
from piiguard.classify.profile import Profile
from piiguard.connectors.base import connectors
from piiguard.model import ScanMode
from piiguard.scanner import BATCH_ROWS, resolve_stores, scan

COSTS: dict[str, float] = defaultdict(float)


def timed(owner: object, attr: str, key: object) -> None:
    """Wrap ``owner.attr`` so its time adds to COSTS[key(args)] (key: a name or a function of the args)."""
    inner = getattr(owner, attr)

    def wrapper(*a, **k):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            COSTS[key(*a) if callable(key) else key] += time.perf_counter() - t

    setattr(owner, attr, wrapper)


def instrument() -> None:
    timed(Profile, "update", "profile.update")
    timed(native.Numbers, "update", "numbers.update")
    timed(native.Countries, "update", "countries.update")
    timed(Classifier, "_present", lambda self, db, names, data: "hyperscan " + ("anchored" if db is self._anchored
                                                                               else "embedded"))
    timed(Classifier, "_validated", lambda self, st, d, m, w: f"validate {d.name}")
    timed(Classifier, "_observe_embedded", "embedded (all)")
    base = engine.pc
    real = base.match_substring_regex

    class PC:  # engine's pc, with the anchored RE2 match timed per pattern
        def __getattr__(self, name: str) -> object:
            fn = getattr(base, name)
            if not callable(fn):
                return fn

            def call(*a, **k):  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    COSTS["pc." + name] += time.perf_counter() - t

            return call

    proxy = PC()
    names: dict[str, str] = {}

    def match(values, pattern, **k):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return real(values, pattern, **k)
        finally:
            COSTS["re2 " + names.get(pattern, pattern[:20])] += time.perf_counter() - t

    proxy.match_substring_regex = match  # type: ignore[attr-defined]
    engine.pc = proxy  # type: ignore[assignment]
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--steps", action="store_true")
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--before", type=Path, help="the src directory of the code to compare with")
    args = ap.parse_args()
    if args.before:
        compare(args.dir, args.before)
        return
    files = sorted(p for p in args.dir.iterdir() if p.suffix in (".parquet", ".csv"))
    mb = sum(p.stat().st_size for p in files) / 1e6
    plugins.load()
    classifier = Classifier(plugins.detectors_for(()))
    batches = []
    t = time.perf_counter()
    for store in resolve_stores([f"file://{p}" for p in files], None):
        conn = connectors.get(store.engine)(store, timeout=10.0)
        conn.open()
        for info in conn.collections():
            batches += [(info.name, b) for b in conn.batches(info, BATCH_ROWS)]
    print(f"{len(files)} files, {mb:.1f} MB, {len(batches)} batches read in {time.perf_counter() - t:.2f} s")
    if args.steps:
        names = instrument()
        for c in classifier._compiled:
            names[c.full] = c.detector.name
            if c.full_ctx:
                names[c.full_ctx] = c.detector.name + " (ctx)"
    states: dict[tuple[str, str], engine.FieldState] = {}
    per_field: dict[tuple[str, str], float] = defaultdict(float)
    t0, c0 = time.perf_counter(), time.process_time()
    for coll, b in batches:
        for name, arr in b.columns.items():
            st = states.setdefault((coll, name), classifier.new_state(name))
            t = time.perf_counter()
            classifier.observe(st, arr, b.types.get(name))
            per_field[(coll, name)] += time.perf_counter() - t
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"observe, one thread: {el:.2f} s = {mb / el:.1f} MB/s")
    print(f"observe CPU time: {cpu:.2f} s = {mb / cpu:.1f} MB/s (what a loaded, shared machine distorts least)")
    decisions = {k: classifier.decide(s, "x", k[0]) for k, s in states.items()}
    print("decisions:", sorted((k[0].rsplit("/", 1)[-1], k[1], c.pii_type, c.confidence) for k, c in decisions.items()))
    print("slowest fields:")
    for k, v in sorted(per_field.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {v:6.2f} s  {k[0].rsplit('/', 1)[-1]}:{k[1]}")
    if args.steps:
        print("steps (inclusive; 'embedded (all)' contains its hyperscan and validators; pc.* are the "
              "engine module's own Arrow calls, re2 * its anchored matches):")
        for k, v in sorted(COSTS.items(), key=lambda kv: -kv[1])[:30]:
            print(f"  {v:6.2f} s  {k}")
    if not args.no_scan:
        t = time.perf_counter()
        scan([f"file://{p}" for p in files], mode=ScanMode.FULL)
        el = time.perf_counter() - t
        print(f"full scan (threads): {el:.2f} s = {mb / el:.1f} MB/s")


def compare(data: Path, before: Path) -> None:
    here = Path(__file__).resolve().parent.parent / "src"
    runs: dict[str, list[str]] = {"before": [], "after": []}
    for _ in range(2):
        for label, src in (("before", before), ("after", here)):
            out = subprocess.run([sys.executable, __file__, str(data)], capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(src)}).stdout
            runs[label].append(out)
    best = {}
    for label, outs in runs.items():
        lines = [ln for out in outs for ln in out.splitlines()]
        observe = max(float(ln.split("=")[1].split()[0]) for ln in lines if ln.startswith("observe"))
        cpu = max(float(ln.split("=")[1].split()[0]) for ln in lines if ln.startswith("observe CPU"))
        full = max(float(ln.split("=")[1].split()[0]) for ln in lines if ln.startswith("full scan"))
        best[label] = [ln for ln in outs[0].splitlines() if ln.startswith("decisions")]
        print(f"{label:6s} observe, one thread {observe:5.1f} MB/s ({cpu:5.1f} MB/s of CPU time); "
              f"full scan (threads) {full:5.1f} MB/s  (best of 2)")
    print("decisions the same:", best["before"] == best["after"])


if __name__ == "__main__":
    main()
