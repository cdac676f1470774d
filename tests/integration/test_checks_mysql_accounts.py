"""A MariaDB account with no password at any host — '%', a wildcard pattern, a host pattern — is
flagged by the inside audit (no outside probe can know its name), and '%'-like patterns by
mysql.wildcard-host."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from servers import PASSWORD, Server, start_mariadb, stop_mariadb

from piiguard.checker import check_store
from piiguard.checks.mysql import any_host
from piiguard.model import Status, Store

PW = "PIIGUARD_MYACC_PW"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_mariadb()
    yield s
    stop_mariadb(s)


def sql(server: Server, *statements: str) -> None:
    with pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=PASSWORD, autocommit=True) as c:
        for statement in statements:
            c.cursor().execute(statement)


@pytest.mark.parametrize(("host", "expected"), [
    ("%", True), ("", True), ("%.%", True), ("%.%.%.%", True), ("0.0.0.0/0.0.0.0", True),
    ("10.0.%", False), ("localhost", False), ("127.0.0.1", False), ("_", False), ("10.0.0.0/255.0.0.0", False),
])
def test_any_host_patterns(host: str, expected: bool) -> None:
    assert any_host(host) is expected


def test_passwordless_accounts_at_any_host_are_flagged(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    store = Store("shop", "mysql", host="127.0.0.1", port=server.port, user="root", password_env=PW)
    sql(server, "CREATE USER 'legacy'@'%'", "CREATE USER 'etl'@'%.%'", "CREATE USER 'batch'@'10.1.%'")
    try:
        findings = {f.check: f for f in check_store(store, timeout=3)}
        empty = findings["mysql.empty-auth-string"]
        assert empty.status is Status.FAIL
        assert all(a in empty.evidence for a in ("'legacy'@'%'", "'etl'@'%.%'", "'batch'@'10.1.%'"))
        wide = findings["mysql.wildcard-host"]
        assert "'etl'@'%.%'" in wide.evidence and "batch" not in wide.evidence
        assert findings["mysql.empty-password"].status is Status.PASS  # the outside probe cannot know the names
    finally:
        sql(server, "DROP USER IF EXISTS 'legacy'@'%'", "DROP USER IF EXISTS 'etl'@'%.%'",
            "DROP USER IF EXISTS 'batch'@'10.1.%'")


def test_mysql_user_table_gives_the_same_accounts(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """MySQL has no mysql.global_priv: the mysql.user reading (also a view on MariaDB) finds the same
    password-less account with its host."""
    from piiguard.checks.mysql import MySQLTarget

    monkeypatch.setenv(PW, PASSWORD)
    sql(server, "CREATE USER 'legacy'@'%'")
    target = MySQLTarget(Store("shop", "mysql", host="127.0.0.1", port=server.port, user="root", password_env=PW),
                         timeout=3)
    try:
        from_user = {(str(u), str(h)): (bool(n), bool(lk)) for u, h, _p, n, lk in target.user_table_accounts()}
        from_priv = {(a["user"], a["host"]): (bool(a["no_password"]), bool(a["locked"])) for a in target.accounts}
    finally:
        target.close()
        sql(server, "DROP USER IF EXISTS 'legacy'@'%'")
    assert from_user[("legacy", "%")] == (True, False)
    # MariaDB's mysql.user view has no account_locked: the locked system account reads as unlocked there
    assert {k: v for k, v in from_user.items() if k[0] != "mariadb.sys"} == \
        {k: v for k, v in from_priv.items() if k[0] != "mariadb.sys"}
