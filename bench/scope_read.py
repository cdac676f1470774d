"""Benchmark: the whole-collection reader (what scope and copy read through) per engine, beside the
engine's own bulk export, in the same run.

    python bench/scope_read.py [--rows 1000000] [--engines postgres,mysql,sqlite,...]

Each engine holds the same collection of --rows customer records (customer id, e-mail, first and last
name, phone, city: six text fields). Two reads of it, back to back, each timed with the peak RSS seen
while it ran (above the RSS it began with):

- piiguard: ``Connector.read`` of the six fields in batches of 100,000 records, as ``incident scope``
  reads them (Arrow record batches);
- export: the engine's own bulk path with its plain client, values received and dropped —
  PostgreSQL ``COPY … TO STDOUT``, MariaDB an unbuffered cursor, SQLite a cursor, ClickHouse
  ``FORMAT TSV`` over HTTP, Redis ``SCAN`` + ``HGETALL``, OpenSearch a scroll with opensearch-py,
  MongoDB a pymongo cursor, files and S3 a plain pyarrow read.

The ratio is piiguard's rate over the export's. An engine whose connector has no whole-collection
reader yet prints "reader missing" and is not set up; one whose server is not on this machine says
so. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import pytest  # noqa: E402
from measure import Step, load, mb, step  # noqa: E402
from servers import PASSWORD, REDIS_ADMIN, Server, redis_admin  # noqa: E402

from piiguard import plugins  # noqa: E402
from piiguard.connectors.base import Connector, connectors  # noqa: E402
from piiguard.masking.pipeline import find_collection  # noqa: E402
from piiguard.model import Store  # noqa: E402

FIELDS = ["customer_id", "email", "first_name", "last_name", "phone", "city"]
BATCH = 100_000
FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Mia", "Lucas"]
LAST = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Moore"]
CITY = ["Leeds", "Lyon", "Bremen", "Austin", "Porto", "Turin", "Ghent", "Cork"]
Result = tuple[Step, int]  # the read, records read


def record(g: int) -> tuple[str, ...]:
    """The g-th customer, the same in every engine (the SQL generators below build the same values)."""
    return (f"cust-{g:08d}", f"user{g}@example.net", FIRST[g % 8], LAST[g % 8], f"+44 7700 {g % 1000000:06d}",
            CITY[g % 8])


def reader(engine: str) -> type[Connector] | None:
    """The engine's connector, if it has a whole-collection reader."""
    if engine not in connectors:
        return None
    cls = connectors.get(engine)
    return cls if cls.read is not Connector.read else None


def piiguard_read(store: Store, collection: str) -> Result:
    with step("piiguard") as s, connectors.get(store.engine)(store, timeout=60) as connector:
        info = find_collection(connector, collection)
        rows = sum(batch.num_rows for batch in connector.read(info, FIELDS, BATCH))
    return s, rows


@contextmanager
def export() -> Iterator[tuple[Step, list[int]]]:
    counted = [0]
    with step("export") as s:
        yield s, counted


# --- one function per engine: set the collection up, read it both ways ------------------------------------


def postgres(n: int) -> tuple[Result, Result]:
    from conftest import pg_connect
    from servers import start_postgres, stop_postgres

    server = start_postgres()
    try:
        with pg_connect(server) as conn:
            conn.execute(f"""CREATE TABLE customers AS SELECT 'cust-' || lpad(g::text, 8, '0') AS customer_id,
                'user' || g || '@example.net' AS email, (ARRAY{FIRST})[1 + g % 8] AS first_name,
                (ARRAY{LAST})[1 + g % 8] AS last_name, '+44 7700 ' || lpad((g % 1000000)::text, 6, '0') AS phone,
                (ARRAY{CITY})[1 + g % 8] AS city FROM generate_series(1, {n}) g""")
            conn.execute("VACUUM ANALYZE customers")
        os.environ["BENCH_PW"] = PASSWORD
        ours = piiguard_read(Store("pg", "postgres", host="127.0.0.1", port=server.port, user="postgres",
                                   password_env="BENCH_PW"), "public.customers")
        text = f"COPY (SELECT {', '.join(FIELDS)} FROM customers) TO STDOUT"
        with export() as (s, counted), pg_connect(server) as conn, conn.cursor() as cur, cur.copy(text) as copy:
            for block in copy:
                counted[0] += bytes(block).count(b"\n")
        return ours, (s, counted[0])
    finally:
        stop_postgres(server)


def mysql(n: int) -> tuple[Result, Result]:
    import pymysql.cursors
    from conftest import my_connect
    from servers import start_mariadb, stop_mariadb

    server = start_mariadb()
    try:
        with my_connect(server) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE customers (customer_id VARCHAR(16) PRIMARY KEY, email VARCHAR(64), "
                        "first_name VARCHAR(32), last_name VARCHAR(32), phone VARCHAR(32), city VARCHAR(32))")
            pick = "ELT(1 + seq % 8, {})".format
            cur.execute(f"""INSERT INTO customers SELECT concat('cust-', lpad(seq, 8, '0')),
                concat('user', seq, '@example.net'), {pick(", ".join(f"'{x}'" for x in FIRST))},
                {pick(", ".join(f"'{x}'" for x in LAST))}, concat('+44 7700 ', lpad(seq % 1000000, 6, '0')),
                {pick(", ".join(f"'{x}'" for x in CITY))} FROM seq_1_to_{n}""")
        os.environ["BENCH_PW"] = PASSWORD
        ours = piiguard_read(Store("my", "mysql", host="127.0.0.1", port=server.port, user="root",
                                   password_env="BENCH_PW", database="app"), "app.customers")
        with export() as (s, counted), my_connect(server) as conn, conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(f"SELECT {', '.join(FIELDS)} FROM customers")
            while rows := cur.fetchmany(BATCH):
                counted[0] += len(rows)
        return ours, (s, counted[0])
    finally:
        stop_mariadb(server)


def sqlite(n: int) -> tuple[Result, Result]:
    import sqlite3

    folder = Path(tempfile.mkdtemp(prefix="piiguard-bench-sqlite-", dir="/tmp"))
    try:
        path = folder / "shop.db"
        with sqlite3.connect(path) as db:
            db.execute(f"CREATE TABLE customers ({', '.join(f + ' TEXT' for f in FIELDS)})")
            db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", (record(g) for g in range(1, n + 1)))
        ours = piiguard_read(Store("lite", "sqlite", path=str(path)), "customers")
        with export() as (s, counted):
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            cur = db.execute(f"SELECT {', '.join(FIELDS)} FROM customers")
            while rows := cur.fetchmany(BATCH):
                counted[0] += len(rows)
            db.close()
        return ours, (s, counted[0])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def clickhouse(n: int) -> tuple[Result, Result]:
    from servers import start_clickhouse, stop_clickhouse

    server = start_clickhouse()

    def query(text: str) -> urllib.request.Request:
        return urllib.request.Request(f"http://127.0.0.1:{server.port}/?" + urllib.parse.urlencode({"query": text}),
                                      data=b"", headers={"X-ClickHouse-User": "default",
                                                         "X-ClickHouse-Key": PASSWORD})
    try:
        pick = "[{}][1 + number % 8]".format
        for text in (f"CREATE TABLE customers ({', '.join(f + ' String' for f in FIELDS)}) ENGINE = MergeTree "
                     "ORDER BY customer_id",
                     f"""INSERT INTO customers SELECT concat('cust-', toString(100000000 + number + 1)),
                     concat('user', toString(number + 1), '@example.net'), {pick(", ".join(f"'{x}'" for x in FIRST))},
                     {pick(", ".join(f"'{x}'" for x in LAST))}, concat('+44 7700 ', toString(number % 1000000)),
                     {pick(", ".join(f"'{x}'" for x in CITY))} FROM system.numbers LIMIT {n}"""):
            urllib.request.urlopen(query(text), timeout=600).read()
        os.environ["BENCH_PW"] = PASSWORD
        ours = piiguard_read(Store("ch", "clickhouse", host="127.0.0.1", port=server.port, user="default",
                                   password_env="BENCH_PW"), "default.customers")
        tsv = query(f"SELECT {', '.join(FIELDS)} FROM customers FORMAT TSV")
        with export() as (s, counted), urllib.request.urlopen(tsv, timeout=600) as answer:
            while block := answer.read(1 << 20):
                counted[0] += block.count(b"\n")
        return ours, (s, counted[0])
    finally:
        stop_clickhouse(server)


def redis(n: int) -> tuple[Result, Result]:
    from servers import start_redis, stop_redis

    server: Server = start_redis()
    try:
        client = redis_admin(server)
        for start in range(1, n + 1, 10_000):
            pipe = client.pipeline(transaction=False)
            for g in range(start, min(n, start + 9_999) + 1):
                pipe.hset(f"customer:{g}", mapping=dict(zip(FIELDS, record(g), strict=True)))
            pipe.execute()
        os.environ["BENCH_PW"] = PASSWORD
        ours = piiguard_read(Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN,
                                   password_env="BENCH_PW"), "customer:*")
        with export() as (s, counted):
            cursor = 0
            while True:
                cursor, keys = client.scan(cursor, match="customer:*", count=1000)
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                counted[0] += len(pipe.execute())
                if cursor == 0:
                    break
        return ours, (s, counted[0])
    finally:
        stop_redis(server)


def _parquet(n: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, pa.schema([(f, pa.string()) for f in FIELDS])) as out:
        for start in range(1, n + 1, BATCH):
            rows = [record(g) for g in range(start, min(n, start + BATCH - 1) + 1)]
            out.write_batch(pa.RecordBatch.from_arrays([pa.array(c) for c in zip(*rows, strict=True)], names=FIELDS))


def files(n: int) -> tuple[Result, Result]:
    import pyarrow.parquet as pq

    folder = Path(tempfile.mkdtemp(prefix="piiguard-bench-files-", dir="/tmp"))
    try:
        _parquet(n, folder / "customers.parquet")
        ours = piiguard_read(Store("lake", "files", path=str(folder)), "customers.parquet")
        with export() as (s, counted):
            for batch in pq.ParquetFile(folder / "customers.parquet").iter_batches(BATCH, columns=FIELDS):
                counted[0] += batch.num_rows
        return ours, (s, counted[0])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def s3(n: int) -> tuple[Result, Result]:
    import pyarrow.fs
    import pyarrow.parquet as pq
    from built_servers import start_versitygw, stop_versitygw

    server = start_versitygw()
    folder = Path(tempfile.mkdtemp(prefix="piiguard-bench-s3-", dir="/tmp"))
    try:
        _parquet(n, folder / "customers.parquet")
        server.client().create_bucket(Bucket="lake")
        server.client().upload_file(str(folder / "customers.parquet"), "lake", "customers.parquet")
        ours = piiguard_read(server.store("lake", bucket="lake"), "lake/customers.parquet")
        fs = pyarrow.fs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key,
                                     endpoint_override=server.endpoint, region="us-east-1")
        with export() as (s, counted):
            for batch in pq.ParquetFile("lake/customers.parquet", filesystem=fs).iter_batches(BATCH, columns=FIELDS):
                counted[0] += batch.num_rows
        return ours, (s, counted[0])
    finally:
        stop_versitygw(server)
        shutil.rmtree(folder, ignore_errors=True)


def opensearch(n: int) -> tuple[Result, Result]:
    from built_servers import start_opensearch, stop_opensearch
    from opensearchpy import OpenSearch, helpers

    server = start_opensearch(secured=False)
    try:
        client = OpenSearch(server.url, timeout=600)
        helpers.bulk(client, ({"_index": "customers", "_id": str(g), "_source": dict(zip(FIELDS, record(g),
                                                                                          strict=True))}
                              for g in range(1, n + 1)), chunk_size=5_000, refresh=True)
        ours = piiguard_read(server.store(), "customers")
        with export() as (s, counted):
            for _hit in helpers.scan(client, index="customers", size=5_000, _source=FIELDS):
                counted[0] += 1
        return ours, (s, counted[0])
    finally:
        stop_opensearch(server)


def mongodb(n: int) -> tuple[Result, Result]:
    import pymongo
    from built_servers import start_ferretdb, stop_ferretdb
    from conftest import pg_connect
    from servers import start_postgres, stop_postgres

    backend = start_postgres()
    with pg_connect(backend) as conn:
        conn.execute("CREATE DATABASE ferretdb")
    server = start_ferretdb(backend.port, open_backend=False)
    try:
        store = server.store()
        client: Any = pymongo.MongoClient(f"mongodb://postgres:{PASSWORD}@127.0.0.1:{server.port}/"
                                          "?authMechanism=PLAIN")
        docs = client["shop"]["customers"]
        for start in range(1, n + 1, 10_000):
            docs.insert_many([dict(zip(FIELDS, record(g), strict=True))
                              for g in range(start, min(n, start + 9_999) + 1)])
        ours = piiguard_read(store, "shop.customers")
        with export() as (s, counted):
            for _doc in docs.find({}, dict.fromkeys(FIELDS, 1), batch_size=10_000):
                counted[0] += 1
        return ours, (s, counted[0])
    finally:
        stop_ferretdb(server)
        stop_postgres(backend)


ENGINES: dict[str, Callable[[int], tuple[Result, Result]]] = {
    "postgres": postgres, "mysql": mysql, "sqlite": sqlite, "clickhouse": clickhouse, "redis": redis,
    "files": files, "s3": s3, "opensearch": opensearch, "mongodb": mongodb}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    plugins.load()
    print(f"{args.rows:,} records of {len(FIELDS)} text fields; {load()}")
    print(f"{'engine':<11} {'piiguard':>10} {'rows/s':>10} {'peak RSS':>9}   {'export':>8} {'rows/s':>10} "
          f"{'peak RSS':>9} {'ratio':>6}")
    for name in args.engines.split(","):
        if reader(name) is None:
            print(f"{name:<11} reader missing")
            continue
        try:
            (ours, read), (theirs, exported) = ENGINES[name](args.rows)
        except pytest.skip.Exception as exc:  # the server is not on this machine (tests/servers.py says which)
            print(f"{name:<11} server missing: {exc}")
            continue
        mine, base = read / ours.seconds, exported / theirs.seconds
        print(f"{name:<11} {ours.seconds:9.1f}s {mine:10,.0f} {mb(ours.grew):>9}   {theirs.seconds:7.1f}s "
              f"{base:10,.0f} {mb(theirs.grew):>9} {mine / base:6.2f}" + ("" if read == exported == args.rows else
                                                                          f"  (read {read:,}, exported {exported:,})"))
    print(load())


if __name__ == "__main__":
    main()
