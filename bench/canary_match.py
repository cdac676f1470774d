"""Benchmark for canaries: how fast values are matched against planted sets, and the trap's rate.

    python bench/canary_match.py [--values 1000000] [--sets 100] [--requests 500]

Prints, side by side:
- keyed matching (what ``canaries.find`` does per value: HMAC-SHA256 of the normalised value, one
  dict lookup among every planted set's digests) against the unkeyed baseline (a lookup of the raw
  value in a set of raw values — what piiguard refuses to store);
- candidate extraction + matching of a 4 KB HTTP request (the trap's per-request work);
- a real trap on a loopback port: requests per second, one client at a time.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from servers import free_port  # noqa: E402

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.discovery import canary_values as cv  # noqa: E402
from piiguard.discovery.fingerprints import key_id  # noqa: E402
from piiguard.discovery.settings import CanarySettings  # noqa: E402
from piiguard.discovery.trap import Trap  # noqa: E402

KEY = b"b" * 32
FIELDS = {"email": cv.ValueKind.EMAIL, "token": cv.ValueKind.TOKEN, "serial": cv.ValueKind.SERIAL,
          "mac": cv.ValueKind.MAC, "link": cv.ValueKind.LINK}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--sets", type=int, default=100)
    ap.add_argument("--requests", type=int, default=500)
    args = ap.parse_args()

    planted = [cv.Deriver(KEY, f"n{i}", "canary.example.com", "https://trap.example.com").rows(20, FIELDS)
               for i in range(args.sets)]
    index = {cv.digest(KEY, cv.matched_form(r[f], k)): i for i, rows in enumerate(planted) for r in rows
             for f, k in FIELDS.items()}
    raw = {cv.matched_form(r[f], k) for rows in planted for r in rows for f, k in FIELDS.items()}
    values = [f"user{i}@example.com" for i in range(args.values)]

    t = time.perf_counter()
    hits = sum(1 for v in values if cv.digest(KEY, v) in index)
    keyed = time.perf_counter() - t
    t = time.perf_counter()
    hits_raw = sum(1 for v in values if v.strip().lower() in raw)
    plain = time.perf_counter() - t
    print(f"{args.values:,} values against {len(index):,} canary digests ({args.sets} sets):")
    print(f"  keyed (HMAC-SHA256 + lookup): {args.values / keyed:>12,.0f} values/s  ({hits} false matches)")
    print(f"  baseline raw-value lookup:    {args.values / plain:>12,.0f} values/s  ({hits_raw} matches)")

    request = ("POST /api/v1/login HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8\r\n"
               "Authorization: Bearer " + planted[3][2]["token"] + "\r\n\r\n" + "field=value&" * 330)
    t = time.perf_counter()
    n = 2000
    for _ in range(n):
        found = {cv.digest(KEY, c) for c in cv.candidates(request)} & index.keys()
    per = (time.perf_counter() - t) / n
    print(f"trap matching of a {len(request):,}-byte request: {1 / per:,.0f} requests/s ({len(found)} hit)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.db"
        with Catalog(path, timeline_key=b"t" * 32) as cat:
            for i, rows in enumerate(planted):
                cid = cat.add_canary("prod", "public.customers", 20, f"n{i}", key_id(KEY),
                                     {f: k.value for f, k in FIELDS.items()}, cv.digests(KEY, rows, FIELDS))
                cat.set_canary(cid, "planted")
        trap = Trap(CanarySettings(trap=f"127.0.0.1:{free_port()}"), path, KEY)
        trap.start()
        url = f"http://{trap.addresses[0]}/c/none"
        t = time.perf_counter()
        for _ in range(args.requests):
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
        rate = args.requests / (time.perf_counter() - t)
        trap.stop()
    print(f"real trap, one client, no hit: {rate:,.0f} requests/s over {args.requests} requests")


if __name__ == "__main__":
    main()
