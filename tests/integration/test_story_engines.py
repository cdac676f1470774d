"""The whole story once per engine family, on real servers.

Production is a PostgreSQL with members, sessions, tokens and voice-assistant links (refresh tokens
issued by two real authorization servers, one per provider; one of them offers RFC 7662
introspection), plus sessions in Redis. Outside piiguard, a raw export of a subset of the members is
loaded into another engine — MariaDB, ClickHouse, OpenSearch with the security plugin, MongoDB
(FerretDB), S3 (versitygw) — in that engine's own shape (native column types, nested documents, JSON
lines). One member is in the export twice. ``piiguard scan`` reads it; ``watch`` runs while an
employee switches that store's security off; then, as a user would run it from the command line:

- ``incident scope`` names exactly the members in the export (worked out independently here);
- ``incident respond --apply`` ends exactly their sessions, tokens and grants, each grant at its own
  provider's endpoint;
- ``incident notify`` sends each of them one notice, at a real SMTP server.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from built_servers import (
    OpenSearch,
    S3Server,
    start_ferretdb,
    start_opensearch,
    start_versitygw,
    stop_ferretdb,
    stop_opensearch,
    stop_versitygw,
)
from conftest import pg_connect
from helpers import Mailbox
from leak import Leaks
from oauth_server import start_oauth_server
from servers import (
    PASSWORD,
    REDIS_ADMIN,
    Server,
    clickhouse_users,
    redis_admin,
    start_clickhouse,
    start_mariadb,
    stop_clickhouse,
    stop_mariadb,
)

from piiguard.catalog import Catalog
from piiguard.model import Store
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import JsonLines

PEOPLE, EXPORTED = 120, 70
PW = "PIIGUARD_STORY_PW"
SECRETS = {"alexa": "alexa-client-secret", "google": "google-client-secret"}
KEY = ("--key-env", "PIIGUARD_STORY_KEY")  # keys the catalog's hashes of the people in scope
FIRSTS = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas"]


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    nickname: str
    ssid: str
    first: str
    provider: str

    def flat(self) -> dict[str, str]:
        return {"member_id": self.id, "email": self.email, "nickname": self.nickname, "wifi_ssid": self.ssid}

    def nested(self) -> dict[str, Any]:
        return {"member_id": self.id, "contact": {"email": self.email},
                "profile": {"nickname": self.nickname, "wifi": {"ssid": self.ssid}}}


MEMBERS = [Member(f"mbr-{i:05d}", f"{FIRSTS[i % 10].lower()}.{i}@example.org", f"camfan_{i}_{FIRSTS[i % 10].lower()}",
                  f"HOME-{i:04d}-5G", FIRSTS[i % 10], "alexa" if i % 2 else "google") for i in range(PEOPLE)]


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


# --- the exposed stores, one class per engine --------------------------------------------------------

class Exposed:
    """A store holding a raw export of ``members``, in its engine's shape, whose security can be
    switched off and on again."""

    engine: str

    def load(self, rows: list[Member]) -> None: ...
    def store(self) -> Store: ...
    def insecure(self, on: bool) -> None: ...
    def stop(self) -> None: ...


class MariaDB(Exposed):
    engine = "mysql"

    def __init__(self, _backend: Server) -> None:
        self.server = start_mariadb()

    def _sql(self, password: str, *statements: str, args: list[Any] | None = None) -> None:
        import pymysql

        with pymysql.connect(host="127.0.0.1", port=self.server.port, user="root", password=password,
                             autocommit=True) as conn:
            cur = conn.cursor()
            for s in statements:
                if args is not None and "%s" in s:
                    cur.executemany(s, args)
                else:
                    cur.execute(s)

    def load(self, rows: list[Member]) -> None:
        self._sql(PASSWORD, "CREATE DATABASE scratch", "CREATE TABLE scratch.members_export (member_id VARCHAR(16), "
                  "email VARCHAR(80), nickname VARCHAR(80), wifi_ssid VARCHAR(40))",
                  "INSERT INTO scratch.members_export VALUES (%s, %s, %s, %s)",
                  args=[tuple(m.flat().values()) for m in rows])

    def store(self) -> Store:
        return Store("exposed", "mysql", host="127.0.0.1", port=self.server.port, user="root", database="scratch",
                     password_env=PW, options={"ssl": "false"})

    def insecure(self, on: bool) -> None:  # the employee empties root's password
        self._sql(PASSWORD if on else "", f"ALTER USER root@'127.0.0.1' IDENTIFIED BY '{'' if on else PASSWORD}'")

    def stop(self) -> None:
        stop_mariadb(self.server)


class ClickHouse(Exposed):
    engine = "clickhouse"

    def __init__(self, _backend: Server) -> None:
        self.server = start_clickhouse()
        self.key = PASSWORD

    def _post(self, query: str, body: bytes = b"") -> None:
        url = f"http://127.0.0.1:{self.server.port}/?query={urllib.parse.quote(query)}"
        urllib.request.urlopen(urllib.request.Request(url, data=body or b" ", headers={
            "X-ClickHouse-User": "default", "X-ClickHouse-Key": self.key}), timeout=30).read()

    def load(self, rows: list[Member]) -> None:
        self._post("CREATE DATABASE scratch")
        self._post("CREATE TABLE scratch.members_export (member_id String, email Nullable(String), "
                   "nickname String, wifi_ssid Nullable(String), seen Array(DateTime)) "
                   "ENGINE = MergeTree ORDER BY member_id")  # the test server (Debian's 18.16) has no LowCardinality
        lines = "\n".join(json.dumps({**m.flat(), "seen": ["2026-11-01 10:00:00"]}) for m in rows)
        self._post("INSERT INTO scratch.members_export FORMAT JSONEachRow", lines.encode())

    def store(self) -> Store:
        return Store("exposed", "clickhouse", host="127.0.0.1", port=self.server.port, user="default",
                     password_env=PW, options={"tcp_port": str(self.server.tcp_port)})  # type: ignore[attr-defined]

    def insecure(self, on: bool) -> None:  # the employee takes default's password away
        (self.server.data / "conf" / "users.xml").write_text(clickhouse_users(password=not on))
        self._post("SYSTEM RELOAD CONFIG")
        self.key = "" if on else PASSWORD

    def stop(self) -> None:
        stop_clickhouse(self.server)


class OpenSearchNode(Exposed):
    engine = "opensearch"

    def __init__(self, _backend: Server) -> None:
        self.node: OpenSearch = start_opensearch(secured=True)

    def load(self, rows: list[Member]) -> None:
        lines = []
        for m in rows:
            lines += [json.dumps({"index": {"_index": "members-export"}}), json.dumps(m.nested())]
        status, raw = self.node.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode())
        assert status == 200 and not json.loads(raw)["errors"], raw[:300]

    def store(self) -> Store:
        return self.node.store("exposed")

    def insecure(self, on: bool) -> None:  # anonymous access, mapped to the readall role
        config = self.node.json("GET", "/_plugins/_security/api/securityconfig")["config"]["dynamic"]
        config["http"]["anonymous_auth_enabled"] = on
        self.node.json("PUT", "/_plugins/_security/api/securityconfig/config", {"dynamic": config})
        roles = ["readall", "opendistro_security_anonymous_backendrole"] if on else ["readall"]
        self.node.json("PUT", "/_plugins/_security/api/rolesmapping/readall", {"backend_roles": roles})

    def stop(self) -> None:
        stop_opensearch(self.node)


class FerretDB(Exposed):
    engine = "mongodb"

    def __init__(self, backend: Server) -> None:
        self.backend = backend
        with pg_connect(backend) as conn:
            conn.execute("DROP DATABASE IF EXISTS ferret_story")
            conn.execute("CREATE DATABASE ferret_story")
        self.server = start_ferretdb(backend.port, open_backend=False, tls=True, database="ferret_story")
        self.ca = Path(tempfile.mkdtemp(prefix="piiguard-story-ca-")) / "ca.pem"  # outlives a restart's folder
        shutil.copy(self.server.cafile, self.ca)

    def load(self, rows: list[Member]) -> None:
        with self.server.admin() as client:
            client.scratch.members_export.insert_many([m.nested() for m in rows])

    def store(self) -> Store:  # the password by variable: a restarted server has a new folder
        plain = self.server.store("exposed")
        return replace(plain, password_file=None, password_env=PW, options={**plain.options, "cafile": str(self.ca)})

    def insecure(self, on: bool) -> None:  # restarted on the same port and data with credentials in the backend URL
        port = self.server.port
        stop_ferretdb(self.server)
        self.server = start_ferretdb(self.backend.port, open_backend=on, tls=True, database="ferret_story", port=port)
        shutil.copy(self.server.cafile, self.ca)  # its new certificate, where the configuration points

    def stop(self) -> None:
        stop_ferretdb(self.server)
        shutil.rmtree(self.ca.parent, ignore_errors=True)


PUBLIC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::exports/*"]},
    {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::exports"]}]}


class Bucket(Exposed):
    engine = "s3"

    def __init__(self, _backend: Server) -> None:
        self.server: S3Server = start_versitygw()
        self.server.client().create_bucket(Bucket="exports")

    def load(self, rows: list[Member]) -> None:
        body = "".join(json.dumps(m.nested()) + "\n" for m in rows).encode()
        self.server.client().put_object(Bucket="exports", Key="members/export.jsonl", Body=body)

    def store(self) -> Store:
        return self.server.store("exposed", bucket="exports")

    def insecure(self, on: bool) -> None:  # a public bucket policy
        client = self.server.client()
        if on:
            client.put_bucket_policy(Bucket="exports", Policy=json.dumps(PUBLIC))
        else:
            client.delete_bucket_policy(Bucket="exports")

    def stop(self) -> None:
        stop_versitygw(self.server)


ENGINES: dict[str, Callable[[Server], Exposed]] = {
    "mariadb": MariaDB, "clickhouse": ClickHouse, "opensearch": OpenSearchNode, "mongodb": FerretDB, "s3": Bucket}


# --- production ---------------------------------------------------------------------------------------

@dataclass
class Production:
    postgres: Server
    redis: Any
    providers: dict[str, Any] = field(default_factory=dict)  # provider → (server, http) of its authorization server


def seed_production(prod: Production) -> None:
    with pg_connect(prod.postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS storyprod")
        conn.execute("CREATE DATABASE storyprod")
    with pg_connect(prod.postgres, "storyprod") as conn:
        conn.execute("CREATE TABLE members (id text PRIMARY KEY, email text, nickname text, first_name text, "
                     "must_reset_password boolean DEFAULT false)")
        conn.execute("CREATE TABLE sessions (member_id text, session_id text)")
        conn.execute("CREATE TABLE access_tokens (member_id text, token text, revoked_at timestamptz)")
        conn.execute("CREATE TABLE assistant_links (member_id text, provider text, refresh_token text, "
                     "relink_required boolean DEFAULT false)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO members (id, email, nickname, first_name) VALUES (%s, %s, %s, %s)",
                            [(m.id, m.email, m.nickname, m.first) for m in MEMBERS])
            cur.executemany("INSERT INTO sessions VALUES (%s, %s)",
                            [(m.id, f"{m.id}-{k}") for m in MEMBERS for k in "ab"])
            cur.executemany("INSERT INTO access_tokens VALUES (%s, %s, NULL)", [(m.id, f"at-{m.id}") for m in MEMBERS])
            cur.executemany("INSERT INTO assistant_links VALUES (%s, %s, %s, false)",
                            [(m.id, m.provider, f"rt-{m.provider}-{m.id}") for m in MEMBERS])
    for m in MEMBERS:
        prod.providers[m.provider][0].issue(f"rt-{m.provider}-{m.id}")
    prod.redis.mset({f"session:{m.id}": "1" for m in MEMBERS})


@pytest.fixture(scope="module")
def production(postgres: Server, cache: Server) -> Iterator[Production]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    prod = Production(postgres, redis_admin(cache))
    started = []
    try:
        for provider in ("alexa", "google"):
            started.append(start_oauth_server(f"piiguard-{provider}", SECRETS[provider],
                                              introspection=provider == "google"))
            prod.providers[provider] = started[-1]
        yield prod
    finally:
        for _server, http in started:
            http.shutdown()
        prod.redis.delete(*[f"session:{m.id}" for m in MEMBERS])


def yaml_store(store: Store) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": store.name, "engine": store.engine, "host": store.host, "port": store.port}
    for key in ("database", "user", "password_env", "password_file"):
        if getattr(store, key):
            entry[key] = getattr(store, key)
    if store.options:
        entry["options"] = dict(store.options)
    return entry


def story_config(prod: Production, exposed: Store, smtp_port: int, cache_port: int) -> dict[str, Any]:
    def provider(name: str) -> dict[str, Any]:
        server = prod.providers[name][0]
        out = {"revocation_endpoint": server.url, "client_id": f"piiguard-{name}",
               "client_secret_env": f"{name.upper()}_SECRET"}
        if server.introspection_url:
            out["introspection_endpoint"] = server.introspection_url
        return out

    return {
        "stores": [
            {"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{prod.postgres.port}/storyprod",
             "password_env": PW},
            {"name": "cache", "url": f"redis://{REDIS_ADMIN}@127.0.0.1:{cache_port}/0", "password_env": PW},
            yaml_store(exposed)],
        "respond": {
            "contact": {"name": "Privacy team", "email": "privacy@example.net"},
            "responders": [
                {"kind": "sql-sessions", "store": "prod", "table": "public.sessions", "subject_column": "member_id"},
                {"kind": "redis-sessions", "store": "cache", "key": "session:{subject}"},
                {"kind": "sql-tokens", "store": "prod", "table": "public.access_tokens",
                 "subject_column": "member_id"},
                {"kind": "oauth-grants", "store": "prod", "table": "public.assistant_links",
                 "subject_column": "member_id", "token_column": "refresh_token", "provider_column": "provider",
                 "providers": {"alexa": provider("alexa"), "google": provider("google")}},
                {"kind": "password-reset", "store": "prod", "table": "public.members", "subject_column": "id"}],
            "notices": {"store": "prod", "table": "public.members", "subject_column": "id", "email_column": "email",
                        "name_column": "first_name", "smtp": "127.0.0.1", "port": smtp_port,
                        "sender": "privacy@example.net", "rate": 1000, "company": "CamCo"}}}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_story_on_each_engine(engine: str, production: Production, postgres: Server, cache: Server,
                                  smtp_server: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  leaks: Leaks) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    monkeypatch.setenv("PIIGUARD_STORY_KEY", "story-incident-key-0123456789")
    for name, secret in SECRETS.items():
        monkeypatch.setenv(f"{name.upper()}_SECRET", secret)
    leaks.seed((m.email for m in MEMBERS), "email")
    leaks.seed((m.nickname for m in MEMBERS), "nickname")
    leaks.seed((m.ssid for m in MEMBERS), "wifi-ssid")
    box, smtp_port = smtp_server
    box.messages.clear()
    seed_production(production)
    exported = random.Random(engine).sample(MEMBERS, EXPORTED)
    exposed = ENGINES[engine](postgres)
    try:
        exposed.load([*exported, exported[0]])  # one member twice: still one person
        store = exposed.store()
        config = tmp_path / "piiguard.yaml"
        config.write_text(json.dumps(story_config(production, store, smtp_port, cache.port)))
        catalog = tmp_path / "c.db"

        def piiguard(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([sys.executable, "-m", "piiguard", *args, "-c", str(config), "--catalog",
                                   str(catalog)], capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "COLUMNS": "200"})
            assert done.returncode == 0, f"piiguard {' '.join(args)}:\n{done.stdout}{done.stderr}"
            return done

        valid = subprocess.run([sys.executable, "-m", "piiguard", "validate", str(config)], capture_output=True,
                               text=True, timeout=120)
        assert valid.returncode == 0, valid.stdout + valid.stderr
        piiguard("scan", "exposed")

        # security off while watch runs: an exposure and an incident; back on: the window closes
        alerts = io.StringIO()
        with Catalog(catalog) as cat:
            watcher = Watcher([store], cat, [JsonLines(alerts)], timeout=5)
            watcher.cycle()
            assert cat.incidents() == []
            exposed.insecure(True)
            watcher.cycle(inside=False)
            (incident,) = cat.incidents()
            assert incident["stores"] == ["exposed"]
            exposed.insecure(False)
            watcher.cycle(inside=False)
        incident_id = str(incident["id"])

        # scope: exactly the exported members, each with the categories the export held
        subjects = tmp_path / "private" / "subjects.csv"
        leaks.holds_people(subjects)
        piiguard("incident", "scope", incident_id, "--out", str(subjects), *KEY)
        with subjects.open() as f:
            rows = {r["subject"]: set(r["exposed"].split(";")) for r in csv.DictReader(f)}
        assert sorted(rows) == sorted(m.id for m in exported)
        assert all({"email", "customer-identifier"} <= kinds for kinds in rows.values()), rows

        # the kill switch: exactly those members, each grant at its own provider
        piiguard("incident", "respond", incident_id, "--subjects", str(subjects), "--apply", *KEY)
        ids = sorted(rows)
        with pg_connect(postgres, "storyprod") as conn:
            gone = {m.id for m in MEMBERS} - {r[0] for r in conn.execute("SELECT DISTINCT member_id FROM sessions")}
            revoked = {r[0] for r in conn.execute("SELECT member_id FROM access_tokens WHERE revoked_at IS NOT NULL")}
            relink = {r[0] for r in conn.execute("SELECT member_id FROM assistant_links WHERE relink_required")}
            reset = {r[0] for r in conn.execute("SELECT id FROM members WHERE must_reset_password")}
        assert gone == revoked == relink == reset == set(ids)
        for provider, (server, _http) in production.providers.items():
            assert server.revoked() == {f"rt-{provider}-{m.id}" for m in exported if m.provider == provider}
        assert all(production.redis.exists(f"session:{i}") == 0 for i in ids)
        assert sum(production.redis.exists(f"session:{m.id}") for m in MEMBERS) == PEOPLE - EXPORTED

        # notices: one per member in the export
        piiguard("incident", "notify", incident_id, "--subjects", str(subjects), *KEY)
        assert sorted(m.email for m in exported) == sorted(
            str(msg).split("To: ", 1)[1].split("\n", 1)[0].strip() for msg in box.messages)
        # the regulator's draft: the exact count, and which revocations introspection confirmed
        piiguard("incident", "report", incident_id)
        draft = (catalog.parent / "incidents" / incident_id / "reports" / "gdpr-art33.md").read_text()
        assert f"{EXPORTED:,}" in draft and "not confirmed" in draft
    finally:
        exposed.stop()
