"""``piiguard stores``: the stores piiguard knows and what it last saw of each.

Configured stores come first, in the configuration's order; stores that only a scan by URL recorded
in the catalog follow (``configured: false``), then the stores a sweep (``piiguard discover``) found
at an address no configured store is at, named by that address. A store discovery saw where a
configured one is — by the configuration as it is now, so a store just adopted folds into its new
entry before the next sweep — is shown in the configured store's row ("seen by discovery at …").
Credentials are shown as their reference — the variable or file named in the configuration, and
whether it is there — and are never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from piiguard.cli.common import CATALOG_HELP, FORMAT, Format, open_catalog, read_config
from piiguard.discovery import inventory
from piiguard.discovery.base import Endpoint, Kind, Service
from piiguard.report import records
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe


def stores(catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
           config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml "
                                       "if present)"),
           fmt: Format = FORMAT) -> None:
    """The configured stores: engine, address, where their credentials are (never the values), and
    what the catalog holds of their last scan and last check; then the stores discovery found that no
    configuration names."""
    cfg = read_config(config)
    configured = {s.name: s for s in (cfg.stores if cfg else ())}
    with open_catalog(catalog, cfg) as cat:
        known = {k["name"]: k for k in cat.known_stores()}
        found: dict[str, dict[str, Any]] = {}
        for row in cat.discovered():
            if row["kind"] not in (Kind.STORE.value, Kind.IDENTIFY_ONLY.value):
                continue
            service = Service(Endpoint(row["host"], row["port"]), Kind(row["kind"]), row["engine"])
            found.setdefault(inventory.registered_at(service, tuple(configured.values()))
                             or service.endpoint.address, row)
        names = [*configured, *(n for n in known if n not in configured)]
        names += [n for n in found if n not in configured and n not in known]
        rows = [records.store(cat, name, configured=configured.get(name), known=known.get(name),
                              found=found.get(name)) for name in names]
    if fmt is Format.json:
        emit("stores", {"stores": rows})
        return
    if not rows:
        new_console().print("no stores: none in the configuration, none recorded by a scan")
        return
    table = Table("store", "engine", "address", "credentials", "last scan", "last check", "discovery")
    for s in rows:
        cred = s["credentials"]
        cred_text = "-" if cred is None else f"{cred['kind']} {cred['reference']}" + (
            "" if cred["present"] else " (not set)")
        scan = s["last_scan"]
        scan_text = "never" if scan is None else (
            f"{scan['scan_id']} {scan['started']} {scan['status']}: {', '.join(scan['pii_types']) or 'no PII'}"
            + (f"; ~{scan['subjects_estimate']:,} people ({scan['estimate_kind']})"
               if scan["subjects_estimate"] is not None else ""))
        check = s["last_check"]
        check_text = "never" if check is None else (
            f"{check['last_seen']}: " + ", ".join(f"{n} {k}" for k, n in sorted(check["by_status"].items()))
            + (f" ({', '.join(check['failing'])})" if check["failing"] else ""))
        seen = s["discovered"]
        unregistered = seen is not None and not seen["registered"]
        name = s["name"] + ("" if s["configured"] else " (unregistered)" if unregistered else " (not configured)")
        table.add_row(safe(name), safe(s["engine"] or "-"), safe(s["address"] or "-"), safe(cred_text),
                      safe(scan_text), safe(check_text), safe(_discovery_text(seen)))
    new_console().print(table)


def _discovery_text(seen: dict[str, Any] | None) -> str:
    if seen is None:
        return "-"
    also = f" (+{', '.join(map(str, seen['also']))})" if seen["also"] else ""
    if seen["registered"]:
        return f"seen by discovery at {seen['address']}{also}, last {seen['last_seen']}"
    said = " ".join(t for t in (seen["product"], seen["version"]) if t)
    door = "OPEN from outside" if seen["open"] else "asks for credentials" if seen["kind"] == "store" else \
        "identify-only"
    return f"unregistered{also}{f' {said}' if said else ''}: {door}; first seen {seen['first_seen']}, " \
        f"last {seen['last_seen']}"
