"""``piiguard adopt ADDRESS --name NAME``: the piiguard.yaml entry of a store a sweep discovered.

Printed by default; ``--write`` adds it to the configuration file — as text appended to its
``stores:`` list, so comments and layout stay — after validating the whole result the way
``piiguard validate`` does, and replaces the file atomically (a reader sees the old file or the
new one). A name already used, or an address a configured store already is at, is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import typer

from piiguard import plugins, safefile
from piiguard.cli.common import CATALOG_HELP, DEFAULT_CONFIG, open_catalog, read_config
from piiguard.config import load_yaml, parse_config
from piiguard.discovery import inventory
from piiguard.discovery.base import Endpoint, Kind, Service
from piiguard.errors import ConfigError, UsageError


def adopt(address: str = typer.Argument(..., help="the discovered store's host:port ([v6]:port for IPv6)"),
          name: str = typer.Option(..., "--name", help="the name the store gets in piiguard.yaml"),
          write: bool = typer.Option(False, "--write", help="add the entry to the configuration file"),
          config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml)"),
          catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP)) -> None:
    """Print (or, with --write, add) the piiguard.yaml entry of a store piiguard discover found."""
    try:
        endpoint = Endpoint.parse(address)
    except ValueError as exc:
        raise UsageError(f"{address[:60]!r} is not an address: {exc}",
                         hint="give it as piiguard stores lists it: 10.0.0.5:5432, or [fd00::5]:5432") from None
    path = config or (Path(DEFAULT_CONFIG) if write or Path(DEFAULT_CONFIG).is_file() else None)
    if write and path is not None and not path.is_file():
        raise UsageError(f"{path} does not exist", hint="name the configuration file with --config PATH")
    cfg = read_config(path)
    with open_catalog(catalog, cfg) as cat:
        # by address, not by spelling: [fd00:0::5]:5432 is the [fd00::5]:5432 a sweep recorded
        row = next((r for r in cat.discovered() if r["port"] == endpoint.port
                    and inventory.same_ip(str(r["host"]), endpoint.host)), None)
        folded = next((r for r in cat.discovered() if endpoint.port in r["also"]
                       and inventory.same_ip(str(r["host"]), endpoint.host)), None)
    if row is None and folded is not None:
        at = Endpoint(str(folded["host"]), int(folded["port"])).address
        raise UsageError(f"{endpoint.address} is the native port of the ClickHouse found at {at}",
                         hint=f"adopt that address (piiguard adopt {at} --name NAME): its entry sets tcp_port")
    if row is None:
        raise UsageError(f"{endpoint.address} is not in the inventory of discovered stores",
                         hint="run piiguard discover first (piiguard stores lists what it found)")
    entry = inventory.adopt_entry(row, name)
    stores = cfg.stores if cfg else ()
    if any(s.name == name for s in stores):
        raise UsageError(f"a store named {name!r} is already configured", hint="choose another --name")
    service = Service(Endpoint(str(row["host"]), int(row["port"])), Kind(row["kind"]), row["engine"])
    there = inventory.registered_at(service, stores)
    if there is not None:
        raise UsageError(f"{service.endpoint.address} is already registered as store {there!r}",
                         hint="nothing to adopt: piiguard stores shows it under that name")
    if not write or path is None:
        typer.echo(entry, nl=False)
        return
    old = path.read_text(encoding="utf-8")
    new = inventory.with_entry(old, entry, str(path))
    try:
        parse_config(load_yaml(new, str(path)), source=str(path), schema=plugins.schema())
    except ConfigError as exc:
        raise UsageError(f"{path} would not validate with the entry added; it is unchanged",
                         hint="; ".join(str(p) for p in exc.problems)[:400] or "run piiguard validate") from exc
    before = path.stat()
    safefile.write(path.resolve(), new, force=True)
    os.chmod(path.resolve(), stat.S_IMODE(before.st_mode))  # the operator's file keeps its permissions
    if os.geteuid() == 0 and (before.st_uid, before.st_gid) != (0, 0):
        os.chown(path.resolve(), before.st_uid, before.st_gid)  # and its owner, when root wrote it
    typer.echo(entry, nl=False)
    typer.echo(f"added to {path}: set {inventory.env_name(name)} (and the user) before piiguard scans it", err=True)
