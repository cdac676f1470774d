"""Benchmark for `incident`: the motivating incident's size, 2.4M people.

    python bench/respond.py [--people 2400000]

Real servers (throwaway PostgreSQL and Redis). An exposed customers table of --people rows (customer
id as primary key, e-mail, nickname, first name), one access token per person in PostgreSQL (indexed
by user, as a real schema would be) and one session key per person in Redis. Times, each on its own:

- scope: read the exposed table, write the subject list (0600), keep a keyed hash per person in the
  catalog;
- the kill switch: revoke every session in Redis and every token in PostgreSQL (goal ≤ 60 s);
- notices: render one per person to a spool folder, with the per-person bookkeeping that makes a run
  resumable (goal ≤ 2 min; nothing is sent at this scale).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import pg_connect  # noqa: E402
from servers import PASSWORD, REDIS_ADMIN, redis_admin, start_postgres, start_redis, stop_postgres, stop_redis  # noqa: E402

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.model import Store  # noqa: E402
from piiguard.response import notices, responders  # noqa: E402
from piiguard.response.incidents import open_by_hand  # noqa: E402
from piiguard.response.scope import find_scope, read_subjects, subject_hash, write_subjects  # noqa: E402
from piiguard.scanner import scan  # noqa: E402

KEY = b"bench-incident-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2_400_000)
    args = parser.parse_args()
    n = args.people
    pg, cache = start_postgres(), start_redis()
    os.environ["BENCH_PW"] = PASSWORD
    work = Path(tempfile.mkdtemp(prefix="piiguard-bench-respond-"))
    try:
        started = time.monotonic()
        with pg_connect(pg) as conn:
            conn.execute(f"""CREATE TABLE customers AS SELECT 'cust-' || lpad(g::text, 8, '0') AS customer_id,
                'user' || g || '@example.net' AS email, 'camfan_' || g AS nickname,
                (ARRAY['Olivia','Liam','Emma','Noah','Ava','Elijah'])[1 + g % 6] AS first_name
                FROM generate_series(1, {n}) g""")
            conn.execute("CREATE TABLE access_tokens AS SELECT customer_id AS user_id, md5(customer_id) AS token, "
                         "NULL::timestamptz AS revoked_at FROM customers")
            conn.execute("ALTER TABLE customers ADD PRIMARY KEY (customer_id)")
            conn.execute("CREATE INDEX ON access_tokens (user_id)")
            conn.execute("ANALYZE")
        redis = redis_admin(cache)
        for start in range(1, n + 1, 50_000):
            pipe = redis.pipeline(transaction=False)
            for g in range(start, min(n, start + 49_999) + 1):
                pipe.set(f"session:cust-{g:08d}", "1")
            pipe.execute()
        print(f"set-up: {n:,} people in PostgreSQL and Redis in {time.monotonic() - started:.1f} s")

        prod = Store("prod", "postgres", host="127.0.0.1", port=pg.port, user="postgres", password_env="BENCH_PW")
        cache_store = Store("cache", "redis", host="127.0.0.1", port=cache.port, user=REDIS_ADMIN,
                            password_env="BENCH_PW")
        with Catalog(work / "c.db") as cat:
            scan([prod], catalog=cat)
            incident_id = open_by_hand(cat, "prod", "2026-11-03T08:00:00+00:00")
            incident = cat.incident(incident_id)
            assert incident is not None
            started = time.monotonic()
            found = find_scope(cat, incident, {"prod": prod}, KEY)
            read = time.monotonic() - started
            write_subjects(found, work / "subjects.csv")
            cat.set_scope(incident_id, {subject_hash(KEY, p): sorted(t) for p, t in found.people.items()})
            scoped = time.monotonic() - started
            print(f"scope: {len(found.people):,} people in {scoped:.1f} s (reading the store {read:.1f} s; "
                  f"subject list and keyed hashes the rest)")

            started = time.monotonic()
            subjects = read_subjects(work / "subjects.csv", cat, incident_id, KEY)
            loaded = time.monotonic() - started
            ids = sorted(subjects)
            kill = [("redis-sessions", responders.RedisSessions(
                        responders.RedisSessions.parse({"store": "cache", "key": "session:{subject}"}, "r"),
                        {"cache": cache_store})),
                    ("sql-tokens", responders.SQLTokens(
                        responders.SQLTokens.parse({"store": "prod", "table": "public.access_tokens",
                                                    "subject_column": "user_id"}, "t"), {"prod": prod}))]
            started = time.monotonic()
            for name, responder in kill:
                step = time.monotonic()
                changed = responder.apply(ids, lambda _n: None)
                print(f"  {name}: {changed:,} revoked in {time.monotonic() - step:.1f} s")
            print(f"kill switch: {time.monotonic() - started:.1f} s for {n:,} sessions and {n:,} tokens "
                  f"(goal ≤ 60 s); checking the subject file against the scope took {loaded:.1f} s more")

            options = notices.NoticeOptions(store="prod", table="public.customers", subject_column="customer_id",
                                            email_column="email", name_column="first_name", company="CamCo")
            started = time.monotonic()
            sent, missing = notices.send(cat, incident, subjects, KEY, options, prod,
                                         {"name": "Privacy team", "email": "privacy@example.net"},
                                         spool=work / "spool")
            print(f"notices: {sent:,} rendered to {work / 'spool'} in {time.monotonic() - started:.1f} s "
                  f"(goal ≤ 120 s); {missing:,} without an address")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        stop_postgres(pg)
        stop_redis(cache)


if __name__ == "__main__":
    main()
