"""Renderers of a discovery run: a Rich table, the ``discovery`` JSON document, and SARIF.

One row per data store found (registered or not, its engine and what it says it is, whether it is
open, its worst failing finding, the copies it was linked to), then what answered but is not a data
store, then the problems met on the way. Every text a peer sent was cut by
:func:`piiguard.discovery.base.clean` before it got here; the table escapes it once more, so a
hostile banner can neither act on the terminal nor break the layout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from piiguard.checks.discovery import CHECK_ID
from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Service
from piiguard.discovery.inventory import copy_context
from piiguard.model import Finding, Severity, Status
from piiguard.report.document import document, dumps
from piiguard.report.findings import FINGERPRINT, fingerprint
from piiguard.report.findings import render_sarif as sarif_of_findings
from piiguard.report.terminal import safe


def worst(findings: Sequence[Finding]) -> Severity | None:
    """The most severe failure not waived by policy (None: nothing fails)."""
    failing = [f.severity for f in findings if f.status is Status.FAIL and not f.waiver]
    return max(failing) if failing else None


def _link(link: CopyLink) -> dict[str, Any]:
    return {"store": link.store, "collection": link.collection, "source_store": link.source_store,
            "source_collection": link.source_collection, "via": link.via, "fields": list(link.fields),
            "source_fields": list(link.source_fields), "people": link.people, "share": link.share,
            "from_sample": link.from_sample}


def _store(item: Discovered) -> dict[str, Any]:
    s, e = item.service, item.service.endpoint
    bad = worst(item.findings)
    return {"address": e.address, "host": e.host, "port": e.port, "also": list(item.also), "kind": s.kind.value,
            "engine": s.engine,
            "product": s.product, "version": s.version, "registered": item.registered, "open": item.open,
            "severity": bad.value if bad else None,
            "findings": [{"check_id": f.check, "status": f.status.value, "severity": f.severity.value,
                          "evidence": f.evidence} for f in item.findings],
            "links": [_link(link) for link in item.links]}


def _address(item: Discovered) -> str:
    """``10.0.0.7:8123 (+9000)``: the store's address and the other ports of the same server."""
    return item.service.endpoint.address + (f" (+{', '.join(map(str, item.also))})" if item.also else "")


def _other(s: Service) -> dict[str, Any]:
    e = s.endpoint
    return {"address": e.host if e.port == 0 else e.address, "host": e.host, "port": e.port or None,
            "kind": s.kind.value, "evidence": s.evidence}


def body(run: DiscoveryRun) -> dict[str, Any]:
    """The ``discovery`` document's keys (docs/json.md)."""
    return {"networks": list(run.networks), "ports": list(run.ports), "probes": run.probes,
            "seconds": round(run.seconds, 3), "stores": [_store(d) for d in run.stores],
            "others": [_other(s) for s in run.others],
            "problems": [{"where": p.where, "message": p.message, "hint": p.hint} for p in run.problems]}


def render_json(run: DiscoveryRun) -> str:
    return dumps(document("discovery", body(run)))


def _with_copies(f: Finding, links: Sequence[CopyLink]) -> Finding:
    """The unregistered-store finding carrying its copy links (data context, people) even when whoever
    built it did not: the copy is the most important fact about a store nobody registered."""
    if f.check != CHECK_ID or not links:
        return f
    people = f.subjects_estimate if f.subjects_estimate is not None else max(link.people for link in links) or None
    return replace(f, subjects_estimate=people, data_context=f.data_context or copy_context(links))


def render_sarif(run: DiscoveryRun, version: str) -> str:
    """The findings of every store found as SARIF 2.1.0, each located at the store's address (its
    fully qualified name ``engine://address``, the configured name in ``properties.store``) and
    fingerprinted by check id and address. The unregistered-store result names the copies found in it
    in its message and lists them in ``properties.copy_of``."""
    by_name = {d.name: d for d in run.stores}
    findings = tuple(_with_copies(f, d.links) for d in run.stores for f in d.findings)
    doc = json.loads(sarif_of_findings(findings, version))
    for result in doc["runs"][0]["results"]:
        location = result["locations"][0]["logicalLocations"][0]
        name = location["name"]
        item = by_name.get(name)
        if item is None:
            continue
        address = item.service.endpoint.address
        location["name"] = address
        location["fullyQualifiedName"] = f"{item.service.engine or 'unknown'}://{address}"
        result["partialFingerprints"] = {FINGERPRINT: fingerprint(result["ruleId"], address)}
        result["properties"]["store"] = name
        if result["ruleId"] == CHECK_ID and item.links:
            result["properties"]["copy_of"] = [_link(link) for link in item.links]
    return dumps(doc)


def _version(s: Service) -> str:
    return " ".join(x for x in (s.product, s.version) if x) or "-"


def _links(links: Sequence[CopyLink]) -> str:
    return "; ".join(f"{link.collection} ← {link.source_store}.{link.source_collection} ({link.via}, "
                     f"~{link.people:,} people, {link.share:.0%})" for link in links) or "-"


def render_table(run: DiscoveryRun, console: Console) -> None:
    console.print(safe(f"swept {', '.join(run.networks)} on {len(run.ports)} port(s): {run.probes:,} probes "
                       f"in {run.seconds:.1f} s"))
    if run.stores:
        # The address and the registered name are what a reader acts on: never cut, whatever the width.
        table = Table()
        table.add_column("address", no_wrap=True, min_width=max(len(_address(d)) for d in run.stores))
        table.add_column("engine")
        table.add_column("product / version")
        table.add_column("registered", no_wrap=True, min_width=max(len(d.registered or "UNREGISTERED")
                                                                   for d in run.stores))
        for header in ("open", "worst finding", "copy of"):
            table.add_column(header)
        for item in sorted(run.stores, key=lambda d: d.service.endpoint):
            bad = worst(item.findings)
            checks = sorted({f.check for f in item.findings if f.status is Status.FAIL and f.severity == bad})
            table.add_row(safe(_address(item)), safe(item.service.engine or "-"),
                          safe(_version(item.service)),
                          safe(item.registered) if item.registered else safe("UNREGISTERED", "bold red"),
                          safe("yes", "red") if item.open else safe("no"),
                          safe(f"{bad.value}: {', '.join(checks)}", "red" if bad >= Severity.HIGH else "yellow")
                          if bad else safe("-"),
                          safe(_links(item.links)))
        console.print(table)
    else:
        console.print(safe("no data store found"))
    if run.others:
        counts: dict[str, int] = {}
        for s in run.others:
            counts[s.kind.value] = counts.get(s.kind.value, 0) + 1
        console.print(safe("not data stores: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))))
        table = Table("address", "kind", "evidence")
        for s in sorted(run.others, key=lambda s: s.endpoint):
            e = s.endpoint
            table.add_row(safe(e.host if e.port == 0 else e.address), safe(s.kind.value), safe(s.evidence))
        console.print(table)
    if run.problems:
        console.print(safe(f"{len(run.problems)} problem(s):", "yellow"))
        for p in run.problems:
            console.print(safe(f"  {p.text()}"))
