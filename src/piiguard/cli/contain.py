"""``piiguard contain list|undo`` and ``piiguard approve``: the containment steps watch planned."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.cli.common import FORMAT, Format, open_catalog, read_config
from piiguard.config import Config
from piiguard.contain.service import Containor
from piiguard.errors import UsageError
from piiguard.model import Store
from piiguard.report import records
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe
from piiguard.scanner import resolve_stores

contain_app = typer.Typer(help="Containment steps: list and undo.", no_args_is_help=True)


def _store(catalog: Catalog, containment_id: int, target: str | None, cfg: Config | None) -> Store:
    row = catalog.containment(containment_id)
    if row is None:
        raise UsageError(f"no containment {containment_id}", hint="see `piiguard contain list`")
    plugins.load()
    name = str(row["store"])
    if target:
        (store,) = resolve_stores([target], cfg)
    elif cfg is not None and cfg.store(name) is not None:
        store = cfg.store(name)  # type: ignore[assignment]
    else:
        raise UsageError(f"store {name!r} is not in the configuration", hint="give its URL after the id")
    return store


@contain_app.command("list")
def list_containments(catalog: Path = typer.Option(None, "--catalog", help="catalog file"),
                      config: Path = typer.Option(None, "--config", "-c"), fmt: Format = FORMAT) -> None:
    """Every planned, applied, verified, failed or undone containment, with its steps."""
    with open_catalog(catalog, read_config(config)) as cat:
        rows = [records.containment(c) for c in cat.containments()]
    if fmt is Format.json:
        emit("containments", {"containments": rows})
        return
    table = Table("id", "store", "status", "steps", "undo", "updated", "note")
    for c in rows:
        table.add_row(str(c["id"]), safe(c["store"]), safe(c["status"]), Text("\n").join(map(safe, c["steps"])),
                      Text("\n").join(map(safe, c["undo"])), safe(c["updated"]), safe(c["note"]))
    new_console().print(table)


@contain_app.command("undo")
def undo(containment_id: int, target: str = typer.Argument(None, help="the store's URL if not in the config"),
         config: Path = typer.Option(None, "--config", "-c"), catalog: Path = typer.Option(None, "--catalog")) -> None:
    """Put back what a containment changed."""
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        store = _store(cat, containment_id, target, cfg)
        Containor(cat).undo(containment_id, store)
    new_console().print(f"containment {containment_id} undone")


def approve(containment_id: int, target: str = typer.Argument(None, help="the store's URL if not in the config"),
            config: Path = typer.Option(None, "--config", "-c"),
            catalog: Path = typer.Option(None, "--catalog")) -> None:
    """Apply a planned containment (approve mode), then verify it by re-probing."""
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        store = _store(cat, containment_id, target, cfg)
        status = Containor(cat).apply(containment_id, store)
    new_console().print(f"containment {containment_id}: {status}")
    if status == "failed":
        raise typer.Exit(1)
