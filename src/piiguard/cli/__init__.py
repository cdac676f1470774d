"""The ``piiguard`` command. One module per command group; each parses, calls the library, renders.

A command's module is imported only when that command runs (or its own ``--help`` is asked for), so
``piiguard --help``, ``--version`` and ``validate`` start without loading any engine's driver, Arrow
or OpenLineage. ``COMMANDS`` names each command's module and its one-line summary for the top-level
help (a conformance test holds the summaries to the commands' own docstrings).

Every command takes ``-v`` / ``-q`` and ``--log-format text|json`` (see :mod:`piiguard.log`), before
or after its name: ``piiguard -v scan …`` and ``piiguard scan -v …`` are the same.

Errors are caught here, once: a :class:`PiiguardError` prints its message and hint and exits with its
class's code (0 clean, 1 error, 2 usage/config, 3 findings at or above ``--fail-on``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sqlite3
import sys
import typing
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

from piiguard.errors import ConfigError, PiiguardError
from piiguard.log import LogFormat, configure

# name → (module, attribute, summary). The attribute is a command function or a typer.Typer group.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scan": ("piiguard.cli.scan", "scan", "Scan stores for PII: which fields, what types, how many people."),
    "explain": ("piiguard.cli.explain", "explain", "Why the last scan decided a field as it did: the detector, "
                "model, rule or override; the share of values matched; the context words; the native type; the "
                "runner-up and why it lost. Never values."),
    "scans": ("piiguard.cli.scan", "scans", "Every recorded scan and whether it finished: running, finished, failed, "
              "or interrupted"),
    "check": ("piiguard.cli.check", "check", "Check stores' security protocols from outside (no credentials) "
              "and inside."),
    "discover": ("piiguard.cli.discover", "discover", "Sweep allowed networks for data stores: engine, version, "
                 "registered or not, outside checks."),
    "watch": ("piiguard.cli.watch", "watch", "Re-check stores continuously; alert when a protection is removed "
              "or restored; record exposure windows."),
    "exposures": ("piiguard.cli.watch", "exposures", "Exposure windows recorded by watch: when each store opened "
                  "and closed, and what it held."),
    "approve": ("piiguard.cli.contain", "approve", "Apply a planned containment (approve mode), then verify it by "
                "re-probing."),
    "contain": ("piiguard.cli.contain", "contain_app", "Containment steps: list and undo."),
    "copy": ("piiguard.cli.copy", "copy", "Copy a collection into another store: masked by default, only into a "
             "target that passes its checks, registered with an owner and an expiry."),
    "copies": ("piiguard.cli.copy", "copies_app", "Registered copies: list them, remove expired ones."),
    "incident": ("piiguard.cli.incident", "incident_app", "Incidents: scope, evidence, kill switch, notices, "
                 "reports, timeline."),
    "fingerprint": ("piiguard.cli.fingerprint", "fingerprint_app", "Copy fingerprints: build keyed sets of "
                    "registered customers' keys and e-mails, list them, match another store against them."),
    "canary": ("piiguard.cli.canary", "canary_app", "Canary customers: plant them in production, list them, "
               "remove them."),
    "stores": ("piiguard.cli.stores", "stores", "The configured stores: engine, address, where their credentials are "
               "(never the values), and what the catalog holds of their last scan and last check; then the "
               "stores discovery found that no configuration names."),
    "adopt": ("piiguard.cli.adopt", "adopt", "Print (or, with --write, add) the piiguard.yaml entry of a store "
              "piiguard discover found."),
    "validate": ("piiguard.cli.validate", "validate", "Validate a configuration file: every unknown key or bad "
                 "value is reported with its path (exit 2)."),
    "demo": ("piiguard.cli.demo", "demo", "Build a small customer database and its analytics export (synthetic data), "
             "scan both, print findings."),
    "list": ("piiguard.cli.info", "list_app", "List registered plugins."),
    "show": ("piiguard.cli.info", "show_app", "Show one plugin's documentation."),
}

VERBOSE = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                       help="more log detail on stderr (-vv: debug)")
QUIET = typer.Option(0, "--quiet", "-q", count=True, show_default=False, help="log errors only")
LOG_FORMAT = typer.Option(LogFormat.text, "--log-format", help="log lines as text or JSON (one object per line)")


def with_logging(func: Callable[..., Any]) -> Callable[..., Any]:
    """The command with ``-v``, ``-q`` and ``--log-format`` added to its own options."""
    if getattr(func, "_piiguard_logging", False):
        return func
    signature = inspect.signature(func, eval_str=True)
    hints = typing.get_type_hints(func)
    extra = [inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=VERBOSE, annotation=int),
             inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=QUIET, annotation=int),
             inspect.Parameter("log_format", inspect.Parameter.KEYWORD_ONLY, default=LOG_FORMAT,
                               annotation=LogFormat)]

    @functools.wraps(func)
    def run(*args: Any, verbose: int = 0, quiet: int = 0, log_format: LogFormat = LogFormat.text,
            **kwargs: Any) -> Any:
        if verbose or quiet or log_format is not LogFormat.text:  # else keep what `piiguard -v …` set
            configure(verbose, quiet, log_format)
        return func(*args, **kwargs)

    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    run.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    run.__annotations__ = {**hints, "verbose": int, "quiet": int, "log_format": LogFormat}
    run._piiguard_logging = True  # type: ignore[attr-defined]
    return run


def _with_logging_everywhere(group: typer.Typer) -> None:
    callback = group.registered_callback
    if callback is not None and callback.callback is not None:  # a group that runs itself (`copies`)
        callback.callback = with_logging(callback.callback)
    for info in group.registered_commands:
        if info.callback is not None:
            info.callback = with_logging(info.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _with_logging_everywhere(sub.typer_instance)


@functools.cache
def _load(name: str) -> Any:
    module, attr, _ = COMMANDS[name]
    obj = getattr(importlib.import_module(module), attr)
    if isinstance(obj, typer.Typer):
        _with_logging_everywhere(obj)
        obj.rich_markup_mode = None  # one help style for every command (see `app` below)
        group = obj
    else:
        group = typer.Typer(add_completion=False, rich_markup_mode=None)
        group.command(name)(with_logging(obj))
    command = typer.main.get_command(group)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The top-level group: commands are imported when used, summaries come from ``COMMANDS``."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return _load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, _, summary) in COMMANDS.items()])


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"piiguard {version('piiguard')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("piiguard (not installed: version unknown)")
        raise typer.Exit(0)


# rich_markup_mode=None: click's plain help, because Rich's help renderer alone takes 80 ms to import.
app = typer.Typer(cls=LazyGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Find customer PII in data stores and keep those stores' security protocols on.")


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="print the version and exit"),
             verbose: int = VERBOSE, quiet: int = QUIET, log_format: LogFormat = LOG_FORMAT) -> None:
    configure(verbose, quiet, log_format)


def main() -> None:
    configure()
    try:
        code = app(standalone_mode=False)  # without standalone mode, click returns an Exit's code
        if isinstance(code, int):
            sys.exit(code)
    except PiiguardError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _stderr("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors from typer's own click (no such option, bad value)
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        sys.exit(int(getattr(exc, "exit_code", 2) or 2))
    except Exception as exc:
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            # Connectors wrap their own driver errors: a damaged database surfacing here is the catalog,
            # damaged past its header and schema (those are checked when it is opened).
            _print_error(PiiguardError(
                "the catalog is damaged (SQLite reports it corrupt); the run stopped",
                hint="restore it from a backup, or move it aside and start a new one (--catalog PATH); "
                     "`sqlite3 FILE 'PRAGMA integrity_check'` shows the damage"))
            sys.exit(1)
        # An unexpected error's text or traceback may quote data a driver was handling: print neither
        # unless asked to.
        if os.environ.get("PIIGUARD_DEBUG"):
            raise
        _stderr(f"internal error ({type(exc).__name__}); set PIIGUARD_DEBUG=1 to see the traceback "
                "(it may contain data values)", red="internal error")
        sys.exit(1)


def _stderr(text: str, red: str = "") -> None:
    from piiguard.report.terminal import escaped, new_console  # here: Rich is not needed for help or the version

    err = new_console(stderr=True)
    if red and text.startswith(red):
        err.print(f"[red]{red}[/red]", end="", highlight=False)
        text = text[len(red):]
    err.print(escaped(text), highlight=False, markup=False, emoji=False, soft_wrap=True)


def _print_error(exc: PiiguardError) -> None:
    from piiguard.report.terminal import escaped, new_console

    err = new_console(stderr=True)
    if isinstance(exc, ConfigError):
        err.print("[red]error:[/red] the configuration is not valid:", highlight=False)
        for problem in exc.problems:
            err.print(f"  {escaped(str(problem))}", highlight=False, markup=False, emoji=False, soft_wrap=True)
    else:
        err.print("[red]error:[/red] ", end="", highlight=False)
        err.print(escaped(exc.message), highlight=False, markup=False, emoji=False, soft_wrap=True)
    if exc.hint:
        err.print("[dim]hint:[/dim] ", end="", highlight=False)
        err.print(escaped(exc.hint), highlight=False, markup=False, emoji=False, soft_wrap=True)
