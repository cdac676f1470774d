"""How long the CLI takes to answer before it does any work: ``--help``, ``--version``, ``validate``.

Prints the median wall time of N runs of each, beside ``python -c pass`` (the interpreter's own start)
and the modules each one imports (``-X importtime``, cumulative, top 8). Printed, never asserted.

    PYTHONPATH=src python bench/cli_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
stores:
  - {name: prod, engine: postgres, host: db.internal, database: app, user: ro, password_env: PG_PASSWORD}
  - {name: cache, engine: redis, host: cache.internal, password_env: REDIS_PASSWORD}
policy:
  severity: {postgres.trust-auth: critical}
masking:
  prod.customers: {email: pseudonym, phone: {mask: keep-prefix, keep: 4}}
respond:
  responders:
    - {kind: sql-sessions, store: prod, table: sessions, subject_column: user_id}
"""


def wall(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child: on a shared machine the CPU
    time moves less with the other users' load than the wall time does."""
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def heaviest(argv: list[str], env: dict[str, str], top: int = 8) -> list[tuple[int, str]]:
    out = subprocess.run([sys.executable, "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("   "):  # top-level imports only: cumulative times add up
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PG_PASSWORD": "x", "REDIS_PASSWORD": "x"}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "piiguard.yaml"
        config.write_text(CONFIG)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "piiguard --help": [sys.executable, "-m", "piiguard", "--help"],
            "piiguard --version": [sys.executable, "-m", "piiguard", "--version"],
            "piiguard validate": [sys.executable, "-m", "piiguard", "validate", str(config)],
        }
        base: tuple[float, float] | None = None
        print(f"median of {args.runs} runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"  {'':<22} {'wall':>7}    {'over python':>11}   {'CPU':>7}    {'over python':>11}")
        for label, argv in cases.items():
            seconds, cpu = wall(argv, args.runs, env)
            base = (seconds, cpu) if base is None else base
            print(f"  {label:<22} {seconds * 1000:5.0f} ms   {(seconds - base[0]) * 1000:+8.0f} ms   "
                  f"{cpu * 1000:5.0f} ms   {(cpu - base[1]) * 1000:+8.0f} ms")
        for label in ("piiguard --help", "piiguard validate"):
            print(f"\nheaviest top-level imports of `{label}` (cumulative µs):")
            for us, name in heaviest(cases[label], env):
                print(f"  {us:>8}  {name}")


if __name__ == "__main__":
    main()
