"""The discovery renderers: the JSON document against docs/json.md, SARIF against the official schema,
and hostile text (a banner with terminal escapes) that cannot act on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsondoc
import jsonschema
from rich.console import Console

from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Endpoint, Kind, Problem, Service, clean
from piiguard.model import Finding, Severity, Status, Vantage
from piiguard.report import discovery as render

OPEN = Endpoint("10.20.0.9", 9200)
PROD = Endpoint("10.20.0.5", 5432)


def run() -> DiscoveryRun:
    hostile = clean("OpenSearch\x1b]8;;http://x\x07\u202e")
    copy = Discovered(Service(OPEN, Kind.STORE, "opensearch", hostile, "2.11", "GET / said OpenSearch"),
                      findings=(Finding("opensearch.no-auth", OPEN.address, Status.FAIL, Severity.CRITICAL,
                                        Vantage.OUTSIDE, "no auth", "GET /_cat/indices answered"),
                                Finding("discovery.unregistered-store", OPEN.address, Status.FAIL, Severity.CRITICAL,
                                        Vantage.OUTSIDE, "unregistered", "nobody registered it")),
                      links=(CopyLink(OPEN.address, "members", "prod", "public.customers", "fingerprint",
                                      ("member_email",), ("email",), 3000, 0.6, 5000, 3000),), open=True)
    prod = Discovered(Service(PROD, Kind.STORE, "postgres", "PostgreSQL", None, "SSLRequest answered"),
                      registered="prod",
                      findings=(Finding("postgres.trust-auth", "prod", Status.PASS, Severity.CRITICAL,
                                        Vantage.OUTSIDE, "trust", "password asked"),))
    others = (Service(Endpoint("10.20.0.7", 80), Kind.NOT_A_STORE, evidence="HTTP server"),
              Service(Endpoint("10.20.0.66", 0), Kind.TARPIT, evidence="accepted every port it was offered"))
    return DiscoveryRun(("10.20.0.0/24",), (5432, 9200), 508, 1.25, (copy, prod), others,
                        (Problem("10.20.0.8:6379", "closed mid-fingerprint", "run discover again"),))


def test_the_json_document_is_the_documented_one() -> None:
    doc = jsondoc.check(render.render_json(run()), "discovery")
    stores = {s["address"]: s for s in doc["stores"]}
    assert stores[OPEN.address]["severity"] == "critical" and stores[OPEN.address]["registered"] is None
    assert stores[PROD.address]["severity"] is None and stores[PROD.address]["registered"] == "prod"
    assert stores[OPEN.address]["links"][0]["fields"] == ["member_email"]
    assert {o["address"]: o["port"] for o in doc["others"]} == {"10.20.0.7:80": 80, "10.20.0.66": None}
    assert "\x1b" not in json.dumps(doc) and "\u202e" not in json.dumps(doc)


def test_sarif_is_valid_and_located_at_the_address() -> None:
    sarif = json.loads(render.render_sarif(run(), "0"))
    schema = json.loads((Path(__file__).parent.parent / "data" / "sarif-2.1.0.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"opensearch.no-auth", "discovery.unregistered-store"}  # no passes
    assert {r["locations"][0]["logicalLocations"][0]["name"] for r in results} == {OPEN.address}


def test_the_table_lists_stores_others_and_problems_and_escapes_what_peers_sent() -> None:
    out = io.StringIO()
    render.render_table(run(), Console(file=out, width=400, force_terminal=True))
    text = out.getvalue()
    assert "UNREGISTERED" in text and "prod" in text and OPEN.address in text and PROD.address in text
    assert "1 not-a-store, 1 tarpit" in text and "closed mid-fingerprint" in text
    assert "members ← prod.public.customers" in text and "3,000 people" in text
    assert "\x07" not in text and "\u202e" not in text and "\x1b]" not in text


def test_worst_ignores_passes_and_waived_failures() -> None:
    f = Finding("x", "s", Status.FAIL, Severity.CRITICAL, Vantage.OUTSIDE, "t", "e", waiver="accepted")
    g = Finding("y", "s", Status.FAIL, Severity.LOW, Vantage.OUTSIDE, "t", "e")
    p = Finding("z", "s", Status.PASS, Severity.CRITICAL, Vantage.OUTSIDE, "t", "e")
    assert render.worst([f, g, p]) is Severity.LOW and render.worst([p]) is None
