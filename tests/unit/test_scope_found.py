"""What scope knows of a found store without reading it: which incident stores are discovered
addresses, and the lineage lines its copy links give — names and counts only, whatever they hold."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.discovery.base import CopyLink, Discovered, Endpoint, Kind, Service
from piiguard.model import Store
from piiguard.response.found import found_stores, held_by_links, lineage


def test_only_known_store_addresses_that_are_not_configured_are_found(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db", timeline_key=b"k" * 32) as cat:
        cat.record_discovered([
            Discovered(Service(Endpoint("10.20.0.7", 6379), Kind.STORE, "redis", "Redis")),
            Discovered(Service(Endpoint("10.20.0.8", 80), Kind.NOT_A_STORE, None, "nginx")),
            Discovered(Service(Endpoint("10.20.0.9", 5432), Kind.STORE, "postgres")),
        ])
        got = found_stores(cat, ["10.20.0.7:6379", "10.20.0.8:80", "10.20.0.9:5432", "10.20.0.1:1", "prod"],
                           {"10.20.0.9:5432": Store("10.20.0.9:5432", "postgres")})
    assert list(got) == ["10.20.0.7:6379"]
    store = got["10.20.0.7:6379"]
    assert (store.name, store.engine, store.host, store.port) == ("10.20.0.7:6379", "redis", "10.20.0.7", 6379)
    assert store.user is None and store.password_env is None and store.password_file is None  # anonymous


def test_fields_are_typed_by_the_source_field_they_matched_and_untyped_ones_left_out(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db", timeline_key=b"k" * 32) as cat:  # no scan of prod: nothing is typed
        link = CopyLink("10.20.0.7:6379", "member:*", "prod", "customers", "fingerprint", ("m", "r"), ("email", "id"))
        assert held_by_links(cat, [link]) == {}


@settings(max_examples=80, deadline=None)
@given(names=st.lists(st.text(max_size=120), min_size=4, max_size=4), people=st.integers(0, 10**8),
       share=st.floats(0, 1))
def test_lineage_lines_are_printable_whatever_the_names(names: list[str], people: int, share: float) -> None:
    collection, store, source, field = names
    [line] = lineage([CopyLink("a:1", collection, store, source, "canary", (field,), ("email",), people, share)])
    assert line.isprintable() and "via canary" in line and len(line) < 500
    assert (f"~{people:,} people" in line) is bool(people)
