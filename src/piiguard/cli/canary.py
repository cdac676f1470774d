"""``piiguard canary plant|list|remove``: synthetic customers that prove a copy's lineage and a leak's use.

``plant`` and ``remove`` print their plan and change nothing without ``--apply``. Values are never
printed (see :mod:`piiguard.discovery.canaries`); the key is the discovery key
(``discovery.key_env`` / ``discovery.key_file``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from piiguard.cli.common import CATALOG_HELP, FORMAT, Format, open_catalog, read_config
from piiguard.config import Config
from piiguard.errors import UsageError
from piiguard.model import Store
from piiguard.report.document import emit, iso
from piiguard.report.terminal import new_console, safe

canary_app = typer.Typer(help="Canary customers: plant them in production, list them, remove them.",
                         no_args_is_help=True)
CATALOG = typer.Option(None, "--catalog", help=CATALOG_HELP)
CONFIG = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml if present)")
APPLY = typer.Option(False, "--apply", help="do it (without: print the plan, change nothing)")
TIMEOUT = typer.Option(10.0, "--timeout", help="seconds to wait for the store (each network step)")


def _config(path: Path | None) -> Config:
    config = read_config(path)
    if config is None:
        raise UsageError("canaries need a configuration: the store, and discovery's key and canary domain",
                         hint="pass --config piiguard.yaml")
    return config


def _target(config: Config, target: str) -> tuple[Store, str]:
    name, dot, collection = target.partition(".")
    store = config.store(name)
    if not dot or store is None:
        known = ", ".join(s.name for s in config.stores) or "none"
        raise UsageError(f"{target[:80]!r} is not STORE.COLLECTION of a configured store (stores: {known})",
                         hint="e.g. piiguard canary plant prod.public.customers --count 20")
    return store, collection


def _print(lines: list[str]) -> None:
    out = new_console(highlight=False, soft_wrap=True)
    for line in lines:
        out.print(safe(line))


@canary_app.command("plant")
def plant(target: str = typer.Argument(..., metavar="STORE.COLLECTION"),
          count: int = typer.Option(10, "--count", "-n", help="how many canary customers"),
          apply: bool = APPLY, catalog: Path = CATALOG, config: Path = CONFIG, timeout: float = TIMEOUT) -> None:
    """Plan (then, with --apply, insert in one transaction) synthetic customers with unique values."""
    from piiguard.discovery import canaries
    from piiguard.discovery.fingerprints import load_key

    cfg = _config(config)
    store, collection = _target(cfg, target)
    key = load_key(cfg.discovery)
    with open_catalog(catalog, cfg) as cat:
        planned = canaries.plan(cfg, cat, key, store, collection, count, timeout=timeout)
        _print(planned.lines())
        if not apply:
            _print(["nothing was changed: run again with --apply to plant"])
            return
        canary_id = canaries.apply(cfg, cat, key, store, planned, timeout=timeout)
    _print([f"planted canary set {canary_id}: {planned.count} row(s) in {store.name}.{collection}"])


@canary_app.command("list")
def list_sets(catalog: Path = CATALOG, config: Path = CONFIG, fmt: Format = FORMAT) -> None:
    """Every canary set: where, how many, which field kinds, its status, and how often it was seen."""
    with open_catalog(catalog, read_config(config)) as cat:
        rows = [{"id": c["id"], "store": c["store"], "collection": c["collection"], "count": c["count"],
                 "fields": c["fields"], "status": c["status"], "created": iso(c["created"]),
                 "planted": iso(c["planted"]), "removed": iso(c["removed"]),
                 "hits": [{"at": iso(h["at"]), **{k: h[k] for k in ("channel", "source", "detail", "incident_id")}}
                          for h in cat.canary_hits(int(c["id"]))]}
                for c in cat.canaries()]
    if fmt is Format.json:
        emit("canaries", {"canaries": rows})
        return
    if not rows:
        new_console().print("no canary sets: plant one with piiguard canary plant STORE.COLLECTION --count N")
        return
    table = Table("id", "where", "count", "fields", "status", "hits", "last hit")
    for r in rows:
        last = r["hits"][-1] if r["hits"] else None
        table.add_row(str(r["id"]), safe(f"{r['store']}.{r['collection']}"), str(r["count"]),
                      safe(", ".join(f"{f}: {k}" for f, k in r["fields"].items())), safe(r["status"]),
                      str(len(r["hits"])), safe(f"{last['at']} {last['channel']} {last['source']}") if last else "-")
    new_console().print(table)


@canary_app.command("remove")
def remove(canary_id: int = typer.Argument(..., metavar="ID"), apply: bool = APPLY, catalog: Path = CATALOG,
           config: Path = CONFIG, timeout: float = TIMEOUT) -> None:
    """Plan (then, with --apply, do) the removal of exactly the rows a canary set planted."""
    from piiguard.discovery import canaries
    from piiguard.discovery.fingerprints import load_key

    cfg = _config(config)
    key = load_key(cfg.discovery)
    with open_catalog(catalog, cfg) as cat:
        removal = canaries.remove(cfg, cat, key, canary_id, apply=apply, timeout=timeout)
    _print(removal.lines())
    if not apply:
        _print(["nothing was changed: run again with --apply to remove"])
