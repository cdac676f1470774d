"""Hostile configurations: whatever the file holds, the answer is a valid Config or a ConfigError whose
every problem has a path, never another exception, and never a quoted secret or data value."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.config import Config, load_config, parse_config, resolve_password
from piiguard.errors import ConfigError
from piiguard.model import Store

SCHEMA = plugins.schema()
SRC = str(Path(__file__).resolve().parents[2] / "src")

VALID: dict[str, Any] = {
    "catalog": "catalog.db",
    "stores": [
        {"name": "prod", "engine": "postgres", "host": "db.internal", "port": 5432, "database": "app",
         "user": "ro", "password_env": "HD_TEST_PG_PASSWORD", "tags": {"env": "prod"},
         "options": {"log_file": "/var/log/pg.log"}, "allowed_networks": ["10.0.0.0/8"]},
        {"name": "cache", "engine": "redis", "host": "cache.internal"},
        {"name": "exports", "url": "file:///srv/exports"},
    ],
    "detectors": [{"name": "loyalty-number", "pattern": "LOY-[0-9]{8}", "context": ["loyalty"]}],
    "policy": {"skip": [{"tags": {"env": "dev"}, "checks": ["*.no-audit"]}],
               "severity": {"postgres.trust-auth": "critical"},
               "waivers": [{"check": "redis.no-tls", "store": "cache", "reason": "stunnel", "expires": "2030-01-31"}],
               "containment": "approve", "containment_rate": 3},
    "alerts": [{"webhook": "https://hooks.example/x"}, {"smtp": "mail.internal", "to": ["sec@example.com"]}],
    "masking": {"prod.customers": {"email": "pseudonym", "phone": {"mask": "keep-prefix", "keep": 4},
                                   "token": {"mask": "keep", "waiver": "test fixture only"}}},
    "respond": {
        "responders": [
            {"kind": "sql-sessions", "store": "prod", "table": "sessions", "subject_column": "user_id"},
            {"kind": "redis-sessions", "store": "cache", "key": "session:{subject}"},
            {"kind": "oauth-grants", "store": "prod", "table": "grants", "subject_column": "user_id",
             "token_column": "refresh_token", "revocation_endpoint": "https://auth.internal/revoke",
             "client_id": "piiguard", "parallel": 4},
            {"kind": "oauth-grants", "store": "prod", "table": "grants", "subject_column": "user_id",
             "token_column": "refresh_token", "provider_column": "provider",
             "providers": {"alexa": {"revocation_endpoint": "https://alexa.internal/revoke", "client_id": "piiguard",
                                     "introspection_endpoint": "https://alexa.internal/introspect"},
                           "google": {"revocation_endpoint": "https://google.internal/revoke", "client_id": "pg"}}},
        ],
        "notices": {"store": "prod", "table": "users", "subject_column": "id", "email_column": "email"},
        "contact": {"name": "DPO", "email": "dpo@example.com"},
    },
}


def problems_of(data: Any) -> list[str]:
    try:
        parse_config(data, schema=SCHEMA)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def assert_config_or_error(data: Any) -> None:
    try:
        config = parse_config(data, schema=SCHEMA)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError lists at least one problem"
        for problem in exc.problems:
            path, sep, message = problem.partition(": ")
            assert sep and path and message, f"not in `path: problem` form: {problem!r}"
        assert exc.exit_code == 2
    else:
        assert isinstance(config, Config)


def test_the_valid_example_is_valid() -> None:
    assert problems_of(VALID) == []


# -- random documents ---------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["postgres", "redis", "pseudonym", "sql-sessions", "*",
                                                           "kind", "store", "mask", "name", "url", "file:///x",
                                                           "postgresql://u@h/db", "2030-01-01"]))
keys = st.one_of(st.sampled_from(sorted({*VALID, "engine", "name", "url", "kind", "mask", "store", "checks",
                                         "responders", "notices", "contact", "severity", "skip", "waivers",
                                         "options", "tags", "port", "pattern"})),
                 st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                         max_leaves=40)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_are_a_config_or_a_config_error(data: Any) -> None:
    assert_config_or_error(data)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALID)), documents, max_size=6))
def test_random_sections_are_a_config_or_a_config_error(data: Any) -> None:
    assert_config_or_error(data)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


ALL_PATHS = [p for p in _paths(VALID) if p]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_PATHS), documents)
def test_a_valid_config_with_one_part_replaced_is_a_config_or_a_config_error(path: tuple[Any, ...],
                                                                             value: Any) -> None:
    data = copy.deepcopy(VALID)
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert_config_or_error(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ALL_PATHS), documents)
def test_random_yaml_text_through_the_file_loader(tmp_path_factory: pytest.TempPathFactory, path: tuple[Any, ...],
                                                 value: Any) -> None:
    data = copy.deepcopy(VALID)
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    file = tmp_path_factory.mktemp("cfg") / "piiguard.yaml"
    file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        load_config(file, schema=SCHEMA)
    except ConfigError as exc:
        assert all(": " in p for p in exc.problems)


# -- typo'd keys, in every section, get a did-you-mean ---------------------------------------------------

def _typo(word: str) -> str:
    return word[:-2] + word[-1] + word[-2]  # swap the last two letters: "engine" → "engien"


def _rename(path: tuple[Any, ...]) -> tuple[dict[str, Any], str]:
    data = copy.deepcopy(VALID)
    node = data
    for step in path[:-1]:
        node = node[step]
    key = path[-1]
    node[_typo(key)] = node.pop(key)
    return data, _typo(key)


TYPO_PATHS = [p for p in ALL_PATHS if isinstance(p[-1], str) and len(p[-1]) >= 4
              and p[:1] != ("masking",)  # masking's own keys are column names, free-form
              # free-form tags, check ids and provider values (what the store's provider column holds)
              and not (len(p) >= 2 and p[-2] in ("tags", "severity", "providers"))
              ] + [("masking", "prod.customers", "phone", "keep")]


@pytest.mark.parametrize("path", TYPO_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_a_typo_in_any_key_is_reported_with_its_path_and_the_right_key(path: tuple[Any, ...]) -> None:
    data, typo = _rename(path)
    problems = problems_of(data)
    assert any(typo in p and f"did you mean {path[-1]!r}" in p for p in problems), problems


@pytest.mark.parametrize(("section", "value", "expect"), [
    ("masker", {"prod.customers": {"email": "psuedonym"}}, "masking.prod.customers.email: unknown masker 'psuedonym' "
                                                           "(did you mean 'pseudonym'?)"),
    ("masker-in-mapping", {"prod.customers": {"phone": {"mask": "keep-prefx"}}},
     "masking.prod.customers.phone.mask: unknown masker 'keep-prefx' (did you mean 'keep-prefix'?)"),
    ("masker-option-type", {"prod.customers": {"phone": {"mask": "keep-prefix", "keep": "four"}}},
     "masking.prod.customers.phone.keep: expected a whole number"),
    ("masker-option-range", {"prod.customers": {"phone": {"mask": "keep-prefix", "keep": 40}}},
     "masking.prod.customers.phone: keep must be between 0 and 12"),
])
def test_masking_rules_are_checked_against_the_maskers(section: str, value: Any, expect: str) -> None:
    assert expect in problems_of({**VALID, "masking": value})


@pytest.mark.parametrize(("responder", "expect"), [
    ({"kind": "sql-sesions", "store": "prod", "table": "s", "subject_column": "u"},
     "respond.responders[0].kind: unknown responder 'sql-sesions' (did you mean 'sql-sessions'?)"),
    ({"kind": "sql-sessions", "store": "prod", "table": "s", "subject_colum": "u"},
     "respond.responders[0].subject_colum: unknown option (did you mean 'subject_column'?)"),
    ({"kind": "sql-sessions", "store": "prod", "table": "s"}, "respond.responders[0].subject_column: required"),
    ({"kind": "sql-sessions", "store": "prodd", "table": "s", "subject_column": "u"},
     "respond.responders[0].store: no store named 'prodd' in stores (did you mean 'prod'?)"),
    ({"kind": "oauth-grants", "store": "prod", "table": "g", "subject_column": "u", "token_column": "t",
      "revocation_endpoint": "https://a/r", "client_id": "c", "parallel": "eight"},
     "respond.responders[0].parallel: expected a whole number"),
    ({"store": "prod"}, "respond.responders[0].kind: required"),
])
def test_responders_are_checked_against_their_options(responder: dict[str, Any], expect: str) -> None:
    problems = problems_of({**VALID, "respond": {"responders": [responder]}})
    assert any(p.startswith(expect) for p in problems), problems


def test_notices_and_contact_are_checked() -> None:
    problems = problems_of({**VALID, "respond": {"notices": {"store": "prod", "table": "u", "subject_column": "i",
                                                             "email_colum": "e"},
                                                 "contact": {"nam": "DPO"}, "notice": {}}})
    assert "respond.notices.email_colum: unknown option (did you mean 'email_column'?)" in problems
    assert "respond.contact.nam: unknown key (did you mean 'name'?)" in problems
    assert "respond.notice: unknown key (did you mean 'notices'?)" in problems


def test_policy_check_ids_engines_and_alerts_get_a_did_you_mean() -> None:
    data = copy.deepcopy(VALID)
    data["policy"]["severity"] = {"postgres.trust-auht": "high"}
    data["policy"]["skip"] = [{"tags": {}, "checks": ["redis.no-tsl"]}]
    data["policy"]["containment"] = "aprove"
    data["stores"][1]["engine"] = "rediss"
    data["alerts"] = [{"webhok": "https://x"}]
    problems = problems_of(data)
    assert "policy.severity.postgres.trust-auht: unknown check (did you mean 'postgres.trust-auth'?) " \
           "(see `piiguard list checks`)" in problems
    assert any(p.startswith("policy.skip[0].checks[0]: matches no check (did you mean 'redis.no-tls'?)")
               for p in problems)
    assert any(p.startswith("policy.containment: expected one of never, approve, auto (did you mean 'approve'?)")
               for p in problems)
    assert any(p.startswith("stores[1].engine: unknown engine 'rediss' (did you mean 'redis'?)") for p in problems)
    assert "alerts[0].webhok: unknown key (did you mean 'webhook'?)" in problems


# -- files that attack the loader ---------------------------------------------------------------------

def _load_problems(tmp_path: Path, content: bytes) -> list[str]:
    file = tmp_path / "piiguard.yaml"
    file.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(file, schema=SCHEMA)
    return list(err.value.problems)


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines += ["stores: *a8"]
    (problem,) = _load_problems(tmp_path, "\n".join(lines).encode())
    assert "aliases expand to more than 10,000 extra nodes" in problem


@pytest.mark.parametrize("text", ["stores: &s [{name: a, engine: redis, tags: *s}]", "a: &a {b: *a}\nstores: []",
                                  "x: &x [1, [2, [3, *x]]]"], ids=["in-stores", "mapping", "nested"])
def test_a_recursive_alias_is_refused_not_an_endless_walk(tmp_path: Path, text: str) -> None:
    (problem,) = _load_problems(tmp_path, text.encode())
    assert "refers to the list or mapping that contains it" in problem


YAML_ALPHABET = st.sampled_from([*"[]{}:,-&*!|>'\"#?%@` \n\t", "a", "b", "&a ", "*a", "&b ", "*b", "- ", ": ",
                                 "stores", "name", "\n  ", "!!str ", "!!python/name:os.system", "<<: *a", "~"])


@settings(max_examples=500, deadline=None)
@given(st.lists(YAML_ALPHABET, max_size=60).map("".join))
def test_random_yaml_text_is_a_config_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    file = tmp_path_factory.mktemp("yaml") / "piiguard.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        load_config(file, schema=SCHEMA)
    except ConfigError as exc:
        assert exc.problems and all(": " in p for p in exc.problems)


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    file = tmp_path / "piiguard.yaml"
    file.write_text("x-tags: &tags {env: prod}\nstores:\n  - {name: a, engine: redis, tags: *tags}\n"
                    "  - {name: b, engine: redis, tags: *tags}\n")
    with pytest.raises(ConfigError) as err:  # x-tags is not a key of the schema, and says so
        load_config(file, schema=SCHEMA)
    assert err.value.problems == ("x-tags: unknown key",)


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path, opener: str) -> None:
    (problem,) = _load_problems(tmp_path, (opener * 10_000).encode())
    assert "nested more than 64 levels deep" in problem or "not valid YAML" in problem


@pytest.mark.parametrize("loader", ["_FastLoader", "_SafeLoader"])
@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x",
                                  "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                                  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                                  "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"], ids=["flow", "block", "aliases"])
def test_both_loaders_hold_the_bounds(monkeypatch: pytest.MonkeyPatch, loader: str, text: str) -> None:
    # libyaml's own composer crashes the interpreter (SIGSEGV) on the 100,000 balanced "[": ours must refuse it
    from piiguard import config

    if not hasattr(config, loader):
        pytest.skip("PyYAML built without libyaml")
    monkeypatch.setattr(config, "_Loader", getattr(config, loader))
    with pytest.raises(ConfigError) as err:
        config.load_yaml(text, "piiguard.yaml")
    assert "nested more than 64 levels deep" in str(err.value) or "aliases expand" in str(err.value)


def test_non_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    (problem,) = _load_problems(tmp_path, b"stores:\n  - name: caf\xe9\n")
    assert problem.endswith("piiguard.yaml:2:14: not UTF-8")  # line 2, the 14th byte: the é in Latin-1


def test_a_duplicate_key_is_refused_not_silently_dropped(tmp_path: Path) -> None:
    (problem,) = _load_problems(tmp_path, b"stores:\n  - {name: a, engine: redis}\npolicy: {}\nstores: []\n")
    assert problem.endswith("piiguard.yaml: line 4: duplicate key 'stores'")


def test_url_typos_get_a_did_you_mean() -> None:
    from piiguard.config import store_from_url

    for url, expect in [("postgress://db/app", "did you mean 'postgres'?"),
                        ("postgresql://db/app?password_evn=PG", "did you mean 'password_env'?")]:
        with pytest.raises(ConfigError, match=re.escape(expect)):
            store_from_url(url)


def test_python_tags_are_refused(tmp_path: Path) -> None:
    (problem,) = _load_problems(tmp_path, b"stores: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in problem


# -- credentials by reference: an unset variable is said, by name, not as a traceback ------------------

def test_unset_password_env_is_an_error_at_use() -> None:
    os.environ.pop("HD_UNSET_PG_PASSWORD", None)
    store = Store("prod", "postgres", host="db", password_env="HD_UNSET_PG_PASSWORD")
    with pytest.raises(ConfigError) as err:
        resolve_password(store)
    assert err.value.problems == ("stores.prod.password_env: HD_UNSET_PG_PASSWORD is not set",)


def test_the_url_default_variable_may_stay_unset() -> None:
    os.environ.pop("PGPASSWORD", None)
    assert resolve_password(Store("x", "postgres", host="db", password_env="PGPASSWORD")) is None


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC, **(env or {})})


@pytest.mark.parametrize("content", [
    b"stores:\n  - {name: prod, engine: postgres, host: db, password_env: PG_PASSWORD}\n",
    b"\xff\xfe stores",
    b"[" * 10_000,
    b"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nstores: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
    b"stores: [{name: x, engine: redis, tags: [1, 2]}]\nrespond: {responders: [{kind: nope}]}\n",
], ids=["unset-password-env", "not-utf8", "deep", "alias-bomb", "bad-sections"])
def test_validate_answers_bad_files_with_exit_2_and_no_traceback(tmp_path: Path, content: bytes) -> None:
    file = tmp_path / "piiguard.yaml"
    file.write_bytes(content)
    env = {k: v for k, v in os.environ.items() if k != "PG_PASSWORD"}
    result = subprocess.run([sys.executable, "-m", "piiguard", "validate", str(file)], capture_output=True,
                            text=True, timeout=120, env={**env, "PYTHONPATH": SRC})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "the configuration is not valid" in result.stderr
    if content.startswith(b"stores:\n  - {name: prod"):
        assert "stores[0].password_env: PG_PASSWORD is not set" in result.stderr


def test_validate_skip_env_accepts_an_unset_variable(tmp_path: Path) -> None:
    file = tmp_path / "piiguard.yaml"
    file.write_text("stores:\n  - {name: prod, engine: postgres, host: db, password_env: HD_NOT_SET}\n")
    result = _cli("validate", "--skip-env", str(file))
    assert result.returncode == 0, result.stderr
    assert "valid — 1 store(s)" in result.stdout


def test_every_command_that_reads_the_config_validates_it_the_same_way(tmp_path: Path) -> None:
    file = tmp_path / "piiguard.yaml"
    file.write_text("stores:\n  - {name: prod, engine: postgres, host: db}\n"
                    "respond: {responders: [{kind: sql-sesions, store: prod, table: s, subject_column: u}]}\n")
    expect = "respond.responders[0].kind: unknown responder 'sql-sesions' (did you mean 'sql-sessions'?)"
    for args in (["validate", str(file)], ["scan", "-c", str(file)], ["check", "-c", str(file)],
                 ["watch", "--once", "-c", str(file)], ["incident", "respond", "1", "-c", str(file)],
                 ["copy", "prod.a", "prod.b", "--plan", "-c", str(file)]):
        result = _cli(*args, env={"PIIGUARD_CATALOG": str(tmp_path / "catalog.db")})
        assert result.returncode == 2, (args, result.stderr)
        assert expect in result.stderr, (args, result.stderr)


def test_the_readme_configuration_reference_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration reference", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert problems_of(yaml.safe_load(example)) == []


@pytest.mark.parametrize(("section", "where"), [
    ("alerts:\n  - {webhook_env: HD_UNSET_HOOK}\n", "alerts[0].webhook_env: HD_UNSET_HOOK is not set"),
    ("alerts:\n  - {smtp: 127.0.0.1, to: [a@example.org], starttls: true, user: u, password_env: HD_UNSET_SMTP}\n",
     "alerts[0].password_env: HD_UNSET_SMTP is not set"),
    ("respond:\n  responders:\n    - {kind: oauth-grants, store: prod, table: public.g, subject_column: u, "
     "token_column: t, revocation_endpoint: 'https://auth.example.org/revoke', client_id: c, "
     "client_secret_env: HD_UNSET_CLIENT}\n",
     "respond.responders[0].client_secret_env: HD_UNSET_CLIENT is not set"),
], ids=["webhook", "smtp", "responder"])
def test_validate_reports_every_unset_secret_reference(tmp_path: Path, section: str, where: str) -> None:
    """Not only stores' password_env: a kill-switch or alert secret missing is found before an incident."""
    file = tmp_path / "piiguard.yaml"
    file.write_text("stores:\n  - {name: prod, url: 'postgresql://u@127.0.0.1:5432/app'}\n" + section)
    result = _cli("validate", str(file))
    assert result.returncode == 2, result.stdout + result.stderr
    assert where in result.stderr
    assert _cli("validate", "--skip-env", str(file)).returncode == 0


@pytest.mark.parametrize(("respond", "where"), [
    ("responders: [{kind: sql-sessions, store: lite, table: s, subject_column: u}]",
     "respond.responders[0].store: responder 'sql-sessions' works on postgres, mysql stores; 'lite' is sqlite"),
    ("responders: [{kind: sql-tokens, store: cache, table: t, subject_column: u}]",
     "respond.responders[0].store: responder 'sql-tokens' works on postgres, mysql stores; 'cache' is redis"),
    ("responders: [{kind: redis-sessions, store: lite, key: 'session:{subject}'}]",
     "respond.responders[0].store: responder 'redis-sessions' works on redis stores; 'lite' is sqlite"),
    ("notices: {store: cache, table: c, subject_column: id, email_column: e, smtp: 127.0.0.1, sender: a@example.org}",
     "respond.notices.store: notices works on postgres, mysql stores; 'cache' is redis"),
], ids=["sql-on-sqlite", "sql-on-redis", "redis-on-sqlite", "notices-on-redis"])
def test_a_responder_on_a_store_it_cannot_speak_to_is_a_config_error(tmp_path: Path, respond: str,
                                                                    where: str) -> None:
    file = tmp_path / "piiguard.yaml"
    file.write_text(f"stores:\n  - {{name: lite, url: 'sqlite:///{tmp_path}/a.db'}}\n"
                    "  - {name: cache, url: 'redis://127.0.0.1:6390/0'}\n"
                    f"  - {{name: prod, url: 'postgresql://u@127.0.0.1:5432/app'}}\nrespond:\n  {respond}\n")
    result = _cli("validate", "--skip-env", str(file))
    assert result.returncode == 2, result.stdout + result.stderr
    assert where in result.stderr
    ok = file.read_text().replace("store: lite", "store: prod").replace("store: cache", "store: prod")
    if "redis-sessions" in respond:
        ok = file.read_text().replace("store: lite", "store: cache")
    file.write_text(ok)
    assert _cli("validate", "--skip-env", str(file)).returncode == 0, _cli("validate", "--skip-env", str(file)).stderr
