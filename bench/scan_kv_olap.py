"""Benchmark for the ClickHouse and Redis connectors: scan and read rates.

    python bench/scan_kv_olap.py [--rows 200000]

Real servers (throwaway ClickHouse 18.16 and Redis 7 from tests/servers.py). ClickHouse holds a
customers table of --rows rows (UUID, e-mail, LowCardinality, Array, Nested, Nullable), made on the
server; Redis holds --rows customer hashes (``customer:<id>``: e-mail, phone, a JSON profile).
Printed for each (records/s counts the collection's records, for a sampled scan too): a sampled
scan (the default), a full scan, ``read()`` of every field, and next to it the engine's own bulk
export in the same run — ``FORMAT JSONEachRow`` over plain HTTP read to the end, and SCAN +
pipelined HGETALL with plain redis-py — and the ratio. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import PASSWORD, REDIS_ADMIN, redis_admin, start_clickhouse, start_redis, stop_clickhouse, stop_redis  # noqa: E402

from piiguard.connectors.clickhouse import ClickHouse  # noqa: E402
from piiguard.connectors.redis import Redis  # noqa: E402
from piiguard.model import ScanMode, Store  # noqa: E402
from piiguard.scanner import scan  # noqa: E402


def ch(port: int, query: str) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=query.encode(),
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
    with urllib.request.urlopen(request, timeout=600) as response:
        total = b""
        while chunk := response.read(1 << 20):
            total = chunk[-1:] if total else chunk[:1]  # read to the end, keep nothing
        return total


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(what: str, n: int, step: object) -> float:
    started = time.monotonic()
    step()  # type: ignore[operator]
    took = time.monotonic() - started
    print(f"  {what:<48} {took:7.2f} s  {n / took:>10,.0f} records/s  peak RSS so far {rss_mb():.0f} MB")
    return took


def bench_clickhouse(rows: int) -> None:
    server = start_clickhouse()
    try:
        ch(server.port, "CREATE DATABASE shop")
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/?allow_experimental_low_cardinality_type=1",
            data=b"CREATE TABLE shop.customers (n UInt32, customer_id UUID, email Nullable(String), "
                 b"gender LowCardinality(String), phones Array(String), devices Nested(serial String, mac String), "
                 b"city String) ENGINE = MergeTree ORDER BY intHash32(n) SAMPLE BY intHash32(n)",
            headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
        urllib.request.urlopen(request, timeout=60).read()
        started = time.monotonic()
        ch(server.port, f"""INSERT INTO shop.customers SELECT toUInt32(number), generateUUIDv4(),
            if(number % 10 = 0, NULL, concat('user', toString(number), '@example.net')),
            ['female', 'male', 'non-binary'][1 + number % 3],
            [concat('+1415555', toString(1000 + number % 9000)), concat('+1212555', toString(1000 + number % 7000))],
            [concat('SN-', toString(number))], [concat('00:1a:2b:', lower(hex(number % 256)), ':4c:5d')],
            ['Springfield', 'Riverside', 'Franklin', 'Greenville'][1 + number % 4]
            FROM system.numbers LIMIT {rows}""")
        print(f"ClickHouse 18.16, {rows:,} rows (loaded in {time.monotonic() - started:.1f} s)")
        os.environ["BENCH_CH_PW"] = PASSWORD
        store = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default",
                      password_env="BENCH_CH_PW", database="shop")
        timed("scan, sampled (1,000 rows)", rows, lambda: scan([store], sample_size=1000))
        timed("scan, full", rows, lambda: scan([store], mode=ScanMode.FULL))
        with ClickHouse(store) as c:
            info = c.collections()[0]
            cols = c.columns(info)
            read = timed(f"read(), {len(cols)} fields", rows,
                         lambda: sum(b.num_rows for b in c.read(info, cols, 10_000)))
        exprs = ", ".join(["toString(n)", "toString(customer_id)", "toString(email)", "toString(gender)",
                           "arrayMap(x -> toString(x), phones)", "arrayMap(x -> toString(x), `devices.serial`)",
                           "arrayMap(x -> toString(x), `devices.mac`)", "toString(city)"])
        plain = timed("plain HTTP JSONEachRow export, same fields", rows,
                      lambda: ch(server.port, f"SELECT {exprs} FROM shop.customers FORMAT JSONEachRow"))
        print(f"  read() / plain export: {read / plain:.2f}× the time")
    finally:
        stop_clickhouse(server)


def bench_redis(keys: int) -> None:
    server = start_redis()
    try:
        r = redis_admin(server)
        started = time.monotonic()
        for start in range(0, keys, 10_000):
            pipe = r.pipeline(transaction=False)
            for i in range(start, min(keys, start + 10_000)):
                pipe.hset(f"customer:cust-{i:08d}", mapping={
                    "email": f"user{i}@example.net", "phone": f"+1415555{1000 + i % 9000}",
                    "profile": f'{{"mac": "00:1a:2b:{i % 256:02x}:4c:5d", "city": "Springfield"}}'})
            pipe.execute()
        print(f"Redis 7, {keys:,} hashes (loaded in {time.monotonic() - started:.1f} s)")
        os.environ["BENCH_REDIS_PW"] = PASSWORD
        store = Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN,
                      password_env="BENCH_REDIS_PW")
        timed("scan, sampled (1,000 keys; SCAN sampling ≤ 5 s)", keys, lambda: scan([store], sample_size=1000))
        timed("scan, full", keys, lambda: scan([store], mode=ScanMode.FULL))
        with Redis(store) as c:
            info = c.collections()[0]
            cols = c.columns(info)
            read = timed(f"read(), {len(cols)} fields", keys,
                         lambda: sum(b.num_rows for b in c.read(info, cols, 10_000)))

        def plain() -> None:
            cursor = 0
            while True:
                cursor, found = r.scan(cursor, match="customer:*", count=1000)
                pipe = r.pipeline(transaction=False)
                for k in found:
                    pipe.hgetall(k)
                pipe.execute()
                if cursor == 0:
                    return

        base = timed("plain SCAN + pipelined HGETALL", keys, plain)
        print(f"  read() / plain export: {read / base:.2f}× the time")
        r.close()
    finally:
        stop_redis(server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    bench_clickhouse(args.rows)
    bench_redis(args.rows)


if __name__ == "__main__":
    main()
