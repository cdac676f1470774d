"""The discovery renderers: the JSON document against docs/json.md, SARIF against the official schema,
and hostile text (a banner with terminal escapes) that cannot act on a terminal."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import jsondoc
import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from piiguard.catalog import Catalog
from piiguard.discovery import inventory
from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Endpoint, Kind, Problem, Service, clean
from piiguard.model import Finding, ScanMode, Severity, Status, Vantage
from piiguard.report import discovery as render
from piiguard.scanner import scan

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


def _sarif(r: DiscoveryRun) -> dict[str, object]:
    doc = json.loads(render.render_sarif(r, "0"))
    schema = json.loads((Path(__file__).parent.parent / "data" / "sarif-2.1.0.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    return doc


def test_sarif_names_the_copy_in_the_unregistered_result_and_its_properties() -> None:
    results = _sarif(run())["runs"][0]["results"]  # type: ignore[index]
    [mark] = [r for r in results if r["ruleId"] == "discovery.unregistered-store"]
    text = mark["message"]["text"]
    assert "copy of prod.public.customers" in text and "~3,000 people" in text and "60%" in text
    assert "fingerprint" in text and "members" in text
    assert mark["properties"]["subjects_estimate"] == 3000
    [link] = mark["properties"]["copy_of"]
    assert (link["source_store"], link["source_collection"], link["people"]) == ("prod", "public.customers", 3000)
    location = mark["locations"][0]["logicalLocations"][0]
    assert location["name"] == OPEN.address and location["fullyQualifiedName"] == f"opensearch://{OPEN.address}"


def test_every_sarif_result_has_a_distinct_fingerprint_of_check_and_address() -> None:
    results = _sarif(run())["runs"][0]["results"]  # type: ignore[index]
    prints = [r["partialFingerprints"]["piiguard/v1"] for r in results]
    assert len(set(prints)) == len(results) == 2
    for r in results:
        expected = hashlib.sha256(f"{r['ruleId']}\0{OPEN.address}".encode()).hexdigest()[:32]
        assert r["partialFingerprints"]["piiguard/v1"] == expected  # check id and address, nothing else


@given(evidence=st.text(max_size=80), people=st.integers(0, 10**9), share=st.floats(0, 1))
def test_a_sarif_fingerprint_holds_no_data_and_does_not_move_with_evidence(evidence: str, people: int,
                                                                           share: float) -> None:
    base = run()
    copy, prod = base.stores
    changed = replace(copy, findings=tuple(replace(f, evidence=evidence) for f in copy.findings),
                      links=tuple(replace(link, people=people, share=share) for link in copy.links))
    before = _sarif(base)["runs"][0]["results"]  # type: ignore[index]
    after = _sarif(replace(base, stores=(changed, prod)))["runs"][0]["results"]  # type: ignore[index]
    assert [r["partialFingerprints"] for r in before] == [r["partialFingerprints"] for r in after]
    if len(evidence) > 3:
        assert all(evidence not in json.dumps(r["partialFingerprints"]) for r in after)


def test_the_unregistered_finding_carries_the_pii_types_the_copied_fields_hold(tmp_path: Path) -> None:
    shop = tmp_path / "prod.db"
    db = sqlite3.connect(shop)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT)")
    db.executemany("INSERT INTO customers (email, phone) VALUES (?, ?)",
                   [(f"person{i}@example.org", f"+44 20 7946 {i:04d}") for i in range(200)])
    db.commit()
    db.close()
    with Catalog(tmp_path / "c.db", timeline_key=b"k" * 32) as cat:
        source = scan([f"sqlite://{shop}"], mode=ScanMode.FULL, catalog=cat).stores[0].store
        link = CopyLink(OPEN.address, "members", source, "customers", "fingerprint", ("member_email",), ("email",),
                        2400, 0.8, 500, 480)
        types, people = inventory.linked_holdings(cat, [link])
    assert (types, people) == (("email",), 2400)  # the copied field's type only, not the phone it did not copy
    found = Discovered(Service(OPEN, Kind.STORE, "opensearch"), links=(link,), open=True)
    f = inventory.unregistered_finding(found, types)
    assert f is not None and f.pii_types == ("email",) and f.subjects_estimate == 2400
    assert f.data_context == f"copy of {source}.customers: ~2,400 people, 80% (fingerprint, in members)"
    doc = _sarif(DiscoveryRun(("10.20.0.0/24",), (9200,), 1, 0.1, (replace(found, findings=(f,)),), (), ()))
    [mark] = doc["runs"][0]["results"]  # type: ignore[index]
    assert mark["properties"]["pii_types"] == ["email"] and "~2,400 people, 80%" in mark["message"]["text"]


def test_check_sarif_results_are_fingerprinted_by_check_and_store_name_too() -> None:
    from piiguard.report.findings import render_sarif

    findings = tuple(Finding(c, "prod", Status.FAIL, Severity.HIGH, Vantage.OUTSIDE, "t", e)
                     for c, e in (("postgres.trust-auth", "one"), ("postgres.trust-auth", "two"), ("x.y", "one")))
    results = json.loads(render_sarif(findings, "0"))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["piiguard/v1"] for r in results]
    assert prints[0] == prints[1] != prints[2]  # the same check on the same store, whatever the evidence
    assert results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "piiguard:prod"
