"""``piiguard fingerprint build|list|match``: keyed sets of registered customers, and what matches them.

``build`` reads the e-mail fields and the subject key of registered collections whole and keeps a
Bloom filter of their keyed digests; ``list`` shows what is kept (counts, never bits); ``match STORE``
tells which registered collections another store holds a copy of, and how many people.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from piiguard.cli.common import CATALOG_HELP, FORMAT, Format, open_catalog, read_config
from piiguard.discovery.base import CopyLink
from piiguard.discovery.settings import DiscoverySettings
from piiguard.errors import PiiguardError, UsageError
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe

if TYPE_CHECKING:
    from piiguard.catalog import Catalog
    from piiguard.config import Config
    from piiguard.model import Store

log = logging.getLogger(__name__)
fingerprint_app = typer.Typer(help="Copy fingerprints: build keyed sets of registered customers' keys and e-mails, "
                              "list them, match another store against them.")
CONFIG = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml if present)")
CATALOG = typer.Option(None, "--catalog", help=CATALOG_HELP)


def link_record(link: CopyLink) -> dict[str, object]:
    return {"store": link.store, "collection": link.collection, "source_store": link.source_store,
            "source_collection": link.source_collection, "via": link.via, "fields": list(link.fields),
            "source_fields": list(link.source_fields), "people": link.people, "share": link.share,
            "sampled": link.sampled, "matched": link.matched, "from_sample": link.from_sample}


def where(store: str, collection: str) -> str:
    """``store.collection``, the database written once: a store named by URL (``127.0.0.4:3306/shadow``)
    whose collection starts with that database (``shadow.members``) reads ``127.0.0.4:3306/shadow.members``."""
    if store.endswith("/"):
        return store + collection
    head, slash, database = store.rpartition("/")
    if slash and database and collection.startswith(database + "."):
        return f"{head}/{collection}"
    return f"{store}.{collection}"


def link_line(link: CopyLink) -> str:
    """``holds a copy of prod.customers: about 3,000 people, 60 % of them, in fields member_email, ref``."""
    how = {"fingerprint": "", "canary": " (canary)", "copy-registry": " (registered copy)"}.get(link.via, "")
    fields = f", in fields {', '.join(link.fields)}" if link.fields and link.via != "copy-registry" else ""
    return (f"{where(link.store, link.collection)} holds a copy of "
            f"{where(link.source_store, link.source_collection)}{how}: "
            f"about {link.people:,} people{' (estimated from a sample)' if link.from_sample else ''}, "
            f"{link.share:.0%} of them{fields}")


@fingerprint_app.command("build")
def build(targets: list[str] = typer.Argument(None, metavar="[STORE[.COLLECTION]]...",
                                              help="registered stores or collections (default: every store)"),
          config: Path = CONFIG, catalog: Path = CATALOG, fmt: Format = FORMAT) -> None:
    """Fingerprint registered collections: their e-mail fields and subject key, read whole, kept as keyed
    Bloom filters in the catalog (never a value)."""
    from piiguard.discovery import fingerprints

    cfg = read_config(config)
    if cfg is None:
        raise UsageError("fingerprint build needs the configuration: its stores and discovery.key_env",
                         hint="pass --config piiguard.yaml")
    key = fingerprints.load_key(cfg.discovery)
    with open_catalog(catalog, cfg) as cat:
        built = fingerprints.build(cfg, cat, key, targets or ())
    rows = [{"store": b.store, "collection": b.collection, "field": b.field, "kind": b.kind.value,
             "people": b.people, "capacity": b.capacity, "hashes": b.hashes, "key_id": b.key_id,
             "values": b.values} for b in built]
    if fmt is Format.json:
        emit("fingerprints-built", {"fingerprints": rows})
        return
    if not rows:
        new_console().print("nothing fingerprinted: no scanned collection with an e-mail field or customer key")
        return
    for r in rows:
        new_console().print(safe(f"{r['store']}.{r['collection']}.{r['field']} ({r['kind']}): {r['people']:,} people "
                             f"from {r['values']:,} values, capacity {r['capacity']:,}, key {r['key_id']}"))


@fingerprint_app.command("list")
def list_(config: Path = CONFIG, catalog: Path = CATALOG, fmt: Format = FORMAT) -> None:
    """The fingerprints kept: store, collection, field, kind, people, capacity, key id, built (never bits)."""
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        rows = cat.fingerprints(with_bits=False)
    if fmt is Format.json:
        emit("fingerprints", {"fingerprints": [{k: r[k] for k in ("store", "collection", "field", "kind", "people",
                                                                   "capacity", "hashes", "key_id", "built")}
                                               for r in rows]})
        return
    if not rows:
        new_console().print("no fingerprints: run `piiguard fingerprint build`")
        return
    table = Table("store", "collection", "field", "kind", "people", "capacity", "key id", "built")
    for r in rows:
        table.add_row(*(safe(str(r[k])) for k in ("store", "collection", "field", "kind")), f"{r['people']:,}",
                      f"{r['capacity']:,}", safe(r["key_id"]), safe(r["built"]))
    new_console().print(table)


def copy_links(store: Store, catalog: Catalog, key: bytes, *, limit: int = 100_000,
               collections: Sequence[str] = ()) -> list[CopyLink]:
    """The store's copy links by both proofs, as ``discover`` finds them: fingerprints kept, and canaries of
    the planted (or since removed) sets under this key (each hit recorded by :func:`canaries.find`)."""
    from piiguard.discovery import canaries, fingerprints

    links = fingerprints.match(store, catalog, key, limit=limit, collections=collections)
    return links + canaries.find(store, catalog, key, limit=limit, collections=collections)


def has_proofs(catalog: Catalog) -> bool:
    """Whether matching can find anything: fingerprints kept, or canaries planted (or since removed)."""
    return bool(catalog.fingerprints(with_bits=False)) or any(
        c["status"] in ("planted", "removed") for c in catalog.canaries())


def resolve(name: str, config: Config | None, catalog: Catalog) -> Store:
    """A configured name, a URL, or an address the inventory knows as a store (``127.0.0.4:3306``),
    read as discovery read it (:func:`piiguard.response.found.found_stores`, no credentials)."""
    from piiguard.response.found import found_stores
    from piiguard.scanner import resolve_stores

    configured = {s.name: s for s in config.stores} if config is not None else {}
    found = found_stores(catalog, [name], configured)
    if name in found:
        return found[name]
    try:
        return resolve_stores([name], config)[0]
    except UsageError as exc:
        raise UsageError(exc.message, hint="give a store name from the configuration, a URL, or the address of a "
                         "store `piiguard stores` lists") from exc


@fingerprint_app.command("match")
def match(store: str = typer.Argument(..., help="a configured store name, a store URL, or the address of a "
                                      "discovered store (piiguard stores)"),
          collection: list[str] = typer.Option(None, "--collection", help="only these collections"),
          limit: int = typer.Option(100_000, "--limit", min=1,
                                    help="records read per collection: a larger one is sampled at random"),
          config: Path = CONFIG, catalog: Path = CATALOG, fmt: Format = FORMAT) -> None:
    """Match a store's values against the fingerprints: which registered collections it holds a copy of,
    how many people, in which of its fields. Links are recorded in the catalog."""
    from piiguard.discovery import fingerprints

    cfg = read_config(config)
    key = fingerprints.load_key(cfg.discovery if cfg else DiscoverySettings())
    with open_catalog(catalog, cfg) as cat:
        target = resolve(store, cfg, cat)
        links = copy_links(target, cat, key, limit=limit, collections=collection or ())
        cat.record_links(links)
    if fmt is Format.json:
        emit("fingerprint-match", {"store": target.name, "links": [link_record(x) for x in links]})
        return
    if not links:
        new_console().print(safe(f"{target.name}: no copy of a fingerprinted collection found"))
    for link in links:
        new_console().print(safe(link_line(link)))


def scan_links(targets: list[str], config: Config | None, catalog: Catalog) -> list[CopyLink] | None:
    """After a scan: the copy links of the scanned stores (fingerprints and canaries), recorded; None when
    no fingerprint is kept and no canary planted (the scan's output is then as it always was). A missing
    key or an unreadable store is logged and leaves the links out: the scan's own result stands."""
    if config is None or not has_proofs(catalog):
        return None
    from piiguard.discovery import fingerprints
    from piiguard.scanner import resolve_stores

    try:
        key = fingerprints.load_key(config.discovery)
    except PiiguardError as exc:
        log.warning("copy links not matched: %s", exc)
        return None
    links: list[CopyLink] = []
    for store in resolve_stores(targets, config):
        try:
            links += copy_links(store, catalog, key)
        except PiiguardError as exc:
            log.warning("copy links of %s not matched: %s", store.name, exc)
    catalog.record_links(links)
    return links
