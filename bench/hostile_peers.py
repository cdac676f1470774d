"""Benchmark for time bounds: the worst time of each command against hostile peers, per engine.

    python bench/hostile_peers.py [--timeout 2] [--behaviours silent,drip] [--schemes redis,s3]

Each hostile peer is a socket on 127.0.0.1 (tests/adversarial/peers.py) that is silent after
accepting, answers garbage, streams bytes without end, hangs up at once, or drips one byte a second.
For every URL scheme × command (scan, check, copy's source side, incident scope and evidence) × peer
it runs the command's library call in process and times it; then prints, per scheme and command, the
worst time and the peer that caused it, beside the bound (2 × timeout + 3 s). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))
sys.path.insert(0, str(ROOT / "src"))

from peers import BEHAVIOURS, COMMANDS, SCHEMES, elapsed, hostile, run_command  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--behaviours", default=",".join(BEHAVIOURS))
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    parser.add_argument("--commands", default=",".join(COMMANDS))
    args = parser.parse_args()
    bound = 2 * args.timeout + 3
    from piiguard import plugins

    plugins.load()  # imports (Arrow, DuckDB, drivers) once, before any clock starts
    worst: dict[tuple[str, str], tuple[float, str]] = {}
    for scheme in args.schemes.split(","):
        for command in args.commands.split(","):
            for behaviour in args.behaviours.split(","):
                with tempfile.TemporaryDirectory() as folder, hostile(behaviour, scheme) as store:
                    seconds, error = elapsed(lambda: run_command(command, store, args.timeout, folder))
                print(f"{scheme:18} {command:9} {behaviour:8} {seconds:6.2f} s  "
                      f"{type(error).__name__ if error else 'returned'}", flush=True)
                if seconds > worst.get((scheme, command), (-1.0, ""))[0]:
                    worst[(scheme, command)] = (seconds, behaviour)
    commands = args.commands.split(",")
    print(f"\nworst seconds per scheme and command (--timeout {args.timeout:g}; bound {bound:g} s)")
    print(f"{'scheme':18} " + " ".join(f"{c:>16}" for c in commands))
    for scheme in args.schemes.split(","):
        cells = [worst.get((scheme, c)) for c in commands]
        print(f"{scheme:18} " + " ".join(f"{w[0]:7.2f} {w[1]:>8}" if w else f"{'-':>16}" for w in cells))


if __name__ == "__main__":
    main()
