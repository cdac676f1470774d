"""Check: hold each store to its engine's security protocols and say what a failure exposes.

Stores are checked concurrently (one thread each, every network step bounded by the timeout), so a
slow or dead store delays no other. Within a store its engine's checks share one
:class:`~piiguard.checks.base.Target`. A check that cannot decide becomes an ``error`` finding with
its reason; once a store is unreachable its remaining checks report that at once instead of waiting
again. A failing check on a store the catalog says holds PII is raised one severity level and
names the PII types and the number of people; a store never scanned says so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.checks.base import Outcome, Unsupported, checks, targets
from piiguard.config import Config
from piiguard.engines import tls
from piiguard.engines.tls import TlsRefused
from piiguard.errors import PluginError, StoreError, StoreUnreachable
from piiguard.model import Finding, Severity, Status, Store, Vantage
from piiguard.policy import Policy
from piiguard.scanner import resolve_stores

MAX_PARALLEL = 64


@dataclass(frozen=True)
class CheckRun:
    findings: tuple[Finding, ...]

    def worst(self) -> Severity | None:
        """The most severe failure not waived by policy."""
        failing = [f.severity for f in self.findings if f.status is Status.FAIL and not f.waiver]
        return max(failing) if failing else None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is Status.ERROR)


def check_ids(engine: str | None = None) -> list[str]:
    """Registered checks, or those for one engine (its own and the engine-independent ones)."""
    plugins.load()
    return [n for n in checks.names() if engine is None or checks.get(n).engine in (engine, "*")]


def check_store(store: Store, *, timeout: float = 5.0, only: Sequence[str] = ()) -> list[Finding]:
    """Run every check of the store's engine (or ``only`` these ids) and return the findings."""
    # Outside probes first: they find an unreachable or foreign peer fastest, and the rest then report
    # it at once instead of each waiting for its own timeout.
    ids = sorted((i for i in check_ids(store.engine) if (not only or i in only) and checks.get(i).applies(store)),
                 key=lambda i: (checks.get(i).vantage is not Vantage.OUTSIDE, i))
    if store.engine not in targets or not ids:
        # An engine with nothing to check (files, sqlite: no server, no network) is decided, as a check with
        # no meaning on a variant is: not-applicable, never counted as a failure or an undecided check.
        why = (f"piiguard has no checks for {store.engine} stores: they have no server to check"
               if store.engine not in targets else "none of the selected checks applies to this store")
        return [Finding(f"{store.engine}.*", store.name, Status.NOT_APPLICABLE, Severity.INFO, Vantage.OUTSIDE,
                        f"no checks for engine {store.engine}", why)]
    target = targets.get(store.engine)(store, timeout=timeout)
    unreachable: StoreUnreachable | None = None
    # A store whose required TLS its settings do not give is not connected to by any check, outside
    # probes included (they would talk, and guess passwords, in clear text); tls.required says why.
    refused: TlsRefused | None = None
    try:
        tls.enforce(store)
    except TlsRefused as exc:
        refused = exc
    out = []
    try:
        for check_id in ids:
            cls = checks.get(check_id)
            if refused is not None and check_id != "tls.required":
                outcome = Outcome(Status.ERROR, _reason(refused))
            elif unreachable is not None:
                outcome = Outcome(Status.ERROR, _reason(unreachable))
            else:
                started = time.monotonic()
                try:
                    outcome = cls().run(target)
                except Unsupported as exc:  # the variant lacks the API: decided, not an error
                    outcome = Outcome(Status.NOT_APPLICABLE, _reason(exc))
                except StoreUnreachable as exc:
                    unreachable = exc
                    outcome = Outcome(Status.ERROR, _reason(exc))
                except StoreError as exc:
                    outcome = Outcome(Status.ERROR, _reason(exc))
                except PluginError as exc:  # a driver that is not installed: say which extra installs it
                    outcome = Outcome(Status.ERROR, exc.message + (f" — {exc.hint}" if exc.hint else ""))
                except Exception as exc:  # a crashing check is an error finding, reported and counted
                    outcome = Outcome(Status.ERROR, f"the check failed ({type(exc).__name__})")
                if unreachable is None and outcome.status is Status.ERROR and time.monotonic() - started >= timeout / 2:
                    # A check that waited long and still could not decide: a slow answer that is not the
                    # engine's (a real store refuses in milliseconds) would cost every remaining check the
                    # same wait.
                    unreachable = StoreUnreachable(store.name, f"no usable answer within {timeout:g} s; the "
                                                   "remaining checks were not run",
                                                   hint="the peer is slow or not this engine")
            out.append(Finding(check_id, store.name, outcome.status, cls.severity, cls.vantage, cls.title(),
                               outcome.evidence))
    finally:
        target.close()
    return out


def _reason(exc: StoreError) -> str:
    return exc.detail + (f" — {exc.hint}" if exc.hint else "")


def with_data_context(findings: list[Finding], catalog: Catalog | None) -> list[Finding]:
    """Raise failing findings on stores that hold PII, and name what they hold."""
    contexts = {store: catalog.data_context(store) if catalog is not None else None
                for store in {f.store for f in findings}}  # one lookup per store, not per finding
    out = []
    for f in findings:
        context = contexts[f.store]
        if context is None:
            out.append(replace(f, data_context="never scanned: run `piiguard scan` to know what it holds"))
            continue
        types, subjects = context
        if not types:
            out.append(replace(f, data_context="the last scan found no PII"))
            continue
        people = f" of about {subjects:,} people" if subjects is not None else ""
        raised = f.severity.raised() if f.status is Status.FAIL else f.severity
        out.append(replace(f, severity=raised, pii_types=types, subjects_estimate=subjects,
                           data_context=f"holds {', '.join(types)}{people}"))
    return out


def expired_copies(catalog: Catalog, stores: Sequence[Store], *, timeout: float = 5.0) -> list[Finding]:
    """``copy.expired`` on the stores that are registered copies' targets (one registry read per run)."""
    from piiguard.checks.copies import CopyExpired

    copies = catalog.copies() if stores else []
    return CopyExpired.evaluate(copies, stores, timeout=timeout) if copies else []


def run_checks(targets_: Sequence[str | Store] = (), *, config: Config | None = None,
               catalog: Catalog | None = None, timeout: float = 5.0, only: Sequence[str] = (),
               record: bool = True) -> CheckRun:
    """Check stores (names from ``config``, URLs, or :class:`Store` objects); record findings in the
    catalog when one is given (and ``record``; watch records them itself, with its alerts). Never
    prints, never exits."""
    plugins.load()
    stores = [t for t in targets_ if isinstance(t, Store)]
    names = [t for t in targets_ if isinstance(t, str)]
    if names or not stores:
        stores += resolve_stores(names, config)
    policy = config.policy if config is not None else Policy()
    stores = [policy.stamp(s) for s in stores]  # stores given as objects get policy's require_tls too

    def one(store: Store) -> list[Finding]:
        ids = policy.applicable(store, [i for i in check_ids(store.engine) if not only or i in only])
        return check_store(store, timeout=timeout, only=ids) if ids else []

    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(stores)))) as pool:
        per_store = list(pool.map(one, stores))
    found = [f for fs in per_store for f in fs]
    if catalog is not None and (not only or "copy.expired" in only):
        # a registered check like the rest: skip rules, severity overrides and waivers apply to it
        found += expired_copies(catalog, [s for s in stores if policy.applicable(s, ["copy.expired"])],
                                timeout=timeout)
    findings = policy.apply(found, date.today())
    findings = with_data_context(findings, catalog)
    if catalog is not None and record:
        catalog.record_findings(findings)
    return CheckRun(tuple(findings))
