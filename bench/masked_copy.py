"""Benchmark for `copy`: a masked PostgreSQL → PostgreSQL copy beside a plain, unmasked bulk copy.

    python bench/masked_copy.py [--rows 1000000]

Both run in the same process, between the same two throwaway servers (the target hardened, so the
copy's pre-check passes), on the same customer table. The baseline is PostgreSQL's own bulk path:
``COPY customers TO STDOUT`` streamed straight into ``COPY … FROM STDIN``, no parsing. The masked
copy is ``piiguard.masking.pipeline.run_copy``: parse, mask in DuckDB, write through a staging table,
swap. Planning (classifying a sample, running the target's checks) is timed apart. The table: 12
columns — customer id, e-mail, first and last name, phone, birth date, IP address, MAC, Wi-Fi SSID,
a refresh token (never copied), plan and signup time (allow-listed). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import pg_connect  # noqa: E402
from faker.providers.person.en_US import Provider  # noqa: E402
from servers import PASSWORD, start_postgres, stop_postgres  # noqa: E402

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.config import parse_config  # noqa: E402
from piiguard.masking.pipeline import plan_copy, run_copy  # noqa: E402
from piiguard.model import Store  # noqa: E402

TABLE = """
CREATE TABLE customers AS
SELECT gen_random_uuid()::text AS customer_id,
       'user' || g || '@' || (ARRAY['gmail.com','yahoo.com','outlook.com','example.org'])[1 + g %% 4] AS email,
       (%(first)s::text[])[1 + (g * 7) %% %(nfirst)s] AS first_name,
       (%(last)s::text[])[1 + (g * 13) %% %(nlast)s] AS last_name,
       '+1 ' || (200 + g %% 700) || '-555-' || lpad((g %% 10000)::text, 4, '0') AS phone,
       (date '1940-01-01' + (g * 37) %% 25000)::text AS birth_date,
       ((g * 97) %% 223 + 1) || '.' || (g %% 251) || '.' || ((g / 251) %% 251) || '.' || (g %% 249 + 1) AS last_ip,
       '3c:5a:b4:' || lpad(to_hex((g / 65536) %% 256), 2, '0') || ':' || lpad(to_hex((g / 256) %% 256), 2, '0')
           || ':' || lpad(to_hex(g %% 256), 2, '0') AS device_mac,
       'NETGEAR' || lpad((g %% 97)::text, 2, '0') || '-5G' AS wifi_ssid,
       'ya29.' || md5(g::text) || md5((g * 3)::text) AS refresh_token,
       (ARRAY['free','plus','pro','business'])[1 + g %% 4] AS plan,
       (timestamp '2024-01-01' + (g %% 31536000) * interval '1 second')::text AS signup_at
  FROM generate_series(1, %(rows)s) g
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    source, target = start_postgres(), start_postgres(hardened=True)
    try:
        with pg_connect(source) as conn:
            started = time.monotonic()
            conn.execute(TABLE, {"first": list(Provider.first_names), "nfirst": len(Provider.first_names),
                                 "last": list(Provider.last_names), "nlast": len(Provider.last_names),
                                 "rows": args.rows})
            conn.execute("ANALYZE customers")
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('customers'))").fetchone()
        print(f"customers: {args.rows:,} rows, {size[0] if size else '?'}, made in {time.monotonic() - started:.1f} s")

        with pg_connect(source) as src, pg_connect(target) as dst:
            dst.execute("CREATE TABLE customers_plain (customer_id text, email text, first_name text, last_name text,"
                        " phone text, birth_date text, last_ip text, device_mac text, wifi_ssid text,"
                        " refresh_token text, plan text, signup_at text)")
            started = time.monotonic()
            with src.cursor().copy("COPY customers TO STDOUT") as out, \
                    dst.cursor().copy("COPY customers_plain FROM STDIN") as into:
                for chunk in out:
                    into.write(chunk)
            plain = time.monotonic() - started
        print(f"unmasked COPY → COPY: {plain:.2f} s, {args.rows / plain:,.0f} rows/s")

        os.environ["BENCH_PW"] = PASSWORD
        src_store = Store("prod", "postgres", host="127.0.0.1", port=source.port, user="postgres",
                          password_env="BENCH_PW")
        dst_store = Store("wh", "postgres", host="127.0.0.1", port=target.port, user="postgres",
                          password_env="BENCH_PW")
        config = parse_config({"masking": {"prod.public.customers": {"plan": "keep", "signup_at": "keep"}}})
        started = time.monotonic()
        plan = plan_copy(src_store, "customers", dst_store, "customers_masked", config=config)
        planning = time.monotonic() - started
        print(f"plan: {planning:.2f} s (classify a 2,000-row sample, run the target's checks)")
        for r in plan.rules:
            print(f"  {r.field:<14} {r.pii_type or '-':<20} {r.masker}")
        with Catalog(Path(tempfile.mkdtemp()) / "c.db") as cat:
            result = run_copy(plan, b"bench-key-" * 4, cat, owner="bench", purpose="benchmark",
                              expires=date(2030, 1, 1))
        masked = result.seconds
        print(f"masked piiguard copy: {masked:.2f} s, {result.rows / masked:,.0f} rows/s, "
              f"{result.subjects:,} people counted")
        print(f"masked / unmasked throughput: {plain / masked:.0%} (goal ≥ 70%, and ≥ 100,000 rows/s)")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        stop_postgres(source)
        stop_postgres(target)


if __name__ == "__main__":
    main()
