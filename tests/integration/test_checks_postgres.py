"""PostgreSQL checks against a real hardened server (every check passes: the false-positive test)
and one insecure variant per check (that check fails; where one misconfiguration is seen from both
vantages, its outside and inside checks fail together, and the pair is named)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import assert_fails_exactly, engine_checks
from servers import HARDENED_HBA, PASSWORD, Server, pg_ctl, start_postgres, stop_postgres

from piiguard.checker import check_store
from piiguard.model import Status, Store

PW_ENV = "PIIGUARD_TEST_PG_CHECK_PW"


@pytest.fixture(scope="module")
def hardened() -> Iterator[Server]:
    server = start_postgres(hardened=True)
    yield server
    stop_postgres(server)


def sql(server: Server, *statements: str, password: str = PASSWORD) -> None:
    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=password, dbname="postgres",
                         autocommit=True, sslmode="require") as conn:
        for st in statements:
            conn.execute(st)


def hba(server: Server, *lines: str) -> None:
    (server.data / "data" / "pg_hba.conf").write_text("\n".join(lines) + "\n" + HARDENED_HBA)
    pg_ctl(server, "reload")


def restore(server: Server) -> None:
    """Back to the hardened baseline (whatever the last variant changed)."""
    (server.data / "data" / "pg_hba.conf").write_text(HARDENED_HBA)
    for password in (PASSWORD, "postgres"):
        try:
            sql(server, "SET password_encryption = 'scram-sha-256'", f"ALTER ROLE postgres PASSWORD '{PASSWORD}'",
                password=password)
            break
        except psycopg.OperationalError:
            continue
    sql(server, "ALTER SYSTEM RESET ALL", "DROP ROLE IF EXISTS s1", "DROP ROLE IF EXISTS s2",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    pg_ctl(server, "restart")


def store(server: Server) -> Store:
    return Store("pg", "postgres", host="127.0.0.1", port=server.port, user="postgres", database="postgres",
                 password_env=PW_ENV)


def run(server: Server, monkeypatch: pytest.MonkeyPatch, password: str = PASSWORD) -> dict[str, Status]:
    monkeypatch.setenv(PW_ENV, password)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    findings = check_store(store(server), timeout=3)
    return {f.check: f.status for f in findings}


def test_hardened_server_passes_every_check(hardened: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    restore(hardened)
    statuses = run(hardened, monkeypatch)
    assert set(statuses) == set(engine_checks("postgres"))
    assert {c: s for c, s in statuses.items() if s is not Status.PASS} == {}


Variant = Callable[[Server], None]
VARIANTS: list[tuple[str, Variant, set[str], str]] = [
    ("postgres.trust-auth", lambda s: hba(s, "host all all 127.0.0.1/32 trust"),
     {"postgres.trust-auth", "postgres.hba-weak-method"}, PASSWORD),
    ("postgres.default-password", lambda s: sql(s, "ALTER ROLE postgres PASSWORD 'postgres'"),
     {"postgres.default-password"}, "postgres"),
    ("postgres.hba-weak-method", lambda s: hba(s, "hostssl all app 10.0.0.0/8 password"),
     {"postgres.hba-weak-method"}, PASSWORD),
    ("postgres.hba-open-network", lambda s: hba(s, "hostssl all app 0.0.0.0/0 scram-sha-256"),
     {"postgres.hba-open-network"}, PASSWORD),
    ("postgres.superuser-remote", lambda s: hba(s, "hostssl all postgres 10.0.0.0/8 scram-sha-256"),
     {"postgres.superuser-remote"}, PASSWORD),
    ("postgres.listen-all", lambda s: (sql(s, "ALTER SYSTEM SET listen_addresses = '*'"), pg_ctl(s, "restart")),
     {"postgres.listen-all"}, PASSWORD),
    ("postgres.tls-off", lambda s: hba(s, "host all app 10.0.0.0/8 scram-sha-256"), {"postgres.tls-off"}, PASSWORD),
    ("postgres.password-encryption", lambda s: (sql(s, "ALTER SYSTEM SET password_encryption = 'md5'"),
                                                pg_ctl(s, "reload")), {"postgres.password-encryption"}, PASSWORD),
    ("postgres.log-connections", lambda s: (sql(s, "ALTER SYSTEM SET log_connections = off"), pg_ctl(s, "reload")),
     {"postgres.log-connections"}, PASSWORD),
    ("postgres.no-audit", lambda s: (sql(s, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"),
                                     pg_ctl(s, "restart")), {"postgres.no-audit"}, PASSWORD),
    ("postgres.many-superusers", lambda s: sql(s, "CREATE ROLE s1 LOGIN SUPERUSER", "CREATE ROLE s2 LOGIN SUPERUSER"),
     {"postgres.many-superusers"}, PASSWORD),
    ("postgres.public-schema-create", lambda s: sql(s, "GRANT CREATE ON SCHEMA public TO PUBLIC"),
     {"postgres.public-schema-create"}, PASSWORD),
]


def test_every_check_has_an_insecure_variant() -> None:
    assert {v[0] for v in VARIANTS} == set(engine_checks("postgres"))


@pytest.mark.parametrize(("check", "apply", "expected", "password"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_insecure_variant_fails_its_check(hardened: Server, monkeypatch: pytest.MonkeyPatch, check: str,
                                          apply: Variant, expected: set[str], password: str) -> None:
    restore(hardened)
    apply(hardened)
    statuses = run(hardened, monkeypatch, password)
    assert_fails_exactly(statuses, expected)


def test_unreachable_store_is_an_error_for_every_check(tmp_path: Path) -> None:
    from servers import free_port

    findings = check_store(Store("gone", "postgres", host="127.0.0.1", port=free_port(), user="postgres"), timeout=1)
    assert {f.status for f in findings} == {Status.ERROR}
    assert all("cannot connect" in f.evidence for f in findings)
