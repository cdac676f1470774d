"""``--format json`` of every list and incident command, against a real PostgreSQL.

A hardened PostgreSQL holds a shop's customers. They are scanned, copied (masked) into another
database, and watched; then someone adds a ``trust`` line to pg_hba.conf, watch records the exposure,
opens the incident and plans a containment (approve mode), and the line is taken out again. Every
command's document parses, has exactly the keys ``docs/json.md`` lists (with their types), and holds
no customer's value. A report drafted before the scope says its numbers are an estimate and names
the scan; once the scope exists it says they are exact and uses its counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import jsondoc
import pytest
from conftest import pg_connect
from leak import Leaks
from servers import HARDENED_HBA, PASSWORD, Server, pg_ctl, start_postgres, stop_postgres

from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.contain.service import Containor
from piiguard.masking.pipeline import plan_copy, run_copy
from piiguard.model import Store
from piiguard.scanner import scan
from piiguard.watch.service import Watcher

PEOPLE = 40
PW = "PIIGUARD_JSON_PW"
COPY_KEY = "json-output-copy-key-0123456789"
TIMELINE_KEY = "json-output-timeline-key-0123456789"
EMAILS = [f"marguerite.okafor{i}@shop-example.org" for i in range(PEOPLE)]
IDS = [f"cust-{i:06d}-json" for i in range(PEOPLE)]
SSIDS = [f"OKAFOR-HOME-{i:04d}-5G" for i in range(PEOPLE)]


@dataclass
class Story:
    server: Server
    folder: Path
    config: Path
    catalog: Path
    incident: int  # the one watch opened


def env() -> dict[str, str]:
    return {**os.environ, PW: PASSWORD, "PIIGUARD_COPY_KEY": COPY_KEY, "PIIGUARD_TIMELINE_KEY": TIMELINE_KEY,
            "COLUMNS": "200"}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    server = start_postgres(hardened=True)
    folder = tmp_path_factory.mktemp("json-story")
    saved = {k: os.environ.get(k) for k in (PW, "PIIGUARD_TIMELINE_KEY")}
    os.environ.update({PW: PASSWORD, "PIIGUARD_TIMELINE_KEY": TIMELINE_KEY})
    try:
        with pg_connect(server) as conn:
            conn.execute("CREATE DATABASE shop")
            conn.execute("CREATE DATABASE analytics")
        with pg_connect(server, "shop") as conn:
            conn.execute("CREATE TABLE customers (id text PRIMARY KEY, email text, wifi_ssid text)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)", list(zip(IDS, EMAILS, SSIDS, strict=True)))
        common = {"host": "127.0.0.1", "port": server.port, "user": "postgres", "password_env": PW}
        shop = Store("shop", "postgres", database="shop", options={"log_file": str(server.data / "log")},
                     allowed_networks=("127.0.0.0/8",), **common)  # type: ignore[arg-type]
        analytics = Store("analytics", "postgres", database="analytics", **common)  # type: ignore[arg-type]
        config = folder / "piiguard.yaml"
        config.write_text(json.dumps({"stores": [
            {"name": "shop", "url": f"postgresql://postgres@127.0.0.1:{server.port}/shop", "password_env": PW,
             "options": {"log_file": str(server.data / "log")}, "allowed_networks": ["127.0.0.0/8"],
             "tags": {"env": "prod"}},
            {"name": "analytics", "url": f"postgresql://postgres@127.0.0.1:{server.port}/analytics",
             "password_env": PW}]}))
        catalog = folder / "catalog.db"
        with Catalog(catalog) as cat:
            scan([shop], catalog=cat)
            plan = plan_copy(shop, "customers", analytics, "customers_copy", config=parse_config({}))
            assert plan.blocking == ()
            run_copy(plan, COPY_KEY.encode(), cat, owner="bi \"team\"", purpose="churn\tmodel",
                     expires=date(2030, 1, 1))
            watcher = Watcher([shop], cat, [], timeout=3, containor=Containor(cat, mode="approve", timeout=3))
            watcher.cycle(inside=False)
            assert cat.incidents() == []
            hba = server.data / "data" / "pg_hba.conf"
            hba.write_text("host all all 127.0.0.1/32 trust\n" + HARDENED_HBA)  # someone switches it off
            pg_ctl(server, "reload")
            watcher.cycle(inside=False)
            hba.write_text(HARDENED_HBA)  # and on again: the window closes
            pg_ctl(server, "reload")
            watcher.cycle(inside=False)
            (incident,) = cat.incidents()
            assert incident["window_end"] is not None and cat.containments("shop")
        yield Story(server, folder, config, catalog, int(incident["id"]))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stop_postgres(server)


@pytest.fixture
def seeded(leaks: Leaks, story: Story) -> Iterator[Leaks]:
    """The customers' values seeded; after the test, everything the story wrote is searched for them
    (the catalog with its -wal, reports, evidence), besides the test's own output."""
    for values, label in ((EMAILS, "email"), (IDS, "customer id"), (SSIDS, "wifi-ssid")):
        leaks.seed(values, label)
    yield leaks
    for p in sorted(story.folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.name != "subjects.csv":
            leaks.emitted(f"story {p.name}", p.read_bytes())


def piiguard(story: Story, *args: str, fmt: str = "json") -> subprocess.CompletedProcess[str]:
    """A run with -v: in JSON mode its log lines must all go to stderr, the document alone to stdout."""
    done = subprocess.run([sys.executable, "-m", "piiguard", *args, "-v", "-c", str(story.config), "--catalog",
                           str(story.catalog), "--format", fmt], capture_output=True, text=True, timeout=300,
                          env=env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done


LISTS = [
    (["incident", "list"], "incidents"),
    (["incident", "show", "INCIDENT"], "incident"),
    (["contain", "list"], "containments"),
    (["exposures"], "exposures"),
    (["copies"], "copies"),
    (["stores"], "stores"),
]


@pytest.mark.parametrize(("argv", "kind"), LISTS, ids=[k for _, k in LISTS])
def test_every_list_is_one_documented_document(story: Story, seeded: Leaks, argv: list[str], kind: str) -> None:
    args = [str(story.incident) if a == "INCIDENT" else a for a in argv]
    done = piiguard(story, *args)
    assert "configuration" in done.stderr  # -v logged, and not on stdout
    doc = jsondoc.check(done.stdout, kind)
    text = piiguard(story, *args, fmt="text").stdout  # the default still works, and is not JSON
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    if kind == "incidents":
        (incident,) = doc["incidents"]
        assert incident["stores"] == ["shop"] and incident["subjects_estimate"] == PEOPLE
        assert incident["people_in_scope"] is None and incident["window_end"] is not None
    elif kind == "incident":
        whole = doc["incident"]
        assert whole["numbers"]["basis"] == "estimate" and whole["numbers"]["scans"][0]["store"] == "shop"
        assert whole["timeline"]["head"] and whole["timeline"]["last"][0]["kind"] == "opened"
    elif kind == "containments":
        (action,) = doc["containments"]
        assert action["status"] == "planned" and action["store"] == "shop" and action["steps"]
    elif kind == "exposures":
        (window,) = doc["exposures"]
        assert window["open"] is False and window["subjects_estimate"] == PEOPLE and window["checks"]
    elif kind == "copies":
        (copied,) = doc["copies"]
        assert (copied["owner"], copied["purpose"], copied["rows"]) == ('bi "team"', "churn\tmodel", PEOPLE)
        assert {f["field"]: f["masker"] for f in copied["fields"]}["email"] == "pseudonym"
    else:
        shop, analytics = doc["stores"]
        assert (shop["name"], shop["configured"], shop["tags"]) == ("shop", True, {"env": "prod"})
        assert shop["credentials"] == {"kind": "env", "reference": PW, "present": True}
        assert shop["last_scan"]["subjects_estimate"] == PEOPLE and shop["last_check"]["checks"] > 0
        assert analytics["last_scan"] is None and analytics["address"].endswith("/analytics")
        assert PASSWORD not in piiguard(story, "stores").stdout + text  # the reference, never the value


def test_report_says_estimate_before_the_scope_and_exact_after(story: Story, seeded: Leaks) -> None:
    with pg_connect(story.server, "shop") as conn:  # who is in the store, counted apart from piiguard
        people = conn.execute("SELECT count(DISTINCT id) FROM customers").fetchone()[0]
    opened = subprocess.run([sys.executable, "-m", "piiguard", "incident", "open", "shop", "--since",
                             "2026-11-03T08:00", "--catalog", str(story.catalog)], capture_output=True, text=True,
                            env=env(), timeout=120)
    assert opened.returncode == 0, opened.stderr
    incident = opened.stdout.split()[1]
    with Catalog(story.catalog) as cat:
        (scan_row,) = [s for s in cat.scans() if s["status"] == "finished"]

    # before the scope: an estimate, from the scan named by id and time, in the JSON and in every draft
    before = jsondoc.check(piiguard(story, "incident", "report", incident).stdout, "report")
    numbers = before["numbers"]
    assert (numbers["basis"], numbers["exact"], numbers["people"]) == ("estimate", False, PEOPLE)
    (source,) = numbers["scans"]
    assert (source["scan_id"], source["started"]) == (scan_row["id"], scan_row["started"])
    assert source["estimate_kind"] in ("exact", "approximate", "sample") and source["subjects_estimate"] == PEOPLE
    assert source["subjects_field"] in ("public.customers.id", "public.customers.email")
    for draft in before["drafts"]:
        text = " ".join(Path(draft["path"]).read_text().split())
        assert f"estimate from scan {scan_row['id']} of shop (started {scan_row['started']}" in text, draft["name"]
        assert f"{source['estimate_kind']} count of distinct {source['subjects_field']}" in text, \
            draft["name"]
        assert "exact:" not in text
    shown = piiguard(story, "incident", "show", incident, fmt="text").stdout
    assert f"estimate from scan {scan_row['id']}" in " ".join(shown.split())

    # the scope: its document, then exact numbers everywhere
    subjects = story.folder / "private" / "subjects.csv"
    scoped = jsondoc.check(piiguard(story, "incident", "scope", incident, "--out", str(subjects), "--key-env",
                                    "PIIGUARD_COPY_KEY").stdout, "scope")
    assert scoped["people"] == people == PEOPLE and scoped["by_type"]["email"] == PEOPLE
    assert scoped["read"] == ["shop.public.customers"] and scoped["timeline_head"]
    after = jsondoc.check(piiguard(story, "incident", "report", incident, "--force").stdout, "report")
    assert (after["numbers"]["basis"], after["numbers"]["exact"], after["numbers"]["people"]) == ("scope", True, people)
    assert after["numbers"]["scans"] == [] and after["numbers"]["scoped_at"]
    for draft in after["drafts"]:
        text = " ".join(Path(draft["path"]).read_text().split())
        assert f"exact: {people:,} people counted one by one" in text and "estimate" not in text, draft["name"]
    text_run = piiguard(story, "incident", "report", incident, "--force", fmt="text").stdout
    assert text_run.startswith("numbers: exact:") and "timeline head " in text_run
    whole = jsondoc.check(piiguard(story, "incident", "show", incident).stdout, "incident")["incident"]
    assert whole["people_in_scope"] == people and whole["scope"]["by_type"] == scoped["by_type"]
    assert [s["kind"] for s in whole["steps"]] == ["reported", "scoped", "reported", "reported"]


def test_evidence_is_one_documented_document(story: Story, seeded: Leaks) -> None:
    doc = jsondoc.check(piiguard(story, "incident", "evidence", str(story.incident), "--force").stdout, "evidence")
    (found,) = doc["stores"]
    assert found["store"] == "shop" and found["trail"] is True and found["sha256"]
    assert Path(found["artefact"]).is_file()
    assert {a["address"]: a["class"] for a in found["addresses"]}.get("127.0.0.1") == "allowed"
    assert doc["to"] is not None and doc["lookback_minutes"] == 10
