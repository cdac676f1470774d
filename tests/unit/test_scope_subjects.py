"""Scope's subject: who a record is, and what the count leaves out, on a real files store (the files
connector reading a directory this test writes): collections named by PII, child tables whose own key is
not a person, records with an empty subject, collections that name nobody, hostile records."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.connectors.base import connectors, shown_collections
from piiguard.errors import UsageError
from piiguard.masking.pipeline import find_collection
from piiguard.model import CollectionInfo, Estimate, ScanMode, Store
from piiguard.response.incidents import open_by_hand
from piiguard.response.notices import scope_limits
from piiguard.response.scope import Scope, _subject, find_scope, scope_lines
from piiguard.scanner import scan

KEY = b"scope-subject-key-0123456789abcdef"
FIRSTS = ["olivia", "liam", "emma", "noah", "ava", "elijah", "sophia", "james", "mia", "lucas"]


def email(i: int) -> str:
    return f"{FIRSTS[i % 10]}.{i}@example.org"


def write(root: Path, name: str, rows: list[dict[str, Any]]) -> None:
    (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def scoped(tmp_path: Path, root: Path, subjects: dict[str, str] | None = None) -> tuple[Scope, Catalog, int]:
    store = Store("raw", "files", path=str(root))
    cat = Catalog(tmp_path / "c.db")
    scan([store], catalog=cat, mode=ScanMode.FULL)
    incident_id = open_by_hand(cat, "raw", "2026-11-30T00:00:00+00:00")
    found = find_scope(cat, cat.incident(incident_id) or {}, {"raw": store}, KEY, timeout=10, subjects=subjects)
    return found, cat, incident_id


def raw_in(text: str, raws: list[str]) -> list[str]:
    return [r for r in raws if r in text]


# --- 1. collections whose names hold PII --------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8, unique=True), st.randoms())
def test_colliding_labels_get_distinct_names_in_raw_name_order(ids: list[int], rnd: random.Random) -> None:
    infos = [CollectionInfo(f"{email(i)}.jsonl", None, Estimate.EXACT) for i in ids] + \
            [CollectionInfo("plain.jsonl", None, Estimate.EXACT)]
    listed = list(infos)
    rnd.shuffle(listed)
    shown = shown_collections(listed)
    assert len(shown) == len(infos)  # none collapses
    assert list(shown.values()) == listed  # the connector's order is kept
    assert shown == shown_collections(infos)  # the same names whatever order the store lists them in
    by_raw = sorted((i.name, s) for s, i in shown.items() if s != "plain.jsonl")
    assert [s for _, s in by_raw] == ["<email>.jsonl"] + [f"<email>.jsonl~{n}" for n in range(2, len(ids) + 1)]
    for s in shown:
        assert "@" not in s


def test_files_named_by_emails_are_scoped_each_and_errors_name_labels(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    owners = [email(900), email(901), email(902)]
    for n, owner in enumerate(owners):
        write(root, f"{owner}.jsonl", [{"customer_id": f"cust-{n}{i:04d}", "email": email(n * 100 + i),
                                        "phone": f"+1 415 555 {n}{i:03d}"} for i in range(20)])
    found, cat, _ = scoped(tmp_path, root)
    with cat:
        names = {c for s, _, c in (w.partition(".") for w in found.sources)}
        assert names == {"<email>.jsonl", "<email>.jsonl~2", "<email>.jsonl~3"}
        assert len(found.people) == 60
        assert not raw_in(json.dumps(found.limits()) + "".join(found.sources), owners)
        store = Store("raw", "files", path=str(root))
        with connectors.get("files")(store, timeout=5) as files:
            assert find_collection(files, "<email>.jsonl~2").name == f"{owners[1]}.jsonl"  # raw-name order
            with pytest.raises(UsageError) as exc:
                find_collection(files, "<email>.jsonl~9")
            text = f"{exc.value} {exc.value.hint}"
            assert "<email>.jsonl~3" in text and not raw_in(text, owners)
            with pytest.raises(UsageError) as exc:
                find_collection(files, email(555) + ".csv")  # an operator's raw name: echoed as its label
            assert not raw_in(f"{exc.value} {exc.value.hint}", [email(555), *owners])


# --- 2. who a record is ----------------------------------------------------------------------------------

@pytest.mark.parametrize("customer", ["customer_id", "user_id", "memberId", "account_no", "client_id", "kd_nr",
                                      "kundennr", "KundenNummer", "knr"])
@pytest.mark.parametrize("table", ["sessions", "tokens", "orders", "user_sessions", "Bestellungen"])
def test_a_child_tables_own_key_is_not_a_person(customer: str, table: str) -> None:
    kinds = {"id": "customer-identifier", customer: "customer-identifier", "email": "email"}
    assert _subject(kinds, collection=table, primary_key=("id",)) == customer
    own = {"session_id": "customer-identifier", customer: "customer-identifier"}
    assert _subject(own, collection=table, primary_key=("session_id",)) == customer
    assert _subject({"order_no": "customer-identifier", customer: "customer-identifier"}, collection="x") == customer


def test_a_parent_tables_own_key_is_its_person() -> None:
    kinds = {"id": "customer-identifier", "referrer_user_id": "customer-identifier", "email": "email"}
    assert _subject(kinds, collection="users", primary_key=("id",)) == "id"
    # a sessions pattern keyed by session ids, beside a field for its user: by the user, else the e-mail
    assert _subject({"<key>": "customer-identifier", "user": "customer-identifier"}, collection="sess:*") == "user"
    assert _subject({"<key>": "customer-identifier", "email": "email"}, collection="sess:*") == "email"
    assert _subject({"<key>": "customer-identifier", "email": "email"}, collection="sess:*", chosen="<key>") == "<key>"
    assert _subject({"<key>": "customer-identifier"}, collection="sess:*", chosen="skip") is None


def test_sessions_and_orders_count_their_customers_not_themselves(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write(root, "customers.jsonl", [{"customer_id": f"cust-{i:05d}", "email": email(i)} for i in range(60)])
    write(root, "sessions.jsonl", [{"session_id": f"9b1d6f0e-{i:04d}-4a6b-8c3e-1f2a3b4c5d6e",
                                    "customer_id": f"cust-{i % 60:05d}", "ip": f"203.0.113.{i % 250}"}
                                   for i in range(60)])
    write(root, "orders.jsonl", [{"order_no": f"ORD-{i:06d}", "customer_id": f"cust-{i % 60:05d}",
                                  "phone": f"+1 415 555 {i:04d}"} for i in range(60)])
    found, cat, _incident_id = scoped(tmp_path, root)
    cat.close()
    assert len(found.people) == 60
    assert {w: c["field"] for w, c in found.collections.items()} == {
        "raw.customers.jsonl": "customer_id", "raw.sessions.jsonl": "customer_id", "raw.orders.jsonl": "customer_id"}
    assert not found.warnings
    # the operator's mapping decides: orders by its e-mail-less order number is refused by name, skip leaves it out
    found, cat, _ = scoped(tmp_path / "b", root, {"raw.orders.jsonl": "skip"})
    cat.close()
    assert "raw.orders.jsonl" not in found.collections and "raw.orders.jsonl" not in found.not_scoped
    with pytest.raises(UsageError, match=r"respond\.scope"):
        scoped(tmp_path / "c", root, {"raw.orders.jsonl": "nope"})
    # a key naming no collection (a missing suffix, a raw e-mail) is said, by its label, not silently unused
    found, cat, _ = scoped(tmp_path / "d", root, {"raw.orders": "skip", "raw.ann.lee@example.org.jsonl": "email"})
    cat.close()
    unused = [w for w in found.warnings if "was not used" in w]
    assert len(unused) == 2 and "raw.orders" in unused[1] and "ann.lee@example.org" not in " ".join(unused)


def test_collections_identifying_people_by_different_kinds_warn(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write(root, "customers.jsonl", [{"customer_id": f"cust-{i:05d}", "phone": f"+1 415 555 {i:04d}"}
                                    for i in range(30)])
    write(root, "newsletter.jsonl", [{"email": email(i), "city": "Berlin"} for i in range(30)])
    found, cat, _ = scoped(tmp_path, root)
    cat.close()
    assert len(found.warnings) == 1 and "different kinds" in found.warnings[0]
    lines = "\n".join(scope_lines(found))
    assert "identified by customer_id (customer-identifier)" in lines and "identified by email (email)" in lines


# --- 3, 4, 6. what the count leaves out ---------------------------------------------------------------

def test_empty_subjects_fall_back_unidentified_unscoped_and_unreadable_are_limits(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    rows: list[dict[str, Any]] = [{"customer_id": f"cust-{i:05d}", "email": email(i), "phone": f"+1 415 555 {i:04d}"}
                                  for i in range(40)]
    for i in range(40, 50):  # no customer id: known by their e-mail
        rows.append({"customer_id": "" if i % 2 else None, "email": email(i), "phone": f"+1 415 555 {i:04d}"})
    for i in range(50, 55):  # PII, no identifier at all
        rows.append({"customer_id": None, "email": "", "phone": f"+1 415 555 {i:04d}"})
    lines = [json.dumps(r) for r in rows]
    lines.insert(20, "[" * 10_000 + "]" * 10_000)  # one hostile record
    (root / "members.jsonl").write_text("\n".join(lines) + "\n")
    write(root, "devices.jsonl", [{"mac": f"02:42:ac:11:00:{i:02x}", "ip": f"198.51.100.{i}"} for i in range(20)])
    found, cat, incident_id = scoped(tmp_path, root)
    with cat:
        assert len(found.people) == 50
        assert {email(i) for i in range(40, 50)} <= set(found.people)
        assert found.collections["raw.members.jsonl"]["unidentified"] == 5
        assert found.unidentified == 5 and found.unreadable == 1
        assert found.not_scoped == ["raw.devices.jsonl"]
        text = "\n".join(scope_lines(found))
        assert "not scoped: no field identifies a person: raw.devices.jsonl" in text
        assert "5 record(s) held exposed PII but no identifier" in text and "1 record(s) could not be read" in text
        cat.event(incident_id, "scoped", {"people": len(found.people), "limits": found.limits()})
        draft = " ".join(scope_limits(cat, incident_id))
        assert "5 record(s)" in draft and "1 record(s) could not be read" in draft and "raw.devices.jsonl" in draft
        raws = [email(i) for i in range(55)] + [f"+1 415 555 {i:04d}" for i in range(55)]
        assert not raw_in(text + draft + json.dumps(found.limits()), raws)
    # a copy keeps refusing the hostile record
    store = Store("raw", "files", path=str(root))
    with connectors.get("files")(store, timeout=5) as files:
        info = find_collection(files, "members.jsonl")
        with pytest.raises(Exception, match="could not be read whole"):
            list(files.read(info, ["email"], 1000))


def test_validate_checks_respond_scope() -> None:
    from piiguard.config import parse_config
    from piiguard.errors import ConfigError

    stores = [{"name": "raw", "engine": "files", "path": "/tmp"}]

    def problems(scope: Any) -> list[str]:
        try:
            parse_config({"stores": stores, "respond": {"scope": scope}})
        except ConfigError as exc:
            return list(exc.problems)
        return []

    assert problems({"raw.sessions.jsonl": "user_id", "raw.<email>.jsonl~2": "skip"}) == []
    assert any("respond.scope" in p and "mapping" in p for p in problems(["raw.x"]))
    assert any("store.collection" in p for p in problems({"nodot": "id"}))
    assert any("no store named" in p for p in problems({"other.t": "id"}))
    assert any("skip" in p for p in problems({"raw.t": 3}))
