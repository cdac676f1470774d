"""``piiguard explain STORE.COLLECTION.FIELD``: why the last scan decided a field as it did."""

from __future__ import annotations

from pathlib import Path

import typer

from piiguard.cli.common import CATALOG_HELP, FORMAT, Format, open_catalog, read_config
from piiguard.report.document import emit
from piiguard.report.explain import explain_dict, explain_lines, find
from piiguard.report.terminal import new_console, safe


def explain(
    path: str = typer.Argument(..., help="STORE.COLLECTION.FIELD as `piiguard scan` lists it"),
    fmt: Format = FORMAT,
    catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml)"),
) -> None:
    """Why the last scan decided a field as it did: the detector, model, rule or override; the share of
    values matched; the context words; the native type; the runner-up and why it lost. Never values."""
    with open_catalog(catalog, read_config(config, everything=False)) as cat:
        decision = find(cat.decisions(), path)
    if fmt is Format.json:
        emit("explain", explain_dict(decision))
        return
    out = new_console()
    for line in explain_lines(decision):
        out.print(safe(line))
