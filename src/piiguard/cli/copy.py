"""``piiguard copy SOURCE TARGET`` and ``piiguard copies [expire]``: masked copies and their registry.

SOURCE and TARGET are ``STORE.COLLECTION`` for configured stores (``prod.users``) or ``URL#COLLECTION``
(``postgresql://etl@wh/analytics#public.users``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType, ModuleType

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from piiguard import plugins
from piiguard.catalog.owners import RunStatus
from piiguard.cli.common import FORMAT, Format, open_catalog, read_config
from piiguard.config import Config
from piiguard.connectors.base import unique_name
from piiguard.connectors.labels import label
from piiguard.errors import PluginError, UsageError
from piiguard.masking.ownership import Action, TargetState, apply_expiry, forget, plan_expiry
from piiguard.masking.pipeline import CopyPlan, key_from, plan_copy, run_copy
from piiguard.model import Store
from piiguard.report import records
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe
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
    """The plan as a person reads it. Field and collection names are labels (a column named after a
    customer's e-mail is ``<email>``) and every line is terminal-safe."""
    console.print(safe(f"copy {plan.source.name}.{label(plan.source_collection)} → {plan.target.name}."
                       f"{label(plan.target_collection)} (about {plan.rows_estimate or 0:,} rows)"))
    table = Table("field", "holds", "transform", "why")
    shown: dict[str, None] = {}
    for r in plan.rules:
        options = ", ".join(f"{k}={v}" for k, v in r.options.items())
        name = unique_name(label(r.field), shown)
        shown[name] = None
        table.add_row(safe(name), r.pii_type or "-", safe(r.masker + (f" ({options})" if options else "")),
                      safe(r.reason))
    console.print(table)
    if plan.subject_field:
        console.print(safe(f"people counted by: {label(plan.subject_field)}"))
    failing = [f for f in plan.target_findings if f.status.value == "fail"]
    undecided = [f for f in plan.target_findings if f.status.value == "error"]
    console.print(safe(f"target checks: {len(plan.target_findings)} run, {len(failing)} failing, "
                       f"{len(undecided)} could not be decided"))
    for f in failing + undecided:
        state = "" if f.status.value == "fail" else "could not be decided, "
        console.print(safe(f"  {f.check} ({state}{f.severity.value}{', waived' if f.waiver else ''}): "
                           f"{f.evidence}"))
    if plan.blocking:
        verdict = ("accepted risk: " + plan.accepted_risk if plan.accepted_risk
                   else "REFUSED (blocking checks fail or could not be decided)")
        console.print(safe(verdict, style="bold"))
    if plan.target_owner is not None:
        line = plan.target_owner.verdict(plan.replace)
        foreign = plan.target_owner.state is TargetState.FOREIGN
        console.print(safe(line, style="bold" if foreign else ""))


def _lineage() -> ModuleType:
    # OpenLineage takes 0.3 s to import and is an extra: only when --lineage asks for it.
    try:
        from piiguard.masking import lineage
    except ImportError as exc:
        if not (exc.name or "").startswith("openlineage"):
            raise
        raise PluginError("--lineage needs the openlineage-python package, which is not installed",
                          hint="pip install 'piiguard[lineage]'") from exc
    return lineage


def copy(source: str = typer.Argument(..., help="STORE.COLLECTION or URL#COLLECTION"),
         target: str = typer.Argument(..., help="STORE.COLLECTION or URL#COLLECTION"),
         plan_only: bool = typer.Option(False, "--plan", help="print the plan and change nothing"),
         key_env: str = typer.Option(None, "--key-env", help="environment variable holding the copy's key"),
         key_file: Path = typer.Option(None, "--key-file", help="file holding the copy's key"),
         owner: str = typer.Option(None, "--owner", help="who answers for the copy"),
         purpose: str = typer.Option(None, "--purpose", help="why it exists"),
         expires: str = typer.Option(None, "--expires", help="YYYY-MM-DD (default: in 30 days)"),
         accept_risk: str = typer.Option("", "--accept-risk", help="copy despite failing target checks: why"),
         replace: bool = typer.Option(False, "--replace",
                                      help="replace a target that exists and is not a piiguard copy of this source"),
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
    console = new_console()
    until = _expiry(expires)
    if not plan_only:  # everything a real copy needs is checked before the slow part
        key = key_from(key_env, str(key_file) if key_file else None)
        if not owner or not purpose:
            raise UsageError("a copy needs --owner and --purpose (they are registered with it)")
        if lineage_to:
            _lineage()  # a missing OpenLineage is said before the copy, not after it
    with open_catalog(catalog, cfg) as cat:
        plan = plan_copy(src_store, src_collection, dst_store, dst_collection, config=cfg,
                         accepted_risk=accept_risk, sample_size=sample, catalog=cat, replace=replace,
                         timeout=timeout)
    _show(plan, console)
    if plan_only:
        return
    with open_catalog(catalog, cfg) as cat, Progress(TextColumn("copying"), BarColumn(), MofNCompleteColumn(),
                                           TimeElapsedColumn(), console=new_console(stderr=True)) as bar, _terminable():
        task = bar.add_task("rows", total=plan.rows_estimate or None)
        result = run_copy(plan, key, cat, owner=owner, purpose=purpose, expires=until,
                          # --timeout bounds connecting and every exchange; one batch's bulk write alone
                          # keeps a 30 s floor (the statement budget, 30 x, must fit a bulk COPY)
                          progress=lambda n: bar.advance(task, n), timeout=timeout,
                          write_timeout=max(timeout, 30.0))
        record = next(c for c in cat.copies() if c["id"] == result.copy_id)
    if lineage_to:
        _lineage().emit(record, lineage_to)
    people = f", {result.subjects:,} people" if result.subjects is not None else ""
    console.print(f"copy {result.copy_id}: {result.rows:,} rows{people} in {result.seconds:.1f} s; "
                  f"expires {until.isoformat()}")


@contextlib.contextmanager
def _terminable() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, ``kill``, a container stopped) ends the copy as Ctrl-C does: the
    staging is removed and the copy registered as failed, instead of the process dying mid-write."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
def copies(ctx: typer.Context, catalog: Path = typer.Option(None, "--catalog"),
           config: Path = typer.Option(None, "--config", "-c"), fmt: Format = FORMAT) -> None:
    """Every registered copy: where from, where to, how masked (key id only), owner, expiry, and its
    status: writing, active, failed, interrupted (its process was killed mid-write), replaced (by a
    later copy into the same target), removed."""
    if ctx.invoked_subcommand is not None:
        return
    with open_catalog(catalog, read_config(config)) as cat:
        rows = cat.copies()
    today = datetime.now(UTC).date().isoformat()
    if fmt is Format.json:
        emit("copies", {"copies": [records.copy(c, today) for c in rows]})
        return
    table = Table("id", "source", "target", "rows", "people", "owner", "purpose", "expires", "status", "key id")
    for c in rows:
        status = c["status"] + (" (expired)" if c["status"] == "active" and c["expires"] < today else "")
        table.add_row(str(c["id"]), safe(f"{c['source_store']}.{label(c['source_collection'])}"),
                      safe(f"{c['target_store']}.{label(c['target_collection'])}"), str(c["rows"] or 0),
                      str(c["subjects"] or "-"), safe(c["owner"]), safe(c["purpose"]), c["expires"], status,
                      safe(c["key_id"]))
    new_console().print(table)


@copies_app.command("expire")
def expire(apply: bool = typer.Option(False, "--apply", help="remove them (otherwise only the plan is shown)"),
           config: Path = typer.Option(None, "--config", "-c"),
           catalog: Path = typer.Option(None, "--catalog")) -> None:
    """Remove copies past their expiry, and the staging that interrupted copies (killed mid-write)
    left behind: planned first, removed with --apply. Only what each copy recorded that it created is
    removed, and only while it is still that object (a table made again under the copy's name, or
    another live copy's data, stays)."""
    cfg = read_config(config)
    console = new_console(highlight=False)
    plugins.load()
    with open_catalog(catalog, cfg) as cat:
        steps = plan_expiry(cat, datetime.now(UTC).date().isoformat(), cfg.stores if cfg else ())
        if not steps:
            console.print("no expired copy")
            return
        failed = False
        for step in steps:
            c, where = step.copy, f"{step.copy['target_store']}.{step.copy['target_collection']}"
            if step.action is Action.ERROR:
                failed = True
                console.print(safe(f"copy {c['id']}: {step.error}"))
            elif step.action is Action.MISMATCH:
                failed = True
                console.print(safe(step.error))
            elif step.action is Action.NO_STORE:
                console.print(safe(f"copy {c['id']}: store {c['target_store']!r} is not in the configuration "
                                   "(and the copy was registered without its address): skipped"))
            elif step.action is Action.NO_RECORD:
                console.print(safe(f"copy {c['id']}: {where} was registered without a record of what it created: "
                              "not removed (remove it by hand if it is the copy)"))
            elif step.action is Action.GONE:
                forget(cat, step, "gone before expiry ran")
                console.print(safe(f"copy {c['id']}: already gone"))
            elif step.action is Action.NOT_OURS:
                if apply:
                    forget(cat, step, "replaced before expiry: nothing removed")
                console.print(safe(f"copy {c['id']}: {where} now holds something this copy did not make: kept"))
            elif not apply:
                why = f"left by the {c['status']} copy" if c["status"] in (RunStatus.INTERRUPTED, RunStatus.FAILED) \
                    else f"expired {c['expires']}"
                console.print(safe(f"would remove copy {c['id']}: {', '.join(o.name for o in step.remove)} ({why})"))
            else:
                done = apply_expiry(cat, step)
                if done.action is Action.ERROR:
                    failed = True
                    console.print(safe(f"copy {c['id']}: {done.error}"))
                    continue
                console.print(safe(f"removed copy {c['id']}: {', '.join(o.name for o in done.removed) or 'nothing'}"
                              + (f"; kept {', '.join(o.name for o in done.keep)}" if done.keep else "")))
    if not apply:
        console.print("nothing changed; run again with --apply")
    if failed:
        raise typer.Exit(1)
