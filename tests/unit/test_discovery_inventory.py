"""The inventory's matching, the unregistered-store finding and the adopt entry (no server needed:
the entry is held to the real configuration parser, resolution to this machine's resolver)."""

from __future__ import annotations

import ipaddress
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.config import NAME_RE, load_yaml, parse_config
from piiguard.discovery import inventory
from piiguard.discovery.base import Discovered, Endpoint, Kind, Service
from piiguard.errors import ConfigError, UsageError
from piiguard.model import Finding, Severity, Status, Store, Vantage

ENGINES = ("postgres", "mysql", "redis", "clickhouse", "opensearch", "mongodb", "s3")


def service(host: str, port: int, engine: str | None = "postgres", kind: Kind = Kind.STORE) -> Service:
    return Service(Endpoint(host, port), kind, engine, evidence="test")


def configured(*entries: dict[str, object]) -> tuple[Store, ...]:
    return parse_config({"stores": list(entries)}, schema=plugins.schema()).stores


# registered_at ----------------------------------------------------------------------------------------

def test_a_host_name_resolves_to_the_swept_address() -> None:
    stores = configured({"name": "prod", "engine": "postgres", "host": "localhost", "port": 5433})
    assert inventory.registered_at(service("127.0.0.1", 5433), stores) == "prod"
    assert inventory.registered_at(service("127.0.0.1", 5432), stores) is None  # another port: another store
    assert inventory.registered_at(service("127.0.0.2", 5433), stores) is None  # another address


def test_the_engines_default_port_is_filled_in() -> None:
    stores = configured({"name": "cache", "engine": "redis", "host": "127.0.0.1"},
                        {"name": "ch", "engine": "clickhouse", "host": "127.0.0.1", "options": {"tcp_port": 9000}})
    assert inventory.registered_at(service("127.0.0.1", 6379, "redis"), stores) == "cache"
    assert inventory.registered_at(service("127.0.0.1", 8123, "clickhouse"), stores) == "ch"
    assert inventory.registered_at(service("127.0.0.1", 9000, "clickhouse"), stores) == "ch"  # native port


def test_ipv6_literals_match_in_any_spelling() -> None:
    stores = configured({"name": "v6", "engine": "postgres", "host": "fd00:0:0::5"},
                        {"name": "mapped", "engine": "mysql", "host": "::ffff:10.0.0.7"})
    assert inventory.registered_at(service("fd00::5", 5432), stores) == "v6"
    assert inventory.registered_at(service("fd00::6", 5432), stores) is None
    assert inventory.registered_at(service("10.0.0.7", 3306, "mysql"), stores) == "mapped"
    localhost = configured({"name": "local", "engine": "postgres", "host": "localhost"})
    if any(ip.version == 6 for ip in inventory.resolve("localhost")):
        assert inventory.registered_at(service("::1", 5432), localhost) == "local"


def test_a_name_that_does_not_resolve_is_not_a_match() -> None:
    stores = configured({"name": "gone", "engine": "postgres", "host": "no-such-host.invalid"},
                        {"name": "files", "engine": "sqlite", "path": "/tmp/x.db"})
    assert inventory.resolve("no-such-host.invalid") == frozenset()
    assert inventory.registered_at(service("127.0.0.1", 5432), stores) is None


def test_two_stores_at_one_address_prefer_the_engine_then_the_order() -> None:
    stores = configured({"name": "a-mysql", "engine": "mysql", "host": "127.0.0.1", "port": 5432},
                        {"name": "b-pg", "engine": "postgres", "host": "127.0.0.1", "database": "one"},
                        {"name": "c-pg", "engine": "postgres", "host": "localhost", "database": "two"})
    assert inventory.registered_at(service("127.0.0.1", 5432), stores) == "b-pg"
    assert inventory.registered_at(service("127.0.0.1", 5432, None, Kind.UNKNOWN), stores) == "a-mysql"


# unregistered_finding ---------------------------------------------------------------------------------

def outside(check: str, status: Status, name: str) -> Finding:
    return Finding(check, name, status, Severity.CRITICAL, Vantage.OUTSIDE, "t", "e")


def test_registered_stores_have_no_finding() -> None:
    found = Discovered(service("10.0.0.5", 5432), registered="prod", open=True)
    assert inventory.unregistered_finding(found) is None


def test_open_is_critical_and_names_the_check_that_got_in() -> None:
    svc = Service(Endpoint("10.0.0.9", 6379), Kind.STORE, "redis", "Redis", "7.0.15")
    found = Discovered(svc, findings=(outside("redis.no-auth", Status.FAIL, "10.0.0.9:6379"),
                                      outside("tls.off", Status.FAIL, "10.0.0.9:6379")), open=True)
    f = inventory.unregistered_finding(found)
    assert f is not None and (f.check, f.status, f.severity) == ("discovery.unregistered-store", Status.FAIL,
                                                                 Severity.CRITICAL)
    assert f.store == "10.0.0.9:6379" and "10.0.0.9:6379" in f.evidence and "redis (Redis 7.0.15)" in f.evidence
    assert "redis.no-auth" in f.evidence and "tls.off" not in f.evidence  # only the doors that expose


@given(said=st.text(max_size=200))
def test_the_evidence_holds_no_hostile_banner_text(said: str) -> None:
    svc = Service(Endpoint("10.0.0.9", 9200), Kind.STORE, "opensearch", said, said)
    f = inventory.unregistered_finding(Discovered(svc, open=True))
    assert f is not None and all(" " <= c <= "~" for c in f.evidence) and len(f.evidence) < 200


@pytest.mark.parametrize("kind, words", [(Kind.STORE, "asks for credentials"), (Kind.IDENTIFY_ONLY, "identifies")])
def test_closed_or_unchecked_is_medium(kind: Kind, words: str) -> None:
    found = Discovered(service("[fd00::5]".strip("[]"), 11211, "memcached" if kind is Kind.IDENTIFY_ONLY
                               else "postgres", kind))
    f = inventory.unregistered_finding(found)
    assert f is not None and f.severity is Severity.MEDIUM and words in f.evidence
    assert "[fd00::5]:11211" in f.evidence


def test_the_check_is_registered_documented_and_never_run_by_check() -> None:
    from piiguard.checks.base import checks

    plugins.load()
    cls = checks.get("discovery.unregistered-store")
    assert cls.engine == "*" and cls.severity is Severity.CRITICAL and "adopt" in cls.doc()
    for engine in ENGINES:
        assert not cls.applies(Store("x", engine, host="127.0.0.1"))


# adopt_entry ------------------------------------------------------------------------------------------

def row(engine: str = "postgres", host: str = "10.0.0.5", port: int = 5432, kind: str = "store") -> dict[str, object]:
    return {"host": host, "port": port, "kind": kind, "engine": engine, "product": None, "version": None,
            "first_seen": "2026-12-02T04:00:00.000001+00:00"}


def parsed(entry: str) -> Store:
    (store,) = parse_config(load_yaml("stores:\n" + entry, "entry"), schema=plugins.schema()).stores
    return store


def test_the_entry_carries_a_password_reference_and_the_first_seen_tag() -> None:
    store = parsed(inventory.adopt_entry(row(), "shadow-copy"))
    assert (store.name, store.engine, store.host, store.port) == ("shadow-copy", "postgres", "10.0.0.5", 5432)
    assert store.password_env == "SHADOW_COPY_PASSWORD" and store.user == "piiguard"
    assert store.tags == {"discovered": "2026-12-02T04:00:00.000001+00:00"}
    assert parsed(inventory.adopt_entry(row("redis", port=6380), "c")).user is None


@pytest.mark.parametrize("bad", [row(kind="identify-only", engine="memcached"), row(engine=None),  # type: ignore[arg-type]
                                 row(engine="couchdb")])
def test_what_piiguard_does_not_scan_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(UsageError, match="does not scan") as exc:
        inventory.adopt_entry(bad, "x")
    assert exc.value.hint


NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_.:/@-# '\"{}[]&*!|>%`,?", min_size=1,
                max_size=30) | st.sampled_from(["yes", "no", "null", "~", "1e3", "0x1F", "true", "on", "2026-12-02",
                                                 "a: b", "- x", "@x", "&anchor", "*alias"])
HOSTS = st.ip_addresses().map(str)


@settings(max_examples=300, deadline=None)
@given(name=NAMES, engine=st.sampled_from(ENGINES), host=HOSTS, port=st.integers(1, 65535))
def test_an_entry_always_validates_or_is_refused_clearly(name: str, engine: str, host: str, port: int) -> None:
    try:
        entry = inventory.adopt_entry(row(engine, host, port), name)
    except UsageError as exc:
        assert not NAME_RE.match(name) and "cannot name a store" in exc.message and exc.hint
        return
    store = parsed(entry)  # the real parser, with every plugin's schema: raises if it does not validate
    assert (store.name, store.engine, store.host, store.port) == (name, engine, host, port)


def test_a_failed_resolution_is_retried_once_it_expires() -> None:
    inventory._cache["localhost"] = (10.0, frozenset())  # as a slow DNS answer at t=0 left it
    assert inventory.resolve("localhost", clock=lambda: 5.0) == frozenset()
    assert ipaddress.ip_address("127.0.0.1") in inventory.resolve("localhost", clock=lambda: 11.0)
    assert inventory._cache["localhost"][0] == 11.0 + inventory.CACHE_SECONDS


# with_entry: appended as text ---------------------------------------------------------------------------

ENTRY = inventory.adopt_entry(row(), "shadow")


@pytest.mark.parametrize("text", [
    "# only a comment\n",
    "",
    "catalog: c.db",  # no final newline
    "stores:\n- name: a\n  engine: sqlite\n  path: a.db\n",
    "stores:\n    - name: a  # keep me\n      engine: sqlite\n      path: a.db\n# tail\npolicy: {}\n",
    "stores: []\n",
    '{"stores": [{"name": "a", "engine": "sqlite", "path": "a.db"}], "policy": {}}',
    "stores: [ ]  # empty\n",
], ids=["comment", "empty", "no-newline", "block-0", "block-4", "flow-empty", "json", "flow-comment"])
def test_the_entry_is_added_and_every_old_line_kept(text: str) -> None:
    new = inventory.with_entry(text, ENTRY, "f")
    config = parse_config(load_yaml(new, "f"), schema=plugins.schema())
    assert [s.name for s in config.stores][-1] == "shadow"
    assert len(config.stores) == (0 if "- name: a" not in text and '"a"' not in text else 1) + 1
    for line in text.splitlines():
        if not line.startswith(("stores: [", "{")):  # a flow list is edited on its own line
            assert line in new.splitlines(), line
    if "# tail" in text:  # a comment between the list and the next key stays after the new entry
        assert new.index('"shadow"') < new.index("# tail")


@pytest.mark.parametrize("text, said", [
    ("- a\n- b\n", "not a mapping"),
    ("stores: nope\n", "'stores' is not a list"),
    ("stores:\n", "no list to add to"),
    ("a: 1\n---\nb: 2\n", "f:2: not valid YAML"),
    ("stores: [\n", "f:2: not valid YAML"),
    # the last line is a block scalar's content, not a comment: adding as text would change it
    ("stores:\n  - name: a\n    engine: sqlite\n    path: a.db\n    tags:\n      note: |\n        one\n"
     "        # two\n", "cannot be added as text"),
])
def test_a_file_it_cannot_add_to_is_refused(text: str, said: str) -> None:
    with pytest.raises((UsageError, ConfigError)) as exc:
        inventory.with_entry(text, ENTRY, "f")
    assert said in str(exc.value) + " ".join(getattr(exc.value, "problems", ()))
    assert exc.value.hint or isinstance(exc.value, ConfigError)


# record_discovered: new, gone and back ----------------------------------------------------------------

def test_first_seen_stays_across_sweeps_and_a_store_gone_and_back_is_new(tmp_path: Path) -> None:
    from piiguard.catalog import Catalog

    a, b = Discovered(service("127.0.0.2", 5432)), Discovered(service("127.0.0.3", 6379, "redis"))
    covered = [a.service.endpoint, b.service.endpoint]
    with Catalog(tmp_path / "c.db") as cat:
        assert cat.record_discovered([a, b], swept=covered, at="t1") == covered
        assert cat.record_discovered([a, b], swept=covered, at="t2") == []
        assert cat.record_discovered([a], swept=covered, at="t3") == []  # b is gone
        assert [r["port"] for r in cat.discovered()] == [5432]
        assert cat.record_discovered([a, b], swept=covered, at="t4") == [b.service.endpoint]  # back: new
        rows = {r["port"]: r for r in cat.discovered()}
        assert (rows[5432]["first_seen"], rows[5432]["last_seen"]) == ("t1", "t4")
        assert rows[6379]["first_seen"] == "t4"  # its first sighting since it came back
