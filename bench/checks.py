"""Benchmark for `check`: 50 stores in one run, and a side-by-side with nmap's NSE scripts.

    python bench/checks.py [--stores 50] [--timeout 3]

Starts real insecure servers (PostgreSQL with trust on loopback, MariaDB with an empty root
password, Redis without auth, ClickHouse's default user without a password) with the test fixtures,
lists them many times under different names together with dead ports and silent (blackholed)
listeners, and prints the wall time of one `run_checks` over all of them, plus the slowest store.
Then runs nmap's scripts against the same servers and prints what each tool found. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import pymysql  # noqa: E402
from servers import (  # noqa: E402
    PASSWORD,
    Server,
    clickhouse_users,
    free_port,
    pg_ctl,
    start_clickhouse,
    start_mariadb,
    start_postgres,
    start_redis,
    stop_clickhouse,
    stop_mariadb,
    stop_postgres,
    stop_redis,
)

from piiguard.checker import check_store, run_checks  # noqa: E402
from piiguard.model import Status, Store  # noqa: E402


def insecure_servers() -> dict[str, Server]:
    pg = start_postgres()
    hba = pg.data / "data" / "pg_hba.conf"
    hba.write_text("host all all 127.0.0.1/32 trust\n" + hba.read_text())
    pg_ctl(pg, "reload")
    my = start_mariadb()
    with pymysql.connect(host="127.0.0.1", port=my.port, user="root", password=PASSWORD, autocommit=True) as conn:
        conn.cursor().execute("ALTER USER root@'127.0.0.1' IDENTIFIED BY ''")
    rd = start_redis()
    subprocess.run(["redis-cli", "-p", str(rd.port), "--user", "admin", "--pass", PASSWORD, "--no-auth-warning",
                    "ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all"], check=True, capture_output=True)
    ch = start_clickhouse()
    (ch.data / "conf" / "users.xml").write_text(clickhouse_users(password=False))
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{ch.port}/", data=b"SYSTEM RELOAD CONFIG",
        headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}), timeout=10).read()
    return {"postgres": pg, "mysql": my, "redis": rd, "clickhouse": ch}


def silent_listener() -> int:
    """A port that accepts connections and never answers (a blackhole as a client sees it)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(256)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def stores_for(servers: dict[str, Server], count: int) -> list[Store]:
    engines = list(servers)
    dead = [Store(f"dead-{i}", engines[i % 4], host="127.0.0.1", port=free_port(), user="probe") for i in range(3)]
    silent = [Store(f"silent-{i}", engines[i % 4], host="127.0.0.1", port=silent_listener(), user="probe")
              for i in range(3)]
    live = []
    for i in range(count - len(dead) - len(silent)):
        engine = engines[i % 4]
        s = servers[engine]
        options = ({"tcp_port": str(s.tcp_port), "config_dir": str(s.data / "conf")}  # type: ignore[attr-defined]
                   if engine == "clickhouse" else {})
        user = None if engine == "redis" else s.user  # the insecure Redis lets its default user in
        live.append(Store(f"{engine}-{i}", engine, host="127.0.0.1", port=s.port, user=user, options=options,
                          password_env="BENCH_PW"))
    return live + dead + silent


def nmap(script: str, port: int, args: str = "") -> str:
    """nmap with service detection: NSE scripts only fire on ports identified as their service."""
    cmd = ["nmap", "-Pn", "-n", "-sV", "-p", str(port), "--script", script, "127.0.0.1"]
    cmd += ["--script-args", args] if args else []
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def compare_with_nmap(servers: dict[str, Server]) -> None:
    if shutil.which("nmap") is None:
        print("\nnmap is not installed (Debian package nmap): comparison skipped")
        return
    empty = Path("/tmp/piiguard-passlist")
    empty.write_text("not-the-password\n")  # trust accepts any password: one wrong one proves it
    users = Path("/tmp/piiguard-users")
    users.write_text("postgres\nroot\n")
    rows = [
        ("PostgreSQL login without password", "postgres", "pgsql-brute",
         f"userdb={users},passdb={empty}", lambda out: "Trusted authentication" in out or "Valid credentials" in out,
         "postgres.trust-auth"),
        ("MariaDB root with empty password", "mysql", "mysql-empty-password", "",
         lambda out: "root account has empty password" in out, "mysql.empty-password"),
        ("Redis answers without AUTH", "redis", "redis-info", "", lambda out: "Version" in out, "redis.no-auth"),
    ]
    print("\nside by side with nmap (same servers, same run)")
    print(f"  {'finding':40s} {'nmap script':22s} {'nmap':6s} piiguard check")
    os.environ["BENCH_PW"] = ""
    for title, engine, script, args, found, check_id in rows:
        s = servers[engine]
        out = nmap(script, s.port, args)
        store = Store(f"{engine}-nmap", engine, host="127.0.0.1", port=s.port)
        (finding,) = check_store(store, timeout=3, only=[check_id])
        print(f"  {title:40s} {script:22s} {'yes' if found(out) else 'no':6s} "
              f"{'yes' if finding.status is Status.FAIL else 'no'} ({check_id})")
    ch = servers["clickhouse"]
    store = Store("ch-nmap", "clickhouse", host="127.0.0.1", port=ch.port, options={"tcp_port": str(ch.tcp_port)})  # type: ignore[attr-defined]
    (finding,) = check_store(store, timeout=3, only=["clickhouse.default-no-password"])
    print(f"  {'ClickHouse default user, no password':40s} {'(no NSE script)':22s} {'-':6s} "
          f"{'yes' if finding.status is Status.FAIL else 'no'} (clickhouse.default-no-password)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stores", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    servers = insecure_servers()
    try:
        os.environ["BENCH_PW"] = ""
        stores = stores_for(servers, args.stores)
        t = time.perf_counter()
        result = run_checks(stores, timeout=args.timeout)
        wall = time.perf_counter() - t
        per_store: dict[str, int] = {}
        for f in result.findings:
            per_store[f.store] = per_store.get(f.store, 0) + 1
        counts = {st: sum(1 for f in result.findings if f.status is st) for st in Status}
        print(f"{len(stores)} stores ({sum(1 for s in stores if s.name.startswith(('dead', 'silent')))} dead or "
              f"silent), timeout {args.timeout:g} s: {wall:.2f} s wall, {len(result.findings)} findings "
              f"({counts[Status.FAIL]} fail, {counts[Status.ERROR]} error, {counts[Status.PASS]} pass)")
        t = time.perf_counter()
        check_store(stores[-1], timeout=args.timeout)
        print(f"one silent store alone: {time.perf_counter() - t:.2f} s (bounded by its timeout)")
        compare_with_nmap(servers)
    finally:
        stop_postgres(servers["postgres"])
        stop_mariadb(servers["mysql"])
        stop_redis(servers["redis"])
        stop_clickhouse(servers["clickhouse"])


if __name__ == "__main__":
    main()
