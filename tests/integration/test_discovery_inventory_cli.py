"""``piiguard stores`` and ``piiguard adopt`` over an inventory a sweep recorded (through the
catalog's own ``record_discovered``, as ``discover`` records it), and the critical finding as
``piiguard show check`` documents it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import jsondoc
import pytest

from piiguard.catalog import Catalog
from piiguard.config import load_config
from piiguard.discovery import inventory
from piiguard.discovery.base import Discovered, Endpoint, Kind, Service

CONFIG = """# the company's stores (a comment adopt must keep)
catalog: {catalog}
stores:
  - name: prod   # production customers
    engine: postgres
    host: localhost
    port: 5433
    password_env: PROD_PG_PASSWORD
    tags: {{env: prod}}
# end of the store list
policy: {{}}
"""


def cli(*args: str, code: int = 0) -> str:
    """The real command (``python -m piiguard``): its error boundary, exit code and stderr too."""
    run = subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "400"})  # a table row on one line
    assert run.returncode == code, run.stdout + run.stderr
    return run.stdout if code == 0 else run.stdout + run.stderr


@pytest.fixture
def swept(tmp_path: Path) -> tuple[Path, Path]:
    """A config with prod, and a catalog in which a sweep saw prod, an open OpenSearch copy and a
    Redis that asks for a password (both unregistered), and a memcached."""
    catalog = tmp_path / "catalog.db"
    config = tmp_path / "piiguard.yaml"
    config.write_text(CONFIG.format(catalog=catalog))
    config.chmod(0o640)
    stores = load_config(config).stores
    found = []
    for svc, is_open in [(Service(Endpoint("127.0.0.1", 5433), Kind.STORE, "postgres", "PostgreSQL", "15.8"), False),
                         (Service(Endpoint("127.0.0.3", 9200), Kind.STORE, "opensearch", "OpenSearch", "2.11.1"), True),
                         (Service(Endpoint("127.0.0.4", 6379), Kind.STORE, "redis", "Redis", None), False),
                         (Service(Endpoint("127.0.0.4", 11211), Kind.IDENTIFY_ONLY, "memcached"), False)]:
        item = Discovered(svc, inventory.registered_at(svc, stores), open=is_open)
        finding = inventory.unregistered_finding(item)
        found.append(Discovered(item.service, item.registered, (finding,) if finding else (), open=is_open))
    with Catalog(catalog) as cat:
        cat.record_discovered(found, at="2026-12-01T03:00:00+00:00")
        cat.record_discovered(found, at="2026-12-02T03:00:00+00:00")
        cat.record_findings([f for d in found for f in d.findings])
    return config, catalog


def test_stores_folds_registered_and_lists_unregistered(swept: tuple[Path, Path]) -> None:
    config, catalog = swept
    doc = jsondoc.check(cli("stores", "-c", str(config), "--catalog", str(catalog), "--format", "json"), "stores")
    prod, search, cache, memcached = doc["stores"]
    assert (prod["name"], prod["configured"], prod["discovered"]["registered"]) == ("prod", True, True)
    assert prod["discovered"]["address"] == "127.0.0.1:5433" and prod["last_check"] is None
    assert prod["discovered"]["first_seen"].startswith("2026-12-01") and prod["credentials"]["kind"] == "env"
    assert (search["name"], search["configured"], search["engine"]) == ("127.0.0.3:9200", False, "opensearch")
    seen = search["discovered"]
    assert (seen["registered"], seen["open"], seen["product"], seen["version"]) == (False, True, "OpenSearch",
                                                                                    "2.11.1")
    assert (seen["first_seen"], seen["last_seen"]) == ("2026-12-01T03:00:00+00:00", "2026-12-02T03:00:00+00:00")
    assert search["last_check"]["failing"] == ["discovery.unregistered-store"]
    assert (cache["name"], cache["discovered"]["open"]) == ("127.0.0.4:6379", False)
    assert memcached["discovered"]["kind"] == "identify-only"
    text = " ".join(cli("stores", "-c", str(config), "--catalog", str(catalog)).split())
    assert "seen by discovery at 127.0.0.1:5433" in text and "(unregistered)" in text
    assert "OPEN from outside" in text and "asks for credentials" in text


def test_the_finding_is_critical_for_the_open_one_and_documented(swept: tuple[Path, Path]) -> None:
    _, catalog = swept
    with Catalog(catalog) as cat:
        rows = {r[0]: r for r in cat.findings()}
    assert rows["127.0.0.3:9200"][1] == "discovery.unregistered-store"
    assert set(rows) == {"127.0.0.3:9200", "127.0.0.4:6379", "127.0.0.4:11211"}  # prod is registered: none
    run = subprocess.run([sys.executable, "-m", "piiguard", "show", "check", "discovery.unregistered-store"],
                         capture_output=True, text=True, timeout=120, env={**os.environ})
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert "A data store that no piiguard.yaml entry names." in out and "piiguard adopt" in out
    assert "critical" in out.lower()


def test_adopt_prints_then_writes_keeping_the_file(swept: tuple[Path, Path]) -> None:
    config, catalog = swept
    before = config.read_text()
    if os.geteuid() == 0:
        os.chown(config, 4321, 4321)  # an operator's file, written by root: it stays theirs
    printed = cli("adopt", "127.0.0.3:9200", "--name", "search-copy", "-c", str(config), "--catalog", str(catalog))
    assert "name: \"search-copy\"" in printed and "password_env: SEARCH_COPY_PASSWORD" in printed
    assert config.read_text() == before  # printing changes nothing
    cli("adopt", "127.0.0.3:9200", "--name", "search-copy", "--write", "-c", str(config), "--catalog", str(catalog))
    after = config.read_text()
    assert after.startswith(before.split("# end of the store list")[0])  # comments and lines as they were
    assert "# end of the store list" in after and "policy: {}" in after
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert os.geteuid() != 0 or (config.stat().st_uid, config.stat().st_gid) == (4321, 4321)
    cli("validate", "--skip-env", str(config))  # the file passes `piiguard validate` (the variable is to set)
    stores = {s.name: s for s in load_config(config).stores}
    assert stores["search-copy"].engine == "opensearch" and stores["search-copy"].host == "127.0.0.3"
    assert stores["search-copy"].tags["discovered"] == "2026-12-01T03:00:00+00:00"
    doc = jsondoc.check(cli("stores", "-c", str(config), "--catalog", str(catalog), "--format", "json"), "stores")
    adopted = next(s for s in doc["stores"] if s["name"] == "search-copy")
    assert adopted["configured"] and adopted["discovered"]["registered"]  # folded before the next sweep
    assert "127.0.0.3:9200" not in [s["name"] for s in doc["stores"]]
    # again: the address is now registered, and the name is taken
    out = cli("adopt", "127.0.0.3:9200", "--name", "other", "--write", "-c", str(config), "--catalog", str(catalog),
              code=2)
    assert "already registered as store 'search-copy'" in " ".join(out.split())
    out = cli("adopt", "127.0.0.4:6379", "--name", "prod", "--write", "-c", str(config), "--catalog", str(catalog),
              code=2)
    assert "a store named 'prod' is already configured" in out
    assert config.read_text() == after


def test_adopt_into_a_json_config_appends_to_the_flow_list(swept: tuple[Path, Path], tmp_path: Path) -> None:
    _, catalog = swept
    config = tmp_path / "piiguard.json.yaml"
    config.write_text(json.dumps({"stores": [{"name": "a", "engine": "sqlite", "path": str(tmp_path / "a.db")}]}))
    cli("adopt", "127.0.0.4:6379", "--name", "cache", "--write", "-c", str(config), "--catalog", str(catalog))
    data = json.loads(config.read_text())  # still JSON
    assert [s["name"] for s in data["stores"]] == ["a", "cache"] and "user" not in data["stores"][1]


@pytest.mark.parametrize("address, said", [
    ("127.0.0.9:9200", "127.0.0.9:9200 is not in the inventory"),
    ("localhost:9200", "is not an address"),
    ("127.0.0.3", "is not an address"),
    ("127.0.0.3:99999", "is not an address"),
    ("[fd00::zz]:5432", "is not an address"),
])
def test_adopt_refuses_an_address_it_cannot_adopt(swept: tuple[Path, Path], address: str, said: str) -> None:
    config, catalog = swept
    out = " ".join(cli("adopt", address, "--name", "x", "-c", str(config), "--catalog", str(catalog), code=2).split())
    assert said in out and "hint:" in out


def test_adopt_refuses_bad_names_and_unscanned_engines(swept: tuple[Path, Path]) -> None:
    config, catalog = swept
    before = config.read_text()
    for name in ("a b", "-x", "x\n  - name: injected", "é"):
        out = cli("adopt", "127.0.0.3:9200", "--name", name, "--write", "-c", str(config), "--catalog", str(catalog),
                  code=2)
        assert "cannot name a store" in out
    out = cli("adopt", "127.0.0.4:11211", "--name", "mc", "-c", str(config), "--catalog", str(catalog), code=2)
    assert "does not scan" in out
    # the hint names a command that exists and lists what can be adopted
    assert "(piiguard list connectors)" in " ".join(out.split())
    assert "clickhouse" in cli("list", "connectors")
    assert config.read_text() == before


@pytest.mark.parametrize("said", ["\x1b]0;owned\x07Redis", "\u202eRedis", "Redis\n  - name: injected", "\x00" * 3])
def test_a_hostile_banner_in_the_inventory_cannot_act_on_the_terminal(tmp_path: Path, said: str) -> None:
    catalog = tmp_path / "c.db"
    svc = Service(Endpoint("127.0.0.5", 6379), Kind.STORE, "redis", said, said)  # as if recorded uncleaned
    with Catalog(catalog) as cat:
        cat.record_discovered([Discovered(svc)])
    text = cli("stores", "--catalog", str(catalog))
    assert not any(c in text for c in ("\x1b", "\x07", "\u202e", "\x00")) and "\n  - name: injected" not in text
    doc = jsondoc.check(cli("stores", "--catalog", str(catalog), "--format", "json"), "stores")
    assert doc["stores"][0]["discovered"]["product"] == said  # escaped in the document, parsed back exactly
    entry = cli("adopt", "127.0.0.5:6379", "--name", "cache", "--catalog", str(catalog))
    assert said not in entry and "injected" not in entry  # the entry holds no banner text at all


def test_adopt_ipv6_through_a_symlinked_config(tmp_path: Path) -> None:
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        cat.record_discovered([Discovered(Service(Endpoint("fd00::5", 5432), Kind.STORE, "postgres"))])
    real = tmp_path / "etc" / "piiguard.yaml"
    real.parent.mkdir()
    real.write_text("stores: []  # none yet\n")
    link = tmp_path / "piiguard.yaml"
    link.symlink_to(real)
    doc = jsondoc.check(cli("stores", "--catalog", str(catalog), "--format", "json"), "stores")
    assert doc["stores"][0]["name"] == "[fd00::5]:5432"
    cli("adopt", "[fd00:0::5]:5432", "--name", "v6", "--write", "-c", str(link), "--catalog", str(catalog))
    assert link.is_symlink() and "# none yet" in real.read_text()  # the link stays; its target got the entry
    (store,) = load_config(link).stores
    assert (store.host, store.port) == ("fd00::5", 5432)
    doc = jsondoc.check(cli("stores", "-c", str(link), "--catalog", str(catalog), "--format", "json"), "stores")
    assert [(s["name"], s["discovered"]["registered"]) for s in doc["stores"]] == [("v6", True)]
