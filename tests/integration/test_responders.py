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
from hypothesis import given, settings
from hypothesis import strategies as st
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


# --- redirects: never followed, the client secret goes to the configured endpoint only -------------

class _Recorder:
    """A plain HTTP server on ``host`` that records every request it gets (path and headers) and answers
    ``status`` (with ``Location: location`` for a 3xx)."""

    def __init__(self, host: str, status: int = 200, location: str = "") -> None:
        import http.server

        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.seen.append((self.path, dict(self.headers)))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                body = b'{"active": false}' if status == 200 else b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.http.server_address[1]}/revoke"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def elsewhere() -> Iterator[_Recorder]:
    """The host a redirect points at: 127.0.0.2, this machine's loopback too, but another address."""
    server = _Recorder("127.0.0.2")
    yield server
    server.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirecting_revocation_endpoint_is_refused_and_nothing_reaches_the_other_host(
        mariadb: Server, maria: Store, issued: dict[str, OAuthServer], elsewhere: _Recorder, status: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    redirector = _Recorder("127.0.0.1", status, elsewhere.url + "?next=" + "x" * 40)
    try:
        grants = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                        "token_column": "refresh_token", "revocation_endpoint": redirector.url,
                        "client_id": "piiguard-google", "client_secret_env": "GOOGLE_SECRET"}, maria)
        with pytest.raises(StoreError) as caught:
            grants.apply(SUBJECTS[:4], lambda n: None)
    finally:
        redirector.close()
    text = str(caught.value)
    assert "4 of 4 revocations were not accepted" in text and f"4 answered {status}, a redirect: not followed" in text
    assert "127.0.0.2" not in text and "next=" not in text  # the status, never the Location
    assert len(redirector.seen) == 4 and elsewhere.seen == []  # the secret and the tokens went nowhere else
    assert "running again will not help" in (caught.value.hint or "")
    assert my_rows(mariadb, "SELECT user_id FROM grants WHERE relink_required") == set()


def test_a_redirecting_introspection_endpoint_confirms_nothing_and_marks_nothing(
        mariadb: Server, maria: Store, issued: dict[str, OAuthServer], elsewhere: _Recorder) -> None:
    """The revocation is accepted by the real server; its introspection endpoint redirects to a host that
    would answer active: false. Not followed: not confirmed, not marked, tried again next run."""
    redirector = _Recorder("127.0.0.1", 302, elsewhere.url)
    alexa = [s for s in SUBJECTS if provider(IDS.index(s)) == "alexa"]
    try:
        grants = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                        "token_column": "refresh_token", "revocation_endpoint": issued["alexa"].url,
                        "client_id": "piiguard-alexa", "client_secret_env": "ALEXA_SECRET",
                        "introspection_endpoint": redirector.url}, maria)
        with pytest.raises(StoreError, match=f"{len(alexa)} of {len(alexa)} grants are still active") as caught:
            grants.apply(alexa, lambda n: None)
    finally:
        redirector.close()
    assert f"{len(alexa)} answered 302, a redirect: not followed" in str(caught.value)
    assert "127.0.0.2" not in str(caught.value)
    assert len(redirector.seen) == len(alexa) and elsewhere.seen == []
    assert my_rows(mariadb, "SELECT user_id FROM grants WHERE relink_required") == set()


# --- still active after revocation: counted, not marked, retried -------------------------------------

def test_a_token_still_active_is_not_marked_and_is_retried_next_run(
        mariadb: Server, maria: Store, issued: dict[str, OAuthServer]) -> None:
    stubborn = issued["stubborn"]
    grants = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                    "token_column": "refresh_token", "revocation_endpoint": stubborn.url,
                    "client_id": "piiguard-stubborn", "client_secret_env": "ALEXA_SECRET",
                    "introspection_endpoint": stubborn.introspection_url}, maria)
    for run in (1, 2):
        with pytest.raises(StoreError, match=f"{N} of {N} grants are still active") as caught:
            grants.apply(SUBJECTS, lambda n: None)
        assert "rt-" not in str(caught.value)
        assert stubborn.requests == stubborn.introspections == run * N  # retried: nothing was marked
        assert my_rows(mariadb, "SELECT user_id FROM grants WHERE relink_required") == set()


def test_a_refused_client_is_told_running_again_will_not_help_and_progress_counts_grants(
        mariadb: Server, maria: Store, issued: dict[str, OAuthServer]) -> None:
    bad = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                 "token_column": "refresh_token", "revocation_endpoint": issued["google"].url,
                 "client_id": "piiguard-google", "client_secret_env": "ALEXA_SECRET"}, maria)  # wrong secret
    with pytest.raises(StoreError) as caught:
        bad.apply(SUBJECTS[:3], lambda n: None)
    assert "refused the client's credentials" in str(caught.value) and "401" in str(caught.value)
    assert "run again" not in str(caught.value) and "running again will not help" in str(caught.value)
    assert "running again will not help" in (caught.value.hint or "")

    grants = build({"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
                    "token_column": "refresh_token", "provider_column": "provider",
                    "providers": providers(issued)}, maria)
    grants.plan(SUBJECTS)
    counted: list[int] = []
    outcome = grants.apply(SUBJECTS, counted.append)
    routed = len(tokens_of(SUBJECTS, ("alexa", "google")))
    assert grants.total(SUBJECTS) == sum(counted) == routed == outcome.changed  # grants against grants


# --- exact matching: no loose conversion, no collation folding -----------------------------------

VALUES_INT = [0, 7, 25, 42, -3, 2147483647]
VALUES_TEXT = ["aB3x", "q7", "Straße", "é", "cust-001", "0042"]
NEAR = ["Ab3X", "AB3X", "q7 ", " q7", "q7\t", "STRASSE", "strasse", "e", "É", "E\u0301", "alice@x", "7abc", "007",
        "025bdfe0c", "+7", "7.0", "7e0", " 7", "7 ", "-0", "0x7", "42", "0042 ", "2147483648", "-3", "25", "", "٧"]
SUBJECT_TEXT = st.one_of(st.sampled_from(NEAR + [str(v) for v in VALUES_INT] + VALUES_TEXT),
                         st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                 max_size=8))


def exactly(values: list[Any], subjects: list[str]) -> set[str]:
    return {str(v) for v in values if str(v) in subjects}


@pytest.fixture
def maria_exact(mariadb: Server, maria: Store) -> Store:
    with my_connect(mariadb, "respond_t") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE n (id INT PRIMARY KEY)")
        cur.execute("CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY)")
        cur.execute("CREATE TABLE t (id VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci PRIMARY KEY)")
        cur.execute("CREATE TABLE l (id VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci PRIMARY KEY)")
        cur.executemany("INSERT INTO n VALUES (%s)", VALUES_INT)
        cur.executemany("INSERT INTO u VALUES (%s)", [v for v in VALUES_INT if v >= 0] + [2**64 - 1])
        cur.executemany("INSERT INTO t VALUES (%s)", VALUES_TEXT)
        cur.executemany("INSERT INTO l VALUES (%s)", VALUES_TEXT)
    return maria


def test_mariadb_subjects_match_exactly_in_integer_and_ci_columns(mariadb: Server, maria_exact: Store) -> None:
    from piiguard.response.dialects import DIALECTS

    d = DIALECTS["mysql"]
    tables = {"n": VALUES_INT, "u": [v for v in VALUES_INT if v >= 0] + [2**64 - 1], "t": VALUES_TEXT, "l": VALUES_TEXT}
    with d.connect(maria_exact, 10) as conn:
        matches = {t: d.match(conn, d.table(t), t, "id") for t in tables}

        def found(table: str, subjects: list[str]) -> set[str]:
            condition, params = matches[table](subjects)
            return {str(r[0]) for r in d.rows(conn, f"SELECT id FROM {table} WHERE {condition}", params)}

        # the reviewers' cases
        assert found("n", ["alice@x", "7abc", "025bdfe0c", "0042", "+7", "2147483648"]) == set()
        assert found("t", ["Ab3X", "q7 ", "strasse", "e"]) == set() == found("l", ["Ab3X", "q7 ", "E"])
        assert found("n", ["7", "-3"]) == {"7", "-3"} and found("u", [str(2**64 - 1), "-1"]) == {str(2**64 - 1)}
        assert found("t", ["aB3x", "Straße"]) == {"aB3x", "Straße"} == found("l", ["aB3x", "Straße"])

        @settings(max_examples=150, deadline=None)
        @given(st.lists(SUBJECT_TEXT, max_size=6))
        def never_loose(subjects: list[str]) -> None:
            for table, values in tables.items():
                assert found(table, subjects) == exactly(values, subjects), table

        never_loose()
    # and through a responder: a ci-collated near miss deletes nothing
    sessions = build({"kind": "sql-sessions", "store": "maria", "table": "t", "subject_column": "id"}, maria_exact)
    assert sessions.apply(["AB3X", "q7 ", "Q7"], lambda n: None).changed == 0
    assert sessions.apply(["q7"], lambda n: None).changed == 1


def test_postgres_subjects_match_exactly(postgres: Server, pg_password: str) -> None:
    from piiguard.response.dialects import DIALECTS

    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS respond_exact")
        conn.execute("CREATE DATABASE respond_exact")
    with pg_connect(postgres, "respond_exact") as conn:
        conn.execute("CREATE TABLE n (id integer)")
        conn.execute("CREATE TABLE b (id bigint)")
        conn.execute("CREATE TABLE v (id varchar(4))")
        conn.execute("CREATE TABLE c (id char(6))")
        conn.execute("CREATE TABLE t (id text)")
        conn.execute("CREATE TABLE u (id uuid)")
        conn.execute("INSERT INTO u VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')")
        for v in VALUES_INT:
            conn.execute("INSERT INTO n VALUES (%s)", [v])
            conn.execute("INSERT INTO b VALUES (%s)", [v])
        for s in VALUES_TEXT:
            conn.execute("INSERT INTO t VALUES (%s)", [s])
            conn.execute("INSERT INTO c VALUES (%s)", [s[:6]])
            conn.execute("INSERT INTO v VALUES (%s)", [s[:4]])
    store = Store("prod", "postgres", host="127.0.0.1", port=postgres.port, user="postgres",
                  database="respond_exact", password_env="PGPASSWORD")
    d = DIALECTS["postgres"]
    stored = {"n": VALUES_INT, "b": VALUES_INT, "t": VALUES_TEXT,
              "c": [s[:6] for s in VALUES_TEXT], "v": [s[:4] for s in VALUES_TEXT]}
    with d.connect(store, 10) as conn:
        matches = {t: d.match(conn, d.table(t), t, "id") for t in [*stored, "u"]}

        def found(table: str, subjects: list[str]) -> set[str]:
            condition, params = matches[table](subjects)
            return {str(r[0]) for r in d.rows(conn, f"SELECT id::text FROM {d.table(table)} WHERE {condition}", params)}

        assert found("n", ["0042", "+7", " 7", "7 ", "-0", "99999999999"]) == set()  # '0042'::int would be 42
        assert found("n", ["42", "-3"]) == {"42", "-3"}
        assert found("v", ["cust-001"]) == set()  # the varchar(4) cast would truncate it to 'cust'
        assert found("c", ["q7 "]) == set()  # char(6) pads
        assert found("t", ["aB3x"]) == {"aB3x"}
        # a uuid column: a scope's mixed list (ids and e-mails) must not fail the batch's cast; either case matches
        uid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert found("u", ["alice@x.example", uid.upper(), "{" + uid + "}"]) == {uid}

        @settings(max_examples=150, deadline=None)
        @given(st.lists(SUBJECT_TEXT, max_size=6))
        def never_loose(subjects: list[str]) -> None:
            for table, values in stored.items():
                assert found(table, subjects) == exactly(values, subjects), table

        never_loose()


# --- MongoDB: any int64, ObjectId hex in either case, '0042' only as a string ------------------------

def test_document_subjects_match_int64_objectid_and_only_canonical_integers(ferret: Ferret) -> None:
    from bson import Int64, ObjectId

    db = ferret.admin()["app"]
    db.exact.drop()
    oid = ObjectId()
    docs = [{"user_id": Int64(2**63 - 1)}, {"user_id": Int64(-(2**63))}, {"user_id": 1234567890123456789},
            {"user_id": 42}, {"user_id": "0042"}, {"user_id": oid}, {"user_id": 7}]
    db.exact.insert_many(docs)
    store = ferret.store("docs")
    sessions = build({"kind": "mongodb-sessions", "store": "docs", "collection": "app.exact",
                      "subject_field": "user_id"}, store)
    assert "delete sessions: 0 document(s)" in sessions.plan(["7abc", "+7", "07", " 7", "9223372036854775808"])
    assert "delete sessions: 4 document(s)" in sessions.plan(
        [str(2**63 - 1), str(-(2**63)), "1234567890123456789", str(oid).upper()])
    collection = ferret.admin()["app"]["exact"]
    values = [d["user_id"] for d in docs]

    def text(v: Any) -> str:
        return str(v)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.one_of(SUBJECT_TEXT, st.sampled_from([text(v) for v in values] + [str(oid).upper(),
                                                                                        "0" + str(2**63 - 1)])),
                    max_size=5))
    def never_loose(subjects: list[str]) -> None:
        found = {text(d["user_id"]) for where, _ in sessions._filters(subjects) for d in collection.find(where)}
        assert found == {text(v) for v in values if text(v) in subjects or text(v) in [s.lower() for s in subjects
                                                                                       if len(s) == 24]}

    never_loose()
    assert sessions.apply(["0042"], lambda n: None).changed == 1  # the string only
    assert db.exact.count_documents({"user_id": 42}) == 1
    assert sessions.apply(["42", str(oid).upper(), str(2**63 - 1)], lambda n: None).changed == 3


# --- Redis: set members that are not UTF-8 --------------------------------------------------------

def test_redis_sessions_delete_members_that_are_not_utf8(cache: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from servers import PASSWORD, redis_admin

    monkeypatch.setenv("PIIGUARD_TEST_REDIS_PW", PASSWORD)
    admin = redis_admin(cache)
    members = [b"sess:\xff\xfe", b"sess:ok", b"\x80\x00raw"]
    admin.sadd("user-sessions:cust-001", *members)
    for m in members:
        admin.set(m, b"x")
    admin.set(b"sess:other", b"x")
    store = Store("cache", "redis", host="127.0.0.1", port=cache.port, user="admin",
                  password_env="PIIGUARD_TEST_REDIS_PW")
    sessions = build({"kind": "redis-sessions", "store": "cache", "set": "user-sessions:{subject}"}, store)
    assert "delete 4 session key(s)" in sessions.plan(["cust-001"])
    assert sessions.apply(["cust-001"], lambda n: None).changed == 4
    assert [admin.exists(m) for m in members] == [0, 0, 0] and admin.exists(b"sess:other") == 1
    admin.delete(b"sess:other")


# --- the CLI: --only / --skip, and --everyone skipping what cannot act on everyone --------------------

def test_respond_everyone_skips_redis_sessions_and_only_skip_select(
        mariadb: Server, maria: Store, cache: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os
    import subprocess
    import sys

    from servers import PASSWORD

    config = tmp_path / "piiguard.yaml"
    config.write_text(json.dumps({
        "stores": [{"name": "maria", "url": f"mysql://root@127.0.0.1:{mariadb.port}/respond_t", "password_env": "MYSQL_PWD"},
                   {"name": "cache", "url": f"redis://admin@127.0.0.1:{cache.port}/0", "password_env": "REDIS_PW"}],
        "respond": {"responders": [
            {"kind": "sql-sessions", "store": "maria", "table": "web%sessions", "subject_column": "user_id"},
            {"kind": "redis-sessions", "store": "cache", "key": "session:{subject}"},
            {"kind": "password-reset", "store": "maria", "table": "users", "subject_column": "id"}]}}))
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        incident = cat.open_incident("maria exposed", ["maria"], "2026-11-30T10:00:00+00:00", ["email"], 14)

    def piiguard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "piiguard", "incident", "respond", str(incident), *args,
                               "-c", str(config), "--catalog", str(catalog)], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "REDIS_PW": PASSWORD, "COLUMNS": "200"})

    planned = piiguard("--everyone", "--only", "sql-sessions,redis-sessions")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "redis-sessions: skipped: it cannot act on everyone" in planned.stdout
    assert f"sql-sessions: delete sessions: {2 * PEOPLE} row(s)" in planned.stdout
    assert "password-reset" not in planned.stdout
    applied = piiguard("--everyone", "--skip", "password-reset", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "redis-sessions: skipped" in applied.stdout and f"sql-sessions: {2 * PEOPLE:,} changed" in applied.stdout
    assert my_rows(mariadb, "SELECT id FROM users WHERE must_reset_password") == set()  # skipped
    unknown = piiguard("--everyone", "--only", "sql-session")
    assert unknown.returncode != 0 and "no configured responder named sql-session" in unknown.stdout + unknown.stderr


def test_an_unfinished_grants_run_is_on_the_timeline_before_its_error(
        mariadb: Server, maria: Store, issued: dict[str, OAuthServer], tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    stubborn = issued["stubborn"]
    config = tmp_path / "piiguard.yaml"
    config.write_text(json.dumps({
        "stores": [{"name": "maria", "url": f"mysql://root@127.0.0.1:{mariadb.port}/respond_t", "password_env": "MYSQL_PWD"}],
        "respond": {"responders": [
            {"kind": "oauth-grants", "store": "maria", "table": "grants", "subject_column": "user_id",
             "token_column": "refresh_token", "revocation_endpoint": stubborn.url, "client_id": "piiguard-stubborn",
             "client_secret_env": "ALEXA_SECRET", "introspection_endpoint": stubborn.introspection_url}]}}))
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        incident = cat.open_incident("maria exposed", ["maria"], "2026-11-30T10:00:00+00:00", ["email"], 14)
    done = subprocess.run([sys.executable, "-m", "piiguard", "incident", "respond", str(incident), "--everyone",
                           "--apply", "-c", str(config), "--catalog", str(catalog)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode != 0 and f"{PEOPLE} of {PEOPLE} grants are still active" in " ".join(
        (done.stdout + done.stderr).split())
    assert "rt-" not in done.stdout + done.stderr
    with Catalog(catalog) as cat:
        [event] = [json.loads(e["payload"]) for e in cat.timeline(incident) if e["kind"] == "responded"]
    assert event["unfinished"] is True and event["not_confirmed"] == PEOPLE and event["changed"] == 0
