"""Containment puts back exactly what it changed, and never locks out the account piiguard uses:
Redis contain + undo leaves ``CONFIG GET *`` and ``ACL LIST`` as they were (a Redis 7 selector in
the default user's rules included); a store whose user is ``default`` gets a plan for a person; a
MariaDB store whose own login has no password keeps that login unlocked, and the plan says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import redis
from servers import PASSWORD, REDIS_ADMIN, Server, start_mariadb, start_redis, stop_mariadb, stop_redis

from piiguard.catalog import Catalog
from piiguard.checker import check_store
from piiguard.contain.redis import rule_words
from piiguard.contain.service import Containor
from piiguard.model import Status, Store
from piiguard.watch.service import Watcher

PW = "PIIGUARD_RT_PW"
# What an operator leaves behind: the default user open, with a key pattern, a channel and a selector.
OPEN_DEFAULT = ("reset", "on", "nopass", "~cache:*", "resetchannels", "&news", "-@all", "+info", "+get",
                "(~session:* +get +ttl)")


@pytest.fixture(scope="module")
def own_redis() -> Iterator[Server]:
    server = start_redis()
    yield server
    stop_redis(server)


def admin(server: Server) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD,
                       decode_responses=True)


def state(server: Server) -> tuple[dict[str, str], list[str]]:
    r = admin(server)
    try:
        return dict(r.config_get("*")), sorted(str(x) for x in r.acl_list())
    finally:
        r.close()


def test_rule_words_keep_a_selector_whole() -> None:
    assert rule_words("user default on nopass ~a (~b +get +ttl) +info") == [
        "user", "default", "on", "nopass", "~a", "(~b +get +ttl)", "+info"]


def test_redis_contain_and_undo_round_trip(own_redis: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    admin(own_redis).execute_command("ACL", "SETUSER", "default", *OPEN_DEFAULT)
    store = Store("cache", "redis", host="127.0.0.1", port=own_redis.port, user=REDIS_ADMIN, password_env=PW)
    before = state(own_redis)
    assert any("(~session:*" in rule for rule in before[1])
    with Catalog(tmp_path / "c.db") as cat:
        containor = Containor(cat, mode="auto", timeout=2)
        Watcher([store], cat, [], timeout=2, containor=containor).cycle(inside=False)
        (action,) = cat.containments("cache")
        assert action["status"] == "verified"
        assert f"{REDIS_ADMIN} (piiguard's own administrator) stays enabled" in action["plan"]["steps"]
        closed = state(own_redis)
        assert closed[1] != before[1] and any(r.startswith("user default off") for r in closed[1])
        containor.undo(action["id"], store)
    after = state(own_redis)
    assert after[1] == before[1]  # ACL LIST: every user's rules, the selector included
    assert after[0] == before[0]  # CONFIG GET *: nothing else was touched
    admin(own_redis).execute_command("ACL", "SETUSER", "default", "reset", "off")


def test_redis_undo_leaves_a_later_change_alone(own_redis: Server, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from piiguard.errors import StoreError

    monkeypatch.setenv(PW, PASSWORD)
    admin(own_redis).execute_command("ACL", "SETUSER", "default", *OPEN_DEFAULT)
    store = Store("cache", "redis", host="127.0.0.1", port=own_redis.port, user=REDIS_ADMIN, password_env=PW)
    try:
        with Catalog(tmp_path / "c.db") as cat:
            containor = Containor(cat, mode="auto", timeout=2)
            Watcher([store], cat, [], timeout=2, containor=containor).cycle(inside=False)
            (action,) = cat.containments("cache")
            # the operator fixes it properly meanwhile: a password instead of nopass
            admin(own_redis).execute_command("ACL", "SETUSER", "default", "on", "resetpass", ">a-long-new-secret")
            fixed = state(own_redis)
            with pytest.raises(StoreError, match="changed after containment"):
                containor.undo(action["id"], store)
        assert state(own_redis) == fixed
    finally:
        admin(own_redis).execute_command("ACL", "SETUSER", "default", "reset", "off")


def test_redis_store_logged_in_as_default_gets_a_plan_for_a_person(own_redis: Server, tmp_path: Path) -> None:
    admin(own_redis).execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
    store = Store("cache", "redis", host="127.0.0.1", port=own_redis.port)  # piiguard runs as default
    try:
        with Catalog(tmp_path / "c.db") as cat:
            Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="auto", timeout=2)).cycle(inside=False)
            (action,) = cat.containments("cache")
            assert action["status"] == "planned" and action["plan"]["automatic"] is False
            assert "lock piiguard out" in action["plan"]["steps"][0]
        (still,) = check_store(store, timeout=2, only=["redis.no-auth"])
        assert still.status is Status.FAIL  # untouched: piiguard did not disable the account it uses
    finally:
        admin(own_redis).execute_command("ACL", "SETUSER", "default", "reset", "off")


def test_mariadb_keeps_piiguards_own_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store names no user: piiguard logs in as root, so no root account is locked — even one
    without a password at another host — while the anonymous account and a password-less one at '%'
    are."""
    server = start_mariadb()
    try:
        with pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=PASSWORD,
                             autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("CREATE USER 'root'@'::1'")  # root without a password, from another host
            cur.execute("CREATE USER 'legacy'@'%'")  # another password-less account, any host
            cur.execute("CREATE USER ''@'127.0.0.1'")  # anonymous: the open door the outside probe finds
        monkeypatch.setenv(PW, PASSWORD)
        store = Store("shop", "mysql", host="127.0.0.1", port=server.port, password_env=PW)
        with Catalog(tmp_path / "c.db") as cat:
            Watcher([store], cat, [], timeout=2, containor=Containor(cat, mode="auto", timeout=2)).cycle()
            (action,) = cat.containments("shop")
            assert sorted(action["plan"]["data"]["accounts"]) == ["''@'127.0.0.1'", "'legacy'@'%'"]
            assert "'root' (piiguard's own login) is never locked" in action["plan"]["steps"][-1]
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host="127.0.0.1", port=server.port, user="legacy", password="")
        with pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=PASSWORD) as conn:
            cur = conn.cursor()
            cur.execute("SELECT user, host, JSON_VALUE(priv, '$.account_locked') FROM mysql.global_priv "
                        "WHERE user = 'root'")
            assert all(locked in (None, "false", "0") for _u, _h, locked in cur.fetchall())
    finally:
        stop_mariadb(server)


def test_clickhouse_override_that_piiguard_did_not_write_is_never_replaced_or_removed(tmp_path: Path) -> None:
    from piiguard.contain.base import Plan
    from piiguard.contain.clickhouse import OVERRIDE, ClickHouseContainment
    from piiguard.errors import StoreError

    (tmp_path / "users.d").mkdir()
    theirs = tmp_path / "users.d" / OVERRIDE
    theirs.write_text("<yandex><users><analyst/></users></yandex>\n")  # an operator's file of that name
    store = Store("olap", "clickhouse", host="127.0.0.1", port=1, options={"config_dir": str(tmp_path)})
    plan = Plan("clickhouse", "olap", steps=(), undo=(), verify=(),
                data={"path": str(theirs), "secret_file": str(tmp_path / "secret")})
    for action in (ClickHouseContainment().apply, ClickHouseContainment().undo):
        with pytest.raises(StoreError, match=r"piiguard did not write it|no longer the file piiguard wrote"):
            action(store, plan)
        assert theirs.read_text() == "<yandex><users><analyst/></users></yandex>\n"
    assert not (tmp_path / "secret").exists()  # refused before anything was generated


def test_redis_acl_user_with_password123_is_flagged_without_the_password(own_redis: Server,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    store = Store("cache", "redis", host="127.0.0.1", port=own_redis.port, user=REDIS_ADMIN, password_env=PW)
    admin(own_redis).execute_command("ACL", "SETUSER", "reporting", "on", ">password123", "~report:*", "+get")
    try:
        (weak,) = check_store(store, timeout=2, only=["redis.acl-weak-password"])
        admin(own_redis).execute_command("ACL", "SETUSER", "reporting", "off")  # a disabled user opens nothing
        (off,) = check_store(store, timeout=2, only=["redis.acl-weak-password"])
    finally:
        admin(own_redis).execute_command("ACL", "DELUSER", "reporting")
    assert weak.status is Status.FAIL and "reporting" in weak.evidence and "password123" not in weak.evidence
    assert off.status is Status.PASS
