"""Responder options as ``validate`` sees them: every unknown key (top level or inside a provider) is
reported with its path, required ones, a store of the wrong engine, the two grant forms mixed, and
secret references unset; every option is documented by its responder's docstring."""

from __future__ import annotations

import dataclasses
import inspect
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from piiguard import plugins
from piiguard.cli import app
from piiguard.config import missing_secrets, parse_config
from piiguard.errors import ConfigError
from piiguard.response.grants import Provider, Router, describe, shown
from piiguard.response.responders import GrantsOptions, responders

SCHEMA = plugins.schema()
STORES = [{"name": "prod", "url": "postgresql://u@127.0.0.1:5432/app"},
          {"name": "maria", "url": "mysql://u@127.0.0.1:3306/app"},
          {"name": "docs", "engine": "mongodb", "host": "127.0.0.1"},
          {"name": "cache", "url": "redis://127.0.0.1:6390/0"}]
PROVIDER = {"revocation_endpoint": "https://alexa.example/revoke", "client_id": "piiguard"}
GRANTS = {"kind": "oauth-grants", "store": "prod", "table": "g", "subject_column": "u", "token_column": "t",
          "provider_column": "provider", "providers": {"alexa": dict(PROVIDER), "google": dict(PROVIDER)}}
DOC_GRANTS = {"kind": "mongodb-grants", "store": "docs", "collection": "app.grants", "subject_field": "u",
              "token_field": "t", "provider_field": "p", "providers": {"alexa": dict(PROVIDER)}}


def problems(*specs: dict[str, Any]) -> list[str]:
    try:
        parse_config({"stores": STORES, "respond": {"responders": list(specs)}}, schema=SCHEMA)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def test_the_grant_forms_are_valid() -> None:
    assert problems(GRANTS, DOC_GRANTS) == []
    single = {k: v for k, v in GRANTS.items() if k not in ("provider_column", "providers")}
    assert problems({**single, **PROVIDER, "introspection_endpoint": "https://a.example/introspect"}) == []


names = st.text(string.ascii_letters + "_", min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([GRANTS, DOC_GRANTS]), names, names, st.booleans())
def test_an_unknown_key_is_always_reported_with_its_path(spec: dict[str, Any], key: str, provider: str,
                                                         inside: bool) -> None:
    raw = {**spec, "providers": {**spec["providers"], provider: dict(PROVIDER)}}
    if inside:
        known = {f.name for f in dataclasses.fields(Provider)}
        if key in known:
            return
        raw["providers"][provider][key] = "x"
        where = f"respond.responders[0].providers.{provider}.{key}: unknown option"
    else:
        if key in {f.name for f in dataclasses.fields(responders.get(spec["kind"]).Options)} | {"kind"}:
            return
        raw[key] = "x"
        where = f"respond.responders[0].{key}: unknown option"
    found = problems(raw)
    assert any(p.startswith(where) for p in found), found


@pytest.mark.parametrize(("spec", "expect"), [
    ({**GRANTS, "providers": {"alexa": {"client_id": "c"}}},
     "respond.responders[0].providers.alexa.revocation_endpoint: required"),
    ({**GRANTS, "providers": {"alexa": "https://a/revoke"}},
     "respond.responders[0].providers.alexa: expected a mapping of options"),
    ({**GRANTS, "providers": {"alexa": {**PROVIDER, "parallel": 2}}},
     "respond.responders[0].providers.alexa.parallel: unknown option (known: revocation_endpoint"),
    ({**GRANTS, "providers": {"alexa": {**PROVIDER, "revocation_endpoint": "ftp://a/r"}}},
     "respond.responders[0]: revocation_endpoint must be an http(s) URL"),
    ({**GRANTS, "providers": {"alexa": {**PROVIDER, "revocation_endpoint": "https://u:pw@a/r"}}},
     "respond.responders[0]: revocation_endpoint must not carry credentials"),
    ({**GRANTS, **PROVIDER}, "respond.responders[0]: give either providers (one server per provider) or "
                             "revocation_endpoint, client_id (one server for every grant), not both: move"),
    ({k: v for k, v in GRANTS.items() if k != "provider_column"},
     "respond.responders[0]: providers needs provider_column"),
    ({k: v for k, v in DOC_GRANTS.items() if k != "provider_field"},
     "respond.responders[0]: providers needs provider_field"),
    ({k: v for k, v in GRANTS.items() if k != "providers"}, "respond.responders[0]: provider_column needs providers"),
    ({k: v for k, v in GRANTS.items() if k not in ("providers", "provider_column")},
     "respond.responders[0]: give revocation_endpoint and client_id (one authorization server), or"),
    ({**GRANTS, "parallel": 0}, "respond.responders[0]: parallel must be 1 to 64"),
    ({**GRANTS, "store": "docs"}, "respond.responders[0].store: responder 'oauth-grants' works on postgres, mysql "
                                  "stores; 'docs' is mongodb"),
    ({**DOC_GRANTS, "store": "maria"}, "respond.responders[0].store: responder 'mongodb-grants' works on mongodb "
                                       "stores; 'maria' is mysql"),
    ({"kind": "mongodb-sessions", "store": "docs", "collection": "a.s"},
     "respond.responders[0].subject_field: required"),
    ({"kind": "mongodb-tokens", "store": "docs", "collection": "a.t", "subject_field": "u", "revoked_column": "r"},
     "respond.responders[0].revoked_column: unknown option (did you mean 'revoked_field'?)"),
    ({"kind": "password-reset", "store": "cache", "table": "u", "subject_column": "id"},
     "respond.responders[0].store: responder 'password-reset' works on postgres, mysql stores; 'cache' is redis"),
], ids=["provider-required", "provider-not-mapping", "provider-unknown", "not-http", "url-credentials",
        "both-forms", "no-provider-column", "no-provider-field", "no-providers", "neither-form", "parallel",
        "grants-on-mongodb", "documents-on-mariadb", "doc-required", "doc-did-you-mean", "reset-on-redis"])
def test_bad_responder_options_are_reported_with_their_path(spec: dict[str, Any], expect: str) -> None:
    found = problems(spec)
    assert any(p.startswith(expect) for p in found), found


def test_mariadb_and_mongodb_stores_are_accepted_by_their_responders() -> None:
    assert problems({"kind": "sql-sessions", "store": "maria", "table": "s", "subject_column": "u"},
                    {"kind": "password-reset", "store": "maria", "table": "u", "subject_column": "id"},
                    {**GRANTS, "store": "maria"},
                    {"kind": "mongodb-password-reset", "store": "docs", "collection": "a.u", "subject_field": "_id"},
                    DOC_GRANTS) == []


def test_a_provider_secret_reference_unset_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HC_ALEXA_UNSET", raising=False)
    respond = {"responders": [{**GRANTS, "providers": {"alexa": {**PROVIDER, "client_secret_env": "HC_ALEXA_UNSET"}}}]}
    assert missing_secrets((), (), respond) == \
        ["respond.responders[0].providers.alexa.client_secret_env: HC_ALEXA_UNSET is not set"]


@pytest.mark.parametrize("kind", responders.names())
def test_every_option_is_documented_by_its_responder(kind: str) -> None:
    cls = responders.get(kind)
    doc = inspect.getdoc(cls) or ""
    assert "Options:" in doc
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    if any(dataclasses.is_dataclass(t) for t in getattr(cls.Options, "__annotations__", {}).values()):
        fields |= {f.name for f in dataclasses.fields(Provider)}
    missing = sorted(f for f in fields if f"`{f}`" not in doc)
    assert not missing, f"{kind}: options not in its docstring: {missing}"
    assert set(cls.engines) <= {"postgres", "mysql", "mongodb", "redis"}


@pytest.mark.parametrize("kind", responders.names())
def test_show_responder_prints_every_kind(kind: str) -> None:
    result = CliRunner().invoke(app, ["show", "responder", kind], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Options:" in result.output and "`store` (required)" in result.output, \
        result.output


def test_show_responder_prints_options_and_defaults() -> None:
    result = CliRunner().invoke(app, ["show", "responder", "oauth-grants"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("works on postgres, mysql stores", "`provider_column`", "`introspection_endpoint`",
                 "relink_required", "RFC 7662"):
        assert text in result.output
    listed = CliRunner().invoke(app, ["list", "responders"], env={"COLUMNS": "250"})
    assert "mongodb-grants" in listed.output and "piiguard show responder KIND" in listed.output


def test_unmapped_provider_names_are_shown_only_when_they_look_like_names() -> None:
    options = GrantsOptions("p", "t", "u", "tok", provider_column="provider",
                            providers={"alexa": Provider("https://a/revoke", "c")})
    routed, unmapped = Router(options).split([(1, "t1", "alexa"), (2, "t2", "acme"), (3, "t3", "acme"),
                                              (4, "t4", "olivia.0@example.net x"), (5, "t5", None)])
    assert [r[0] for r in routed] == [1]
    assert unmapped == {"acme": 2, "<provider #1>": 1, "<none>": 1}
    assert "2 acme" in describe({"confirmed": 1, "unmapped": unmapped})


def test_numeric_provider_values_are_matched_as_text() -> None:
    """``providers: {1: …}`` in YAML is an int key; a provider column of numbers reads 1: both are "1"."""
    [(_, grants)] = responders_build({**GRANTS, "providers": {1: dict(PROVIDER), "google": dict(PROVIDER)}})
    routed, unmapped = Router(grants.options).split([(1, "t1", 1), (2, "t2", "google"), (3, "t3", 2)])
    assert [r[0] for r in routed] == [1, 2] and unmapped == {"2": 1}
    assert problems({**GRANTS, "providers": {True: dict(PROVIDER)}}) == \
        ["respond.responders[0].providers[True]: expected a name (or a number)"]


def responders_build(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    from piiguard.response.responders import build

    return build({"responders": [spec]}, {})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_a_provider_value_is_shown_only_when_it_is_a_plain_name(value: str) -> None:
    names: dict[str, str] = {}
    out = shown(value, names)
    assert out == value or out == "<provider #1>"
    if out == value:
        assert value[:1].isalnum() and value.isascii() and all(c.isalnum() or c in "_.:-" for c in value)
        assert "@" not in value and " " not in value and len(value) <= 64


# --- exact matching: the shared integer rule, and the document spellings ---------------------------

@settings(max_examples=500)
@given(st.one_of(st.text(max_size=24), st.integers().map(str), st.integers().map(lambda n: f"0{n}"),
                 st.integers().map(lambda n: f" {n}"), st.integers().map(lambda n: f"+{n}")))
def test_only_canonical_integer_text_is_an_integer(text: str) -> None:
    from piiguard.response import exact

    for bits, unsigned in ((8, False), (32, False), (64, False), (64, True)):
        number = exact.integer(text, bits, unsigned)
        if number is not None:  # it is the integer's own text, in range
            assert str(number) == text
            assert (0 if unsigned else -(2 ** (bits - 1))) <= number < 2 ** (bits if unsigned else bits - 1)
        elif text.isascii() and isinstance(_int_or(text), int) and text == str(_int_or(text)):
            n = int(text)  # canonical but out of range
            assert not ((0 if unsigned else -(2 ** (bits - 1))) <= n < 2 ** (bits if unsigned else bits - 1))


def _int_or(text: str) -> object:
    try:
        return int(text)
    except ValueError:
        return None


def test_document_spellings_cover_int64_and_objectid_in_either_case() -> None:
    from bson import ObjectId

    from piiguard.response.documents import spellings

    oid = ObjectId()
    out = spellings([str(2**63 - 1), str(-(2**63)), str(2**63), "0042", "42", str(oid).upper(), "7abc"])
    assert 2**63 - 1 in out and -(2**63) in out and 2**63 not in out  # any int64, nothing beyond
    assert 42 in out and out.count(42) == 1 and "0042" in out  # '0042' only as the string
    assert oid in out and 7 not in out


# --- --only / --skip -----------------------------------------------------------------------------

def test_only_and_skip_select_by_kind_or_shown_name() -> None:
    from piiguard.errors import UsageError
    from piiguard.response.responders import Responder, select

    fake: list[tuple[str, Responder]] = [(n, object()) for n in  # type: ignore[misc]
                                         ("sql-sessions#0", "redis-sessions", "sql-sessions#2", "oauth-grants")]
    names = lambda chosen: [n for n, _ in chosen]  # noqa: E731
    assert names(select(fake, "sql-sessions")) == ["sql-sessions#0", "sql-sessions#2"]
    assert names(select(fake, "sql-sessions#2,oauth-grants")) == ["sql-sessions#2", "oauth-grants"]
    assert names(select(fake, "", "redis-sessions")) == ["sql-sessions#0", "sql-sessions#2", "oauth-grants"]
    assert names(select(fake, "sql-sessions", "sql-sessions#0")) == ["sql-sessions#2"]
    for only, skip in (("sql-session", ""), ("", "nope"), ("oauth-grants", "oauth-grants")):
        with pytest.raises(UsageError):
            select(fake, only, skip)


def test_a_refusal_names_the_status_and_whether_running_again_helps() -> None:
    from piiguard.response.grants import CREDENTIALS, NO_ANSWER, refusal_text

    text, retry = refusal_text({302: 2, 401: 1, CREDENTIALS: 1})
    assert "2 answered 302, a redirect: not followed" in text and "refused the client's credentials" in text
    assert "running again will not help" in text and not retry
    assert refusal_text({503: 1})[1] and refusal_text({NO_ANSWER: 1})[1]
