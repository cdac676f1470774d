"""Renderers of check findings: a Rich table, JSON, and SARIF 2.1.0 (for code-scanning dashboards)."""

from __future__ import annotations

import hashlib
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from piiguard import __name__ as PACKAGE
from piiguard.checks.base import checks
from piiguard.model import Finding, Severity, Status
from piiguard.report.document import dumps
from piiguard.report.terminal import safe

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
               Severity.LOW: "note", Severity.INFO: "note"}
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
                     Severity.INFO: "0.0"}
FINGERPRINT = "piiguard/v1"  # partialFingerprints key: bump the version if what it hashes changes


def fingerprint(check: str, where: str) -> str:
    """A result's identity across runs, for SARIF viewers to de-duplicate: the check id and the store
    (its name, or the address a sweep found it at) — never evidence, which can change, nor data."""
    return hashlib.sha256(f"{check}\0{where}".encode()).hexdigest()[:32]


STYLE = {Status.FAIL: "red", Status.ERROR: "yellow", Status.PASS: "green", Status.NOT_APPLICABLE: "blue"}


def finding_dict(f: Finding) -> dict[str, Any]:
    return {"check": f.check, "store": f.store, "status": f.status.value, "severity": f.severity.value,
            "vantage": f.vantage.value, "title": f.title, "evidence": f.evidence, "pii_types": list(f.pii_types),
            "subjects_estimate": f.subjects_estimate, "data_context": f.data_context, "waiver": f.waiver or None}


def render_json(findings: tuple[Finding, ...]) -> str:
    return dumps({"findings": [finding_dict(f) for f in findings]})


def render_sarif(findings: tuple[Finding, ...], version: str) -> str:
    """SARIF 2.1.0: one rule per check that ran, one result per failing, erroring or not-applicable
    finding (``kind: notApplicable``, level ``none``, with its reason)."""
    rule_ids = sorted({f.check for f in findings if f.check in checks})
    rules = []
    for rid in rule_ids:
        cls = checks.get(rid)
        rules.append({"id": rid, "name": rid, "shortDescription": {"text": cls.title()},
                      "fullDescription": {"text": cls.doc()}, "help": {"text": cls.doc()},
                      "properties": {"security-severity": SECURITY_SEVERITY[cls.severity], "tags": ["security"]}})
    results = []
    for f in findings:
        if f.status is Status.PASS:
            continue
        text = f"{f.store}: {f.evidence}" + (f" ({f.data_context})" if f.data_context else "")
        level = {Status.FAIL: SARIF_LEVEL[f.severity], Status.NOT_APPLICABLE: "none"}.get(f.status, "note")
        kind = {Status.FAIL: "fail", Status.NOT_APPLICABLE: "notApplicable"}.get(f.status, "review")
        result: dict[str, Any] = {
            "ruleId": f.check, "level": level, "kind": kind, "message": {"text": text},
            **({"suppressions": [{"kind": "external", "justification": f.waiver}]} if f.waiver else {}),
            "locations": [{"logicalLocations": [{"name": f.store, "fullyQualifiedName": f"{PACKAGE}:{f.store}",
                                                 "kind": "resource"}]}],
            "partialFingerprints": {FINGERPRINT: fingerprint(f.check, f.store)},
            "properties": {"status": f.status.value, "severity": f.severity.value, "vantage": f.vantage.value,
                           "pii_types": list(f.pii_types), "subjects_estimate": f.subjects_estimate},
        }
        if f.check in checks:
            result["ruleIndex"] = rule_ids.index(f.check)
        results.append(result)
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": PACKAGE, "version": version, "rules": rules}}, "results": results}]}
    return dumps(doc)


def render_table(findings: tuple[Finding, ...], console: Console, *, show_passed: bool = False) -> None:
    table = Table("store", "check", "status", "severity", "evidence", "data")
    for f in sorted(findings, key=lambda f: (f.store, f.status is not Status.FAIL, -f.severity.rank, f.check)):
        if f.status is Status.PASS and not show_passed:
            continue
        # Text, not markup: store names, evidence and waiver reasons are printed as written.
        status = Text.assemble((f.status.value, STYLE[f.status]), " (waived)" if f.waiver else "")
        table.add_row(safe(f.store), safe(f.check), status, f.severity.value,
                      safe(f.evidence + (f" — {f.waiver}" if f.waiver else "")), safe(f.data_context))
    console.print(table)
    counts = {s: sum(1 for f in findings if f.status is s) for s in Status}
    console.print(f"{counts[Status.FAIL]} failed, {counts[Status.ERROR]} could not be decided, "
                  f"{counts[Status.PASS]} passed"
                  + (f", {counts[Status.NOT_APPLICABLE]} not applicable" if counts[Status.NOT_APPLICABLE] else ""))
