"""``piiguard list …`` and ``piiguard show …``: what is registered, with each plugin's documentation."""

from __future__ import annotations

import inspect
from typing import Any

import typer
from rich.table import Table

from piiguard import plugins
from piiguard.checker import check_ids
from piiguard.checks.base import checks
from piiguard.classify.detectors import detectors
from piiguard.connectors.base import connectors
from piiguard.errors import UsageError
from piiguard.registry import Registry
from piiguard.report.terminal import new_console
from piiguard.schema import did_you_mean


def _known(registry: Registry[Any], name: str, kind: str, listing: str) -> None:
    """An unknown name is a usage error (exit 2) with the closest known name, as ``validate`` says it."""
    plugins.load()
    if name not in registry:
        raise UsageError(f"unknown {kind} {name!r}{did_you_mean(name, registry.names())}",
                         hint=f"`piiguard list {listing}` lists them")


list_app = typer.Typer(help="List registered plugins.", no_args_is_help=True)
show_app = typer.Typer(help="Show one plugin's documentation.", no_args_is_help=True)


@list_app.command("detectors")
def list_detectors() -> None:
    """Every PII type piiguard recognises."""
    plugins.load()
    table = Table("name", "summary")
    for name in detectors:
        table.add_row(name, detectors.get(name).summary)
    new_console().print(table)


@list_app.command("connectors")
def list_connectors() -> None:
    """Every store engine piiguard reads."""
    plugins.load()
    table = Table("engine", "summary", "least privileges", "read whole (scope, copy source)")
    for name in connectors:
        cls = connectors.get(name)
        table.add_row(name, (inspect.getdoc(cls) or "").splitlines()[0], cls.privileges,
                      "yes" if cls.reads_whole() else "not yet")
    new_console().print(table)


@list_app.command("maskers")
def list_maskers() -> None:
    """Every transform a copy can apply, its options (with defaults) and the PII types it is the default for."""
    import dataclasses

    from piiguard.masking.maskers import DEFAULTS, maskers

    plugins.load()
    table = Table("masker", "options", "default for", "what it does")
    for name in maskers:
        cls = maskers.get(name)
        options = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls.Options))
        used = ", ".join(t for t, (m, _) in DEFAULTS.items() if m == name)
        table.add_row(name, options or "-", used or "-", " ".join((inspect.getdoc(cls) or "").split()))
    new_console().print(table)


@list_app.command("responders")
def list_responders() -> None:
    """Every kill-switch responder (``respond: responders:``), its options (required ones marked *)."""
    import dataclasses

    from piiguard.response.responders import responders

    plugins.load()
    table = Table("kind", "engines", "options", "what it does")
    for name in responders:
        cls = responders.get(name)
        options = ", ".join(f"{f.name}*" if _required(f) else f"{f.name}={_default(f)}"
                            for f in dataclasses.fields(cls.Options))
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0]
        table.add_row(name, ", ".join(cls.engines), options, " ".join(summary.split()))
    new_console().print(table)
    new_console().print("piiguard show responder KIND: every option, what it means and its default")


def _required(f: Any) -> bool:
    import dataclasses

    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _default(f: Any) -> str:
    import dataclasses

    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return repr(f.default)


@list_app.command("checks")
def list_checks(engine: str = typer.Option(None, "--engine", help="only this engine's checks")) -> None:
    """Every security protocol piiguard checks."""
    if engine is not None:
        _known(connectors, engine, "engine", "connectors")
    table = Table("check", "severity", "vantage", "title")
    for check_id in check_ids(engine):
        cls = checks.get(check_id)
        table.add_row(check_id, cls.severity.value, cls.vantage.value, cls.title())
    new_console().print(table)


@show_app.command("check")
def show_check(check_id: str) -> None:
    """A check's documentation: what it looks at, the risk, the fix, and its anchors."""
    _known(checks, check_id, "check", "checks")
    cls = checks.get(check_id)
    out = new_console()
    out.print(f"[bold]{check_id}[/bold] — {cls.severity.value}, {cls.vantage.value}\n")
    out.print(cls.doc(), markup=False)
    if cls.anchors:
        out.print(f"\nanchors: {'; '.join(cls.anchors)}", markup=False)


@show_app.command("detector")
def show_detector(name: str) -> None:
    """A detector's documentation, field-name context words and threshold."""
    _known(detectors, name, "detector", "detectors")
    d = detectors.get(name)
    out = new_console()
    out.print(f"[bold]{d.name}[/bold]\n")
    out.print(inspect.cleandoc(d.doc), markup=False)
    if d.context:
        out.print(f"\nfield-name context: {', '.join(d.context)}")
    out.print(f"minimum share of valid values: {d.min_share:.0%}")


@show_app.command("connector")
def show_connector(name: str) -> None:
    """A connector's documentation and the privileges it needs."""
    _known(connectors, name, "connector", "connectors")
    cls = connectors.get(name)
    out = new_console()
    out.print(f"[bold]{name}[/bold]\n")
    out.print(inspect.getdoc(inspect.getmodule(cls)) or "", markup=False)
    out.print(f"\nleast privileges: {cls.privileges}")
    out.print("read whole (incident scope, copy source): " + ("yes" if cls.reads_whole() else "not yet"))


@show_app.command("responder")
def show_responder(kind: str) -> None:
    """A responder's documentation: what it changes, the engines it works on, every option and its default."""
    import dataclasses

    from piiguard.response.responders import responders

    _known(responders, kind, "responder", "responders")
    cls = responders.get(kind)
    out = new_console()
    out.print(f"[bold]{kind}[/bold] — works on {', '.join(cls.engines)} stores\n")
    out.print(inspect.getdoc(cls) or "", markup=False)
    table = Table("option", "required", "default")
    for f in dataclasses.fields(cls.Options):
        table.add_row(f.name, "yes" if _required(f) else "", "" if _required(f) else _default(f))
    out.print(table)
