"""Benchmark for `incident scope` on document stores: OpenSearch and MongoDB (FerretDB) reads beside
each engine's plain bulk export, in the same run.

    python bench/scope_documents.py [--docs 1000000]

Throwaway servers as in the tests (tests/built_servers.py): an OpenSearch 2.19 node with the security
plugin (TLS, one index of three shards) and FerretDB 1.24 on a PostgreSQL. Each holds ``--docs``
household documents (one to three members with a customer id, e-mail, phone, nickname; a router and
devices on some). Each step runs in its own forked process, so its peak RSS is its own (from wait4):

- baseline: the engine's plain export — opensearch-py's ``helpers.scan`` (scroll, whole ``_source``),
  a plain pymongo ``find()`` cursor — reading every document;
- read: ``Connector.read`` on the fields scope reads (point in time + search_after; projected find);
- scope: ``find_scope`` end to end on a scanned catalog (read, people and their categories).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from built_servers import start_ferretdb, start_opensearch, stop_ferretdb, stop_opensearch  # noqa: E402
from conftest import pg_connect  # noqa: E402
from servers import start_postgres, stop_postgres  # noqa: E402

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.connectors.base import connectors  # noqa: E402
from piiguard.masking.pipeline import find_collection  # noqa: E402
from piiguard.model import Store  # noqa: E402
from piiguard.response.incidents import open_by_hand  # noqa: E402
from piiguard.response.scope import find_scope  # noqa: E402
from piiguard.scanner import scan  # noqa: E402

KEY = b"bench-scope-documents-key-0123456789"
CHUNK = 5_000


def households(start: int, n: int) -> list[dict[str, Any]]:
    docs = []
    for h in range(start, start + n):
        members = [{"customer_id": f"cust-{h:07d}-{k}", "email": f"user{h}.{k}@example.net",
                    "profile": {"nickname": f"camfan_{h}_{k}"}, **({"phone": f"+1 415 555 {h % 10000:04d}"}
                                                                   if k == 0 else {})}
                   for k in range(1 + h % 3)]
        doc: dict[str, Any] = {"members": members, "plan": ["basic", "plus"][h % 2]}
        if h % 2 == 0:
            doc["router"] = {"wifi_ssid": f"HOME-{h:07d}-5G"}
        if h % 3 == 0:
            mac = ":".join(f"{h >> shift & 255:02x}" for shift in (24, 16, 8, 0))
            doc["devices"] = [{"mac": f"02:42:{mac}"}]
        docs.append(doc)
    return docs


def measured(what: str, docs: int, step: Callable[[], int]) -> None:
    """Run ``step`` in a forked child; print its time, documents/s and peak RSS."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        started = time.monotonic()
        count = step()
        os.write(write, json.dumps([time.monotonic() - started, count]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        answer = f.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0 or not answer:
        print(f"{what}: failed (status {status})")
        return
    seconds, count = json.loads(answer)
    print(f"{what}: {seconds:.1f} s, {docs / seconds:,.0f} documents/s, {count:,} counted, "
          f"peak RSS {usage.ru_maxrss / 1024:.0f} MB", flush=True)


def read_all(store: Store, collection: str, columns: list[str]) -> int:
    with connectors.get(store.engine)(store, timeout=30) as connector:
        info = find_collection(connector, collection)
        return sum(b.num_rows for b in connector.read(info, columns, 100_000))


def scope_all(store: Store, catalog: Path) -> int:
    with Catalog(catalog) as cat:
        incident = cat.incident(open_by_hand(cat, store.name, "2026-11-01T00:00"))
        assert incident is not None
        return len(find_scope(cat, incident, {store.name: store}, KEY).people)


def bench(store: Store, collection: str, n: int, baseline: Callable[[], int], work: Path) -> None:
    catalog = work / f"{store.engine}.db"
    with Catalog(catalog) as cat:
        started = time.monotonic()
        problems = scan([store], catalog=cat, timeout=120).stores[0].problems
        fields = [f for c, f, _, _ in cat.pii_fields(store.name) if c == collection]
    print(f"{store.engine}: scan (sampled) {time.monotonic() - started:.1f} s; scope reads {len(fields)} fields"
          + (f"; problems: {problems}" if problems else ""))
    if not fields:
        return
    measured(f"{store.engine} baseline (plain export)", n, baseline)
    measured(f"{store.engine} Connector.read", n, lambda: read_all(store, collection, fields))
    measured(f"{store.engine} find_scope (people)", n, lambda: scope_all(store, catalog))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.docs
    work = Path(tempfile.mkdtemp(prefix="piiguard-bench-scope-docs-"))
    node = start_opensearch(secured=True)
    pg = start_postgres()
    ferret = None
    try:
        with pg_connect(pg) as conn:
            conn.execute("CREATE DATABASE ferret_bench")
        ferret = start_ferretdb(pg.port, open_backend=False, tls=False, database="ferret_bench")
        node.json("PUT", "/households", {"settings": {"number_of_shards": 3, "number_of_replicas": 0,
                                                      "refresh_interval": "-1"}})
        mongo = ferret.admin().bench.households
        started = time.monotonic()
        for start in range(0, n, CHUNK):
            docs = households(start, min(CHUNK, n - start))
            body = "".join('{"index":{}}\n' + json.dumps(d) + "\n" for d in docs)
            status, _ = node.request("POST", "/households/_bulk", body.encode())
            assert status == 200
            mongo.insert_many(docs)
        node.request("POST", "/households/_refresh")
        print(f"loaded {n:,} households into both in {time.monotonic() - started:.1f} s", flush=True)

        import opensearchpy
        import opensearchpy.helpers

        os_store = node.store()

        def os_baseline() -> int:
            client = opensearchpy.OpenSearch(hosts=[{"host": "127.0.0.1", "port": node.port}], use_ssl=True,
                                             ca_certs=node.cafile, http_auth=("admin", node.admin_password),
                                             timeout=60)
            return sum(1 for _ in opensearchpy.helpers.scan(client, index="households", size=10_000, scroll="2m"))

        bench(os_store, "households", n, os_baseline, work)
        mg_store = ferret.store()

        def mongo_baseline() -> int:
            return sum(1 for _ in ferret.admin().bench.households.find({}, batch_size=10_000))

        bench(mg_store, "bench.households", n, mongo_baseline, work)
    finally:
        if ferret is not None:
            stop_ferretdb(ferret)
        stop_opensearch(node)
        stop_postgres(pg)


if __name__ == "__main__":
    main()
