"""Benchmark for `watch`: detection latency and scale.

    python bench/watch.py [--trials 30] [--stores 1000]

Latency: a real Redis is switched open (its default user enabled without a password) at random
moments while `piiguard watch --webhook …` runs with its default 5 s interval; each trial measures
the time from the switch to the webhook's "opened" alert, then closes the server again and waits
for "resolved". Prints p50/p99/max.

Scale: one process watches --stores stores (the real servers of bench/checks.py repeated under
different names, plus dead ports and silent listeners) — the time, CPU and peak RSS of outside-probe
cycles and of a full cycle. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from checks import insecure_servers, stores_for  # noqa: E402
from helpers import Listener  # noqa: E402
from servers import (  # noqa: E402
    PASSWORD,
    REDIS_ADMIN,
    start_redis,
    stop_clickhouse,
    stop_mariadb,
    stop_postgres,
    stop_redis,
)

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.watch.service import Watcher  # noqa: E402
from piiguard.watch.sinks import JsonLines  # noqa: E402


def latency(trials: int) -> None:
    server = start_redis()
    listener = Listener()
    env = {**os.environ, "BENCH_W_PW": PASSWORD}
    catalog = Path(tempfile.mkdtemp()) / "c.db"
    cmd = [sys.executable, "-m", "piiguard", "watch", f"redis://{REDIS_ADMIN}@127.0.0.1:{server.port}/0"
           "?password_env=BENCH_W_PW", "--webhook", listener.url, "--catalog", str(catalog)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    admin = redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD)
    samples = []
    try:
        time.sleep(3)
        for _ in range(trials):
            time.sleep(random.uniform(0, 5))
            seen = len(listener.events("redis.no-auth"))
            admin.execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "-@all", "+info")
            t0 = time.monotonic()
            while len(listener.events("redis.no-auth")) == seen and time.monotonic() - t0 < 60:
                time.sleep(0.02)
            samples.append(time.monotonic() - t0)
            admin.execute_command("ACL", "SETUSER", "default", "reset", "off")
            while len(listener.events("redis.no-auth")) < seen + 2 and time.monotonic() - t0 < 120:
                time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
        listener.server.shutdown()
        stop_redis(server)
    q = statistics.quantiles(samples, n=100, method="inclusive")  # never beyond the largest sample
    print(f"change→alert over {len(samples)} trials (interval 5 s, jittered ±20 %): p50 {q[49]:.2f} s, "
          f"p99 {q[98]:.2f} s, max {max(samples):.2f} s")


def scale(count: int) -> None:
    servers = insecure_servers()
    try:
        os.environ["BENCH_PW"] = ""
        stores = stores_for(servers, count)
        with Catalog(Path(tempfile.mkdtemp()) / "c.db") as cat:
            watcher = Watcher(stores, cat, [JsonLines(io.StringIO())], timeout=3)
            for label, inside in (("outside-probe cycle", False), ("outside-probe cycle", False),
                                  ("full cycle (inside audits too)", True)):
                cpu0, t0 = time.process_time(), time.perf_counter()
                watcher.cycle(inside=inside)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                print(f"{count} stores, {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        stop_postgres(servers["postgres"])
        stop_mariadb(servers["mysql"])
        stop_redis(servers["redis"])
        stop_clickhouse(servers["clickhouse"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--stores", type=int, default=1000)
    args = ap.parse_args()
    if args.stores:
        scale(args.stores)
    if args.trials:
        latency(args.trials)


if __name__ == "__main__":
    main()
