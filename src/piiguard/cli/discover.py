"""``piiguard discover``: sweep the allowed networks for data stores nobody registered."""

from __future__ import annotations

import logging
import math
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from piiguard.cli.common import CATALOG_HELP, open_catalog, read_config
from piiguard.discovery import networks
from piiguard.discovery.settings import DiscoverySettings
from piiguard.errors import UsageError
from piiguard.model import Severity, Status
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe

EXIT_FINDINGS = 3
log = logging.getLogger(__name__)


class Format(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"


class Bars:
    """One Rich bar per step (sweep, identify, check, compare) on stderr, when stderr is a terminal;
    else a log line per finished step (so a CI log shows how far a run got)."""

    def __init__(self) -> None:
        err = new_console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err, transient=True) if err.is_terminal else None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Bars:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress:
            self.progress.stop()

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.progress is None:
            if done == total:
                log.info("discover: %s finished (%d)", step, total)
            return
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


def _plan(requested: list[str], settings: DiscoverySettings, max_addresses: int | None, fmt: Format) -> None:
    nets = networks.targets(requested, settings, max_addresses=max_addresses)
    addresses, ports = networks.size(nets), settings.ports
    probes = addresses * len(ports)
    at_rate = probes / settings.rate
    # The slowest case: every probe waits out the timeout, `concurrency` at a time.
    slowest = max(at_rate, math.ceil(probes / settings.concurrency) * settings.timeout)
    if fmt is Format.json:
        emit("discovery-plan", {"networks": [str(n) for n in nets], "addresses": addresses, "ports": list(ports),
                                "probes": probes, "rate": settings.rate, "concurrency": settings.concurrency,
                                "timeout": settings.timeout, "seconds": round(at_rate, 3),
                                "seconds_at_most": round(slowest, 3)})
        return
    out = new_console()
    out.print(safe(f"plan (nothing sent): {addresses:,} address(es) in {', '.join(str(n) for n in nets)}"))
    out.print(safe(f"  × {len(ports)} port(s): {', '.join(str(p) for p in ports)}"))
    out.print(safe(f"  = {probes:,} probes; at {settings.rate:g} probes/s at most: {at_rate:,.1f} s or more "
                   f"({slowest:,.1f} s if every port stays silent, {settings.concurrency} at a time, "
                   f"{settings.timeout:g} s each)"))


def discover(
    requested: list[str] = typer.Argument(
        None, metavar="[NETWORK]...", help="ranges to sweep (CIDR or an address), each inside discovery.networks; "
        "default: every allowed network"),
    config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml if present)"),
    catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
    plan: bool = typer.Option(False, "--plan", help="print how many probes would be sent, and send nothing"),
    max_addresses: int = typer.Option(None, "--max-addresses",
                                      help="refuse to sweep more addresses than this (default: "
                                      "discovery.max_addresses, 65536 unless set)"),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="output format"),
    fail_on: Severity = typer.Option(Severity.HIGH, "--fail-on", help="exit 3 when a failing finding is this severe"),
) -> None:
    """Sweep allowed networks for data stores: engine, version, registered or not, outside checks. Exit 3 on a
    finding at or above --fail-on, 1 when an address could not be decided."""
    cfg = read_config(config)
    if cfg is None:
        raise UsageError("no configuration: discover sweeps only the ranges piiguard.yaml allows",
                         hint=networks.NO_LIST_HINT.replace("list the ranges", "write piiguard.yaml (or pass -c) "
                                                            "listing the ranges"))
    if plan:
        _plan(requested or [], cfg.discovery, max_addresses, fmt)
        return
    networks.targets(requested or [], cfg.discovery, max_addresses=max_addresses)  # refuse before the catalog opens
    from piiguard.discovery.run import discover as run_discovery  # here: --plan and refusals need no engines
    from piiguard.report import discovery as render

    with open_catalog(catalog, cfg) as cat, Bars() as bars:
        run = run_discovery(cfg, requested or [], catalog=cat, max_addresses=max_addresses, progress=bars)
    if fmt is Format.json:
        emit("discovery", render.body(run))
    elif fmt is Format.sarif:
        try:
            own = version("piiguard")
        except PackageNotFoundError:
            own = "0"
        print(render.render_sarif(run, own))
    else:
        render.render_table(run, new_console())
    findings = [f for d in run.stores for f in d.findings]
    bad = render.worst(findings)
    if bad is not None and bad >= fail_on:
        raise typer.Exit(EXIT_FINDINGS)
    if run.problems or any(f.status is Status.ERROR for f in findings):
        raise typer.Exit(1)
