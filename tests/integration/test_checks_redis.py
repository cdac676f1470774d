"""Redis checks against a real hardened server (every check passes) and one insecure variant per check
(that check fails; where one misconfiguration is seen by two checks, both are named)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from helpers import assert_fails_exactly, engine_checks
from servers import PASSWORD, REDIS_ADMIN, Server, free_port, start_redis, stop_redis

from piiguard.checker import check_store
from piiguard.checks.redis import indicators
from piiguard.model import Status, Store

PW_ENV = "PIIGUARD_TEST_REDIS_PW"
APP_RULES = ("on", ">app-password-not-default", "~*", "&*", "+@all", "-@dangerous", "-eval", "-evalsha")


@pytest.fixture(scope="module")
def hardened() -> Iterator[Server]:
    server = start_redis()
    yield server
    stop_redis(server)


def admin(server: Server) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD,
                       decode_responses=True)


def restore(server: Server) -> None:
    r = admin(server)
    r.acl_setuser("default", reset=True, enabled=False)
    r.execute_command("ACL", "SETUSER", "app", "reset", *APP_RULES)
    r.config_set("protected-mode", "yes")
    r.config_set("bind", "127.0.0.1 -::1")
    r.execute_command("REPLICAOF", "NO", "ONE")
    r.close()


def set_tls_port(server: Server, port: str) -> None:
    admin(server).config_set("tls-port", port)


def statuses(server: Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, Status]:
    monkeypatch.setenv(PW_ENV, PASSWORD)
    store = Store("cache", "redis", host="127.0.0.1", port=server.port, user=REDIS_ADMIN, password_env=PW_ENV)
    return {f.check: f.status for f in check_store(store, timeout=3)}


def acl(*rule: str) -> Callable[[Server], object]:
    return lambda s: admin(s).execute_command("ACL", "SETUSER", *rule)


Variant = Callable[[Server], object]
VARIANTS: list[tuple[str, Variant, set[str]]] = [
    ("redis.no-auth", acl("default", "reset", "on", "nopass", "-@all", "+info"),
     {"redis.no-auth", "redis.default-user-nopass"}),
    ("redis.weak-password", acl("default", "reset", "on", ">foobared", "-@all", "+info"),
     {"redis.weak-password", "redis.acl-weak-password"}),
    ("redis.acl-weak-password", acl("app", ">password123"), {"redis.acl-weak-password"}),
    ("redis.default-user-nopass", acl("default", "reset", "on", "nopass", "-@all"), {"redis.default-user-nopass"}),
    ("redis.protected-mode-off", lambda s: (admin(s).config_set("bind", "0.0.0.0"),
                                            admin(s).config_set("protected-mode", "no")),
     {"redis.protected-mode-off", "redis.bind-all"}),
    ("redis.bind-all", lambda s: admin(s).config_set("bind", "0.0.0.0"), {"redis.bind-all"}),
    ("redis.dangerous-commands", acl("app", "+config|get"), {"redis.dangerous-commands"}),
    ("redis.compromise-indicators", lambda s: admin(s).execute_command("REPLICAOF", "127.0.0.1", str(free_port())),
     {"redis.compromise-indicators"}),
    ("redis.no-tls", lambda s: set_tls_port(s, "0"), {"redis.no-tls"}),
]


def test_hardened_server_passes_every_check(hardened: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    restore(hardened)
    got = statuses(hardened, monkeypatch)
    assert set(got) == set(engine_checks("redis"))
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {}


def test_every_check_has_an_insecure_variant() -> None:
    assert {v[0] for v in VARIANTS} == set(engine_checks("redis"))


@pytest.mark.parametrize(("check", "apply", "expected"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_insecure_variant_fails_its_check(hardened: Server, monkeypatch: pytest.MonkeyPatch, check: str,
                                          apply: Variant, expected: set[str]) -> None:
    restore(hardened)
    tls_port = admin(hardened).config_get("tls-port")["tls-port"]
    try:
        apply(hardened)
        got = statuses(hardened, monkeypatch)
    finally:
        set_tls_port(hardened, tls_port)
    assert_fails_exactly(got, expected)


@pytest.mark.parametrize(("directory", "dbfilename", "replication", "signs"), [
    ("/root/.ssh", "authorized_keys", {"role": "master"}, 2),
    ("/var/spool/cron", "root", {"role": "master"}, 2),
    ("/var/lib/redis", "dump.rdb", {"role": "slave", "master_host": "203.0.113.9", "master_port": 6379}, 1),
    ("/var/lib/redis", "dump.rdb", {"role": "master"}, 0),
], ids=["ssh-keys", "cron", "replica", "ordinary"])
def test_compromise_indicators(directory: str, dbfilename: str, replication: dict[str, object], signs: int) -> None:
    assert len(indicators(directory, dbfilename, replication)) == signs


@pytest.mark.parametrize("user", ["ops.lead@example.com", "+14155550134"], ids=["email", "phone"])
def test_acl_user_names_in_evidence_are_labelled(hardened: Server, monkeypatch: pytest.MonkeyPatch,
                                                 user: str) -> None:
    """A user named by a person's address is data: evidence names its type, never the name itself."""
    restore(hardened)
    r = admin(hardened)
    r.execute_command("ACL", "SETUSER", user, "reset", "on", ">password123", "~*", "+@all")
    try:
        monkeypatch.setenv(PW_ENV, PASSWORD)
        store = Store("cache", "redis", host="127.0.0.1", port=hardened.port, user=REDIS_ADMIN, password_env=PW_ENV)
        found = {f.check: f for f in check_store(store, timeout=3)}
    finally:
        r.execute_command("ACL", "DELUSER", user)
    for check in ("redis.acl-weak-password", "redis.dangerous-commands"):
        f = found[check]
        assert f.status is Status.FAIL, (check, f.evidence)
        assert user not in f.evidence and "\n" not in f.evidence and "\x1b" not in f.evidence, f.evidence
    assert "<email>" in found["redis.acl-weak-password"].evidence or user != "ops.lead@example.com"


def test_a_user_named_like_a_slack_command_reaches_slack_escaped(hardened: Server,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from piiguard.watch.sinks import slack_escape, slack_text

    restore(hardened)
    r = admin(hardened)
    r.execute_command("ACL", "SETUSER", "<!channel>", "reset", "on", ">password123", "~*", "+@all")
    try:
        monkeypatch.setenv(PW_ENV, PASSWORD)
        store = Store("cache", "redis", host="127.0.0.1", port=hardened.port, user=REDIS_ADMIN, password_env=PW_ENV)
        (f,) = [f for f in check_store(store, timeout=3) if f.check == "redis.acl-weak-password"]
    finally:
        r.execute_command("ACL", "DELUSER", "<!channel>")
    text = slack_escape(slack_text({"event": "opened", "store": "cache", "check": f.check, "severity": "high",
                                    "evidence": f.evidence, "pii_types": [], "subjects_estimate": None}))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
