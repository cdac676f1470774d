"""The issue's end-to-end story, on a company network of namespaces (tests/netns.py), through the CLI run
inside the scanner namespace.

The network: a production PostgreSQL, registered, holding prod.customers (a few thousand synthetic
people); an analytics ClickHouse nobody registered, open (default user, no password), that later
receives a raw SUBSET copy of the customers with RENAMED columns, reordered, plus people not in prod;
a cache Redis nobody registered, with auth; a web server on OpenSearch's port and an SSH banner on
MySQL's port, which are not data stores. piiguard runs only in the scanner namespace.

What must hold: ``discover`` finds exactly the three stores and names their engines; the open
unregistered ClickHouse is critical, the Redis with auth is not; after ``scan`` + ``fingerprint
build`` the copy is linked to prod.customers with the people within ±10 % of the truth; a canary
planted before the copy is found in it; using the canary's token at ``watch``'s trap alerts a real
webhook listener; ``watch`` (``discovery.every: 2``) alerts on a store that starts listening, within a
sweep interval; and not one packet left the namespaces.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netns
import psycopg
import pytest
from netns import Network, company_network, inside
from servers import PASSWORD

PROD_PEOPLE = 3000
COPIED = 1800  # prod people in the analytics copy (60 %)
STRANGERS = 400  # people in the copy who are not in prod
CANARIES = 5
EVERY = 2.0  # discovery.every, seconds
SLACK = 20.0  # a sweep of a /27 plus identify and delivery, on a shared 2-core machine
CANARY_DOMAIN = "canary.example.com"
KEY = "k" * 8 + "-discovery-test-key-0123456789"  # 38 bytes: above the 16-byte minimum
SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Company:
    net: Network
    root: Path
    config: Path
    env: dict[str, str]
    people: dict[str, list[Any]] = field(repr=False)  # seeded values: never in a failure's report
    webhook: Path
    facts: dict[str, Any] = field(default_factory=dict, repr=False)
    outputs: list[tuple[str, str]] = field(default_factory=list, repr=False)  # (what, text): the last test reads

    @property
    def swept(self) -> str:
        return f"{self.net.prefix.network_address}/27"  # the members are .10–.14

    def piiguard(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``python -m piiguard ARGS`` inside the scanner namespace (recorded by the leak fixture)."""
        got = subprocess.run(["ip", "netns", "exec", self.net.ns("scanner"), "env", *_env_args(self.env),
                              sys.executable, "-m", "piiguard", *args], capture_output=True, text=True,
                             timeout=timeout, cwd=self.root)
        self.outputs += [(f"piiguard {args[0]} stdout", got.stdout), (f"piiguard {args[0]} stderr", got.stderr)]
        return got

    def discover(self) -> dict[str, Any]:
        got = self.piiguard("discover", self.swept, "--config", str(self.config), "--format", "json")
        assert got.returncode in (0, 3), f"discover failed ({got.returncode}): {got.stderr[-2000:]}"
        for hostile in ("\x1b", "\\u001b", "\\u0000", "owned", "A" * 100):  # the banner's text, passed through
            assert hostile not in got.stdout + got.stderr, repr(hostile)
        doc: dict[str, Any] = json.loads(got.stdout)
        assert doc["kind"] == "discovery"
        print(f"discover: {doc['probes']} probes in {doc['seconds']:.1f} s, {len(doc['stores'])} stores, "
              f"{len(doc['others'])} others, {len(doc['problems'])} problems")
        for problem in doc["problems"]:  # each names its address and says what to do; peer text is cleaned
            assert problem["where"] and problem["hint"], problem
            assert not any(ord(c) < 32 for c in problem["message"]), problem
        return doc


def _env_args(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]


def _people() -> dict[str, list[Any]]:
    """Synthetic customers with unique e-mails (through synthetic.rows, so the leak fixture knows them)."""
    from piiguard import synthetic

    cols = tuple(c for c in synthetic.COLUMNS if c.name in ("customer_id", "email", "nickname"))
    data = synthetic.rows(PROD_PEOPLE + STRANGERS + 300, seed=13, columns=cols)
    seen: set[str] = set()
    out: dict[str, list[Any]] = {"customer_id": [], "email": [], "nickname": []}
    for cid, email, nick in zip(data["customer_id"], data["email"], data["nickname"], strict=True):
        if email in seen:
            continue
        seen.add(str(email))
        out["customer_id"].append(cid)
        out["email"].append(email)
        out["nickname"].append(nick)
    assert len(out["email"]) >= PROD_PEOPLE + STRANGERS
    return out


def _config(net: Network, root: Path, webhook_port: int) -> Path:
    cfg = root / "piiguard.yaml"
    cfg.write_text(f"""\
stores:
  - name: prod
    url: postgresql://postgres@{net.ip('prod')}:5432/postgres
    password_env: PROD_PG_PASSWORD
    tags: {{env: prod}}
discovery:
  networks: [{net.prefix.network_address}/27]   # the allow-list watch sweeps: the members are .10–.14
  every: {EVERY:g}
  timeout: 1.0
  key_env: PIIGUARD_DISCOVERY_KEY
  canary:
    domain: {CANARY_DOMAIN}
    trap: {net.ip('scanner')}:8990
    trap_url: http://{net.ip('scanner')}:8990
alerts:
  - webhook: http://{net.ip('cache')}:{webhook_port}/alerts
""")
    return cfg


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    root = tmp_path_factory.mktemp("company")
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text("<html><body>intranet</body></html>")
    with company_network(("scanner", "prod", "analytics", "cache", "dmz")) as net:
        netns.start_postgres_in(net, "prod")
        netns.start_clickhouse_open(net, "analytics")
        netns.start_banner(net, "analytics", 3306)
        netns.start_redis_auth(net, "cache", PASSWORD)
        netns.start_http(net, "cache", 9200, root / "www")
        # bad input on the wire: a host that accepts every port, a peer that hangs up mid-fingerprint on
        # PostgreSQL's port, a banner of terminal escapes, NUL and 3,000 bytes on PostgreSQL's other port
        netns.start_tarpit(net, "dmz")
        netns.start_closer(net, "analytics", 5432)
        netns.start_banner(net, "cache", 5433, netns.HOSTILE_BANNER)
        webhook = root / "webhook.jsonl"
        netns.start_webhook(net, "cache", 8088, webhook)
        people = _people()
        with inside(net.ns("scanner")), psycopg.connect(host=net.ip("prod"), port=5432, user="postgres",
                                                         password=PASSWORD, dbname="postgres",
                                                         autocommit=True) as pg:
            pg.execute("CREATE TABLE customers (customer_id text PRIMARY KEY, email text NOT NULL, nickname text)")
            with pg.cursor().copy("COPY customers (customer_id, email, nickname) FROM STDIN") as copy:
                for i in range(PROD_PEOPLE):
                    copy.write_row((people["customer_id"][i], people["email"][i], people["nickname"][i]))
        env = {"PYTHONPATH": SRC, "PROD_PG_PASSWORD": PASSWORD, "PIIGUARD_DISCOVERY_KEY": KEY,
               "PIIGUARD_CATALOG": str(root / "catalog.db"), "HOME": str(root),
               "XDG_CONFIG_HOME": str(root / "xdg-config"), "XDG_DATA_HOME": str(root / "xdg-data"),
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        yield Company(net, root, _config(net, root, 8088), env, people, webhook)


def _store(doc: dict[str, Any], address: str) -> dict[str, Any]:
    found = [s for s in doc["stores"] if s["address"] == address]
    assert len(found) == 1, f"{address} in {[s['address'] for s in doc['stores']]}"
    return found[0]


def test_discover_finds_exactly_the_data_stores(company: Company) -> None:
    net = company.net
    doc = company.discover()
    # one entry per store: ClickHouse's HTTP (8123) and native (9000) ports are one, at the HTTP port
    assert {(s["host"], s["engine"]) for s in doc["stores"]} == {
        (net.ip("prod"), "postgres"), (net.ip("analytics"), "clickhouse"), (net.ip("cache"), "redis")}
    assert {s["address"]: s["also"] for s in doc["stores"]} == {
        f"{net.ip('prod')}:5432": [], f"{net.ip('analytics')}:8123": [9000], f"{net.ip('cache')}:6379": []}
    hosts = {s["host"]: s for s in doc["stores"]}
    assert set(hosts) == {net.ip("prod"), net.ip("analytics"), net.ip("cache")}
    assert all(s["kind"] == "store" for s in doc["stores"])
    # the web server on OpenSearch's port and the SSH banner on MySQL's are answered, and not stores
    others = {o["address"]: o for o in doc["others"]}
    assert others[f"{net.ip('cache')}:9200"]["kind"] == "not-a-store"
    assert others[f"{net.ip('analytics')}:3306"]["kind"] == "not-a-store"
    assert not any(s["port"] in (9200, 3306) for s in doc["stores"])
    # the tarpit is one entry, not 21 stores; the closer and the hostile banner are not stores
    dmz = [o for o in doc["others"] if o["host"] == net.ip("dmz")]
    assert [o["kind"] for o in dmz] == ["tarpit"], dmz
    assert others[f"{net.ip('analytics')}:5432"]["kind"] in ("unknown", "not-a-store")
    assert others[f"{net.ip('cache')}:5433"]["kind"] in ("unknown", "not-a-store")
    assert len(others[f"{net.ip('cache')}:5433"]["evidence"]) < 300
    prod = _store(doc, f"{net.ip('prod')}:5432")
    assert prod["registered"] == "prod"
    assert not any(f["check_id"] == "discovery.unregistered-store" for f in prod["findings"])
    clickhouse = [s for s in doc["stores"] if s["engine"] == "clickhouse"]
    for ch in clickhouse:
        assert ch["registered"] is None and ch["open"] is True and ch["severity"] == "critical"
        unregistered = [f for f in ch["findings"] if f["check_id"] == "discovery.unregistered-store"]
        assert [(f["status"], f["severity"]) for f in unregistered] == [("fail", "critical")]
    redis = _store(doc, f"{net.ip('cache')}:6379")
    assert redis["registered"] is None and redis["open"] is False
    assert redis["severity"] != "critical"
    unregistered = [f for f in redis["findings"] if f["check_id"] == "discovery.unregistered-store"]
    assert len(unregistered) == 1 and unregistered[0]["severity"] != "critical"  # unregistered, with auth
    assert doc["probes"] >= 30 * len(doc["ports"])  # a /27 less its network and broadcast addresses
    assert net.escaped() == 0


@pytest.fixture(scope="module")
def copied(company: Company) -> Company:
    """scan + fingerprint build + canary plant in prod, THEN the analytics copy (so it holds the canaries)."""
    cfg = str(company.config)
    for args in (("scan", "prod"), ("fingerprint", "build", "prod"),
                 ("canary", "plant", "prod.public.customers", "--count", str(CANARIES), "--apply")):
        got = company.piiguard(*args, "--config", cfg)
        assert got.returncode in (0, 3), f"piiguard {' '.join(args)} ({got.returncode}): {got.stderr[-2000:]}"
    net, people = company.net, company.people
    with inside(net.ns("scanner")), psycopg.connect(host=net.ip("prod"), port=5432, user="postgres",
                                                     password=PASSWORD, dbname="postgres") as pg:
        canaries = pg.execute("SELECT customer_id, email, nickname FROM customers WHERE email LIKE %s",
                              (f"%@{CANARY_DOMAIN}",)).fetchall()
    assert len(canaries) == CANARIES, "canary plant --apply put its customers into prod.customers"
    rng = random.Random(5)
    subset = rng.sample(range(PROD_PEOPLE), COPIED)
    rows = [(people["email"][i], people["customer_id"][i], people["nickname"][i]) for i in subset]
    rows += [(people["email"][i], people["customer_id"][i], people["nickname"][i])
             for i in range(PROD_PEOPLE, PROD_PEOPLE + STRANGERS)]
    rows += [(str(e), str(c), str(n or "")) for c, e, n in canaries]
    rng.shuffle(rows)
    import clickhouse_driver

    with inside(net.ns("scanner")):
        ch = clickhouse_driver.Client(host=net.ip("analytics"), port=9000, connect_timeout=5)
        ch.execute("CREATE TABLE default.members (member_email String, ref String, handle String) "
                   "ENGINE = MergeTree ORDER BY ref")
        ch.execute("INSERT INTO default.members (member_email, ref, handle) VALUES", rows)
    company.facts.update(truth=COPIED + CANARIES, canaries=canaries)
    return company


def test_the_copy_is_linked_to_prod_customers(copied: Company) -> None:
    net = copied.net
    doc = copied.discover()
    links = [link for s in doc["stores"] if s["host"] == net.ip("analytics") for link in s["links"]]
    to_customers = [link for link in links
                    if link["source_store"] == "prod" and link["source_collection"].endswith("customers")
                    and link["collection"].endswith("members")]
    by_fingerprint = [link for link in to_customers if link["via"] == "fingerprint"]
    assert by_fingerprint, f"no fingerprint link from the copy to prod.customers in {links}"
    truth = copied.facts["truth"]
    for link in by_fingerprint:
        assert abs(link["people"] - truth) <= 0.10 * truth, (link["people"], truth)
        assert abs(link["share"] - truth / (PROD_PEOPLE + CANARIES)) <= 0.10 * truth / PROD_PEOPLE
        assert set(link["fields"]) & {"member_email", "ref"}  # the copy's own (renamed) column names
        assert set(link["source_fields"]) & {"email", "customer_id"}
    # the canaries planted in prod before the copy prove the lineage on their own
    assert [link for link in to_customers if link["via"] == "canary"], f"no canary link in {links}"
    # nothing links the Redis or prod itself to prod.customers
    assert not [link for s in doc["stores"] if s["host"] != net.ip("analytics") for link in s["links"]]
    assert net.escaped() == 0


@pytest.fixture(scope="module")
def watching(copied: Company) -> Iterator[Company]:
    """``piiguard watch`` in the scanner namespace: sweeps every 2 s and serves the trap."""
    log = copied.root / "watch.log"
    with log.open("wb") as out:
        proc = copied.net.popen("scanner", "env", *_env_args(copied.env), sys.executable, "-m", "piiguard",
                                "watch", "--config", str(copied.config), "--interval", str(EVERY),
                                stdout=out, stderr=subprocess.STDOUT, cwd=copied.root)
    try:
        copied.net.wait_tcp("cache", copied.net.ip("scanner"), 8990, seconds=60)
    except RuntimeError:
        pytest.fail(f"watch did not serve the trap: {log.read_text()[-2000:]}")
    time.sleep(EVERY * 2)  # let the first sweeps record what is already there
    yield copied
    copied.net.stop(proc)


def _alerts_since(company: Company, count: int) -> list[dict[str, Any]]:
    return netns.received(company.webhook)[count:]


def test_using_a_canary_token_alerts_through_the_webhook(watching: Company, leaks: Any) -> None:
    net = watching.net
    before = len(netns.received(watching.webhook))
    cid, email, nickname = watching.facts["canaries"][0]
    # someone with the leaked rows uses the canary: its token, link and e-mail reach the trap
    query = urllib.parse.urlencode({"ref": cid, "email": email, "handle": nickname or ""})
    code = (f"import urllib.request as u; r = u.urlopen('http://{net.ip('scanner')}:8990/t/"
            f"{urllib.parse.quote(str(cid))}?{query}', timeout=10); print(r.status)")
    got = net.run("cache", sys.executable, "-c", code, check=False)
    assert got.returncode == 0 or "HTTPError" in got.stderr, got.stderr[-1000:]
    deadline = time.monotonic() + SLACK
    hits: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not hits:
        hits = [a for a in _alerts_since(watching, before) if "canary" in json.dumps(a).lower()]
        time.sleep(0.2)
    assert hits, f"no canary alert reached the webhook: {netns.received(watching.webhook)[-5:]}"
    assert net.ip("cache") in json.dumps(hits[0])  # the source address of whoever used it
    assert net.escaped() == 0


def test_watch_alerts_on_a_new_listener_within_a_sweep(watching: Company) -> None:
    net = watching.net
    before = len(netns.received(watching.webhook))
    address = f"{net.ip('analytics')}:6380"
    started = time.monotonic()
    netns.start_redis_auth(net, "analytics", "another-" + PASSWORD, port=6380)
    seen: list[dict[str, Any]] = []
    while time.monotonic() - started < EVERY + SLACK and not seen:
        seen = [a for a in _alerts_since(watching, before) if address in json.dumps(a)]
        time.sleep(0.2)
    assert seen, f"no alert named {address}: {netns.received(watching.webhook)[-5:]}"
    print(f"new listener alerted after {time.monotonic() - started:.1f} s (sweep every {EVERY:g} s)")
    assert net.escaped() == 0


def test_traffic_never_left_the_namespaces(company: Company, leaks: Any) -> None:
    """Last in the file: after every command above, in every namespace; and no seeded value reached
    the catalog, the webhook bodies or watch's output."""
    net = company.net
    for name in ("catalog.db", "catalog.db-wal", "webhook.jsonl", "watch.log"):
        if (company.root / name).exists():
            leaks.emitted(name, (company.root / name).read_bytes())
    for what, text in company.outputs:  # module fixtures ran commands before this test's leak fixture began
        leaks.emitted(what, text)
    assert net.no_route_out() == []
    assert net.isolated() == []
    assert net.escaped() == 0
