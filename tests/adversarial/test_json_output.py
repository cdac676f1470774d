"""Text from the catalog through ``--format json``: control characters, quotes, backslashes, bidi
overrides, escapes and any other Unicode in an incident title, a store name, a containment's steps
and note, a copy's owner and purpose come back out of the real CLI exactly as they went in, and the
output stays one valid, documented, ASCII document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsondoc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leak import Leaks
from typer.testing import CliRunner

from piiguard.catalog import Catalog
from piiguard.cli import app

KEY = "json-output-timeline-key-0123456789"

# Everything but lone surrogates, which no SQLite text (UTF-8) can hold; the hostile characters often.
HOSTILE = st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x1b[31m", "\x7f", "\u0085", "\u2028", "\u2029",
                           "\u202e", "\u2066", "\ufeff", "\U0001f600", "</script>", "\\u0041", "[red]", "{}"])
TEXT = st.lists(st.one_of(HOSTILE, st.text(st.characters(exclude_categories=("Cs",)), max_size=6)),
                min_size=1, max_size=8).map("".join)

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PIIGUARD_TIMELINE_KEY", KEY)
    return tmp_path / "c.db"


def _one(items: list[dict[str, Any]], wanted: int) -> dict[str, Any]:
    (item,) = [i for i in items if i["id"] == wanted]
    return item


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=TEXT, store=TEXT, step=TEXT, note=TEXT)
def test_incident_and_containment_text_round_trips(catalog: Path, title: str, store: str, step: str,
                                                    note: str) -> None:
    with Catalog(catalog) as cat:
        incident_id = cat.open_incident(title, [store], "2026-11-03T08:00:00+00:00", ["email"], 3)
        cid = cat.add_containment(store, "redis", {"steps": [step], "undo": [note], "verify": []}, "planned")
        cat.set_containment(cid, "failed", note)
    listed = _one(jsondoc.check(run("incident", "list", "--catalog", str(catalog)), "incidents")["incidents"],
                  incident_id)
    assert (listed["title"], listed["stores"]) == (title, [store])
    whole = jsondoc.check(run("incident", "show", str(incident_id), "--catalog", str(catalog)), "incident")
    assert (whole["incident"]["title"], whole["incident"]["stores"]) == (title, [store])
    contained = _one(jsondoc.check(run("contain", "list", "--catalog", str(catalog)), "containments")["containments"],
                     cid)
    assert (contained["store"], contained["steps"], contained["undo"], contained["note"]) == (store, [step], [note],
                                                                                              note)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(owner=TEXT, purpose=TEXT, reason=TEXT)
def test_copy_owner_and_purpose_round_trip(catalog: Path, owner: str, purpose: str, reason: str) -> None:
    with Catalog(catalog) as cat:
        copy_id = cat.add_copy({"source_store": "prod", "source_collection": "public.users", "target_store": "bi",
                                "target_engine": "postgres", "target_collection": "users", "transforms": {},
                                "key_id": "k1", "owner": owner, "purpose": purpose, "expires": "2030-01-01",
                                "accepted_risk": reason})
        cat.finish_copy(copy_id, "failed", note=reason)
    copied = _one(jsondoc.check(run("copies", "--catalog", str(catalog)), "copies")["copies"], copy_id)
    assert (copied["owner"], copied["purpose"], copied["note"]) == (owner, purpose, reason)
    assert copied["accepted_risk"] == (reason or None)  # no reason: no risk was accepted


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(store=TEXT)
def test_exposure_store_names_round_trip(catalog: Path, store: str) -> None:
    with Catalog(catalog) as cat, cat.db:
        cur = cat.db.execute("INSERT INTO exposures (store, opened_at, checks, pii_types, subjects_estimate) "
                             "VALUES (?, '2026-11-03T08:00:00+00:00', 'redis.no-auth', 'email,phone', 12)", (store,))
        exposure_id = cur.lastrowid
    found = _one(jsondoc.check(run("exposures", "--catalog", str(catalog)), "exposures")["exposures"],
                 int(exposure_id or 0))
    assert (found["store"], found["checks"], found["pii_types"]) == (store, ["redis.no-auth"], ["email", "phone"])


@pytest.mark.parametrize("make", [str, lambda t: json.dumps(t), lambda t: t * 50], ids=["plain", "json", "long"])
def test_a_title_that_is_itself_json_stays_a_string(catalog: Path, make: Callable[[str], str]) -> None:
    title = make('{"kind": "incidents", "incidents": []}\n')
    with Catalog(catalog) as cat:
        cat.open_incident(title, ["s"], "2026-11-03T08:00", [], None)
    doc = jsondoc.check(run("incident", "list", "--catalog", str(catalog)), "incidents")
    assert [i["title"] for i in doc["incidents"]] == [title]
    assert doc["incidents"][0]["window_start"] == "2026-11-03T08:00:00"  # given without a zone: stays so


def test_copy_names_that_are_customers_values_are_labels(catalog: Path, leaks: Leaks) -> None:
    value = "henrietta.vasquez-json@example.com"
    leaks.seed([value], "email")  # the JSON must not hold it; the catalog does, as this test wrote it there
    leaks.source(catalog)
    with Catalog(catalog) as cat:
        cat.add_copy({"source_store": "prod", "source_collection": f"exports/{value}.csv", "target_store": "bi",
                      "target_engine": "files", "target_collection": value,
                      "transforms": {value: {"masker": "pseudonym", "pii_type": "email"}}, "key_id": "k1",
                      "owner": "bi", "purpose": "churn", "expires": "2030-01-01", "accepted_risk": ""})
    out = run("copies", "--catalog", str(catalog))
    leaks.emitted("copies --format json", out)  # CliRunner's output bypasses pytest's capture: searched here
    (copied,) = jsondoc.check(out, "copies")["copies"]
    assert copied["source"]["collection"] == "exports/<email>.csv" and copied["target"]["collection"] == "<email>"
    assert copied["fields"] == [{"field": "<email>", "masker": "pseudonym", "pii_type": "email"}]
