"""Benchmark for time bounds: the worst time of each command against hostile peers, per engine.

    python bench/hostile_peers.py [--timeout 2] [--behaviours silent,drip] [--schemes redis,s3]

Each hostile peer is a socket on 127.0.0.1 (tests/adversarial/peers.py) that is silent after
accepting, answers garbage, streams bytes without end, hangs up at once, or drips one byte a second;
the engines' TLS variants (``+tls``) meet silent, endless and dripping peers after a completed TLS
handshake.
For every URL scheme × command (scan, check, copy's source side, incident scope and evidence) × peer
it runs the command's library call in process and times it; then prints, per scheme and command, the
worst time and the peer that caused it, beside the bound (2 × timeout + 3 s). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))
sys.path.insert(0, str(ROOT / "src"))

from peers import (  # noqa: E402
    BEHAVIOURS,
    COMMANDS,
    SCHEMES,
    TLS_BEHAVIOURS,
    TLS_SCHEMES,
    elapsed,
    hostile,
    run_command,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--behaviours", default=",".join(BEHAVIOURS))
    parser.add_argument("--schemes", default=",".join([*SCHEMES, *TLS_SCHEMES]))
    parser.add_argument("--commands", default=",".join(COMMANDS))
    args = parser.parse_args()
    bound = 2 * args.timeout + 3
    from piiguard import plugins

    plugins.load()  # imports (Arrow, DuckDB, drivers) once, before any clock starts
    worst: dict[tuple[str, str], tuple[float, str]] = {}
    for scheme in args.schemes.split(","):
        for command in args.commands.split(","):
            tls = scheme in TLS_SCHEMES  # TLS variants meet the peers after a completed handshake
            for behaviour in (list(TLS_BEHAVIOURS) if tls else args.behaviours.split(",")):
                with tempfile.TemporaryDirectory() as folder, hostile(behaviour, scheme) as store:
                    seconds, error = elapsed(functools.partial(run_command, command, store, args.timeout, folder))
                print(f"{scheme:18} {command:9} {behaviour:11} {seconds:6.2f} s  "
                      f"{type(error).__name__ if error else 'returned'}", flush=True)
                if seconds > worst.get((scheme, command), (-1.0, ""))[0]:
                    worst[(scheme, command)] = (seconds, behaviour)
    commands = args.commands.split(",")
    print(f"\nworst seconds per scheme and command (--timeout {args.timeout:g}; bound {bound:g} s)")
    print(f"{'scheme':18} " + " ".join(f"{c:>19}" for c in commands))
    for scheme in args.schemes.split(","):
        cells = [worst.get((scheme, c)) for c in commands]
        print(f"{scheme:18} " + " ".join(f"{w[0]:7.2f} {w[1]:>11}" if w else f"{'-':>19}" for w in cells))


if __name__ == "__main__":
    main()
