"""MariaDB checks against a real hardened server (every check passes) and one insecure variant per check
(that check fails; where one misconfiguration is seen by two checks, both are named)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pymysql
import pytest
from helpers import assert_fails_exactly, engine_checks
from servers import PASSWORD, Server, mariadb_options, restart_mariadb, start_mariadb, stop_mariadb

from piiguard.checker import check_store
from piiguard.checks.mysql import TLS_OPTIONAL
from piiguard.model import Status, Store

PW_ENV = "PIIGUARD_TEST_MY_CHECK_PW"


@pytest.fixture(scope="module")
def hardened() -> Iterator[Server]:
    server = start_mariadb(hardened=True)
    server.options = mariadb_options(server, hardened=True)  # type: ignore[attr-defined]
    yield server
    stop_mariadb(server)


def sql(server: Server, *statements: str, password: str = PASSWORD) -> None:
    tls = TLS_OPTIONAL if "--require-secure-transport=ON" in server.options else None  # type: ignore[attr-defined]
    conn = pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=password, ssl=tls,
                           autocommit=True)
    with conn, conn.cursor() as cur:
        for st in statements:
            cur.execute(st)


def restart(server: Server, options: list[str]) -> None:
    restart_mariadb(server, options)
    server.options = options  # type: ignore[attr-defined]


def restore(server: Server) -> None:
    baseline = mariadb_options(server, hardened=True)
    if server.options != baseline:  # type: ignore[attr-defined]
        restart(server, baseline)
    for password in (PASSWORD, "", "root"):
        try:
            sql(server, f"ALTER USER root@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'", password=password)
            break
        except pymysql.err.OperationalError:
            continue
    sql(server, "DROP USER IF EXISTS app@'%'", "DROP USER IF EXISTS ''@'10.0.0.1'", "DROP USER IF EXISTS app2@'10.0.0.2'",
        "DROP USER IF EXISTS app3@'10.0.0.3'", "SET GLOBAL require_secure_transport = ON",
        "SET GLOBAL local_infile = OFF", "SET GLOBAL server_audit_logging = ON")


def statuses(server: Server, monkeypatch: pytest.MonkeyPatch, password: str = PASSWORD) -> dict[str, Status]:
    monkeypatch.setenv(PW_ENV, password)
    store = Store("shop", "mysql", host="127.0.0.1", port=server.port, user="root", password_env=PW_ENV)
    return {f.check: f.status for f in check_store(store, timeout=3)}


def with_options(*extra: str, tls: bool = True) -> Callable[[Server], None]:
    return lambda s: restart(s, [*mariadb_options(s, hardened=True, tls=tls), *extra])


Variant = Callable[[Server], object]
VARIANTS: list[tuple[str, Variant, set[str], str]] = [
    ("mysql.empty-password", lambda s: sql(s, "ALTER USER root@'127.0.0.1' IDENTIFIED BY ''"),
     {"mysql.empty-password", "mysql.empty-auth-string"}, ""),
    ("mysql.default-password", lambda s: sql(s, "ALTER USER root@'127.0.0.1' IDENTIFIED BY 'root'"),
     {"mysql.default-password"}, "root"),
    ("mysql.no-tls", with_options(tls=False), {"mysql.no-tls", "mysql.insecure-transport"}, PASSWORD),
    ("mysql.skip-grant-tables", with_options("--skip-grant-tables"),
     {"mysql.skip-grant-tables", "mysql.empty-password"}, PASSWORD),
    ("mysql.wildcard-host", lambda s: sql(s, "CREATE USER app@'%' IDENTIFIED BY 'a-long-app-secret'"),
     {"mysql.wildcard-host"}, PASSWORD),
    ("mysql.anonymous-account", lambda s: sql(s, "CREATE USER ''@'10.0.0.1' IDENTIFIED BY 'a-long-secret'"),
     {"mysql.anonymous-account"}, PASSWORD),
    ("mysql.empty-auth-string", lambda s: sql(s, "CREATE USER app2@'10.0.0.2'"), {"mysql.empty-auth-string"},
     PASSWORD),
    ("mysql.insecure-transport", lambda s: sql(s, "SET GLOBAL require_secure_transport = OFF"),
     {"mysql.insecure-transport"}, PASSWORD),
    ("mysql.local-infile", lambda s: sql(s, "SET GLOBAL local_infile = ON"), {"mysql.local-infile"}, PASSWORD),
    ("mysql.admin-privileges", lambda s: sql(s, "CREATE USER app3@'10.0.0.3' IDENTIFIED BY 'a-long-secret'",
                                             "GRANT FILE ON *.* TO app3@'10.0.0.3'"),
     {"mysql.admin-privileges"}, PASSWORD),
    ("mysql.bind-all", with_options("--bind-address=0.0.0.0"), {"mysql.bind-all"}, PASSWORD),
    ("mysql.no-audit", lambda s: sql(s, "SET GLOBAL server_audit_logging = OFF"), {"mysql.no-audit"}, PASSWORD),
]


def test_hardened_server_passes_every_check(hardened: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    restore(hardened)
    got = statuses(hardened, monkeypatch)
    assert set(got) == set(engine_checks("mysql"))
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {}


def test_every_check_has_an_insecure_variant() -> None:
    assert {v[0] for v in VARIANTS} == set(engine_checks("mysql"))


@pytest.mark.parametrize(("check", "apply", "expected", "password"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_insecure_variant_fails_its_check(hardened: Server, monkeypatch: pytest.MonkeyPatch, check: str,
                                          apply: Variant, expected: set[str], password: str) -> None:
    restore(hardened)
    apply(hardened)
    got = statuses(hardened, monkeypatch, password)
    assert_fails_exactly(got, expected)
