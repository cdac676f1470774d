"""Discovery in watch, driven with hand-built sweeps against a real catalog: a new store is one alert
(address, engine, registered, open — no data), an unregistered open store opens an exposure and an
incident, and only a sweep that covered its address closes it. The sweep's own steps (helpers A/B)
are replaced by a function that records what a sweep would have found, as ``discover`` does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.config import Config
from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Endpoint, Kind, Service
from piiguard.discovery.settings import AllowedNetwork, DiscoverySettings
from piiguard.errors import StoreError
from piiguard.model import Alert, Finding, Severity, Status, Store, Vantage
from piiguard.response.incidents import follow_exposures
from piiguard.watch.discovery import (
    CANARY_USED,
    NEW_STORE,
    DiscoveryLoop,
    canary_alert,
    exposed_by_sweep,
    new_store_alert,
    record_sweep,
)
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import format_5424, slack_text

NET = "127.0.0.0/29"
PORT = 16379
EP = Endpoint("127.0.0.5", PORT)


@pytest.fixture(autouse=True)
def _checks() -> None:
    plugins.load()  # redis.no-auth is an open-door check (exposes): the registry knows it


def redis(open_: bool = True, *, registered: str | None = None, status: Status | None = None,
          ep: Endpoint = EP) -> Discovered:
    state = status or (Status.FAIL if open_ else Status.PASS)
    name = registered or ep.address
    door = Finding("redis.no-auth", name, state, Severity.CRITICAL, Vantage.OUTSIDE, "no auth",
                   "INFO was answered" if state is Status.FAIL else "NOAUTH")
    return Discovered(Service(ep, Kind.STORE, "redis", "Redis", "7.0.15", "PING answered +PONG"), registered,
                      (door,), (), open_ and state is Status.FAIL)


def run_of(*found: Discovered, networks: tuple[str, ...] = (NET,), ports: tuple[int, ...] = (PORT,)) -> DiscoveryRun:
    return DiscoveryRun(networks, ports, 8, 0.01, tuple(found))


def recording(catalog_run: Callable[[], DiscoveryRun]) -> Callable[[Config, Catalog], DiscoveryRun]:
    """What ``discover`` does with the catalog: the inventory upsert, over the endpoints it covered."""
    def sweep(config: Config, catalog: Catalog) -> DiscoveryRun:
        run = catalog_run()
        covered = [Endpoint(f"127.0.0.{i}", p) for i in range(8) for p in run.ports] if run.networks == (NET,) else []
        catalog.record_discovered(list(run.stores), swept=covered)
        return run
    return sweep


def config(every: float | None = 1.0, stores: tuple[Store, ...] = ()) -> Config:
    import ipaddress
    return Config(stores=stores, discovery=DiscoverySettings(
        networks=(AllowedNetwork(ipaddress.ip_network(NET)),), ports=(PORT,), every=every))


@pytest.mark.parametrize(("registered", "open_", "severity", "words"), [
    (None, True, Severity.CRITICAL, "unregistered, open from outside"),
    (None, False, Severity.HIGH, "unregistered"),
    ("cache", False, Severity.INFO, "registered as cache"),
], ids=["unregistered-open", "unregistered-closed", "registered"])
def test_new_store_alert_says_where_what_and_whether_registered_and_open(
        registered: str | None, open_: bool, severity: Severity, words: str) -> None:
    alert = new_store_alert(redis(open_, registered=registered), "2026-12-02T05:00:00.000000+00:00")
    body = alert.payload()
    assert body["event"] == "discovered" and body["check"] == NEW_STORE and alert.severity is severity
    assert body["discovery"] == {"address": "127.0.0.5:16379", "engine": "redis", "product": "Redis",
                                 "version": "7.0.15", "registered": registered, "open": open_}
    assert words in str(body["evidence"]) and "127.0.0.5:16379" in str(body["evidence"])
    assert body["dedupe_key"] == "127.0.0.5:16379:discovery.new-store:2026-12-02T05:00:00.000000+00:00"
    text = slack_text(body)
    assert "discovered" in text and "resolved" not in text  # an alert about a new store is no resolution


@settings(max_examples=60, deadline=None)
@given(product=st.text(max_size=200), version=st.text(max_size=200))
def test_a_hostile_banner_reaches_no_alert_unclean(product: str, version: str) -> None:
    """Whatever a peer says it is, the alert holds printable ASCII, cut short, in every sink's form."""
    d = redis()
    d = replace(d, service=replace(d.service, product=product, version=version))
    body = new_store_alert(d, "2026-12-02T05:00:00+00:00").payload()
    info = body["discovery"]
    assert isinstance(info, dict)
    for value in (info["product"], info["version"]):
        assert value is None or (value.isascii() and value.isprintable() and len(value) <= 40)
    for text in (slack_text(body), format_5424(body).decode(), str(body["evidence"])):
        assert text.isprintable(), text


def test_canary_alert_names_the_planted_set_the_source_and_the_time() -> None:
    body = canary_alert(3, "prod", "customers", "http", "127.0.0.9:40000\r\nX: y", "2026-12-02T05:01:00+00:00",
                        7).payload()
    assert body["check"] == CANARY_USED and body["severity"] == "critical" and body["event"] == "canary-used"
    assert "canary used: prod.customers from 127.0.0.9:40000" in str(body["evidence"])
    assert "\r" not in str(body) and "\n" not in str(body["evidence"])
    assert body["canary"] == {"store": "prod", "collection": "customers", "channel": "http",
                              "source": "127.0.0.9:40000 X: y", "incident_id": 7}
    assert "used" in slack_text(body) and "resolved" not in slack_text(body)


def test_a_new_open_unregistered_store_alerts_once_and_opens_an_exposure_and_incident(tmp_path: Path) -> None:
    found: list[Discovered] = [redis()]
    with Catalog(tmp_path / "c.db") as cat:
        loop = DiscoveryLoop(config(), cat.path, ["hook"], threading.Event(), sweep=recording(lambda: run_of(*found)))
        first = loop.once(cat)
        assert [a.check for a in first] == [NEW_STORE]
        assert [p["discovery"]["address"] for _, p, _ in cat.pending("hook")] == ["127.0.0.5:16379"]
        [window] = cat.exposures()
        assert window.store == "127.0.0.5:16379" and window.closed_at is None and window.checks == "redis.no-auth"
        [incident] = cat.incidents()
        assert incident["stores"] == ["127.0.0.5:16379"] and incident["exposure_id"] == window.id
        assert "unregistered Redis" in incident["title"]

        assert loop.once(cat) == []  # seen again: no second alert, window or incident
        assert len(cat.pending("hook")) == 1 and len(cat.exposures()) == 1 and len(cat.incidents()) == 1

        found.clear()  # the port closed: a sweep that covers it closes the window
        loop.once(cat)
        follow_exposures(cat)  # the check cycle closes the incident's window as for any exposure
        assert cat.exposures()[0].closed_at is not None
        assert cat.incident(incident["id"])["window_end"] == cat.exposures()[0].closed_at  # type: ignore[index]

        assert [p["event"] for _, p, _ in cat.pending("hook")] == ["discovered", "resolved"]

        found.append(redis())  # back after it was gone: a new sighting, a new alert and window
        assert [a.check for a in loop.once(cat)] == [NEW_STORE]
        assert [p["event"] for _, p, _ in cat.pending("hook")] == ["discovered", "resolved", "discovered"]
        assert len([e for e in cat.exposures() if e.closed_at is None]) == 1 and len(cat.incidents()) == 2


def test_a_known_store_that_turns_auth_on_or_off_is_resolved_or_opened(tmp_path: Path) -> None:
    found = [redis()]
    with Catalog(tmp_path / "c.db") as cat:
        loop = DiscoveryLoop(config(), cat.path, ["hook"], threading.Event(), sweep=recording(lambda: run_of(*found)))
        loop.once(cat)
        found[0] = redis(open_=False)
        loop.once(cat)
        assert cat.exposures()[0].closed_at is not None
        assert [(p["event"], p["check"]) for _, p, _ in cat.pending("hook")] == [
            ("discovered", NEW_STORE), ("resolved", "redis.no-auth")]
        found[0] = redis()  # someone switches auth off again: the same sighting, so an opened alert
        loop.once(cat)
        assert [(p["event"], p["severity"]) for _, p, _ in cat.pending("hook")][2:] == [("opened", "critical")]
        assert len([e for e in cat.exposures() if e.closed_at is None]) == 1
        assert loop.once(cat) == []  # still open: nothing new


def test_only_a_sweep_that_covered_the_address_or_decided_closes_a_window(tmp_path: Path) -> None:
    """A sweep of another range, of other ports, or one whose probes errored proves nothing closed."""
    with Catalog(tmp_path / "c.db") as cat:
        record_sweep(cat, run_of(redis()), "0", ["hook"], ())
        [window] = cat.exposures()
        assert exposed_by_sweep(run_of(networks=("127.0.1.0/29",)), [window], ()) == {}
        assert exposed_by_sweep(run_of(ports=(6379,)), [window], ()) == {}
        assert exposed_by_sweep(run_of(redis(status=Status.ERROR)), [window], ()) == {}
        assert exposed_by_sweep(run_of(), [window], ()) == {"127.0.0.5:16379": None}


def test_registered_stores_are_left_to_the_check_cycle(tmp_path: Path) -> None:
    """A configured store found by a sweep is alerted as info; its exposure is the check cycle's."""
    with Catalog(tmp_path / "c.db") as cat:
        cat.record_discovered([redis(registered="cache")])
        alerts = record_sweep(cat, run_of(redis(registered="cache")), "0", ["hook"], ("cache",))
        assert [a.severity for a in alerts] == [Severity.INFO]
        assert cat.exposures() == [] and cat.incidents() == []


def test_an_inventory_known_before_watch_started_is_not_new(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        cat.record_discovered([redis(open_=False)], at="2026-12-01T00:00:00.000000+00:00")
        loop = DiscoveryLoop(config(), cat.path, ["hook"], threading.Event(),
                             sweep=recording(lambda: run_of(redis(open_=False))))
        assert loop.once(cat) == []


def test_the_window_carries_the_pii_types_and_people_its_copy_link_names(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        link = CopyLink(EP.address, "0", "prod", "customers", "fingerprint", ("member_email",), ("email",), 3000, 0.6)
        cat.record_links([link])
        d = replace(redis(), links=(link,))
        cat.record_discovered([d])
        record_sweep(cat, run_of(d), "0", ["hook"], ())
        [window] = cat.exposures()
        assert window.subjects_estimate == 3000  # the PII types come from prod's scan (none recorded here)


@pytest.mark.parametrize("error", [StoreError("127.0.0.5:16379", "closed mid-fingerprint", hint="again"),
                                   ConnectionResetError(104, "reset"), KeyError("secret@example.org")],
                         ids=["piiguard-error", "os-error", "internal-error"])
def test_a_failing_sweep_is_counted_and_the_next_runs_on_schedule(
        tmp_path: Path, error: Exception, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a sweep dies of, watch goes on and the next sweep runs; an internal error is logged by
    its type only (its message may quote a value)."""
    monkeypatch.delenv("PIIGUARD_DEBUG", raising=False)
    calls: list[float] = []

    def sweep(config: Config, catalog: Catalog) -> DiscoveryRun:
        calls.append(time.monotonic())
        raise error

    stop = threading.Event()
    loop = DiscoveryLoop(config(every=0.2), tmp_path / "c.db", ["hook"], stop, sweep=sweep)
    thread = threading.Thread(target=loop.run)
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and loop.failures >= 2 and len(calls) == loop.failures
    assert "secret@example.org" not in caplog.text and "discovery sweep failed" in caplog.text


def test_watch_without_discovery_settings_starts_no_sweep(tmp_path: Path) -> None:
    """As before the feature: no discovery thread, no sweep call; with ``every`` set, both."""
    for every, expect in ((None, 0), (0.2, 1)):  # no stores: the cycle runs with nothing to probe
        calls: list[int] = []

        def sweep(config: Config, catalog: Catalog, calls: list[int] = calls) -> DiscoveryRun:
            calls.append(1)
            catalog.record_discovered([])
            return run_of()

        with Catalog(tmp_path / f"c{expect}.db") as cat:
            watcher = Watcher([], cat, [], config=config(every), sweep=sweep)
            thread = threading.Thread(target=watcher.run, kwargs={"interval": 0.1})
            thread.start()
            time.sleep(0.8)
            names = {t.name for t in threading.enumerate()}
            alive = thread.is_alive()  # the check cycle of a watch with no stores keeps running
            watcher.stop.set()
            thread.join(timeout=10)
            assert alive and not thread.is_alive()
            assert ("piiguard-discovery" in names) is bool(expect) and (len(calls) >= 1) is bool(expect)


def test_a_trap_hit_is_queued_as_a_canary_alert_for_every_sink(tmp_path: Path) -> None:
    """The trap's callback (helper E's Trap calls it after recording the hit) queues one alert per sink."""
    from piiguard.discovery.trap import Hit
    from piiguard.watch.discovery import hit_handler

    on_hit = hit_handler(tmp_path / "c.db", ["hook", "stdout"])
    on_hit(Hit(1, "prod", "customers", "http", "127.0.0.9:41000", "2026-12-02T05:01:00+00:00", None))
    on_hit(Hit(1, "prod", "customers", "http", "127.0.0.9:41000", "2026-12-02T05:01:00+00:00", None))  # a repeat
    with Catalog(tmp_path / "c.db") as cat:
        for sink in ("hook", "stdout"):
            [(_, body, _)] = cat.pending(sink, "9999")
            assert body["check"] == CANARY_USED and body["canary"]["source"] == "127.0.0.9:41000"


def test_a_window_that_names_pii_gets_one_incident_from_the_check_cycle(tmp_path: Path) -> None:
    """A copy link gave the window PII types: ``follow_exposures`` (the check cycle's thread) opens its
    incident, and the sweep's thread does not open a second one."""
    import sqlite3

    from piiguard.scanner import scan

    source = tmp_path / "prod.db"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE customers (email TEXT)")
    db.executemany("INSERT INTO customers VALUES (?)", [(f"p{i}@shop-example.org",) for i in range(50)])
    db.commit()
    db.close()
    with Catalog(tmp_path / "c.db", timeline_key=b"k" * 32) as cat:
        scan([Store("prod", "sqlite", path=str(source))], catalog=cat)
        link = CopyLink(EP.address, "0", "prod", "customers", "fingerprint", ("mail",), ("email",), 50, 1.0)
        cat.record_links([link])
        d = replace(redis(), links=(link,))
        cat.record_discovered([d])
        record_sweep(cat, run_of(d), "0", ["hook"], ())
        record_sweep(cat, run_of(d), "0", ["hook"], ())
        [window] = cat.exposures()
        assert window.pii_types == ("email",) and window.subjects_estimate == 50
        assert cat.incidents() == []
        follow_exposures(cat)
        follow_exposures(cat)
        [incident] = cat.incidents()
        assert incident["exposure_id"] == window.id and incident["pii_types"] == ["email"]


def test_a_long_sweep_does_not_delay_the_check_cycle(tmp_path: Path) -> None:
    """A sweep that takes seconds (a big range) runs beside the cycles, which keep their interval."""
    sweeping = threading.Event()

    def slow(config: Config, catalog: Catalog) -> DiscoveryRun:
        sweeping.set()
        time.sleep(2.0)
        return run_of()

    class Counting(Watcher):
        cycles = 0

        def cycle(self, *, inside: bool = True) -> list[Alert]:
            if sweeping.is_set():
                Counting.cycles += 1
            return super().cycle(inside=inside)

    with Catalog(tmp_path / "c.db") as cat:
        watcher = Counting([], cat, [], config=config(every=60), sweep=slow)
        thread = threading.Thread(target=watcher.run, kwargs={"interval": 0.1})
        thread.start()
        assert sweeping.wait(10)
        time.sleep(1.5)  # still inside the 2 s sweep
        during = Counting.cycles
        watcher.stop.set()
        thread.join(timeout=10)
    assert during >= 5  # about 15 at a 0.1 s interval; a cycle waiting for the sweep would make it 0 or 1


def test_sweeps_are_counted_in_the_metrics_by_result(tmp_path: Path) -> None:
    from piiguard.watch.metrics import Metrics

    metrics = Metrics()
    outcomes = [run_of(), StoreError("127.0.0.5:16379", "refused")]

    def sweep(config: Config, catalog: Catalog) -> DiscoveryRun:
        got = outcomes.pop(0) if outcomes else run_of()
        if isinstance(got, Exception):
            raise got
        catalog.record_discovered([])
        return got

    stop = threading.Event()
    loop = DiscoveryLoop(config(every=0.2), tmp_path / "c.db", [], stop, sweep=sweep, metrics=metrics)
    thread = threading.Thread(target=loop.run)
    thread.start()
    time.sleep(0.9)
    stop.set()
    thread.join(timeout=5)
    value = metrics.registry.get_sample_value
    assert value("piiguard_discovery_sweeps_total", {"result": "failed"}) == 1
    assert (value("piiguard_discovery_sweeps_total", {"result": "ok"}) or 0) >= 2
    assert value("piiguard_discovery_sweep_seconds_count") == value("piiguard_discovery_sweeps_total", {"result": "ok"})


def test_the_watch_alerts_are_documented_checks() -> None:
    """Both ids are registered checks, so `show check` documents them and policies may name them."""
    from piiguard.checks.base import checks

    plugins.load()
    assert (NEW_STORE, CANARY_USED) == ("discovery.new-store", "discovery.canary-used")
    for check_id in (NEW_STORE, CANARY_USED):
        assert not checks.get(check_id).applies(Store("x", "redis"))
