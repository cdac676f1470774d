"""``piiguard copy SOURCE TARGET`` and ``piiguard copies [expire]``: masked copies and their registry.

SOURCE and TARGET are ``STORE.COLLECTION`` for configured stores (``prod.users``) or ``URL#COLLECTION``
(``postgresql://etl@wh/analytics#public.users``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.cli.common import read_config
from piiguard.config import Config
from piiguard.errors import UsageError
from piiguard.masking import lineage
from piiguard.masking.pipeline import CopyPlan, key_from, plan_copy, run_copy
from piiguard.masking.targets import writers
from piiguard.model import Store
from piiguard.scanner import resolve_stores

copies_app = typer.Typer(help="Registered copies: list them, remove expired ones.", invoke_without_command=True)


def split_target(spec: str, config: Config | None) -> tuple[Store, str]:
    """``STORE.COLLECTION`` (longest configured store name first) or ``URL#COLLECTION``."""
    plugins.load()
    if "://" in spec:
        url, _, collection = spec.partition("#")
        if not collection:
            raise UsageError(f"{spec!r}: name the collection after the URL, e.g. URL#public.users")
        (store,) = resolve_stores([url], config)
        return store, collection
    names = sorted((s.name for s in (config.stores if config else ())), key=len, reverse=True)
    for name in names:
        configured = config.store(name) if config else None
        if configured is not None and spec.startswith(name + ".") and len(spec) > len(name) + 1:
            return configured, spec[len(name) + 1:]
    raise UsageError(f"{spec!r} names no configured store", hint="write STORE.COLLECTION or URL#COLLECTION")


def _show(plan: CopyPlan, console: Console) -> None:
    console.print(f"copy {plan.source.name}.{plan.source_collection} → {plan.target.name}.{plan.target_collection}"
                  f" (about {plan.rows_estimate or 0:,} rows)")
    table = Table("field", "holds", "transform", "why")
    for r in plan.rules:
        options = ", ".join(f"{k}={v}" for k, v in r.options.items())
        table.add_row(r.field, r.pii_type or "-", r.masker + (f" ({options})" if options else ""), r.reason)
    console.print(table)
    if plan.subject_field:
        console.print(f"people counted by: {plan.subject_field}")
    failing = [f for f in plan.target_findings if f.status.value == "fail"]
    console.print(f"target checks: {len(plan.target_findings)} run, {len(failing)} failing"
                  + "".join(f"\n  {f.check} ({f.severity.value}{', waived' if f.waiver else ''}): {f.evidence}"
                            for f in failing))
    if plan.blocking:
        verdict = "accepted risk: " + plan.accepted_risk if plan.accepted_risk else "REFUSED (blocking checks fail)"
        console.print(f"[bold]{verdict}[/bold]")


def copy(source: str = typer.Argument(..., help="STORE.COLLECTION or URL#COLLECTION"),
         target: str = typer.Argument(..., help="STORE.COLLECTION or URL#COLLECTION"),
         plan_only: bool = typer.Option(False, "--plan", help="print the plan and change nothing"),
         key_env: str = typer.Option(None, "--key-env", help="environment variable holding the copy's key"),
         key_file: Path = typer.Option(None, "--key-file", help="file holding the copy's key"),
         owner: str = typer.Option(None, "--owner", help="who answers for the copy"),
         purpose: str = typer.Option(None, "--purpose", help="why it exists"),
         expires: str = typer.Option(None, "--expires", help="YYYY-MM-DD (default: in 30 days)"),
         accept_risk: str = typer.Option("", "--accept-risk", help="copy despite failing target checks: why"),
         lineage_to: str = typer.Option(None, "--lineage", help="file:PATH or http(s) URL for OpenLineage"),
         sample: int = typer.Option(2000, "--sample", help="rows sampled to classify the source"),
         config: Path = typer.Option(None, "--config", "-c"),
         catalog: Path = typer.Option(None, "--catalog"),
         timeout: float = typer.Option(10.0, "--timeout", help="seconds to wait for a store to answer")) -> None:
    """Copy a collection into another store: masked by default, only into a target that passes its
    checks, registered with an owner and an expiry."""
    cfg = read_config(config)
    src_store, src_collection = split_target(source, cfg)
    dst_store, dst_collection = split_target(target, cfg)
    console = Console()
    until = _expiry(expires)
    if not plan_only:  # everything a real copy needs is checked before the slow part
        key = key_from(key_env, str(key_file) if key_file else None)
        if not owner or not purpose:
            raise UsageError("a copy needs --owner and --purpose (they are registered with it)")
    plan = plan_copy(src_store, src_collection, dst_store, dst_collection, config=cfg, accepted_risk=accept_risk,
                     sample_size=sample, timeout=timeout)
    _show(plan, console)
    if plan_only:
        return
    with Catalog(catalog) as cat, Progress(TextColumn("copying"), BarColumn(), MofNCompleteColumn(),
                                           TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("rows", total=plan.rows_estimate or None)
        result = run_copy(plan, key, cat, owner=owner, purpose=purpose, expires=until,
                          # writes keep a 30 s floor: the statement budget (30 x) must fit a bulk COPY
                          progress=lambda n: bar.advance(task, n), timeout=max(timeout, 30.0))
        record = next(c for c in cat.copies() if c["id"] == result.copy_id)
    if lineage_to:
        lineage.emit(record, lineage_to)
    people = f", {result.subjects:,} people" if result.subjects is not None else ""
    console.print(f"copy {result.copy_id}: {result.rows:,} rows{people} in {result.seconds:.1f} s; "
                  f"expires {until.isoformat()}")


def _expiry(text: str | None) -> date:
    if text is None:
        return (datetime.now(UTC) + timedelta(days=30)).date()
    try:
        value = date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--expires {text!r}: expected YYYY-MM-DD") from exc
    if value <= datetime.now(UTC).date():
        raise UsageError("--expires must be in the future")
    return value


@copies_app.callback()
def copies(ctx: typer.Context, catalog: Path = typer.Option(None, "--catalog")) -> None:
    """Every registered copy: where from, where to, how masked (key id only), owner, expiry."""
    if ctx.invoked_subcommand is not None:
        return
    with Catalog(catalog) as cat:
        rows = cat.copies()
    today = datetime.now(UTC).date().isoformat()
    table = Table("id", "source", "target", "rows", "people", "owner", "purpose", "expires", "status", "key id")
    for c in rows:
        status = c["status"] + (" (expired)" if c["status"] == "active" and c["expires"] < today else "")
        table.add_row(str(c["id"]), f"{c['source_store']}.{c['source_collection']}",
                      f"{c['target_store']}.{c['target_collection']}", str(c["rows"] or 0), str(c["subjects"] or "-"),
                      c["owner"], c["purpose"], c["expires"], status, c["key_id"])
    Console().print(table)


@copies_app.command("expire")
def expire(apply: bool = typer.Option(False, "--apply", help="remove them (otherwise only the plan is shown)"),
           config: Path = typer.Option(None, "--config", "-c"),
           catalog: Path = typer.Option(None, "--catalog")) -> None:
    """Remove copies past their expiry that still exist: planned first, removed with --apply."""
    cfg = read_config(config)
    console = Console()
    with Catalog(catalog) as cat:
        due = cat.copies(status="active", expired_before=datetime.now(UTC).date().isoformat())
        if not due:
            console.print("no expired copy")
            return
        for c in due:
            store = cfg.store(c["target_store"]) if cfg else None
            if store is None:
                console.print(f"copy {c['id']}: store {c['target_store']!r} is not in the configuration: skipped")
                continue
            writer = writers.get(store.engine)(store, c["target_collection"])
            if not writer.exists():
                cat.finish_copy(c["id"], "removed", note="gone before expiry ran")
                console.print(f"copy {c['id']}: already gone")
                continue
            if not apply:
                console.print(f"would remove copy {c['id']}: {store.name}.{c['target_collection']} "
                              f"(expired {c['expires']})")
                continue
            writer.remove()
            cat.finish_copy(c["id"], "removed", note=f"expired {c['expires']}, removed")
            console.print(f"removed copy {c['id']}: {store.name}.{c['target_collection']}")
    if not apply:
        console.print("nothing changed; run again with --apply")
