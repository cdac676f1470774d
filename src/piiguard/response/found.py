"""Scope on a store nobody registered: an incident whose store is a discovered address
(``10.20.0.7:9200``), not a name in piiguard.yaml.

Why it needs its own help: the configuration has no entry for it, and it was never scanned. The
inventory says what engine answers there (so a Store can be built to read it — anonymously, as
anyone could: it was open), and the copy links (fingerprint or canary) say which registered
collection it copies, which of its fields hold which of the source's fields, and so which PII types
those fields hold (the source's scan). The scope report names that lineage — "copy of prod.customers
(via fingerprint, ~3,000 people)" — and, when the store can no longer be reached, says so and keeps
the last known links rather than claiming nobody was in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from piiguard.catalog import Catalog
from piiguard.discovery.base import CopyLink, Endpoint, Kind, Service, clean
from piiguard.model import Store


def store_from_row(row: Mapping[str, Any], name: str) -> Store:
    """The Store a found service is read as, from its inventory row: the same Store discovery's outside
    checks used (``identify.as_store``: the engine at its address, TLS and ports as the probe saw
    them), no credentials."""
    from piiguard.discovery.identify import as_store

    service = Service(Endpoint(str(row["host"]), int(row["port"])), Kind(row["kind"]), row["engine"],
                      row["product"], row["version"], str(row["evidence"] or ""))
    also = [int(p) for p in row.get("also") or ()]
    return as_store(service, name, tcp_port=also[0] if also else None)


def found_stores(catalog: Catalog, names: Iterable[str], configured: Mapping[str, Store]) -> dict[str, Store]:
    """The incident's stores that are discovered addresses, not configured names, as Stores; an
    address the inventory does not know (or knows as no store) is left out."""
    wanted: dict[tuple[str, int], str] = {}
    for name in names:
        if name in configured:
            continue
        try:
            endpoint = Endpoint.parse(name)
        except ValueError:
            continue
        wanted[(endpoint.host, endpoint.port)] = name
    out: dict[str, Store] = {}
    for row in catalog.discovered(include_gone=True):
        at = wanted.get((str(row["host"]), int(row["port"])))
        if at is not None and row["engine"] and row["kind"] == "store":
            out[at] = store_from_row(row, at)
    return out


def held_by_links(catalog: Catalog, links: Sequence[CopyLink]) -> dict[str, dict[str, str]]:
    """Per copied collection: each matched field of the copy and the PII type its source field holds
    (from the source's latest scan; a source field the scan did not type is left out)."""
    out: dict[str, dict[str, str]] = {}
    types: dict[str, dict[tuple[str, str], str]] = {}
    for link in links:
        if link.source_store not in types:
            types[link.source_store] = {(c, f): t for c, f, t, _ in catalog.pii_fields(link.source_store)}
        by_field = types[link.source_store]
        for copied, source in zip(link.fields, link.source_fields, strict=False):
            pii = by_field.get((link.source_collection, source))
            if pii is not None:
                out.setdefault(link.collection, {})[copied] = pii
    return out


def lineage(links: Sequence[CopyLink]) -> list[str]:
    """One line per link, names and counts only: what the found store is a copy of, and how it is known."""
    out = []
    for link in links:
        people = f", ~{link.people:,} people" if link.people else ""
        share = f" ({link.share:.0%} of the source)" if link.share else ""
        fields = ", ".join(clean(f, 60) or "?" for f in link.fields)
        out.append(f"{clean(link.collection, 80)}: copy of {clean(link.source_store, 60)}."
                   f"{clean(link.source_collection, 80)} (via {link.via}{people}{share})"
                   + (f", in fields {fields}" if fields else ""))
    return out
