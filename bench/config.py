"""Validation time of ``piiguard.yaml`` against its size: 10,000 stores beside 100,000.

Linear time means the 100k run takes about ten times the 10k one. Prints the YAML parse (PyYAML's
loader with piiguard's depth and alias bounds) and the validation (every section, against the
registered plugins) separately, as the median of a few runs. Printed, never asserted.

    PYTHONPATH=src python bench/config.py [--sizes 10000 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from piiguard import plugins
from piiguard.config import load_yaml, parse_config

ENGINES = ("postgres", "mysql", "redis", "clickhouse", "opensearch", "mongodb")


def document(n: int) -> str:
    lines = ["stores:"]
    for i in range(n):
        engine = ENGINES[i % len(ENGINES)]
        lines.append(f"  - {{name: s{i}, engine: {engine}, host: h{i}.internal, port: {1024 + i % 60000}, "
                     f"user: ro, password_env: PW_{i % 50}, tags: {{env: prod, owner: team{i % 40}}}, "
                     f"allowed_networks: [10.{i % 250}.0.0/16]}}")
    lines += ["policy:", "  severity: {postgres.trust-auth: critical}",
              "masking:", "  s0.customers: {email: pseudonym, phone: {mask: keep-prefix, keep: 4}}",
              "respond:", "  responders:",
              "    - {kind: sql-sessions, store: s0, table: sessions, subject_column: user_id}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    schema = plugins.schema()
    print(f"{'stores':>8} {'file MB':>8} {'parse s':>8} {'validate s':>11} {'total s':>8} {'µs/store':>9}")
    base: float | None = None
    for n in args.sizes:
        text = document(n)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "piiguard.yaml").write_text(text)
        parse, check = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            data = load_yaml(text, "piiguard.yaml")
            t1 = time.perf_counter()
            config = parse_config(data, schema=schema)
            t2 = time.perf_counter()
            parse.append(t1 - t0)
            check.append(t2 - t1)
            assert len(config.stores) == n
        p, c = statistics.median(parse), statistics.median(check)
        per = (p + c) / n * 1e6
        base = base or per
        print(f"{n:>8,} {len(text) / 1e6:>8.1f} {p:>8.2f} {c:>11.2f} {p + c:>8.2f} {per:>9.1f}"
              f"   (×{per / base:.2f} per store vs the first size)")


if __name__ == "__main__":
    main()
