"""Containment against real servers: planned, applied (auto or approved), verified by re-probing,
undone — and nothing deleted."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
from servers import PASSWORD, REDIS_ADMIN, Server, redis_admin, start_mariadb, stop_mariadb

from piiguard.catalog import Catalog
from piiguard.checker import check_store
from piiguard.contain.service import Containor
from piiguard.model import Status, Store
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import JsonLines

PW = "PIIGUARD_C_PW"


admin = redis_admin


def redis_store(server: Server) -> Store:
    return Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env=PW)


def no_auth(store: Store) -> Status:
    (finding,) = check_store(store, timeout=2, only=["redis.no-auth"])
    return finding.status


def test_auto_mode_closes_redis_and_undo_restores_it(cache: Server, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    store = redis_store(cache)
    admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "-@all", "+info")
    assert no_auth(store) is Status.FAIL
    with Catalog(tmp_path / "c.db") as cat:
        containor = Containor(cat, mode="auto", timeout=2)
        Watcher([store], cat, [JsonLines(io.StringIO())], timeout=2, containor=containor).cycle()
        (action,) = cat.containments("cache")
        assert action["status"] == "verified" and action["plan"]["steps"][0] == "ACL SETUSER default off"
        assert no_auth(store) is Status.PASS  # closed
        containor.undo(action["id"], store)
        assert cat.containments("cache")[0]["status"] == "undone"
    assert no_auth(store) is Status.FAIL  # exactly as before: the previous rules came back
    admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "off")


def test_approve_mode_waits_for_piiguard_approve(cache: Server, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    store = redis_store(cache)
    admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "-@all", "+info")
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="approve", timeout=2)).cycle()
        (action,) = cat.containments("cache")
    assert action["status"] == "planned" and no_auth(store) is Status.FAIL  # nothing changed yet
    url = f"redis://{REDIS_ADMIN}@127.0.0.1:{cache.port}/0?password_env={PW}"
    run = subprocess.run([sys.executable, "-m", "piiguard", "approve", str(action["id"]), url,
                          "--catalog", str(catalog)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "verified" in run.stdout, run.stderr
    assert no_auth(store) is Status.PASS
    undo = subprocess.run([sys.executable, "-m", "piiguard", "contain", "undo", str(action["id"]), url,
                           "--catalog", str(catalog)], capture_output=True, text=True, timeout=60)
    assert undo.returncode == 0 and no_auth(store) is Status.FAIL
    admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "off")


def test_rate_cap_leaves_the_rest_for_approval(cache: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    store = redis_store(cache)
    admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "-@all", "+info")
    with Catalog(tmp_path / "c.db") as cat:
        cat.add_containment("other", "redis", {}, "verified")  # one store already closed this minute
        Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="auto", rate=1, timeout=2)).cycle()
        action = cat.containments("cache")[0]
    assert action["status"] == "planned" and "rate cap" in action["note"]
    assert no_auth(store) is Status.FAIL
    admin(cache).execute_command("ACL", "SETUSER", "default", "reset", "off")


def test_mariadb_accounts_without_password_are_locked_and_unlocked(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_mariadb()
    try:
        with pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=PASSWORD,
                             autocommit=True) as conn:
            conn.cursor().execute("CREATE USER ''@'127.0.0.1'")  # anonymous, no password: anyone gets in
        monkeypatch.setenv(PW, PASSWORD)
        store = Store("shop", "mysql", host="127.0.0.1", port=server.port, user="root", password_env=PW)
        with Catalog(tmp_path / "c.db") as cat:
            Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="auto", timeout=2)).cycle()
            (action,) = cat.containments("shop")
            assert action["status"] == "verified"
            assert action["plan"]["steps"][:-1] == ["ALTER USER ''@'127.0.0.1' ACCOUNT LOCK"]
            assert action["plan"]["steps"][-1].startswith("'root' (piiguard's own login) is never locked")
            with pytest.raises(pymysql.err.OperationalError):  # any name matched the anonymous account
                pymysql.connect(host="127.0.0.1", port=server.port, user="someone", password="")
            Containor(cat).undo(action["id"], store)
        pymysql.connect(host="127.0.0.1", port=server.port, user="someone", password="").close()  # kept, unlocked
    finally:
        stop_mariadb(server)


def test_clickhouse_default_user_gets_a_generated_password_and_undo_removes_it(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from servers import clickhouse_users, start_clickhouse, stop_clickhouse

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where the generated password goes
    server = start_clickhouse()
    try:
        (server.data / "conf" / "users.xml").write_text(clickhouse_users(password=False))
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{server.port}/", data=b"SYSTEM RELOAD CONFIG",
            headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}), timeout=10).read()
        monkeypatch.setenv(PW, "")
        store = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default", password_env=PW,
                      options={"tcp_port": str(server.tcp_port), "config_dir": str(server.data / "conf")})  # type: ignore[attr-defined]
        with Catalog(tmp_path / "c.db") as cat:
            Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="auto", timeout=2)).cycle(inside=False)
            (action,) = cat.containments("olap")
            assert action["status"] == "verified", action["note"]
            secret = Path(action["plan"]["data"]["secret_file"])
            assert secret.stat().st_mode & 0o077 == 0 and secret.read_text() not in str(action)
            assert "piiguard logs in as default too" in " ".join(action["plan"]["steps"])  # its own login changes
            Containor(cat).undo(action["id"], store)
        (finding,) = check_store(store, timeout=2, only=["clickhouse.default-no-password"])
        assert finding.status is Status.FAIL  # as it was before containment
    finally:
        stop_clickhouse(server)


def test_postgres_revokes_connect_from_public_and_undo_grants_it_back(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg
    from servers import HARDENED_HBA, pg_ctl, start_postgres, stop_postgres

    server = start_postgres(hardened=True)
    try:
        def connect(user: str, password: str) -> None:
            psycopg.connect(host="127.0.0.1", port=server.port, user=user, password=password, dbname="postgres",
                            sslmode="require").close()

        with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=PASSWORD,
                             sslmode="require", autocommit=True) as conn:
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'app-secret-pw'")
        (server.data / "data" / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n" + HARDENED_HBA)
        pg_ctl(server, "reload")
        monkeypatch.setenv(PW, PASSWORD)
        store = Store("pg", "postgres", host="127.0.0.1", port=server.port, user="postgres", database="postgres",
                      password_env=PW)
        connect("app", "")  # the open door: trust
        with Catalog(tmp_path / "c.db") as cat:
            Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="auto", timeout=2)).cycle(inside=False)
            (action,) = cat.containments("pg")
            assert action["status"] == "applied" and "superusers bypass CONNECT" in " ".join(action["plan"]["steps"])
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                connect("app", "")
            connect("postgres", "")  # superusers bypass CONNECT: the plan says so
            Containor(cat).undo(action["id"], store)
        connect("app", "")  # back as it was
    finally:
        stop_postgres(server)
