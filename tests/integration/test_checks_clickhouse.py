"""ClickHouse checks against a real hardened server (every check passes) and one insecure variant per
check (that check fails; where one misconfiguration is seen by two checks, both are named)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator

import pytest
from helpers import assert_fails_exactly, engine_checks
from servers import (
    PASSWORD,
    Server,
    clickhouse_users,
    restart_clickhouse,
    start_clickhouse,
    stop_clickhouse,
    write_clickhouse_config,
)

from piiguard.checker import check_store
from piiguard.model import Status, Store

PW_ENV = "PIIGUARD_TEST_CH_PW"


@pytest.fixture(scope="module")
def hardened() -> Iterator[Server]:
    server = start_clickhouse()
    yield server
    stop_clickhouse(server)


def reload(server: Server, password: str = PASSWORD) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=b"SYSTEM RELOAD CONFIG",
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": password})
    urllib.request.urlopen(request, timeout=10).read()


def users(server: Server, password_for_reload: str = PASSWORD, **kw: object) -> None:
    (server.data / "conf" / "users.xml").write_text(clickhouse_users(**kw))  # type: ignore[arg-type]
    reload(server, password_for_reload)


def restore(server: Server) -> None:
    if "0.0.0.0" in (server.data / "conf" / "config.xml").read_text():
        write_clickhouse_config(server, listen="127.0.0.1")
        restart_clickhouse(server)
    for password in (PASSWORD, ""):
        try:
            users(server, password)
            return
        except OSError:
            continue


def statuses(server: Server, monkeypatch: pytest.MonkeyPatch, password: str = PASSWORD) -> dict[str, Status]:
    monkeypatch.setenv(PW_ENV, password)
    store = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default", password_env=PW_ENV,
                  options={"tcp_port": str(server.tcp_port), "config_dir": str(server.data / "conf")})  # type: ignore[attr-defined]
    return {f.check: f.status for f in check_store(store, timeout=3)}


def listen_all(server: Server) -> None:
    write_clickhouse_config(server, listen="0.0.0.0")
    restart_clickhouse(server)


Variant = Callable[[Server], object]
VARIANTS: list[tuple[str, Variant, set[str]]] = [
    ("clickhouse.default-no-password", lambda s: users(s, password=False),
     {"clickhouse.default-no-password", "clickhouse.users-without-password"}),
    ("clickhouse.users-without-password",
     lambda s: users(s, extra="<analyst><password></password><networks><ip>10.0.0.0/8</ip></networks>"
                               "<profile>default</profile><quota>default</quota></analyst>"),
     {"clickhouse.users-without-password"}),
    ("clickhouse.networks-open", lambda s: users(s, networks="<ip>::/0</ip>"), {"clickhouse.networks-open"}),
    ("clickhouse.listen-all-no-tls", listen_all, {"clickhouse.listen-all-no-tls"}),
    ("clickhouse.query-log-off", lambda s: users(s, log_queries=0), {"clickhouse.query-log-off"}),
]


def test_hardened_server_passes_every_check(hardened: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    restore(hardened)
    got = statuses(hardened, monkeypatch)
    assert set(got) == set(engine_checks("clickhouse"))
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {}


def test_every_check_has_an_insecure_variant() -> None:
    assert {v[0] for v in VARIANTS} == set(engine_checks("clickhouse"))


@pytest.mark.parametrize(("check", "apply", "expected"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_insecure_variant_fails_its_check(hardened: Server, monkeypatch: pytest.MonkeyPatch, check: str,
                                          apply: Variant, expected: set[str]) -> None:
    restore(hardened)
    apply(hardened)
    got = statuses(hardened, monkeypatch, "" if check == "clickhouse.default-no-password" else PASSWORD)
    assert_fails_exactly(got, expected)


def test_config_checks_without_config_dir_say_what_they_need(hardened: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_ENV, PASSWORD)
    store = Store("olap", "clickhouse", host="127.0.0.1", port=hardened.port, user="default", password_env=PW_ENV,
                  options={"tcp_port": str(hardened.tcp_port)})  # type: ignore[attr-defined]
    findings = {f.check: f for f in check_store(store, timeout=3)}
    assert findings["clickhouse.networks-open"].status is Status.ERROR
    assert "options.config_dir" in findings["clickhouse.networks-open"].evidence


def test_a_users_d_override_is_merged_as_the_server_merges_it(hardened: Server,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A users.d file that only narrows default's networks: the real server still asks default for
    its password (the files are merged), and piiguard reads the merged user the same way."""
    restore(hardened)
    override = hardened.data / "conf" / "users.d" / "narrow.xml"
    override.parent.mkdir(exist_ok=True)
    override.write_text('<clickhouse><users><default><networks replace="replace"><ip>127.0.0.1</ip>'
                        "</networks></default></users></clickhouse>")
    try:
        reload(hardened)
        anonymous = urllib.request.Request(f"http://127.0.0.1:{hardened.port}/?query=SELECT%201",
                                           headers={"X-ClickHouse-User": "default"})
        with pytest.raises(urllib.error.HTTPError):  # the server kept default's password
            urllib.request.urlopen(anonymous, timeout=10).read()
        got = statuses(hardened, monkeypatch)
        assert got["clickhouse.users-without-password"] is Status.PASS
        assert got["clickhouse.networks-open"] is Status.PASS
    finally:
        override.unlink()
        reload(hardened)
