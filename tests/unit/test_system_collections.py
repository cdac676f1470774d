"""piiguard.system: the one rule for what is an engine's own collection, and piiguard's own identity
in a trail (piiguard.response.own).

The Hypothesis properties restate each engine's rule from its documentation, independently of the
implementation: a customer's name is never excluded; a name inside an engine's own schema always is."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from piiguard.model import Store
from piiguard.response.own import Identity, identity
from piiguard.system import SystemKind, system_collection, system_kind

LISTED = [
    ("opensearch", "security-auditlog-2026.12.02", SystemKind.TRAIL),
    ("elasticsearch", "security-auditlog-2026.12.02", SystemKind.TRAIL),
    ("opensearch", ".opendistro_security", SystemKind.CATALOG),
    ("opensearch", ".kibana_1", SystemKind.CATALOG),
    ("mongodb", "admin.users", SystemKind.CATALOG),
    ("mongodb", "local.oplog.rs", SystemKind.CATALOG),
    ("mongodb", "config.chunks", SystemKind.CATALOG),
    ("mongodb", "shop.system.profile", SystemKind.CATALOG),
    ("mongodb", "admin.", SystemKind.CATALOG),  # the database itself
    ("mysql", "mysql.user", SystemKind.CATALOG),
    ("mysql", "information_schema.TABLES", SystemKind.CATALOG),
    ("mysql", "INFORMATION_SCHEMA.COLUMNS", SystemKind.CATALOG),
    ("mysql", "performance_schema.events_statements_history", SystemKind.CATALOG),
    ("mysql", "sys.sys_config", SystemKind.CATALOG),
    ("postgres", "pg_catalog.pg_authid", SystemKind.CATALOG),
    ("postgres", "information_schema.tables", SystemKind.CATALOG),
    ("postgres", "pg_toast.pg_toast_2619", SystemKind.CATALOG),
    ("postgres", "pg_temp_3.scratch", SystemKind.CATALOG),
    ("clickhouse", "system.query_log", SystemKind.CATALOG),
    ("clickhouse", "INFORMATION_SCHEMA.TABLES", SystemKind.CATALOG),
    ("clickhouse", "information_schema.columns", SystemKind.CATALOG),
    ("sqlite", "sqlite_sequence", SystemKind.CATALOG),
]
CUSTOMERS = [  # names that look close to a system one and are not
    ("opensearch", "customers"), ("opensearch", "auditlog-security"), ("opensearch", "my.security-auditlog-x"),
    ("mongodb", "shop.users"), ("mongodb", "administration.users"), ("mongodb", "shop.systems"),
    ("mongodb", "locals.members"), ("mysql", "shop.mysql"), ("mysql", "mysqlx.users"), ("mysql", "system.users"),
    ("mysql", "members"), ("postgres", "public.pg_users"), ("postgres", "public.information_schema"),
    ("postgres", "members"), ("clickhouse", "default.system"), ("clickhouse", "systems.events"),
    ("sqlite", "members_sqlite_"), ("redis", "session:*"), ("s3", "admin/exports"), ("files", "mysql/user.csv"),
    ("postgres", "mysql.user"), ("mysql", "pg_catalog.pg_authid"), ("mongodb", "mysql.user"),
]


@pytest.mark.parametrize(("engine", "name", "kind"), LISTED, ids=[f"{e}:{n}" for e, n, _ in LISTED])
def test_listed_system_collections_are_excluded(engine: str, name: str, kind: SystemKind) -> None:
    assert system_kind(engine, name) is kind
    assert system_collection(engine, name)


@pytest.mark.parametrize(("engine", "name"), CUSTOMERS, ids=[f"{e}:{n}" for e, n in CUSTOMERS])
def test_customer_collections_are_kept(engine: str, name: str) -> None:
    assert not system_collection(engine, name)


IDENT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=24)
ENGINES = ["postgres", "mysql", "mongodb", "clickhouse", "opensearch", "elasticsearch", "sqlite", "redis", "s3",
           "files"]


def is_system_by_the_documentation(engine: str, name: str) -> bool:
    """Each engine's rule, as the module's documentation states it."""
    if engine in ("opensearch", "elasticsearch"):
        return name.startswith((".", "security-auditlog-"))
    if engine == "sqlite":
        return name.rsplit(".", 1)[-1].lower().startswith("sqlite_")
    if "." not in name:
        return False
    schema, _, rest = name.partition(".")
    return {
        "postgres": schema.startswith("pg_") or schema.lower() == "information_schema",
        "mysql": schema in ("mysql", "sys") or schema.lower() in ("information_schema", "performance_schema"),
        "mongodb": schema in ("admin", "local", "config") or rest.startswith("system."),
        "clickhouse": schema == "system" or schema.lower() == "information_schema",
    }.get(engine, False)


@given(st.sampled_from(ENGINES), IDENT, IDENT)
def test_a_customer_name_is_never_excluded(engine: str, schema: str, table: str) -> None:
    for name in (f"{schema}.{table}", table):
        assume(not is_system_by_the_documentation(engine, name))
        assert not system_collection(engine, name), (engine, name)


SYSTEM_SCHEMAS = {
    "postgres": ["pg_catalog", "information_schema", "pg_toast", "pg_temp_1"],
    "mysql": ["mysql", "information_schema", "performance_schema", "sys", "INFORMATION_SCHEMA"],
    "mongodb": ["admin", "local", "config"],
    "clickhouse": ["system", "INFORMATION_SCHEMA", "information_schema"],
}


@given(st.sampled_from(sorted(SYSTEM_SCHEMAS)), st.data(), IDENT)
def test_anything_in_a_system_schema_is_excluded(engine: str, data: st.DataObject, table: str) -> None:
    schema = data.draw(st.sampled_from(SYSTEM_SCHEMAS[engine]))
    assert system_kind(engine, f"{schema}.{table}") is SystemKind.CATALOG


@given(IDENT, IDENT.filter(lambda d: "." not in d))  # MongoDB refuses a dot in a database name
def test_search_engine_indices(suffix: str, database: str) -> None:
    assert system_kind("opensearch", f"security-auditlog-{suffix}") is SystemKind.TRAIL
    assert system_kind("opensearch", f".{suffix}") is SystemKind.CATALOG
    assert system_kind("mongodb", f"{database}.system.{suffix}") is SystemKind.CATALOG


PIIGUARD = Identity("piiguard", frozenset({"127.0.0.1"}))
OWN = [  # (user, address, application) -> attributed to piiguard?
    (("piiguard", "127.0.0.1", None), True),
    (("piiguard", "::ffff:127.0.0.1", None), True),
    (("piiguard", "127.0.0.1", "piiguard-respond"), True),
    (("piiguard", "127.0.0.1", "psql"), False),  # piiguard's user, another program
    (("piiguard", "127.0.0.1", ""), False),
    (("piiguard", "10.1.2.3", None), False),  # piiguard's credentials from elsewhere: an outsider
    (("outsider", "127.0.0.1", None), False),  # another user on piiguard's host
    (("outsider", "127.0.0.1", "piiguard"), False),  # an application name alone proves nothing
    ((None, "127.0.0.1", None), False),  # a trail that does not name the user
    (("", "127.0.0.1", None), False),
    (("piiguard", None, None), False),
]


@pytest.mark.parametrize(("entry", "own"), OWN, ids=[f"{u}@{a}/{p}" for (u, a, p), _ in OWN])
def test_only_piiguards_user_from_its_address_is_its_own(entry: tuple[str | None, str | None, str | None],
                                                          own: bool) -> None:
    assert PIIGUARD.matches(*entry) is own


@given(st.text(max_size=12), st.sampled_from(["127.0.0.1", "10.0.0.7", "::1", "local socket"]),
       st.none() | st.text(max_size=12))
def test_an_entry_of_another_user_is_never_attributed(user: str, address: str, application: str | None) -> None:
    assume(user != "piiguard")
    assert not Identity("piiguard", frozenset({address})).matches(user, address, application)


def test_identity_is_the_configured_user_and_the_route_source_address() -> None:
    assert identity(Store("s", "mysql", host="127.0.0.1", port=3306, user="scan")) == \
        Identity("scan", frozenset({"127.0.0.1"}))
    assert identity(Store("s", "mysql", host="127.0.0.1", port=3306)).user == "root"  # the driver's default
    assert identity(Store("s", "clickhouse", host="127.0.0.1", port=8123)).user == "default"
    assert identity(Store("s", "postgres", host="/run/postgresql", user="pg")).addresses == {"local socket"}
    assert identity(Store("s", "opensearch", host="127.0.0.1", port=9200)).user is None  # anonymous: nothing is own
    assert identity(Store("s", "mysql", host="no-such-host.invalid", port=3306, user="u")).addresses == frozenset()


def _scanned(path: Path, *, customers: bool = True) -> None:
    """A catalog holding one OpenSearch scan: customers (email, nickname) and the audit index (ip-address,
    username, and email — a type the customers hold too)."""
    from piiguard.catalog import Catalog
    from piiguard.model import Classification, CollectionResult, Estimate, ScanMode, StoreResult, Subjects

    def fields(collection: str, *types: str | None) -> tuple[Classification, ...]:
        return tuple(Classification("search", collection, f"f{i}", t, 0.9, 10, 10) for i, t in enumerate(types))

    audit = "security-auditlog-2026.12.02"
    result = StoreResult("search", "opensearch", "127.0.0.1:9200", (
        CollectionResult("customers", 60, Estimate.EXACT, 60,
                         fields("customers", "email", "nickname") if customers else fields("customers", None)),
        CollectionResult(audit, 900, Estimate.EXACT, 900, fields(audit, "ip-address", "username", "email"))),
        Subjects(60, "customers", "f0", Estimate.EXACT))
    with Catalog(path) as cat:
        scan_id = cat.start_scan(ScanMode.SAMPLE, 100)
        cat.record_store(scan_id, Store("search", "opensearch", host="127.0.0.1", port=9200), result)


def test_the_catalog_counts_the_customers_collections_only(tmp_path: Path) -> None:
    from piiguard.catalog import Catalog

    _scanned(tmp_path / "c.db")
    with Catalog(tmp_path / "c.db") as cat:
        assert cat.data_context("search") == (("email", "nickname"), 60)
        assert cat.data_context("search", include_system=True) == (("email", "ip-address", "nickname", "username"), 60)
        assert {c for c, *_ in cat.pii_fields("search")} == {"customers"}
        assert cat.system_pii("search") == {"security-auditlog-2026.12.02": ["email", "ip-address", "username"]}


def test_incident_open_and_report_leave_system_collections_out_unless_asked(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from piiguard.catalog import Catalog

    catalog = tmp_path / "c.db"
    _scanned(catalog)

    def piiguard(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "piiguard", *args, "--catalog", str(catalog)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "COLUMNS": "200",
                                                           "PIIGUARD_TIMELINE_KEY": "k" * 32})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    piiguard("incident", "open", "search", "--since", "2026-12-02T08:00")
    piiguard("incident", "open", "search", "--since", "2026-12-02T08:00", "--include-system")
    with Catalog(catalog) as cat:
        assert [i["pii_types"] for i in cat.incidents()] == [["email", "nickname"],
                                                              ["email", "ip-address", "nickname", "username"]]
    piiguard("incident", "report", "1", "--out", str(tmp_path / "one"))
    text = (tmp_path / "one" / "reports" / "gdpr-art33.md").read_text()
    assert "- Categories of personal data: e-mail addresses, nickname\n" in text  # third person: for the authority
    assert ("- System collections, not counted (written by the engine, not customer data): "
            "security-auditlog-2026.12.02 (email, ip-address, username)\n") in text
    piiguard("incident", "report", "1", "--out", str(tmp_path / "all"), "--include-system")
    text = (tmp_path / "all" / "reports" / "gdpr-art33.md").read_text()
    assert "System collections, counted (--include-system): security-auditlog-2026.12.02" in text
    assert "IP address" in next(line for line in text.splitlines() if line.startswith("- Categories"))


def test_a_scope_where_only_system_collections_hold_pii_says_so(tmp_path: Path) -> None:
    from piiguard.catalog import Catalog
    from piiguard.errors import UsageError
    from piiguard.response.scope import find_scope

    _scanned(tmp_path / "c.db", customers=False)
    store = Store("search", "opensearch", host="127.0.0.1", port=9)  # never reached: nothing is read
    with Catalog(tmp_path / "c.db") as cat, pytest.raises(UsageError) as raised:
        find_scope(cat, {"stores": ["search"]}, {"search": store}, b"k" * 32)
    assert "outside its system collections" in str(raised.value) and raised.value.hint == "--include-system reads them"
