"""Copies into OpenSearch own only what they made: a foreign index or alias under the copy's name is
refused (and kept) unless ``--replace``; with it, a foreign alias moves but the index behind it stays;
the registry records the per-copy index behind the alias, and expiry removes only that."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from built_servers import OpenSearch, start_opensearch, stop_opensearch
from conftest import pg_connect
from leak import Leaks
from servers import PASSWORD, Server

from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.errors import UsageError
from piiguard.masking.ownership import Action, TargetState, apply_expiry, plan_expiry
from piiguard.masking.pipeline import CopyPlan, plan_copy, run_copy
from piiguard.model import Store

PW = "PIIGUARD_OS_COPY_PW"


@pytest.fixture(scope="module")
def node() -> Iterator[OpenSearch]:
    server = start_opensearch(secured=False)  # one light node; its failing checks are accepted as a risk
    yield server
    stop_opensearch(server)


@pytest.fixture
def prod(postgres: Server, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv(PW, PASSWORD)
    with pg_connect(postgres) as conn:
        conn.execute("DROP TABLE IF EXISTS os_people")
        conn.execute("CREATE TABLE os_people AS SELECT i AS customer_id, 'p' || i || '@example.com' AS email, "
                     "'gold' AS plan FROM generate_series(1, 300) i")
    return Store("prod", "postgres", host="127.0.0.1", port=postgres.port, database="postgres", user="postgres",
                 password_env=PW)


def plan(prod: Store, node: OpenSearch, target: str, cat: Catalog, **kw: Any) -> CopyPlan:
    cfg = parse_config({"masking": {"prod.public.os_people": {"plan": "keep"}}})
    return plan_copy(prod, "os_people", node.store(), target, config=cfg, catalog=cat,
                     accepted_risk="a throwaway test node", **kw)


def copy(p: CopyPlan, cat: Catalog) -> int:
    return run_copy(p, b"k" * 32, cat, owner="bi", purpose="search", expires=date(2030, 1, 1)).copy_id


def count(node: OpenSearch, index: str) -> int:
    node.request("POST", f"/{index}/_refresh")
    return int(node.json("GET", f"/{index}/_count")["count"])


def seed(node: OpenSearch, index: str, n: int) -> None:
    body = "".join(f'{{"index": {{}}}}\n{{"n": {i}}}\n' for i in range(n)).encode()
    status, _ = node.request("POST", f"/{index}/_bulk?refresh=true", body)
    assert status == 200


def test_a_foreign_index_or_alias_is_refused_and_replace_keeps_the_index_behind_an_alias(
        node: OpenSearch, prod: Store, tmp_path: Path) -> None:
    seed(node, "crm", 25)
    with Catalog(tmp_path / "c.db") as cat:
        refused = plan(prod, node, "crm", cat)
        assert refused.target_owner is not None and refused.target_owner.state is TargetState.FOREIGN
        with pytest.raises(UsageError, match="not a piiguard copy") as error:
            copy(refused, cat)
        assert "--replace" in str(error.value.hint) and count(node, "crm") == 25
        assert node.json("GET", "/_cat/indices/crm-piiguard-*?format=json") == []  # nothing was staged
        seed(node, "orders_2024", 40)
        node.json("POST", "/_aliases", {"actions": [{"add": {"index": "orders_2024", "alias": "orders"}}]})
        with pytest.raises(UsageError, match="not a piiguard copy"):
            copy(plan(prod, node, "orders", cat), cat)
        assert list(node.json("GET", "/_alias/orders")) == ["orders_2024"]
        copy_id = copy(plan(prod, node, "orders", cat, replace=True), cat)
        assert list(node.json("GET", "/_alias/orders")) == [f"orders-piiguard-{copy_id}"]
        assert count(node, "orders") == 300 and count(node, "orders_2024") == 40  # the alias moved, its data stayed
        (record,) = cat.copies()
    assert [(o["kind"], o["name"]) for o in record["objects"]] == [("index", f"orders-piiguard-{copy_id}"),
                                                                  ("alias", "orders")]


def test_two_copies_behind_one_alias_expiring_the_first_keeps_the_second(
        node: OpenSearch, prod: Store, tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        p = plan(prod, node, "people_masked", cat)
        first, second = copy(p, cat), copy(p, cat)
        assert list(node.json("GET", "/_alias/people_masked")) == [f"people_masked-piiguard-{second}"]
        status, _ = node.request("HEAD", f"/people_masked-piiguard-{first}")
        assert status == 404  # the replaced copy's own index went with it
        assert [c["status"] for c in cat.copies()] == ["replaced", "active"]
        cat.db.execute("UPDATE copies SET expires = '2020-01-01', status = 'active' WHERE id = ?", (first,))
        cat.db.commit()
        (step,) = plan_expiry(cat, "2026-12-31", [node.store()])
        assert step.action is Action.NOT_OURS and step.remove == ()
        assert count(node, "people_masked") == 300
        cat.db.execute("UPDATE copies SET expires = '2020-01-01', status = 'removed' WHERE id = ?", (first,))
        cat.db.execute("UPDATE copies SET expires = '2020-01-01' WHERE id = ?", (second,))
        cat.db.commit()
        (step,) = plan_expiry(cat, "2026-12-31", [node.store()])
        done = apply_expiry(cat, dataclasses.replace(step))
    assert {o.name for o in done.removed} == {f"people_masked-piiguard-{second}"}  # the alias went with it
    status, _ = node.request("HEAD", "/people_masked")
    assert status == 404


def test_replacing_another_sources_copy_behind_an_alias_leaves_no_orphan_index(
        node: OpenSearch, prod: Store, postgres: Server, tmp_path: Path) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("DROP TABLE IF EXISTS os_members")
        conn.execute("CREATE TABLE os_members AS SELECT * FROM os_people LIMIT 120")
    with Catalog(tmp_path / "c.db") as cat:
        first = copy(plan(prod, node, "mixed", cat), cat)
        cfg = parse_config({"masking": {"prod.public.os_members": {"plan": "keep"}}})
        other = plan_copy(prod, "os_members", node.store(), "mixed", config=cfg, catalog=cat,
                          accepted_risk="a throwaway test node")
        assert other.target_owner is not None and other.target_owner.state is TargetState.FOREIGN  # another source
        second = copy(dataclasses.replace(other, replace=True), cat)
        assert [c["status"] for c in cat.copies()] == ["replaced", "active"]
    assert list(node.json("GET", "/_alias/mixed")) == [f"mixed-piiguard-{second}"] and count(node, "mixed") == 120
    status, _ = node.request("HEAD", f"/mixed-piiguard-{first}")
    assert status == 404  # piiguard's own replaced index is not left behind with nothing recording it


def test_a_list_column_is_a_native_array_of_masked_items(node: OpenSearch, tmp_path: Path, leaks: Leaks) -> None:
    """A JSON Lines export whose devices hold serials: in OpenSearch each copied document holds the
    serials as an array of pseudonyms (not JSON text), the device without one as null."""
    import json

    folder = tmp_path / "exports"
    folder.mkdir()
    lines = [{"member_id": f"mem-{i:05d}", "profile": {"email": f"m{i}@example.org"},
              "devices": [{"serial": f"SN-{i:08d}"}, {"mac": "3c:5a:b4:00:00:01"}]} for i in range(300)]
    (folder / "members.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    leaks.source(folder / "members.jsonl")
    leaks.seed((f"SN-{i:08d}" for i in range(300)), "serial")
    leaks.seed((f"m{i}@example.org" for i in range(300)), "email")
    raw = Store("raw", "files", path=str(folder))
    with Catalog(tmp_path / "c.db") as cat:
        p = plan_copy(raw, "members.jsonl", node.store(), "members-lists", catalog=cat,
                      accepted_risk="a throwaway test node")
        assert {r.field: r.masker for r in p.rules}["devices[].serial"] == "pseudonym"
        copy(p, cat)
    node.request("POST", "/members-lists/_refresh")
    hits = node.json("GET", "/members-lists/_search?size=1000")["hits"]["hits"]
    assert len(hits) == 300
    serials = [h["_source"]["devices[].serial"] for h in hits]  # _source keeps the keys as written
    assert all(isinstance(s, list) and len(s) == 2 and s[1] is None and not s[0].startswith("SN-") for s in serials)
    assert len({s[0] for s in serials}) == 300  # one pseudonym per serial
