"""Scope on documents: who a record names (one person, or one per item of a list) and which of their
categories it held, from reader batches built by the same helper the document connectors use."""

from __future__ import annotations

from typing import Any

from piiguard.connectors.base import documents_record_batch
from piiguard.response.scope import _add, _readable, _subject

LABELS = {"owner.email": "email", "owner.phone": "phone-number", "members[].email": "email",
          "members[].phone": "phone-number", "members[].devices[].mac": "mac-address",
          "wifi[].ssid": "wifi-ssid", "note": "free-text"}


def scope_of(docs: list[dict[str, Any]], subject: str, mapping: dict[str, str] | None = None,
             labels: dict[str, str] = LABELS) -> dict[str, frozenset[str]]:
    names = list(labels)
    people: dict[str, frozenset[str]] = {}
    made: dict[tuple[bool, ...], frozenset[str]] = {}
    for start in range(0, len(docs), 2):  # two records a batch: the union spans batches
        _add(people, documents_record_batch(docs[start:start + 2], names), names, subject, labels, mapping, made)
    return people


DOCS: list[dict[str, Any]] = [
    {"owner": {"email": "o1@x.io", "phone": ""}, "note": "hi",
     "members": [{"email": "a@x.io", "phone": "+1 555 0100"}, {"email": "b@x.io"}, {"phone": "+1 555 0199"}],
     "wifi": [{"ssid": "HOME-1"}]},
    {"owner": {"email": "o2@x.io"},
     "members": [{"email": "b@x.io", "phone": "+1 555 0102", "devices": [{"mac": "02:00:00:00:00:01"}]},
                 {"email": ""}, {"email": "c@x.io"}]},
    {"owner": {"email": "o3@x.io", "phone": "+1 555 0103"}},
    {"members": []},
]


def test_each_item_of_a_list_subject_is_a_person_with_its_own_items() -> None:
    got = scope_of(DOCS, "members[].email")
    assert got == {
        # same-array fields at the person's own item; plain fields and other arrays for everyone in it
        "a@x.io": {"email", "phone-number", "wifi-ssid", "free-text"},
        # in two records: the union of both (a phone in the second, the first's wifi and note)
        "b@x.io": {"email", "phone-number", "wifi-ssid", "free-text", "mac-address"},
        "c@x.io": {"email", "mac-address"},  # the record's nested devices count for every member
    }


def test_a_plain_subject_gets_every_field_its_record_holds() -> None:
    got = scope_of(DOCS, "owner.email")
    assert got == {"o1@x.io": {"email", "free-text", "phone-number", "wifi-ssid"},  # members' phones: any item
                   "o2@x.io": {"email", "phone-number", "mac-address"},
                   "o3@x.io": {"email", "phone-number"}}


def test_items_are_traced_back_through_a_mapping() -> None:
    got = scope_of(DOCS[:2], "members[].email", mapping={"a@x.io": "cust-1", "c@x.io": "cust-3"})
    assert set(got) == {"cust-1", "cust-3"}  # an item the mapping does not know is nobody in the copy


def test_a_subject_under_nested_arrays_counts_every_field_of_the_record() -> None:
    labels = {"teams[].people[].email": "email", "teams[].name": "last-name", "id": "customer-identifier"}
    docs = [{"teams": [{"name": "Kim", "people": [{"email": "k@x.io"}]}, {"people": [{"email": "l@x.io"}]}]}]
    got = scope_of(docs, "teams[].people[].email", labels=labels)
    assert got == {"k@x.io": {"email", "last-name"}, "l@x.io": {"email", "last-name"}}


def test_the_subject_is_a_customer_key_then_an_email_plain_before_listed() -> None:
    assert _subject({"members[].email": "email", "owner.email": "email"}) == "owner.email"
    assert _subject({"members[].id": "customer-identifier", "owner.email": "email"}) == "members[].id"
    assert _subject({"note": "free-text"}) is None


def test_a_tables_reader_reads_its_columns_only() -> None:
    """A SQL table's JSON column is read whole: a path into it is not a column (a column may hold a dot)."""
    fields = {"email": "email", "profile.phone": "phone-number", "a.b": "city"}
    assert _readable(fields, ["email", "profile", "a.b"]) == {"email": "email", "a.b": "city"}


def test_a_document_naming_no_one_but_holding_pii_is_counted() -> None:
    names = list(LABELS)
    people: dict[str, frozenset[str]] = {}
    docs: list[dict[str, Any]] = [{"members": [], "wifi": [{"ssid": "HOME-9"}]},  # PII, no one: counted
                                  {"members": [{"email": ""}]},  # nothing held: not counted
                                  {"members": [{"email": "a@x.io"}]}]
    unnamed = _add(people, documents_record_batch(docs, names), names, "members[].email", LABELS, None, {})
    assert unnamed == 1 and set(people) == {"a@x.io"}
