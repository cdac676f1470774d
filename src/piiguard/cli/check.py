"""``piiguard check``: hold stores to their security protocols."""

from __future__ import annotations

from enum import StrEnum
from importlib.metadata import version
from pathlib import Path

import typer

from piiguard.checker import run_checks
from piiguard.cli.common import CATALOG_HELP, open_catalog, read_config
from piiguard.model import Severity, Status
from piiguard.report.findings import render_json, render_sarif, render_table
from piiguard.report.terminal import new_console

EXIT_FINDINGS = 3


class Format(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"


def check(
    targets: list[str] = typer.Argument(
        None, help="store names from the config, or URLs (as for scan)"),
    config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml if present)"),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="output format"),
    fail_on: Severity = typer.Option(Severity.HIGH, "--fail-on", help="exit 3 when a failing check is this severe"),
    catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
    timeout: float = typer.Option(5.0, "--timeout", help="seconds to wait for each network step"),
    show_passed: bool = typer.Option(False, "--passed", help="table: list passing checks too"),
) -> None:
    """Check stores' security protocols from outside (no credentials) and inside. Exit 3 on a failure at
    or above --fail-on, 1 when a check could not be decided."""
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:  # a catalog that cannot save raises on leaving, after the output
        result = run_checks(targets or [], config=cfg, catalog=cat, timeout=timeout)
        if fmt is Format.json:
            print(render_json(result.findings))
        elif fmt is Format.sarif:
            print(render_sarif(result.findings, version("piiguard")))
        else:
            render_table(result.findings, new_console(), show_passed=show_passed)
    worst = result.worst()
    if worst is not None and worst >= fail_on:
        raise typer.Exit(EXIT_FINDINGS)
    if any(f.status is Status.ERROR for f in result.findings):
        raise typer.Exit(1)
