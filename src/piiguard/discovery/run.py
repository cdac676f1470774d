"""``discover``: sweep the allowed networks, tell what answers, check it, and link copies to sources.

The steps, each in its own module: the allow-list gives the ranges (:mod:`.networks`), a connect
sweep finds open ports (:mod:`.sweep`), each open port is identified by the engines' outside probes
(:mod:`.identify`), a found store is matched to the configured ones and checked from outside
(:mod:`.inventory`), and a store whose records can be read — open, or configured with credentials —
is compared with the fingerprints and canaries of registered collections (:mod:`.fingerprints`,
:mod:`.canaries`). The inventory is recorded in the catalog. A problem at one address is reported
with it and the sweep goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from piiguard.catalog import Catalog
from piiguard.config import Config
from piiguard.discovery import canaries, fingerprints, identify, inventory, networks, sweep
from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Endpoint, Kind, Problem, Service, clean
from piiguard.errors import ConfigError, PiiguardError

Progress = Callable[[str, int, int], None]  # (step, done, total)


def discover(config: Config, requested: Sequence[str] = (), *, catalog: Catalog | None = None,
             max_addresses: int = networks.MAX_ADDRESSES, read_limit: int = 100_000,
             progress: Progress | None = None) -> DiscoveryRun:
    settings = config.discovery
    nets = networks.targets(requested, settings, max_addresses=max_addresses)
    started = time.monotonic()
    swept = sweep.sweep(networks.hosts(nets), settings.ports, rate=settings.rate, concurrency=settings.concurrency,
                        timeout=settings.timeout,
                        progress=(lambda done, total: progress("sweep", done, total)) if progress else None)
    services = identify.identify_all(list(swept.open), timeout=settings.timeout, guess=settings.guess,
                                     concurrency=min(settings.concurrency, 64))
    problems: list[Problem] = []
    key = _key(config, catalog, problems)
    found: list[Discovered] = []
    others: list[Service] = [Service(Endpoint(h, 0), Kind.TARPIT, evidence="accepted every port it was offered")
                             for h in swept.tarpits]
    stores = [s for s in services if s.kind in (Kind.STORE, Kind.IDENTIFY_ONLY)]
    others.extend(s for s in services if s.kind not in (Kind.STORE, Kind.IDENTIFY_ONLY))
    # Outside checks wait on peers, not on this host: run them side by side (each bounded by its timeout).
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(stores)))) as pool:
        checked = list(pool.map(lambda s: identify.outside_findings(
            s, timeout=settings.timeout * 5, name=inventory.registered_at(s, config.stores) or s.endpoint.address,
            guess=settings.guess) if s.kind is Kind.STORE else ([], False), stores))
    http_clickhouse = {s.endpoint.host for s in stores if s.engine == "clickhouse" and not _native(s)}
    for i, (service, (findings, is_open)) in enumerate(zip(stores, checked, strict=True)):
        if progress:
            progress("check", i + 1, len(stores))
        registered = inventory.registered_at(service, config.stores)
        item = Discovered(service, registered, tuple(findings), open=is_open)
        if catalog is not None and key is not None and is_open and registered is None:
            if _native(service) and service.endpoint.host in http_clickhouse:
                pass  # the same server's HTTP port is read instead: piiguard reads ClickHouse over HTTP
            elif _native(service):
                problems.append(Problem(item.name, "ClickHouse answered on its native port only; piiguard reads "
                                        "ClickHouse over HTTP, so its tables were not compared with fingerprints",
                                        "add its HTTP port (8123 by default) to discovery.ports"))
            else:
                item = replace(item, links=tuple(_links(item, catalog, key, read_limit, problems)))
        types = inventory.linked_holdings(catalog, item.links)[0] if catalog is not None and item.links else ()
        unregistered = inventory.unregistered_finding(item, types)
        if unregistered is not None:
            item = replace(item, findings=(*item.findings, unregistered))
        found.append(item)
    if catalog is not None:
        covered = [Endpoint(h, p) for h in networks.hosts(nets) for p in settings.ports] \
            if networks.size(nets) * len(settings.ports) <= 1_000_000 else []
        catalog.record_discovered(found, swept=covered)
        catalog.record_links([link for d in found for link in d.links])
        catalog.record_findings([f for d in found for f in d.findings])
    return DiscoveryRun(tuple(str(n) for n in nets), settings.ports, swept.probes, time.monotonic() - started,
                        tuple(found), tuple(others), tuple(problems))


def _native(service: Service) -> bool:
    return service.engine == "clickhouse" and service.evidence.startswith("native protocol")


def _key(config: Config, catalog: Catalog | None, problems: list[Problem]) -> bytes | None:
    """The discovery key, when fingerprints or canaries are recorded; a missing one is a problem reported
    with the run (the sweep's findings still stand), not the end of it."""
    if catalog is None or not (catalog.fingerprints(with_bits=False) or catalog.canaries(status="planted")):
        return None
    try:
        return fingerprints.load_key(config.discovery)
    except ConfigError as exc:
        problems.append(Problem("discovery.key_env", exc.message, exc.hint or ""))
        return None


def _links(item: Discovered, catalog: Catalog, key: bytes, limit: int, problems: list[Problem]) -> list[CopyLink]:
    store = identify.as_store(item.service, item.name)
    out: list[CopyLink] = []
    for step in (fingerprints.match, canaries.find):
        try:
            out.extend(step(store, catalog, key, limit=limit))
        except PiiguardError as exc:  # one store that cannot be read is reported with it; the sweep goes on
            problems.append(Problem(item.name, clean(exc.message, 300) or type(exc).__name__,
                                    clean(exc.hint, 300) or "check that piiguard can read the store"))
    return out
