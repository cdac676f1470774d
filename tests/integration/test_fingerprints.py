"""Copy fingerprints on real servers: a PostgreSQL prod.customers (5,000 people) fingerprinted; a MariaDB
copy of 3,000 of them with renamed columns, shuffled rows, integer ids where prod has zero-padded text,
and 500 people prod never had, is linked to it with the right count; a masked copy made by
``piiguard copy`` is linked through the copy registry; a store with other people gets no link."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import my_connect, pg_connect
from servers import PASSWORD, Server, start_postgres, stop_postgres

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.discovery import fingerprints as fp
from piiguard.masking.pipeline import plan_copy, run_copy
from piiguard.model import Store
from piiguard.scanner import scan

PW = "PIIGUARD_FP_PW"
KEY_ENV = "PIIGUARD_FP_KEY"
KEY = os.urandom(32)
PEOPLE, COPIED, STRANGERS = 5000, 3000, 500


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    monkeypatch.setenv(KEY_ENV, KEY.hex())


def ident(i: int) -> str:
    return f"{10_000_000 + i:010d}"  # "0010000042" in prod; the copy holds the integer 10000042


@pytest.fixture(scope="module")
def prod(postgres: Server) -> dict[str, list[Any]]:
    data = synthetic.rows(PEOPLE, seed=31, columns=tuple(c for c in synthetic.COLUMNS
                                                         if c.name in ("email", "full_name", "city")))
    data["customer_id"] = [ident(i) for i in range(PEOPLE)]
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS fp_prod")
        conn.execute("CREATE DATABASE fp_prod")
    with pg_connect(postgres, "fp_prod") as conn:
        conn.execute("CREATE TABLE customers (customer_id text PRIMARY KEY, email text, full_name text, city text)")
        with conn.cursor().copy("COPY customers (customer_id, email, full_name, city) FROM STDIN") as copy:
            for row in zip(data["customer_id"], data["email"], data["full_name"], data["city"], strict=True):
                copy.write_row(row)
    return data


@pytest.fixture(scope="module")
def copies(mariadb: Server, prod: dict[str, list[Any]]) -> dict[str, Any]:
    """``shadow.members``: 3,000 of prod's people (every other upper-cased e-mail), 500 others, shuffled;
    ``shadow.leads``: 2,000 people prod never had."""
    rnd = random.Random(5)
    chosen = rnd.sample(range(PEOPLE), COPIED)
    known = {e.casefold() for e in prod["email"]}
    strangers = [e for e in synthetic.rows(STRANGERS + 3000, seed=977, columns=tuple(
        c for c in synthetic.COLUMNS if c.name == "email"))["email"] if e.casefold() not in known]  # Faker repeats
    assert len(strangers) >= STRANGERS + 2000
    rows = [(10_000_000 + i, prod["email"][i].upper() if n % 2 else prod["email"][i], f"note {n}")
            for n, i in enumerate(chosen)]
    rows += [(20_000_000 + n, strangers[n], f"note {n}") for n in range(STRANGERS)]
    rnd.shuffle(rows)
    with my_connect(mariadb, None) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS shadow")
        cur.execute("CREATE DATABASE shadow")
        cur.execute("CREATE TABLE shadow.members (remark TEXT, member_email VARCHAR(200), ref BIGINT)")
        cur.executemany("INSERT INTO shadow.members (ref, member_email, remark) VALUES (%s, %s, %s)", rows)
        cur.execute("CREATE TABLE shadow.leads (id BIGINT, contact VARCHAR(200))")
        cur.executemany("INSERT INTO shadow.leads VALUES (%s, %s)",
                        [(n + 1, e) for n, e in enumerate(strangers[STRANGERS:STRANGERS + 2000])])
    return {"chosen": chosen}


def prod_store(postgres: Server, name: str = "prod") -> Store:
    return Store(name, "postgres", host="127.0.0.1", port=postgres.port, database="fp_prod", user="postgres",
                 password_env=PW)


def shadow(mariadb: Server) -> Store:
    return Store("10.20.0.7:3306", "mysql", host="127.0.0.1", port=mariadb.port, database="shadow", user="root",
                 password_env=PW)


def config(postgres: Server) -> Any:
    return parse_config({"stores": [{"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/fp_prod",
                                     "password_env": PW}],
                         "discovery": {"key_env": KEY_ENV}})


@pytest.fixture(scope="module")
def built(postgres: Server, prod: dict[str, list[Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fp") / "catalog.db"
    os.environ[PW] = PASSWORD
    with Catalog(path) as cat:
        scan([prod_store(postgres)], catalog=cat, sample_size=2000)
        cfg = config(postgres)
        made = fp.build(cfg, cat, KEY, ["prod"])
    emails = len({e.casefold() for e in prod["email"]})  # Faker repeats a few: people are distinct values
    assert {(b.collection, b.field, b.kind, b.people) for b in made} == {
        ("public.customers", "email", fp.Kind.EMAIL, emails), ("public.customers", "customer_id", fp.Kind.KEY, PEOPLE)}
    return path


def _one(links: list[Any], collection: str) -> Any:
    found = [x for x in links if x.collection.endswith(collection)]
    assert len(found) == 1, links
    return found[0]


def test_copy_with_renamed_columns_and_integer_ids_is_linked(built: Path, mariadb: Server,
                                                             copies: dict[str, Any], tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.db"
    catalog.write_bytes(built.read_bytes())
    with Catalog(catalog) as cat:
        links = fp.match(shadow(mariadb), cat, KEY)
        cat.record_links(links)
        assert [x.collection for x in cat.links("10.20.0.7:3306")] == [x.collection for x in links]
    link = _one(links, "members")
    assert (link.source_store, link.source_collection, link.via) == ("prod", "public.customers", "fingerprint")
    assert dict(zip(link.fields, link.source_fields, strict=True)) == {"member_email": "email", "ref": "customer_id"}
    assert abs(link.people - COPIED) <= COPIED * 0.10
    assert link.share == pytest.approx(COPIED / PEOPLE, abs=0.06)
    assert not [x for x in links if x.collection.endswith("leads")]  # other people: no link from false matches


def test_a_sample_estimates_the_people_of_the_whole_copy(built: Path, mariadb: Server,
                                                         copies: dict[str, Any]) -> None:
    with Catalog(built) as cat:
        link = _one(fp.match(shadow(mariadb), cat, KEY, limit=1000, collections=["members"]), "members")
    assert link.sampled == 1000
    assert abs(link.people - COPIED) <= COPIED * 0.10


@pytest.mark.parametrize("order", ["prod-first", "prod-last"])
def test_a_partial_read_of_an_ordered_postgres_table_is_a_random_sample(built: Path, postgres: Server,
                                                                       prod: dict[str, list[Any]], order: str) -> None:
    """2,000 of prod's people then 4,000 others (or the reverse) in one PostgreSQL table, limit 1,000:
    its first records would give 6,000 people or none; a random sample gives about 2,000."""
    ours = sorted({e.casefold() for e in prod["email"]})[:2000]
    others = [f"o{i}@example.org" for i in range(4000)]
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS fp_order")
        conn.execute("CREATE DATABASE fp_order")
    with pg_connect(postgres, "fp_order") as conn:
        conn.execute("CREATE TABLE t (email text)")
        with conn.cursor().copy("COPY t (email) FROM STDIN") as copy:
            for e in (ours + others if order == "prod-first" else others + ours):
                copy.write_row((e,))
        conn.execute("ANALYZE t")
    mirror = Store("mirror", "postgres", host="127.0.0.1", port=postgres.port, database="fp_order",
                   user="postgres", password_env=PW)
    with Catalog(built) as cat:
        links = fp.match(mirror, cat, KEY, limit=1000, rng=random.Random(11))
    assert [(x.source_collection, x.fields, x.from_sample) for x in links] == [("public.customers", ("email",), True)]
    assert abs(links[0].people - 2000) <= 300, links[0].people


def test_the_source_itself_and_a_wrong_key_give_no_link(built: Path, postgres: Server) -> None:
    with Catalog(built) as cat:
        assert fp.match(prod_store(postgres), cat, KEY) == []  # a collection is no copy of itself
        with pytest.raises(Exception, match="built with another key"):
            fp.match(prod_store(postgres, "other"), cat, os.urandom(32))


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Server]:
    server = start_postgres(hardened=True)
    yield server
    stop_postgres(server)


def test_a_masked_registered_copy_is_linked_by_the_registry(built: Path, postgres: Server, warehouse: Server,
                                                            tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.db"
    catalog.write_bytes(built.read_bytes())
    target = Store("wh", "postgres", host="127.0.0.1", port=warehouse.port, database="postgres", user="postgres",
                   password_env=PW)
    plan = plan_copy(prod_store(postgres), "customers", target, "masked_customers",
                     config=parse_config({"masking": {"prod.public.customers": {"city": "keep"}}}))
    with Catalog(catalog) as cat:
        run_copy(plan, b"m" * 32, cat, owner="analytics", purpose="churn", expires=date(2027, 1, 31))
        links = fp.match(target, cat, KEY)
    link = _one(links, "masked_customers")
    assert (link.via, link.source_store, link.source_collection) == ("copy-registry", "prod", "public.customers")
    assert link.people == PEOPLE and link.share == 1.0
    # the pseudonyms really do not match: without the registry, the fingerprint finds nothing
    with Catalog(catalog) as cat:
        cat.db.execute("UPDATE copies SET status = 'removed'")
        cat.db.commit()
        assert fp.match(target, cat, KEY) == []


def test_cli_build_list_match(postgres: Server, mariadb: Server, prod: dict[str, list[Any]],
                              copies: dict[str, Any], tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from jsondoc import check

    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(json.dumps({
        "stores": [{"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/fp_prod",
                    "password_env": PW},
                   {"name": "shadow", "url": f"mysql://root@127.0.0.1:{mariadb.port}/shadow", "password_env": PW}],
        "discovery": {"key_env": KEY_ENV}}))
    env = {**os.environ, PW: PASSWORD, KEY_ENV: KEY.hex()}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "piiguard", *args, "-c", str(cfg), "--catalog",
                               str(tmp_path / "c.db")], capture_output=True, text=True, timeout=300,
                              env={**env, **extra})

    first = run("scan", "prod", "-f", "json")
    assert first.returncode == 0 and "copy_links" not in json.loads(first.stdout)  # no fingerprints: as before
    built = run("fingerprint", "build", "prod", "-f", "json")
    assert built.returncode == 0, built.stderr
    assert {r["field"] for r in check(built.stdout, "fingerprints-built")["fingerprints"]} == {"email", "customer_id"}
    listed = run("fingerprint", "list", "-f", "json")
    rows = check(listed.stdout, "fingerprints")["fingerprints"]
    assert {r["people"] for r in rows if r["field"] == "customer_id"} == {PEOPLE} and "bits" not in listed.stdout
    matched = run("fingerprint", "match", "shadow", "-f", "json")
    links = check(matched.stdout, "fingerprint-match")["links"]
    assert [(x["collection"], x["source_collection"]) for x in links] == [("shadow.members", "public.customers")]
    text = run("fingerprint", "match", "shadow")
    assert "shadow.shadow.members holds a copy of prod.public.customers: about" in text.stdout
    assert "in fields member_email, ref" in text.stdout
    scanned = json.loads(run("scan", "shadow", "-f", "json").stdout)  # a scan reports the copies it finds
    assert [(x["collection"], x["via"], x["fields"]) for x in scanned["copy_links"]] == [
        ("shadow.members", "fingerprint", ["member_email", "ref"])]
    assert abs(scanned["copy_links"][0]["people"] - COPIED) <= COPIED * 0.10
    assert "holds a copy of prod.public.customers" in run("scan", "shadow").stdout
    unset = run("fingerprint", "match", "shadow", **{KEY_ENV: ""})
    assert unset.returncode == 2 and "discovery.key_env" in unset.stderr and "/dev/urandom" in unset.stderr
    short = run("fingerprint", "build", "prod", **{KEY_ENV: "c2hvcnQ="})
    assert short.returncode == 2 and "holds 5 bytes" in short.stderr


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    from built_servers import start_opensearch, stop_opensearch

    server = start_opensearch(secured=False)
    yield server
    stop_opensearch(server)


def test_a_document_copy_in_opensearch_is_linked_through_nested_and_list_fields(
        built: Path, node: Any, prod: dict[str, list[Any]]) -> None:
    import json

    chosen = random.Random(9).sample(range(PEOPLE), 1200)
    docs = [{"contact": {"mail": prod["email"][i]}, "cid": 10_000_000 + i, "seen": [f"web-{n % 7}"]}
            for n, i in enumerate(chosen)]
    body = "".join(f'{{"index": {{}}}}\n{json.dumps(d)}\n' for d in docs).encode()
    status, _ = node.request("POST", "/crm_export/_bulk?refresh=true", body)
    assert status == 200
    with Catalog(built) as cat:
        links = fp.match(node.store("10.20.0.9:9200"), cat, KEY)
    link = _one(links, "crm_export")
    assert dict(zip(link.fields, link.source_fields, strict=True)) == {"contact.mail": "email", "cid": "customer_id"}
    assert abs(link.people - 1200) <= 120 and link.share == pytest.approx(0.24, abs=0.03)
