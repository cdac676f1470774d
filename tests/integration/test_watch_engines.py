"""watch notices each engine's protection being removed and restored — PostgreSQL (a pg_hba trust
line + reload), MariaDB (ALTER USER … IDENTIFIED BY ''), ClickHouse (users.xml + SYSTEM RELOAD
CONFIG) — alerting a real HTTP listener and opening and closing the exposure window."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest
from helpers import Listener
from servers import (
    HARDENED_HBA,
    PASSWORD,
    Server,
    clickhouse_users,
    pg_ctl,
    start_clickhouse,
    start_mariadb,
    start_postgres,
    stop_clickhouse,
    stop_mariadb,
    stop_postgres,
)

from piiguard.catalog import Catalog
from piiguard.model import Store
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import Webhook

PW = "PIIGUARD_WE_PW"


def pg_flip(server: Server, open_: bool) -> None:
    hba = server.data / "data" / "pg_hba.conf"
    hba.write_text(("host all all 127.0.0.1/32 trust\n" if open_ else "") + HARDENED_HBA)
    pg_ctl(server, "reload")


def my_flip(server: Server, open_: bool) -> None:
    for current in (PASSWORD, ""):
        try:
            with pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=current,
                                 autocommit=True) as conn:
                conn.cursor().execute(f"ALTER USER root@'127.0.0.1' IDENTIFIED BY '{'' if open_ else PASSWORD}'")
            return
        except pymysql.err.OperationalError:
            continue


def ch_flip(server: Server, open_: bool) -> None:
    (server.data / "conf" / "users.xml").write_text(clickhouse_users(password=not open_))
    for key in (PASSWORD, ""):
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{server.port}/", data=b"SYSTEM RELOAD CONFIG",
                headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": key}), timeout=10).read()
            return
        except OSError:
            continue


ENGINES: list[tuple[str, Callable[[], Server], Callable[[Server], None], Callable[[Server, bool], None], str]] = [
    ("postgres", lambda: start_postgres(hardened=True), stop_postgres, pg_flip, "postgres.trust-auth"),
    ("mysql", start_mariadb, stop_mariadb, my_flip, "mysql.empty-password"),
    ("clickhouse", start_clickhouse, stop_clickhouse, ch_flip, "clickhouse.default-no-password"),
]


@pytest.mark.parametrize(("engine", "start", "stop", "flip", "check"), ENGINES, ids=[e[0] for e in ENGINES])
def test_watch_sees_protection_removed_and_restored(engine: str, start: Callable[[], Server],
                                                    stop: Callable[[Server], None],
                                                    flip: Callable[[Server, bool], None], check: str,
                                                    listener: Listener, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server = start()
    try:
        monkeypatch.setenv(PW, PASSWORD)
        options = {"tcp_port": str(server.tcp_port)} if engine == "clickhouse" else {}  # type: ignore[attr-defined]
        store = Store("db", engine, host="127.0.0.1", port=server.port, user=server.user, password_env=PW,
                      options=options)
        with Catalog(tmp_path / "c.db") as cat:
            watcher = Watcher([store], cat, [Webhook(listener.url)], timeout=3)
            watcher.cycle(inside=False)
            flip(server, True)
            assert check in [a.check for a in watcher.cycle(inside=False)]
            watcher.deliver()
            assert cat.exposures("db")[0].closed_at is None
            flip(server, False)
            watcher.cycle(inside=False)
            watcher.deliver()
            (window,) = cat.exposures("db")
            assert window.closed_at is not None
        assert listener.events(check) == ["opened", "resolved"]
    finally:
        stop(server)
