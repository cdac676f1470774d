"""``piiguard scan``: find PII in stores named in piiguard.yaml or given as URLs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from types import TracebackType

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from piiguard.cli.common import CATALOG_HELP, open_catalog, read_config
from piiguard.model import ScanMode
from piiguard.report import render_table, to_dict
from piiguard.report.document import dumps
from piiguard.report.terminal import escaped, new_console, safe
from piiguard.scanner import DEFAULT_SAMPLE
from piiguard.scanner import scan as run_scan


class Format(StrEnum):
    table = "table"
    json = "json"


class Bars:
    """A Rich progress bar per collection, on a terminal only."""

    def __init__(self, console: Console) -> None:
        # markup=False: the description holds store and collection names, printed as written
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task: TaskID | None = None

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def collection_started(self, store: str, collection: str, total: int | None) -> None:
        self.task = self.progress.add_task(escaped(f"{store} · {collection}"), total=total)

    def advanced(self, rows: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, rows)

    def collection_finished(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
            self.task = None


def scan(
    targets: list[str] = typer.Argument(
        None, help="store names from the config, or URLs: postgresql://user@host:5432/db, "
        "mysql://user@host/db, sqlite:///path.db, file:///path (file or folder), clickhouse://user@host:8123, "
        "redis://user@host:6379/0, opensearch://…, mongodb://…, s3://…"),
    config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml if present)"),
    sample: int = typer.Option(DEFAULT_SAMPLE, "--sample", help="rows sampled per collection"),
    full: bool = typer.Option(False, "--full", help="read every row instead of a sample (streamed)"),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="output format"),
    catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
    all_fields: bool = typer.Option(False, "--all-fields", help="table: list non-PII fields too"),
    timeout: float = typer.Option(10.0, "--timeout", help="seconds to wait for a store to answer"),
) -> None:
    """Scan stores for PII: which fields, what types, how many people. Exit 1 if any store or collection failed."""
    cfg = read_config(config)
    out = new_console()
    # Results are shown inside the block: if the catalog could not save them (a full disk), its error
    # is raised on leaving it, after they are printed.
    with open_catalog(catalog, cfg) as cat:
        mode = ScanMode.FULL if full else ScanMode.SAMPLE
        if out.is_terminal and fmt is Format.table:
            with Bars(new_console(stderr=True)) as bars:
                result = run_scan(targets or [], config=cfg, mode=mode, sample_size=sample, catalog=cat,
                                  progress=bars, timeout=timeout)
        else:
            result = run_scan(targets or [], config=cfg, mode=mode, sample_size=sample, catalog=cat,
                              timeout=timeout)
        from piiguard.cli.fingerprint import link_line, link_record, scan_links

        links = scan_links(targets or [], cfg, cat)  # None when no fingerprint is kept: output as before
        if fmt is Format.json:
            doc = to_dict(result)
            if links is not None:
                doc["copy_links"] = [link_record(x) for x in links]
            print(dumps(doc))
        else:
            render_table(result, out, all_fields=all_fields)
            for link in links or ():
                out.print(safe(link_line(link)))
    if result.problems:
        raise typer.Exit(1)


def scans(catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
          config: Path = typer.Option(None, "--config", "-c")) -> None:
    """Every recorded scan and whether it finished: running, finished, failed, or interrupted (its
    process was killed; marked by the next piiguard that opened the catalog)."""
    from rich.table import Table

    with open_catalog(catalog, read_config(config)) as cat:
        rows = cat.scans()
    table = Table("id", "started", "finished", "mode", "sample", "status")
    for r in rows:
        table.add_row(str(r["id"]), r["started"], r["finished"] or "-", r["mode"], str(r["sample_size"]), r["status"])
    new_console().print(table)
