"""The watch service: cycles of outside probes (every few seconds, jittered) and inside audits (less
often), each recorded in one catalog transaction — findings, their transitions, the alerts they cause,
exposure windows — and a delivery loop that works the catalog's outbox with retries and backoff.

Restart-safe by construction: what changed is computed against the catalog, and alerts are queued in
the same transaction that records the change, so a SIGKILL at any point loses no transition; the
outbox remembers what each sink has received, so nothing is sent twice (a crash between sending and
recording can repeat one send: receivers get the same ``dedupe_key``). A failing sink only delays
itself: delivery runs apart from the probes. A failing *alert* only delays itself too: each has its
own backoff, the others are sent in their order meanwhile, and one that failed ``MAX_ATTEMPTS``
times is dropped with a log line (a receiver that rejects it for good would otherwise hold it
forever).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from piiguard.catalog import Catalog
from piiguard.checker import check_ids, run_checks
from piiguard.checks.base import checks
from piiguard.config import Config
from piiguard.connectors.base import connectors
from piiguard.contain.service import Containor
from piiguard.model import Alert, Finding, Status, Store, Transition, Vantage
from piiguard.response.incidents import follow_exposures
from piiguard.scanner import scan
from piiguard.watch.discovery import DiscoveryLoop, Sweep, default_sweep, start_trap
from piiguard.watch.metrics import Metrics
from piiguard.watch.schema import schema_findings
from piiguard.watch.sinks import AlertSink

if TYPE_CHECKING:
    from piiguard.discovery.trap import Trap

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
DEFAULT_INSIDE_EVERY = 60.0
DEFAULT_RESCAN_EVERY = 6 * 3600.0  # classification changes slowly; a sampled scan keeps PII context fresh
MAX_BACKOFF = 300.0
MAX_ATTEMPTS = 12  # about 25 minutes of backoff in a long-running watch, or twelve --once runs


def alerts_for(changes: list[Transition]) -> list[Alert]:
    """The watch rules. A failure that appears (or comes back after a pass) is ``opened``; a failure
    that passes again is ``resolved``. Errors (an unreachable store) and not-applicable change
    nothing: they prove neither, so a failure stays open through them — fail → error → fail is one
    opened alert, and fail → error → pass is one resolved."""
    out = []
    for t in changes:
        f = t.finding
        # what the store last proved; a caller without history falls back to the previous status
        last = t.decided if t.decided is not None else (t.before if t.before is not None and t.before.decided
                                                         else None)
        if f.status is Status.FAIL and last is not Status.FAIL:
            event = "opened"
        elif f.status is Status.PASS and last is Status.FAIL:
            event = "resolved"
        else:
            continue
        out.append(Alert(f"{f.store}:{f.check}:{event}:{t.event_id}", event, f.store, f.check, f.severity, t.at,
                         f.title, f.evidence, f.pii_types, f.subjects_estimate))
    return out


def exposure_state(stores: Sequence[Store], findings: Sequence[Finding]) -> dict[str, Finding | None]:
    """Per store: the failing open-door probe that exposes it (a check marked ``exposes``: anyone who
    reaches the port gets in), or None when those probes pass. A store whose probes all errored is
    left out: unreachable proves neither open nor closed."""
    out: dict[str, Finding | None] = {}
    for store in stores:
        doors = [f for f in findings if f.store == store.name and f.check in checks and checks.get(f.check).exposes]
        if not doors or not any(f.status.decided for f in doors):
            continue
        open_doors = [f for f in doors if f.status is Status.FAIL and not f.waiver]
        out[store.name] = max(open_doors, key=lambda f: f.severity.rank) if open_doors else None
    return out


def with_last_verdicts(findings: list[Finding], doors: dict[tuple[str, str], Finding]) -> list[Finding]:
    """The findings an exposure is decided on. An open-door check that did not decide this cycle —
    it errored, or it runs only with the inside audits (password guessing) and this cycle had none —
    counts with its last pass or fail, remembered in ``doors`` (updated here): an error or a
    frequent cycle neither opens nor closes a window."""
    def door(f: Finding) -> bool:
        return f.check in checks and checks.get(f.check).exposes

    decided = {(f.store, f.check): f for f in findings if door(f) and f.status.decided}
    doors.update(decided)
    kept = [f for f in findings if not door(f) or f.status.decided]
    return kept + [f for key, f in doors.items() if key not in decided]


class Watcher:
    """Watches stores; ``cycle`` runs one round (``--once``), ``run`` loops until stopped."""

    def __init__(self, stores: Sequence[Store], catalog: Catalog, sinks: Sequence[AlertSink], *,
                 config: Config | None = None, timeout: float = 5.0, metrics: Metrics | None = None,
                 containor: Containor | None = None, sweep: Sweep | None = None) -> None:
        self.stores, self.catalog, self.config, self.timeout = list(stores), catalog, config, timeout
        self.sinks = {s.id: s for s in sinks}
        self.metrics = metrics or Metrics()
        self.containor = containor
        self.stop = threading.Event()
        self.failed_deliveries = 0  # sends that failed since this watcher started (each is retried)
        self.undecided = 0  # checks the last cycle could not decide (an unreachable store): not clean
        self._doors: dict[tuple[str, str], Finding] = {}  # last pass/fail of each open-door check per store
        self.trap: Trap | None = None  # the canary trap, while run() serves it
        self._sweep = sweep or default_sweep  # discovery's pipeline (a test gives its own)
        self.rescan_due = threading.Event()  # a field appeared or was retyped: re-scan now, not in hours

    @property
    def sweeps(self) -> bool:
        """Whether discovery sweeps with this watch (``discovery.every`` is set)."""
        return self.config is not None and self.config.discovery.every is not None

    def discovery(self) -> DiscoveryLoop:
        assert self.config is not None
        return DiscoveryLoop(self.config, self.catalog.path, list(self.sinks), self.stop, sweep=self._sweep,
                             metrics=self.metrics)

    def outside_ids(self) -> list[str]:
        """The probes of a frequent cycle: outside, and cheap (no password guessing)."""
        return [i for i in check_ids() if checks.get(i).vantage is Vantage.OUTSIDE and checks.get(i).frequent]

    def cycle(self, *, inside: bool = True) -> list[Alert]:
        """Probe (and audit, when ``inside``), record, queue alerts; returns the alerts queued."""
        started = time.monotonic()
        only = [] if inside else self.outside_ids()
        # a watch that only sweeps (discovery.every, no store listed yet) has nothing to probe here
        findings = list(run_checks(self.stores, config=self.config, catalog=self.catalog, timeout=self.timeout,
                                   only=only, record=False).findings) if self.stores else []
        if inside:  # the schema is listed with the audits: a connection per store, not every few seconds
            drift = schema_findings(self.stores, self.catalog, self.timeout)
            if any(f.status is Status.FAIL for f in drift):
                self.rescan_due.set()
            findings += drift
        self.undecided = sum(1 for f in findings if f.status is Status.ERROR)
        exposed = exposure_state(self.stores, with_last_verdicts(findings, self._doors))
        queued = self.catalog.record_cycle(findings, alerts_for, list(self.sinks), exposed)
        follow_exposures(self.catalog)  # an exposure of a store holding PII opens an incident
        if self.containor is not None:
            self.containor.consider(self.stores, findings, exposed)
        self.metrics.cycle(findings, time.monotonic() - started, self.catalog.open_exposures())
        # ids, counts and store names only: a log line never carries a finding's evidence or a value
        log.info("cycle: %d check(s) on %d store(s), %d alert(s) queued, %d store(s) exposed", len(findings),
                 len(self.stores), len(queued), sum(1 for v in exposed.values() if v is not None),
                 extra={"inside": inside, "seconds": round(time.monotonic() - started, 3), "alerts": len(queued)})
        for alert in queued:
            log.warning("alert: %s %s on %s (%s)", alert.check, alert.event, alert.store, alert.severity.value,
                        extra={"check": alert.check, "store": alert.store, "event": alert.event})
        return queued

    def deliver(self, *, overdue_too: bool = False) -> int:
        """Send what each sink has not received yet and is due (with ``overdue_too``, everything not
        yet received, backoff or not: ``watch --once`` is its own retry schedule); returns how many
        were delivered. A failed send is recorded for retry, counted (:attr:`failed_deliveries` and
        the metric ``piiguard_alert_delivery_failures_total{sink=…}``) and logged by sink id and error
        type only."""
        sent = 0
        for sink_id, sink in self.sinks.items():
            # oldest first, each alert on its own backoff: one that fails does not hold back the rest
            for key, payload, attempts in self.catalog.pending(sink_id, "9999" if overdue_too else None):
                try:
                    sink.send(payload)
                except Exception as exc:  # any sink failure is recorded and retried, never fatal
                    self.failed_deliveries += 1
                    self.metrics.delivery_failures.labels(sink_id).inc()
                    if attempts + 1 >= MAX_ATTEMPTS:
                        self.catalog.dropped_delivery(key, sink_id, type(exc).__name__)
                        log.error("alert delivery to %s dropped after %d failed attempts (%s); it stays in the "
                                  "catalog", sink_id, attempts + 1, type(exc).__name__)
                        continue
                    delay = min(MAX_BACKOFF, 2.0 ** attempts)
                    due = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="seconds")
                    self.catalog.failed_delivery(key, sink_id, type(exc).__name__, due)
                    # the sink id is free of secrets by contract; the exception's text is not logged:
                    # a server's reply can echo the alert, and an address can carry a token
                    log.warning("alert delivery to %s failed (%s, attempt %d); next try in %.0f s",
                                sink_id, type(exc).__name__, attempts + 1, delay)
                    continue  # the next alert is tried now; this one after its backoff
                self.catalog.delivered(key, sink_id)
                sent += 1
                seen = datetime.fromisoformat(str(payload["at"]))
                self.metrics.latency.observe(max(0.0, (datetime.now(UTC) - seen).total_seconds()))
        return sent

    def rescan(self) -> None:
        """A sampled scan of the stores piiguard can read, so failures name current PII types and counts."""
        readable = [s for s in self.stores if s.engine in connectors]
        if readable:
            with Catalog(self.catalog.path) as own:  # runs in its own thread: its own connection
                scan(readable, config=self.config, catalog=own, timeout=self.timeout)

    def run(self, *, interval: float = DEFAULT_INTERVAL, inside_every: float = DEFAULT_INSIDE_EVERY,
            rescan_every: float = DEFAULT_RESCAN_EVERY) -> None:
        """Cycle until :attr:`stop` is set: outside probes every ``interval`` (±20 % jitter), inside
        audits every ``inside_every``, sampled re-scans every ``rescan_every``; deliveries and re-scans
        in their own threads, so neither delays the probes."""
        if self.config is not None and self.config.discovery.canary.trap:  # first: a missing key stops watch here
            self.trap = start_trap(self.config, self.catalog.path, list(self.sinks))
        delivery = threading.Thread(target=self._deliver_loop, name="piiguard-delivery", daemon=True)
        delivery.start()
        rescans = threading.Thread(target=self._rescan_loop, args=(rescan_every,), name="piiguard-rescan",
                                   daemon=True)
        rescans.start()
        sweeps = None
        if self.sweeps:  # a sweep takes minutes on a big range: never in the probes' thread
            sweeps = threading.Thread(target=self.discovery().run, name="piiguard-discovery", daemon=True)
            sweeps.start()
        try:
            self._cycle_loop(interval, inside_every)
        finally:  # the trap's port is released however the loop ends
            if self.trap is not None:
                self.trap.stop()
        if sweeps is not None:
            sweeps.join(timeout=5)  # a sweep under way finishes its step; the thread is a daemon past that
        delivery.join(timeout=5)

    def _cycle_loop(self, interval: float, inside_every: float) -> None:
        last_inside = float("-inf")
        while not self.stop.is_set():
            started = time.monotonic()
            inside = started - last_inside >= inside_every
            self.cycle(inside=inside)
            if inside:
                last_inside = started
            pause = interval * random.uniform(0.8, 1.2) - (time.monotonic() - started)
            self.stop.wait(max(0.0, pause))

    def _rescan_loop(self, every: float) -> None:
        while not self.stop.is_set():
            self.rescan_due.clear()
            self.rescan()
            deadline = time.monotonic() + every
            while not (self.stop.is_set() or self.rescan_due.is_set()) and time.monotonic() < deadline:
                self.stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))

    def _deliver_loop(self) -> None:
        # SQLite connections belong to their thread: the delivery loop opens its own.
        own = Catalog(self.catalog.path)
        other = Watcher(self.stores, own, list(self.sinks.values()), metrics=self.metrics)
        try:
            while not self.stop.is_set():
                other.deliver()
                self.stop.wait(1.0)
            other.deliver()
        finally:
            own.close()
