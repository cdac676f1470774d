"""The ``classify:`` section: every bad shape is a problem at its path, a good one is applied, and
watch's schema comparison tells new and retyped fields from what is no change."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.classify.settings import ClassifySettings, FieldOverride, parse_classify
from piiguard.config import parse_config
from piiguard.errors import ConfigError
from piiguard.model import Classification, Evidence, Status, Store
from piiguard.scanner import scan
from piiguard.watch.schema import NEW_FIELD, RETYPED_FIELD, FieldChange, changes, schema_findings

KNOWN = {"email", "username", "phone"}
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
not_mapping = st.one_of(st.booleans(), st.integers(), st.text(min_size=1, max_size=8), st.lists(scalars, max_size=3))


def problems(raw: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    parse_classify(raw, lambda path, msg: found.append((path, msg)), KNOWN)
    return found


@given(not_mapping)
def test_a_section_that_is_not_a_mapping_is_refused(raw: Any) -> None:
    assert [p for p, _ in problems(raw)] == ["classify"]


@given(st.text(min_size=1, max_size=12).filter(lambda k: k != "overrides"))
def test_an_unknown_key_of_the_section_is_named(key: str) -> None:
    assert any(p.startswith("classify") and "unknown key" in m for p, m in problems({key: 1}))


@given(st.one_of(st.booleans(), st.integers(), st.text(max_size=8), st.dictionaries(st.text(max_size=4), scalars)))
def test_overrides_that_are_not_a_list_are_refused(raw: Any) -> None:
    assert [p for p, _ in problems({"overrides": raw})] == ["classify.overrides"]


@given(st.lists(not_mapping, min_size=1, max_size=3))
def test_an_override_that_is_not_a_mapping_is_refused_at_its_index(items: list[Any]) -> None:
    assert [p for p, _ in problems({"overrides": items})] == [f"classify.overrides[{i}]" for i in range(len(items))]


bad_fields = st.one_of(scalars.filter(lambda v: not isinstance(v, str) or v.count(".") < 2),
                       st.text(alphabet="ab.*", max_size=10).filter(
                           lambda v: v.count(".") < 2 or any(not p for p in v.split("."))))


@given(bad_fields)
def test_a_field_that_is_not_three_parts_is_refused(field: Any) -> None:
    found = problems({"overrides": [{"field": field, "type": "email"}]})
    assert [p for p, _ in found] == ["classify.overrides[0].field"]


@given(st.one_of(scalars.filter(lambda v: not isinstance(v, str)),
                 st.text(max_size=12).filter(lambda v: v not in KNOWN and v != "none")))
def test_an_unknown_type_is_refused_with_the_known_ones(pii_type: Any) -> None:
    found = problems({"overrides": [{"field": "s.c.f", "type": pii_type}]})
    assert [p for p, _ in found] == ["classify.overrides[0].type"]


def test_a_misspelt_type_and_key_get_a_did_you_mean() -> None:
    found = dict(problems({"overrides": [{"field": "s.c.f", "type": "emial", "reasn": "x"}]}))
    assert "did you mean 'email'" in found["classify.overrides[0].type"]
    assert "did you mean 'reason'" in found["classify.overrides[0].reasn"]


@given(st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2), st.text(min_size=501, max_size=600)))
def test_a_reason_that_is_not_a_short_string_is_refused(reason: Any) -> None:
    found = problems({"overrides": [{"field": "s.c.f", "type": "email", "reason": reason}]})
    assert [p for p, _ in found] == ["classify.overrides[0].reason"]


def test_a_good_section_parses_and_none_is_not_pii() -> None:
    got = parse_config({"classify": {"overrides": [
        {"field": "shop.public.customers.nick", "type": "username", "reason": "handles"},
        {"field": "shop.*.events.event_id", "type": "none"}]}}).classify
    assert got.overrides == (FieldOverride("shop.public.customers.nick", "username", "handles"),
                             FieldOverride("shop.*.events.event_id", None, ""))


def test_config_errors_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"classify\.overrides\[0\]\.type"):
        parse_config({"classify": {"overrides": [{"field": "a.b.c", "type": "no-such-type"}]}})


def test_a_configured_detector_is_a_type_an_override_may_force() -> None:
    cfg = parse_config({"detectors": [{"name": "loyalty-id", "pattern": "LY[0-9]{6}"}],
                        "classify": {"overrides": [{"field": "a.b.c", "type": "loyalty-id"}]}})
    assert cfg.classify.overrides[0].pii_type == "loyalty-id"


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("shop.public.customers.nick", ("shop", "public.customers", "nick"), True),
    ("shop.*.customers.nick", ("shop", "public.customers", "nick"), True),
    ("shop.public.customers.*", ("shop", "public.customers", "nick"), True),
    ("shop.*.nick", ("shop", "public.customers", "nick"), False),  # * stays within a part
    ("shop.public.customers.nick", ("shop", "public.customers", "nickname"), False),
    ("shop.c.f", ("other", "c", "f"), False),
    ("sh?p.c.f", ("shop", "c", "f"), False),  # only * is special
], ids=["exact", "star-schema", "star-field", "star-not-across-dots", "no-prefix", "other-store", "literal"])
def test_patterns(pattern: str, path: tuple[str, str, str], hit: bool) -> None:
    assert FieldOverride(pattern, None).matches(*path) is hit


def _field(name: str, pii: str | None, native: str | None = None, collection: str = "c") -> Classification:
    return Classification("s", collection, name, pii, 0.9, 10, 10, native_type=native,
                          evidence=Evidence("detector", detector=pii, share=1.0, context=(name,)))


def test_apply_keeps_the_classifiers_decision_as_runner_up() -> None:
    settings = ClassifySettings((FieldOverride("s.c.mail", None, "test data"), FieldOverride("s.c.*", "username")))
    mail, nick, same = settings.apply([_field("mail", "email"), _field("nick", None), _field("u", "username")])
    assert mail.pii_type is None and mail.evidence is not None and mail.evidence.runner_up == "email"
    assert mail.evidence.decided_by == "override" and mail.evidence.runner_up_share == 1.0 and mail.matched == 0
    assert nick.pii_type == "username" and nick.evidence is not None and nick.evidence.runner_up == "none"
    assert same.evidence is not None and same.evidence.runner_up is None and same.matched == 10  # agreed


def test_schema_changes_tell_new_and_retyped_fields() -> None:
    recorded = [_field("email", "email", "text"), _field("ip", None, "text"), _field("profile.photo", None, None)]
    live = {"c": {"email": "text", "ip": "inet", "phone": None, "profile.theme": None, "profile": None},
            "new_table": {"x": "text"}}
    assert changes(recorded, live) == [FieldChange("c", "ip", "text", "inet"), FieldChange("c", "phone", None, None)]


def test_a_type_unknown_on_either_side_is_no_change() -> None:
    assert changes([_field("a", None, None), _field("b", None, "text")], {"c": {"a": "inet", "b": None}}) == []


def test_a_store_that_cannot_be_listed_gives_errors_not_silence(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (email text)")
        conn.executemany("INSERT INTO t VALUES (?)", [(f"u{i}@example.org",) for i in range(20)])
    app = Store("app", "sqlite", path=str(db))
    with Catalog(tmp_path / "c.db") as cat:
        scan([app], catalog=cat)
        assert {f.status for f in schema_findings([app], cat, 5)} == {Status.PASS}
        db.write_bytes(b"not a database at all" * 100)
        broken = schema_findings([app], cat, 5)
    assert {(f.check, f.status) for f in broken} == {(NEW_FIELD, Status.ERROR), (RETYPED_FIELD, Status.ERROR)}
    assert all("could not be listed" in f.evidence and "example.org" not in f.evidence for f in broken)
