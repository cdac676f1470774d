"""Reviewer defects of ``discover``: a problem names its place once; ``watch --once`` ends by what
the sweep met; every unregistered store's incident title says so (and whose copy it is); progress
covers identification and checks. Real catalog, real sockets on 127.0.0.x."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.cli.watch import SweepProblems, Undecided, verdict
from piiguard.discovery import identify
from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Endpoint, Kind, Problem, Service
from piiguard.errors import ConfigError, PiiguardError
from piiguard.model import Finding, Severity, Status, Vantage
from piiguard.response.incidents import follow_exposures
from piiguard.watch.discovery import record_sweep

EP = Endpoint("127.0.0.5", 16379)
words = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


@given(where=words, message=words)
def test_a_problem_says_its_place_once_whatever_the_message_starts_with(where: str, message: str) -> None:
    for text in (message, f"{where}: {message}", f"{where}: {where}: {message}"):
        p = Problem.of(where, text)
        assert not p.message.startswith(f"{where}: ")
        assert p.text().startswith(f"{where}: ") and not p.text().startswith(f"{where}: {where}: ")
    assert Problem.of(where, message).message.endswith(message)  # nothing else is cut


def test_the_key_problem_of_a_sweep_names_the_setting_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run._key on a catalog holding a planted-canary-free fingerprint: the message is the ConfigError's
    problem without its setting."""
    import ipaddress

    from piiguard.config import Config
    from piiguard.discovery.run import _key
    from piiguard.discovery.settings import AllowedNetwork, DiscoverySettings

    monkeypatch.setenv("PIIGUARD_U_KEY", "short")
    cfg = Config(discovery=DiscoverySettings(networks=(AllowedNetwork(ipaddress.ip_network("127.0.0.0/29")),),
                                             key_env="PIIGUARD_U_KEY"))
    with Catalog(tmp_path / "c.db") as cat:
        cat.save_fingerprint({"store": "prod", "collection": "customers", "field": "email", "kind": "email",
                              "key_id": "00" * 8, "people": 3, "capacity": 100, "hashes": 7, "built": "2026-01-01",
                              "bits": b"\0" * 16})
        problems: list[Problem] = []
        assert _key(cfg, cat, problems) is None
    [p] = problems
    assert p.where == "discovery.key_env" and p.setting
    assert p.message == "the key holds 5 bytes; at least 16 are needed" and "head -c 32" in p.hint


@pytest.mark.parametrize(("problems", "deliveries", "undecided", "raised", "code"), [
    ((), 0, 0, None, 0),
    ((Problem("127.0.0.5:6379", "no row could be read", "check it"),), 0, 0, SweepProblems, 1),
    ((Problem("discovery.key_env", "the key holds 5 bytes", "make one", setting=True),
      Problem("127.0.0.5:6379", "closed", "again")), 0, 0, ConfigError, 2),
    ((Problem("discovery.key_env", "the key holds 5 bytes", setting=True),), 1, 3, ConfigError, 2),
    ((Problem("127.0.0.5:6379", "closed"),), 0, 2, Undecided, 1),
], ids=["clean", "address-problem", "key-problem", "key-before-delivery", "undecided"])
def test_watch_once_ends_by_what_the_sweep_met(problems: tuple[Problem, ...], deliveries: int, undecided: int,
                                              raised: type[PiiguardError] | None, code: int) -> None:
    if raised is None:
        verdict(problems, deliveries, undecided)
        return
    with pytest.raises(raised) as caught:
        verdict(problems, deliveries, undecided)
    assert caught.value.exit_code == code
    if raised is ConfigError:
        assert str(caught.value).count("discovery.key_env") == 1


def _found(ep: Endpoint = EP) -> Discovered:
    door = Finding("redis.no-auth", ep.address, Status.FAIL, Severity.CRITICAL, Vantage.OUTSIDE, "no auth",
                   "INFO was answered")
    return Discovered(Service(ep, Kind.STORE, "redis", "Redis", "7.0.15", "PING answered +PONG"), None, (door,), (),
                      True)


@pytest.mark.parametrize("linked", [False, True], ids=["no-copy-link", "copy-of-prod"])
def test_every_unregistered_store_incident_says_unregistered_engine(tmp_path: Path, linked: bool) -> None:
    """Without a copy link the sweep's thread opens the incident; with one (its window names PII) the
    check cycle's ``follow_exposures`` does: both titles say what the store is and whose copy."""
    import sqlite3

    from piiguard.model import Store
    from piiguard.scanner import scan

    plugins.load()
    source = tmp_path / "prod.db"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE customers (email TEXT)")
    db.executemany("INSERT INTO customers VALUES (?)", [(f"p{i}@shop-example.org",) for i in range(50)])
    db.commit()
    db.close()
    with Catalog(tmp_path / "c.db", timeline_key=b"k" * 32) as cat:
        scan([Store("prod", "sqlite", path=str(source))], catalog=cat)
        d = _found()
        if linked:
            link = CopyLink(EP.address, "0", "prod", "customers", "fingerprint", ("mail",), ("email",), 50, 1.0)
            cat.record_links([link])
            d = replace(d, links=(link,))
        cat.record_discovered([d])
        record_sweep(cat, DiscoveryRun(("127.0.0.0/29",), (EP.port,), 8, 0.01, (d,)), "0", ["hook"], ())
        follow_exposures(cat)
        [incident] = cat.incidents()
    copy = ", copy of prod.customers" if linked else ""
    assert incident["title"] == f"{EP.address} exposed (unregistered Redis{copy}, redis.no-auth)"


def test_a_registered_store_title_is_unchanged(tmp_path: Path) -> None:
    from piiguard.model import Exposure
    from piiguard.response.incidents import exposure_title

    with Catalog(tmp_path / "c.db") as cat:
        cat.record_discovered([replace(_found(), registered="cache")])
        window = Exposure(1, "cache", "2026-01-01", None, "redis.no-auth", ("email",), 3)
        assert exposure_title(cat, window) == "cache exposed (redis.no-auth)"
        at_address = replace(window, store=EP.address)  # the inventory says it is registered: not "unregistered"
        assert exposure_title(cat, at_address, engine="Redis") == f"{EP.address} exposed (redis.no-auth)"


@pytest.fixture
def closing() -> Iterator[list[Endpoint]]:
    """Five real listeners on 127.0.0.6 that accept and hang up at once: each identified quickly."""
    servers, stop = [], threading.Event()
    for _ in range(5):
        s = socket.socket()
        s.bind(("127.0.0.6", 0))
        s.listen(16)
        s.settimeout(0.1)
        servers.append(s)

    def serve(s: socket.socket) -> None:
        while not stop.is_set():
            try:
                conn, _ = s.accept()
                conn.close()
            except OSError:
                continue

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield [Endpoint("127.0.0.6", s.getsockname()[1]) for s in servers]
    stop.set()
    for t in threads:
        t.join()
    for s in servers:
        s.close()


def test_identify_all_reports_each_finished_endpoint_and_keeps_the_order(closing: list[Endpoint]) -> None:
    seen: list[tuple[int, int]] = []
    services = identify.identify_all(closing, timeout=0.3, concurrency=2,
                                     progress=lambda done, total: seen.append((done, total)))
    assert [s.endpoint for s in services] == closing
    assert seen == [(i, 5) for i in range(6)]  # (0, 5) first, then one per endpoint decided
    assert identify.identify_all(closing[:2], timeout=0.3) and identify.identify_all([], timeout=0.3) == []


def test_discover_reports_identify_progress_after_the_sweep(closing: list[Endpoint]) -> None:
    """The bar no longer sits at ``sweep N/N`` while the open ports are identified."""
    import ipaddress

    from piiguard.config import Config
    from piiguard.discovery.run import discover
    from piiguard.discovery.settings import AllowedNetwork, DiscoverySettings

    cfg = Config(discovery=DiscoverySettings(networks=(AllowedNetwork(ipaddress.ip_network("127.0.0.6/32")),),
                                             ports=tuple(e.port for e in closing), timeout=0.3))
    steps: list[tuple[str, int, int]] = []
    run = discover(cfg, progress=lambda step, done, total: steps.append((step, done, total)))
    assert {s.endpoint for s in run.others} == set(closing)
    identified = [(d, t) for step, d, t in steps if step == "identify"]
    assert identified == [(i, 5) for i in range(6)]
    assert max(i for i, s in enumerate(steps) if s[0] == "sweep") < steps.index(("identify", 0, 5))
