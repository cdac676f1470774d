"""The kill switch on real schemas: integration grants routed per provider to two real authorization
servers (Authlib RFC 7009 revocation, RFC 7662 introspection on one), confirmation counted and reported,
an unmapped provider left alone; the SQL responders on MariaDB and the document responders on MongoDB
(FerretDB) touch exactly the given subjects and change nothing on a second run."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from built_servers import Ferret, start_ferretdb, stop_ferretdb
from conftest import my_connect, pg_connect
from leak import Leaks
from oauth_server import OAuthServer, start_oauth_server
from servers import Server

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.errors import StoreError
from piiguard.model import Store
from piiguard.response import notices, responders

PEOPLE = 40
IDS = [f"cust-{i:03d}" for i in range(PEOPLE)]
SUBJECTS = IDS[::2]  # the incident's people: every other one (all three providers among them)
N = len(SUBJECTS)
OTHERS = sorted(set(IDS) - set(SUBJECTS))
PROVIDERS = ("alexa", "google", "acme")  # acme has no mapping: reported, never revoked
ALEXA_SECRET, GOOGLE_SECRET = "alexa-client-secret-4f1", "google-client-secret-9c2"


def provider(i: int) -> str:
    return PROVIDERS[i % 3]


def token(i: int) -> str:
    return f"rt-{provider(i)}-{i:03d}-7d1f0c"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, OAuthServer]]:
    """alexa: revocation and introspection; google: revocation only; stubborn: answers 200, revokes nothing."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = {"alexa": start_oauth_server("piiguard-alexa", ALEXA_SECRET, introspection=True),
               "google": start_oauth_server("piiguard-google", GOOGLE_SECRET),
               "stubborn": start_oauth_server("piiguard-stubborn", ALEXA_SECRET, introspection=True, honours=False)}
    yield {name: state for name, (state, _) in started.items()}
    for _, http in started.values():
        http.shutdown()


@pytest.fixture
def issued(servers: dict[str, OAuthServer], leaks: Leaks, monkeypatch: pytest.MonkeyPatch) -> dict[str, OAuthServer]:
    """Fresh tokens on every server (alexa's on alexa's, google's on google's); secrets by reference."""
    for state in servers.values():
        state.tokens.clear()
        state.requests = state.introspections = 0
    for i in range(PEOPLE):
        if provider(i) in servers:
            servers[provider(i)].issue(token(i))
        servers["stubborn"].issue(token(i))
    leaks.seed([token(i) for i in range(PEOPLE)] + [ALEXA_SECRET, GOOGLE_SECRET], "token")
    monkeypatch.setenv("ALEXA_SECRET", ALEXA_SECRET)
    monkeypatch.setenv("GOOGLE_SECRET", GOOGLE_SECRET)
    return servers


def providers(servers: dict[str, OAuthServer]) -> dict[str, Any]:
    return {"alexa": {"revocation_endpoint": servers["alexa"].url, "client_id": "piiguard-alexa",
                      "client_secret_env": "ALEXA_SECRET",
                      "introspection_endpoint": servers["alexa"].introspection_url},
            "google": {"revocation_endpoint": servers["google"].url, "client_id": "piiguard-google",
                       "client_secret_env": "GOOGLE_SECRET"}}


def build(spec: dict[str, Any], store: Store) -> responders.Responder:
    plugins.load()
    [(_, responder)] = responders.build({"responders": [spec]}, {store.name: store})
    return responder


def tokens_of(people: list[str], among: tuple[str, ...]) -> set[str]:
    return {token(IDS.index(p)) for p in people if provider(IDS.index(p)) in among}


def assert_routed(servers: dict[str, OAuthServer], outcome: responders.Outcome) -> None:
    """Each provider's grants went to its own server, only the subjects', and the tally says how far
    each revocation was confirmed."""
    assert servers["alexa"].revoked() == tokens_of(SUBJECTS, ("alexa",))
    assert servers["google"].revoked() == tokens_of(SUBJECTS, ("google",))
    assert servers["alexa"].introspections == len(tokens_of(SUBJECTS, ("alexa",)))
    assert outcome.grants is not None
    facts = outcome.grants.facts()
    assert facts["confirmed"] == len(tokens_of(SUBJECTS, ("alexa",)))
    assert facts["no_introspection"] == len(tokens_of(SUBJECTS, ("google",)))
    assert facts["not_confirmed"] == 0 and facts["refused"] == 0
    assert facts["unmapped"] == {"acme": len(tokens_of(SUBJECTS, ("acme",)))}
    assert outcome.changed == len(tokens_of(SUBJECTS, ("alexa", "google")))


# --- PostgreSQL: grants per provider, and the incident report -------------------------------------

def test_grants_go_to_their_providers_servers_and_the_report_counts_confirmations(
        postgres: Server, issued: dict[str, OAuthServer], tmp_path: Path, pg_password: str) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS respond_grants")
        conn.execute("CREATE DATABASE respond_grants")
    with pg_connect(postgres, "respond_grants") as conn:
        conn.execute('CREATE TABLE "link%grants" (user_id text, provider text, refresh_token text, '
                     "relink_required boolean DEFAULT false)")
        for i, cid in enumerate(IDS):
            conn.execute('INSERT INTO "link%%grants" VALUES (%s, %s, %s, false)', (cid, provider(i), token(i)))
        conn.execute("""INSERT INTO "link%grants" VALUES ('cust-000', 'alexa', NULL, NULL)""")  # no token: skipped
    store = Store("prod", "postgres", host="127.0.0.1", port=postgres.port, user="postgres",
                  database="respond_grants", password_env="PGPASSWORD")
    grants = build({"kind": "oauth-grants", "store": "prod", "table": "public.link%grants", "subject_column": "user_id",
                    "token_column": "refresh_token", "provider_column": "provider",
                    "providers": providers(issued)}, store)
    plan = grants.plan(SUBJECTS)
    assert f"revoke {len(tokens_of(SUBJECTS, ('alexa', 'google')))} integration grant(s)" in plan
    assert f"{len(tokens_of(SUBJECTS, ('acme',)))} acme" in plan and issued["alexa"].requests == 0

    outcome = grants.apply(SUBJECTS, lambda n: None)
    assert_routed(issued, outcome)
    with pg_connect(postgres, "respond_grants") as conn:
        marked = {r[0] for r in conn.execute('SELECT refresh_token FROM "link%grants" WHERE relink_required')}
    assert marked == tokens_of(SUBJECTS, ("alexa", "google"))  # acme's and the others' untouched

    everyone = grants.plan(None)  # the rest; acme's grants, never marked, are all still reported
    assert f"revoke {len(tokens_of(OTHERS, ('alexa', 'google')))} integration grant(s)" in everyone
    assert f"{len(tokens_of(IDS, ('acme',)))} acme" in everyone
    requests = issued["alexa"].requests + issued["google"].requests
    again = grants.apply(SUBJECTS, lambda n: None)
    assert again.changed == 0 and issued["alexa"].requests + issued["google"].requests == requests
    assert again.grants is not None and again.grants.facts()["unmapped"] == outcome.grants.facts()["unmapped"]

    with Catalog(tmp_path / "catalog.db") as cat:  # the report says how far revocations were confirmed
        incident_id = cat.open_incident("prod exposed", ["prod"], "2026-11-30T10:00:00+00:00", ["oauth-token"], 14)
        for o in (outcome, again):
            cat.event(incident_id, "responded", {"responder": "oauth-grants", **o.facts(), "scope": len(SUBJECTS)})
        incident = cat.incident(incident_id)
        assert incident is not None
        drafts = notices.drafts(cat, incident, {"name": "Privacy", "email": "p@example.net"}, [], datetime.now(UTC))
    confirmed, unconfirmed = len(tokens_of(SUBJECTS, ("alexa",))), len(tokens_of(SUBJECTS, ("google",)))
    for name in ("gdpr-art33", "california"):
        assert (f"{confirmed} confirmed revoked by the provider's introspection endpoint" in drafts[name]
                and f"{unconfirmed} not confirmed ({unconfirmed} at providers without an introspection endpoint"
                in drafts[name]), name
        assert f"{len(tokens_of(SUBJECTS, ('acme',)))} (acme)" in drafts[name]
    assert "introspection" not in drafts["gdpr-art34"]  # people's notice says what was done, not this


# --- MariaDB --------------------------------------------------------------------------------------

@pytest.fixture
def maria(mariadb: Server, my_password: str) -> Iterator[Store]:
    with my_connect(mariadb, None) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS respond_t")
        cur.execute("CREATE DATABASE respond_t")
        cur.execute("USE respond_t")
        cur.execute("CREATE TABLE `web%sessions` (id INT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(20), "
                    "sid VARCHAR(40))")  # a % in a name: the drivers read statements as templates
        cur.execute("CREATE TABLE tokens (user_id VARCHAR(20), token VARCHAR(60), revoked_at DATETIME NULL)")
        cur.execute("CREATE TABLE users (id VARCHAR(20) PRIMARY KEY, must_reset_password BOOLEAN DEFAULT FALSE)")
        cur.execute("CREATE TABLE grants (user_id VARCHAR(20), provider VARCHAR(20), refresh_token VARCHAR(60), "
                    "relink_required BOOLEAN NULL)")
        for i, cid in enumerate(IDS):
            cur.execute("INSERT INTO `web%%sessions` (user_id, sid) VALUES (%s, %s), (%s, %s)",
                        (cid, f"s{i}a", cid, f"s{i}b"))
            cur.execute("INSERT INTO tokens VALUES (%s, %s, NULL)", (cid, f"at-{i}"))
            cur.execute("INSERT INTO users (id) VALUES (%s)", (cid,))
            cur.execute("INSERT INTO grants VALUES (%s, %s, %s, NULL)", (cid, provider(i), token(i)))
    yield Store("maria", "mysql", host="127.0.0.1", port=mariadb.port, user="root", database="respond_t",
                password_env="MYSQL_PWD")
    with my_connect(mariadb, None) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS respond_t")


def my_rows(server: Server, query: str) -> set[Any]:
    with my_connect(server, "respond_t") as conn, conn.cursor() as cur:
        cur.execute(query)
        return {r[0] for r in cur.fetchall()}


def test_mariadb_responders_touch_exactly_the_subjects_and_run_once(mariadb: Server, maria: Store,
                                                                    issued: dict[str, OAuthServer]) -> None:
    chosen = [build(spec, maria) for spec in (
        {"kind": "sql-sessions", "store": "maria", "table": "web%sessions", "subject_column": "user_id"},
        {"kind": "sql-tokens", "store": "maria", "table": "respond_t.tokens", "subject_column": "user_id"},
        {"kind": "password-reset", "store": "maria", "table": "users", "subject_column": "id"},
        {"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
         "token_column": "refresh_token", "provider_column": "provider", "providers": providers(issued)})]
    assert f"delete sessions: {2 * N} row(s) in maria.web%sessions ({N} subjects)" in chosen[0].plan(SUBJECTS)
    outcomes = [r.apply(SUBJECTS, lambda n: None) for r in chosen]
    assert [o.changed for o in outcomes[:3]] == [2 * len(SUBJECTS), len(SUBJECTS), len(SUBJECTS)]
    assert my_rows(mariadb, "SELECT DISTINCT user_id FROM `web%sessions`") == set(OTHERS)
    assert my_rows(mariadb, "SELECT user_id FROM tokens WHERE revoked_at IS NOT NULL") == set(SUBJECTS)
    assert my_rows(mariadb, "SELECT id FROM users WHERE must_reset_password") == set(SUBJECTS)
    assert my_rows(mariadb, "SELECT refresh_token FROM grants WHERE relink_required") == \
        tokens_of(SUBJECTS, ("alexa", "google"))
    assert_routed(issued, outcomes[3])
    assert [r.apply(SUBJECTS, lambda n: None).changed for r in chosen] == [0, 0, 0, 0]  # idempotent
    assert "0 row(s)" in chosen[1].plan(SUBJECTS)
    # --everyone: the rest, once (the session table's % name on the parameterless path too)
    assert f"{2 * len(OTHERS)} row(s) in maria.web%sessions (everyone)" in chosen[0].plan(None)
    assert [chosen[i].apply(None, lambda n: None).changed for i in (0, 2, 0, 2)] == [2 * len(OTHERS), len(OTHERS), 0, 0]


def test_single_endpoint_form_still_works_and_an_active_token_is_not_confirmed(
        mariadb: Server, maria: Store, issued: dict[str, OAuthServer]) -> None:
    """The form from before providers: every grant to one server. This server answers 200 and keeps the
    token: introspection catches it, the grant is marked (accepted) but counted as not confirmed."""
    stubborn = issued["stubborn"]
    grants = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                    "token_column": "refresh_token", "revocation_endpoint": stubborn.url,
                    "client_id": "piiguard-stubborn", "client_secret_env": "ALEXA_SECRET",
                    "introspection_endpoint": stubborn.introspection_url}, maria)
    outcome = grants.apply(SUBJECTS, lambda n: None)
    assert outcome.grants is not None
    assert outcome.grants.facts() == {"confirmed": 0, "no_introspection": 0, "not_confirmed": len(SUBJECTS),
                                      "refused": 0, "unmapped": {}}
    assert f"0 confirmed by introspection, {N} not confirmed" in outcome.summary()
    assert stubborn.requests == stubborn.introspections == len(SUBJECTS) and stubborn.revoked() == set()
    assert my_rows(mariadb, "SELECT user_id FROM grants WHERE relink_required") == set(SUBJECTS)


def test_a_refused_revocation_is_an_error_without_the_token(mariadb: Server, maria: Store,
                                                            issued: dict[str, OAuthServer]) -> None:
    grants = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                    "token_column": "refresh_token", "revocation_endpoint": issued["google"].url,
                    "client_id": "piiguard-google", "client_secret_env": "ALEXA_SECRET"}, maria)  # wrong secret
    with pytest.raises(StoreError, match=f"{N} of {N} revocations were not accepted") as caught:
        grants.apply(SUBJECTS, lambda n: None)
    assert "rt-" not in str(caught.value) and ALEXA_SECRET not in str(caught.value)
    assert my_rows(mariadb, "SELECT user_id FROM grants WHERE relink_required") == set()


@pytest.fixture
def dripping() -> Iterator[str]:
    """An HTTP server that starts a 200 answer and then drips its headers a byte at a time, for ever:
    every read is quick, the answer never ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"a")
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/revoke"
    stop.set()
    listener.close()


def test_a_server_dripping_its_answer_is_cut_at_the_timeout(mariadb: Server, maria: Store, dripping: str,
                                                             issued: dict[str, OAuthServer]) -> None:
    cls = responders.responders.get("oauth-grants")
    options = cls.parse({"store": "maria", "table": "grants", "subject_column": "user_id",
                         "token_column": "refresh_token", "revocation_endpoint": dripping,
                         "client_id": "piiguard", "parallel": 4}, "respond.responders[0]")
    grants = cls(options, {"maria": maria}, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreError, match="4 of 4 revocations were not accepted"):
        grants.apply(SUBJECTS[:4], lambda n: None)
    assert time.monotonic() - started < 6  # 4 calls in parallel, each cut at 1 s (+ slack), not after minutes
    assert my_rows(mariadb, "SELECT user_id FROM grants WHERE relink_required") == set()


# --- MongoDB (FerretDB) ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ferret(postgres: Server) -> Iterator[Ferret]:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS ferret_respond")
        conn.execute("CREATE DATABASE ferret_respond")
    server = start_ferretdb(postgres.port, open_backend=False, tls=False, database="ferret_respond")
    yield server
    stop_ferretdb(server)


def test_document_responders_touch_exactly_the_subjects_and_run_once(ferret: Ferret,
                                                                     issued: dict[str, OAuthServer]) -> None:
    db = ferret.admin()["app"]
    for name in ("sessions", "tokens", "users", "grants"):
        db[name].drop()
    db.sessions.insert_many([{"user_id": c, "sid": f"s{i}{x}"} for i, c in enumerate(IDS) for x in "ab"])
    db.tokens.insert_many([{"user_id": c, "token": f"at-{i}"} for i, c in enumerate(IDS)])
    db.users.insert_many([{"_id": c, "must_reset_password": False} for c in IDS])
    db.grants.insert_many([{"user": {"id": c}, "link": {"provider": provider(i), "refresh": token(i)}}
                           for i, c in enumerate(IDS)])
    store = ferret.store("docs")
    chosen = [build(spec, store) for spec in (
        {"kind": "mongodb-sessions", "store": "docs", "collection": "app.sessions", "subject_field": "user_id"},
        {"kind": "mongodb-tokens", "store": "docs", "collection": "app.tokens", "subject_field": "user_id"},
        {"kind": "mongodb-password-reset", "store": "docs", "collection": "app.users", "subject_field": "_id"},
        {"kind": "mongodb-grants", "store": "docs", "collection": "app.grants", "subject_field": "user.id",
         "token_field": "link.refresh", "provider_field": "link.provider", "providers": providers(issued)})]
    assert f"delete sessions: {2 * N} document(s) in docs.app.sessions ({N} subjects)" in chosen[0].plan(SUBJECTS)
    assert f"{len(tokens_of(SUBJECTS, ('acme',)))} acme" in chosen[3].plan(SUBJECTS)
    outcomes = [r.apply(SUBJECTS, lambda n: None) for r in chosen]
    assert [o.changed for o in outcomes[:3]] == [2 * len(SUBJECTS), len(SUBJECTS), len(SUBJECTS)]
    assert {d["user_id"] for d in db.sessions.find()} == set(OTHERS)
    assert {d["user_id"] for d in db.tokens.find({"revoked_at": {"$ne": None}})} == set(SUBJECTS)
    assert {d["_id"] for d in db.users.find({"must_reset_password": True})} == set(SUBJECTS)
    assert {d["link"]["refresh"] for d in db.grants.find({"relink_required": True})} == \
        tokens_of(SUBJECTS, ("alexa", "google"))
    assert_routed(issued, outcomes[3])
    assert [r.apply(SUBJECTS, lambda n: None).changed for r in chosen] == [0, 0, 0, 0]  # idempotent
