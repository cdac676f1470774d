"""Benchmark for `incident`: the motivating incident's size, 2.4M people.

    python bench/respond.py [--people 2400000] [--compare 200000,600000]

Real servers (throwaway PostgreSQL and Redis). An exposed customers table of --people rows (customer
id as primary key, e-mail, nickname, first name), one access token per person in PostgreSQL (indexed
by user, as a real schema would be) and one session key per person in Redis. The response is run as
a user runs it, one phase after the other, each timed with its peak RSS (sampled every 20 ms; the
process's RSS when the phase began is printed beside it):

- scope: read the exposed table, write the subject list (0600), keep a keyed hash per person in the
  catalog (`incident scope`);
- check: read the subject list back and check every line against the scope (`incident respond`
  does this before it changes anything);
- kill switch: revoke every session in Redis and every token in PostgreSQL;
- notices: check the list again and render one notice per person to a spool folder, with the
  bookkeeping that makes a run resumable (`incident notify --spool`; nothing is sent at this scale);
  then the same command again, which must send nothing.

Goals (issue 12): notices ≤ 60 s at a flat cost per notice, the four phases ≤ 120 s end to end.

Baseline: the notices path before it streamed (bench/notices_before.py: the file read whole into a
dict, every notified hash in a set, a Jinja render per person) and the current one, on the first N
people of the same subject list for each N in --compare, back to back in the same run: the cost per
notice at two sizes shows whether it is flat. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import notices_before  # noqa: E402
from conftest import pg_connect  # noqa: E402
from measure import Step, load, mb, step  # noqa: E402
from servers import PASSWORD, REDIS_ADMIN, redis_admin, start_postgres, start_redis, stop_postgres, stop_redis  # noqa: E402

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.model import Store  # noqa: E402
from piiguard.response import notices, responders  # noqa: E402
from piiguard.response.incidents import open_by_hand  # noqa: E402
from piiguard.response.scope import SubjectFile, find_scope, keyed, write_subjects  # noqa: E402
from piiguard.scanner import scan  # noqa: E402

KEY = b"bench-incident-key-0123456789"
def notify(cat: Catalog, incident: dict[str, Any], path: Path, options: notices.NoticeOptions, prod: Store,
           spool: Path, *, before: bool) -> tuple[int, int]:
    contact = {"name": "Privacy team", "email": "privacy@example.net"}
    if before:
        subjects = notices_before.read_subjects(path, cat, int(incident["id"]), KEY)
        return notices_before.send(cat, incident, subjects, KEY, options, prod, contact, spool=spool)
    checked = SubjectFile(path, cat, int(incident["id"]), KEY)
    checked.check()
    return notices.send(cat, incident, checked, KEY, options, prod, contact, spool=spool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2_400_000)
    parser.add_argument("--compare", default="200000,600000",
                        help="sizes at which the notices before and now run back to back ('' for none)")
    args = parser.parse_args()
    n = args.people
    sizes = [int(s) for s in args.compare.split(",") if s]
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
        print(load())

        prod = Store("prod", "postgres", host="127.0.0.1", port=pg.port, user="postgres", password_env="BENCH_PW")
        cache_store = Store("cache", "redis", host="127.0.0.1", port=cache.port, user=REDIS_ADMIN,
                            password_env="BENCH_PW")
        options = notices.NoticeOptions(store="prod", table="public.customers", subject_column="customer_id",
                                        email_column="email", name_column="first_name", company="CamCo")
        phases: list[Step] = []
        path = work / "subjects.csv"
        with Catalog(work / "c.db") as cat:
            scan([prod], catalog=cat)
            incident_id = open_by_hand(cat, "prod", "2026-11-03T08:00:00+00:00")
            incident = cat.incident(incident_id)
            assert incident is not None

            with step("scope", phases) as p:
                begun = time.monotonic()
                found = find_scope(cat, incident, {"prod": prod}, KEY)
                read = time.monotonic()
                mac = write_subjects(found, path, key=KEY)
                written = time.monotonic()
                cat.set_scope(incident_id, keyed(found, KEY))
                kept = time.monotonic()
                people = len(found.people)
                cat.event(incident_id, "scoped", {"people": people, "subject_file": mac})  # as incident scope
                del found
            print(f"scope: {people:,} people in {p.seconds:.1f} s (reading the store {read - begun:.1f} s, "
                  f"the subject list {written - read:.1f} s, keyed hashes in the catalog {kept - written:.1f} s)")

            with step("check", phases) as p:
                ids = SubjectFile(path, cat, incident_id, KEY).ids()
            print(f"check: {len(ids):,} lines of the subject file against the scope in {p.seconds:.1f} s")

            kill = [("redis-sessions", responders.RedisSessions(
                        responders.RedisSessions.parse({"store": "cache", "key": "session:{subject}"}, "r"),
                        {"cache": cache_store})),
                    ("sql-tokens", responders.SQLTokens(
                        responders.SQLTokens.parse({"store": "prod", "table": "public.access_tokens",
                                                    "subject_column": "user_id"}, "t"), {"prod": prod}))]
            with step("kill switch", phases) as p:
                for name, responder in kill:
                    begun = time.monotonic()
                    outcome = responder.apply(ids, lambda _n: None)
                    changed = outcome.changed if isinstance(outcome, responders.Outcome) else int(outcome)
                    print(f"  {name}: {changed:,} revoked in {time.monotonic() - begun:.1f} s")
            del ids
            print(f"kill switch: {p.seconds:.1f} s for {n:,} sessions and {n:,} tokens")

            with step("notices", phases) as p:
                sent, missing = notify(cat, incident, path, options, prod, work / "spool", before=False)
            print(f"notices: {sent:,} rendered to a spool in {p.seconds:.1f} s "
                  f"({p.seconds / max(sent, 1) * 1e6:.1f} µs each); {missing:,} without an address")
            again = time.monotonic()
            resent, _ = notify(cat, incident, path, options, prod, work / "spool", before=False)
            print(f"notices again (resumed, all done): {resent:,} sent in {time.monotonic() - again:.1f} s")
            spooled = sum(1 for f in (work / "spool").iterdir() for _ in f.open())
            print(f"spool: {spooled:,} messages in {len(list((work / 'spool').iterdir()))} files; "
                  f"modes {sorted({oct(f.stat().st_mode & 0o777) for f in (work / 'spool').iterdir()})}")
            total = sum(p.seconds for p in phases)
            print(f"\n{'phase':<12} {'time':>8} {'peak RSS':>10} {'RSS before':>11}")
            for p in phases:
                print(f"{p.name:<12} {p.seconds:7.1f}s {mb(p.peak):>10} {mb(p.start_rss):>11}")
            print(f"{'end to end':<12} {total:7.1f}s {mb(max(p.peak for p in phases)):>10}   "
                  f"(goals: notices ≤ 60 s, end to end ≤ 120 s)")

            if sizes:
                print("\nbefore (bench/notices_before.py) and now, on the first N people, back to back: checking the "
                      "subject file (as respond does), then notices (check and spool, as notify does)")
                head = ("N", "step", "before", "µs each", "+RSS", "now", "µs each", "+RSS")
                print(" ".join(f"{h:>{w}}" for h, w in zip(head, (10, 8, 9, 8, 8, 9, 8, 8), strict=True)))
            for size in sizes:
                part = work / f"subjects-{size}.csv"
                with path.open() as src, part.open("w") as dst:
                    for _, line in zip(range(size + 1), src, strict=False):
                        dst.write(line)
                checks: list[str] = []
                for before in (True, False):
                    with step("check") as p:
                        if before:
                            sorted(notices_before.read_subjects(part, cat, incident_id, KEY))
                        else:
                            SubjectFile(part, cat, incident_id, KEY).ids()
                    checks += [f"{p.seconds:8.1f}s", f"{p.seconds / size * 1e6:8.1f}", f"{mb(p.grew):>8}"]
                print(f"{size:>10,} {'check':>8} " + " ".join(checks))
                row: list[str] = []
                for before in (True, False):
                    for table in ("notices", "notice_batches"):  # nobody notified yet
                        cat.db.execute(f"DELETE FROM {table} WHERE incident_id = ?", (incident_id,))
                    cat.db.commit()
                    spool = work / f"spool-{size}-{'before' if before else 'now'}"
                    with step("compare") as p:
                        sent, _ = notify(cat, incident, part, options, prod, spool, before=before)
                    row += [f"{p.seconds:8.1f}s", f"{p.seconds / sent * 1e6:8.1f}", f"{mb(p.grew):>8}"]
                    shutil.rmtree(spool)
                print(f"{size:>10,} {'notices':>8} " + " ".join(row))
            if sizes:
                print("(+RSS: the peak above the RSS the step began with)")
            print(load())
    finally:
        stop_postgres(pg)
        stop_redis(cache)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
