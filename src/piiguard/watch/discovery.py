"""Discovery inside ``watch``: a sweep of the allowed networks every ``discovery.every`` seconds, in
its own thread, and the canary trap.

Why a thread of its own: a sweep of a /16 takes minutes, and the check cycle must keep its few
seconds. Why its own catalog connection: SQLite connections belong to the thread that opened them
(the delivery and re-scan loops do the same).

What a sweep turns into, in one catalog transaction (``Catalog.record_cycle``, the check cycle's own):

* a **new store** — an endpoint whose inventory ``first_seen`` is this sweep's (seen for the first
  time, or again after it was gone) — is one ``discovered`` alert naming its address, engine,
  product, version, whether it is registered and whether it is open. Its dedupe key holds the
  ``first_seen``, so a store that comes back after it was gone alerts again, and a repeat of the
  same sighting never does;
* an **unregistered store open from outside** opens an exposure window under its address (how the
  inventory names it), and an incident follows it as for a registered store; the window closes when
  a later sweep that covers the address finds the port closed, or the store no longer open. A store
  whose probes all errored (closed mid-fingerprint) proves neither and changes nothing.

Alerts carry addresses, engine names and cleaned banners — never a data value.

One limit: ``discover`` records the inventory in its own transaction, before this one. A watch killed
between the two loses that sweep's ``discovered`` alert (the next sweep sees the store as known). The
exposure window and incident do not depend on it: they follow the store's state and open on the next
sweep.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from piiguard.catalog import Catalog
from piiguard.checks.base import checks
from piiguard.config import Config
from piiguard.discovery import inventory
from piiguard.discovery.base import Discovered, DiscoveryRun, Endpoint, Kind, Problem, clean
from piiguard.errors import PiiguardError
from piiguard.model import Alert, Exposure, Finding, Severity, Status, Vantage
from piiguard.response.incidents import exposure_title

if TYPE_CHECKING:
    from piiguard.discovery.trap import Hit, Trap
    from piiguard.watch.metrics import Metrics

log = logging.getLogger(__name__)

NEW_STORE = "discovery.new-store"
CANARY_USED = "discovery.canary-used"
UNREGISTERED = "discovery.unregistered-store"

Sweep = Callable[[Config, Catalog], DiscoveryRun]


@dataclass(frozen=True)
class DiscoveryAlert(Alert):
    """An alert about a found store: where it is and what it says it is — never what it holds."""

    address: str = ""
    engine: str | None = None
    product: str | None = None
    version: str | None = None
    registered: str | None = None  # the configured store at this address, if any
    open: bool = False

    def payload(self) -> dict[str, object]:
        return {**super().payload(), "discovery": {
            "address": self.address, "engine": self.engine, "product": self.product, "version": self.version,
            "registered": self.registered, "open": self.open}}


@dataclass(frozen=True)
class CanaryAlert(Alert):
    """Someone used a planted canary: proof of access to a copy of ``store.collection``."""

    collection: str = ""
    channel: str = ""  # http | smtp
    source: str = ""  # the client's address:port
    incident_id: int | None = None

    def payload(self) -> dict[str, object]:
        return {**super().payload(), "canary": {
            "store": self.store, "collection": self.collection, "channel": self.channel, "source": self.source,
            "incident_id": self.incident_id}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_store_alert(found: Discovered, first_seen: str) -> DiscoveryAlert:
    """The ``discovered`` alert for a store seen at ``first_seen``. Critical when it is unregistered
    and open from outside (anyone can read it, and nobody listed it), high when unregistered, info
    when it is a configured store answering where it should."""
    s, address = found.service, found.service.endpoint.address
    engine, product, version = clean(s.engine, 20), clean(s.product), clean(s.version, 20)
    severity = (Severity.INFO if found.registered else Severity.CRITICAL if found.open else Severity.HIGH)
    what = " ".join(p for p in (product or engine or "unknown engine", version) if p)
    state = (f"registered as {clean(found.registered)}" if found.registered else "unregistered") + \
        (", open from outside" if found.open else "")
    return DiscoveryAlert(f"{address}:{NEW_STORE}:{first_seen}", "discovered", found.name, NEW_STORE, severity,
                          first_seen, f"new store listening at {address}", f"{what} at {address}, {state}",
                          address=address, engine=engine, product=product, version=version,
                          registered=found.registered, open=found.open)


def canary_alert(canary_id: int, store: str, collection: str, channel: str, source: str, at: str,
                 incident_id: int | None = None) -> CanaryAlert:
    """The alert for one trap hit: which planted set, from where, when (a hit is never repeated)."""
    where, src = clean(f"{store}.{collection}", 120) or "?", clean(source, 60) or "?"
    return CanaryAlert(f"canary:{canary_id}:{channel}:{src}:{at}", "canary-used", store, CANARY_USED,
                       Severity.CRITICAL, at, f"canary used: {where}",
                       f"canary used: {where} from {src} at {at} (over {clean(channel, 10)}): someone holds a copy",
                       collection=collection, channel=clean(channel, 10) or "", source=src, incident_id=incident_id)


def _door(finding: Finding) -> bool:
    return finding.check in checks and checks.get(finding.check).exposes


def _covered(run: DiscoveryRun, endpoint: Endpoint) -> bool:
    """Whether the sweep looked at ``endpoint``: a port it did not knock on proves nothing closed."""
    if endpoint.port not in run.ports:
        return False
    try:
        host = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return False
    return any(host in ipaddress.ip_network(n, strict=False) for n in run.networks)


def exposure_finding(found: Discovered, pii_types: Iterable[str] = (), people: int | None = None) -> Finding:
    """What an exposure window of an open unregistered store is opened with: its worst failing
    open-door probe (``redis.no-auth``) or else its unregistered-store finding, carrying the PII types
    the copy links name (a found store was never scanned) and their people."""
    doors = [f for f in found.findings if _door(f) and f.status is Status.FAIL]
    marks = [f for f in found.findings if f.check == UNREGISTERED and f.status is Status.FAIL]
    pick = max(doors, key=lambda f: f.severity.rank) if doors else marks[0] if marks else Finding(
        UNREGISTERED, found.name, Status.FAIL, Severity.CRITICAL, Vantage.OUTSIDE, "unregistered store open",
        f"{found.name} is not in piiguard.yaml and is open from outside")
    return Finding(pick.check, found.name, Status.FAIL, pick.severity, pick.vantage, pick.title, pick.evidence,
                   tuple(sorted(set(pii_types))), people)


def exposed_by_sweep(run: DiscoveryRun, open_windows: Sequence[Exposure], configured: Iterable[str],
                     holdings: Mapping[str, tuple[tuple[str, ...], int | None]] | None = None
                     ) -> dict[str, Finding | None]:
    """Per unregistered address: the finding that keeps (or opens) its exposure window, or None to
    close it. Registered stores are left to the check cycle; an address this sweep did not cover, or
    whose probes all errored, is left out."""
    names, holdings = set(configured), holdings or {}
    out: dict[str, Finding | None] = {}
    for d in run.stores:
        if d.registered or d.name in names or d.service.kind is not Kind.STORE:
            continue
        if d.open:
            types, people = holdings.get(d.name, ((), None))
            out[d.name] = exposure_finding(d, types, people)
        elif any(_door(f) and f.status.decided for f in d.findings):
            out[d.name] = None  # it answers, and its open-door probes pass: closed
    seen = {d.name for d in run.stores}
    for window in open_windows:
        if window.closed_at is not None or window.store in names or window.store in seen:
            continue
        try:
            endpoint = Endpoint.parse(window.store)
        except ValueError:
            continue  # not an address: a registered store's window
        if _covered(run, endpoint):
            out[window.store] = None  # nothing answers there any more
    return out


def holdings_from_links(catalog: Catalog, run: DiscoveryRun) -> dict[str, tuple[tuple[str, ...], int | None]]:
    """What each found store is known to hold: the PII types of the source fields its copy links
    matched (from the source's scan) and the most people any link counts."""
    out: dict[str, tuple[tuple[str, ...], int | None]] = {}
    for d in run.stores:
        links = catalog.links(store=d.name)
        if links:
            out[d.name] = inventory.linked_holdings(catalog, links)
    return out


def record_sweep(catalog: Catalog, run: DiscoveryRun, started: str, sinks: Sequence[str],
                 configured: Iterable[str]) -> list[Alert]:
    """Queue a sweep's alerts and move its exposure windows, in one transaction; then open an
    incident for each new window of an unregistered store. Returns the alerts queued."""
    names = set(configured)
    firsts = {(r["host"], int(r["port"])): str(r["first_seen"]) for r in catalog.discovered()}
    alerts: list[Alert] = []
    for d in run.stores:
        ep = d.service.endpoint
        first = firsts.get((ep.host, ep.port))
        if first is not None and first >= started:  # first seen by this sweep (ISO times in UTC sort)
            alerts.append(new_store_alert(d, first))
    windows = catalog.exposures()
    exposed = exposed_by_sweep(run, windows, names, holdings_from_links(catalog, run))
    new = {a.store for a in alerts}
    alerts += window_alerts(exposed, {e.store: e for e in windows if e.closed_at is None}, new, started)
    queued = catalog.record_cycle([], lambda _changes: alerts, list(sinks), exposed)
    follow_unregistered(catalog, run)
    return queued


def window_alerts(exposed: Mapping[str, Finding | None], open_windows: Mapping[str, Exposure], new: set[str],
                  at: str) -> list[Alert]:
    """``opened`` when a found store that was already known becomes open (someone switched its
    authentication off), ``resolved`` when its window closes, like a registered store's check alerts.
    A store new in this sweep is already one critical ``discovered`` alert that says it is open."""
    out: list[Alert] = []
    for store, finding in sorted(exposed.items()):
        if finding is not None and store not in open_windows and store not in new:
            out.append(Alert(f"{store}:{finding.check}:opened:{at}", "opened", store, finding.check, finding.severity,
                             at, finding.title, f"unregistered store open from outside: {finding.evidence}",
                             finding.pii_types, finding.subjects_estimate))
        elif finding is None and store in open_windows:
            window = open_windows[store]
            out.append(Alert(f"{store}:{window.checks}:resolved:{at}", "resolved", store, window.checks,
                             Severity.INFO, at, f"{store} no longer open",
                             f"a sweep found {store} closed or no longer open from outside", window.pii_types,
                             window.subjects_estimate))
    return out


def follow_unregistered(catalog: Catalog, run: DiscoveryRun) -> list[int]:
    """An incident for each open exposure window of a found, unregistered store that has none and
    whose PII is not known yet. The check cycle's ``follow_exposures`` opens incidents only for
    windows that name PII types (a copy link gave them: those are left to it, so two threads never
    open two incidents for one window); a store nobody registered and anyone can read is an incident
    before anyone has scanned it. Its window is closed by ``follow_exposures`` when the exposure
    closes, as for any other."""
    found = {d.name: d for d in run.stores if not d.registered}
    followed = {i["exposure_id"] for i in catalog.incidents() if i["exposure_id"] is not None}
    opened = []
    for e in catalog.exposures():
        d = found.get(e.store)
        if d is None or e.closed_at is not None or e.id in followed or e.pii_types:
            continue
        title = exposure_title(catalog, e, engine=d.service.product or d.service.engine or "store")
        opened.append(catalog.open_incident(title, [e.store], e.opened_at, list(e.pii_types), e.subjects_estimate,
                                            e.id))
    return opened


def default_sweep(config: Config, catalog: Catalog) -> DiscoveryRun:
    from piiguard.discovery.run import discover  # the sweep's modules load only when watch sweeps

    return discover(config, (), catalog=catalog)


class DiscoveryLoop:
    """Sweeps every ``config.discovery.every`` seconds until ``stop`` is set, each sweep recorded
    with :func:`record_sweep`. A sweep that fails (the allow-list refuses, the catalog is busy) is
    logged by type and message — piiguard's errors never hold a value — and the next one is tried on
    schedule: a watch does not die of one bad sweep."""

    def __init__(self, config: Config, catalog_path: Path, sinks: Sequence[str], stop: threading.Event, *,
                 sweep: Sweep = default_sweep, metrics: Metrics | None = None) -> None:
        self.config, self.catalog_path, self.sinks, self.stop = config, catalog_path, list(sinks), stop
        self.sweep, self.metrics = sweep, metrics
        self.sweeps = 0
        self.failures = 0
        self.problems: tuple[Problem, ...] = ()  # the last sweep's (watch --once exits on them)

    def once(self, catalog: Catalog) -> list[Alert]:
        started = _now()
        run = self.sweep(self.config, catalog)
        queued = record_sweep(catalog, run, started, self.sinks, (s.name for s in self.config.stores))
        self.sweeps += 1
        if self.metrics is not None:
            self.metrics.sweeps.labels("ok").inc()
            self.metrics.sweep_seconds.observe(run.seconds)
        log.info("discovery sweep: %d probe(s), %d store(s), %d other(s), %d problem(s), %d alert(s) queued",
                 run.probes, len(run.stores), len(run.others), len(run.problems), len(queued),
                 extra={"seconds": round(run.seconds, 3), "alerts": len(queued)})
        for alert in queued:
            log.warning("alert: %s on %s (%s)", alert.check, alert.store, alert.severity.value,
                        extra={"check": alert.check, "store": alert.store, "event": alert.event})
        # Each problem once while it lasts: a key missing for a day is one line, not one per sweep; one
        # that went away and came back is said again. Cleaned again here: a plugin's sweep may not have.
        for p in (p for p in run.problems if p not in self.problems):
            log.warning("discovery problem: %s", clean(p.text(), 400) or "?",
                        extra={"where": clean(p.where, 120), "setting": p.setting})
        self.problems = run.problems
        return queued

    def _failed(self) -> None:
        self.failures += 1
        if self.metrics is not None:
            self.metrics.sweeps.labels("failed").inc()

    def run(self) -> None:
        every = self.config.discovery.every or 0.0
        with Catalog(self.catalog_path) as own:  # its own thread: its own connection
            while not self.stop.is_set():
                started = datetime.now(UTC)
                try:
                    self.once(own)
                except (PiiguardError, OSError) as exc:
                    self._failed()
                    # piiguard's messages never hold a value; an OSError's text is the kernel's
                    log.error("discovery sweep failed: %s (%s)", getattr(exc, "message", exc), type(exc).__name__)
                except Exception as exc:  # a crashed sweep must not end the checks, nor print a value
                    if os.environ.get("PIIGUARD_DEBUG"):
                        raise  # the thread's traceback, as the CLI shows one
                    self._failed()
                    # the type only: a driver's message can quote the value it choked on
                    log.error("discovery sweep failed: internal error (%s); the next sweep is tried on schedule; "
                              "PIIGUARD_DEBUG=1 shows the traceback (check it for data values before sharing it)",
                              type(exc).__name__)
                elapsed = (datetime.now(UTC) - started).total_seconds()
                self.stop.wait(max(0.0, every - elapsed))


def start_trap(config: Config, catalog_path: Path, sinks: Sequence[str]) -> Trap:
    """Serve the canary trap (``discovery.canary.trap``); each hit becomes a ``canary-used`` alert
    queued for every sink. The key is the discovery key (``key_env`` / ``key_file``): a missing or
    short one is a ConfigError naming the setting, raised before watch starts."""
    from piiguard.discovery import trap as traps  # loaded only when a trap is configured
    from piiguard.discovery.fingerprints import load_key

    key = load_key(config.discovery)
    on_hit = hit_handler(catalog_path, sinks)
    trap = traps.Trap(config.discovery.canary, catalog_path, key, on_hit)
    trap.start()
    log.info("canary trap listening on %s", ", ".join(trap.addresses))
    return trap


def hit_handler(catalog_path: Path, sinks: Sequence[str]) -> Callable[[Hit], None]:
    """What the trap calls once per recorded hit: a ``canary-used`` alert queued for every sink, in
    the trap's thread (so with a connection of its own, opened per hit: hits are rare)."""
    def on_hit(hit: Hit) -> None:
        alert = canary_alert(hit.canary_id, hit.store, hit.collection, hit.channel, hit.source, hit.at,
                             hit.incident_id)
        with Catalog(catalog_path) as own:
            own.record_cycle([], lambda _changes: [alert], list(sinks), {})
        log.warning("alert: %s on %s (%s)", alert.check, alert.store, alert.severity.value,
                    extra={"check": alert.check, "store": alert.store, "event": alert.event})
    return on_hit
