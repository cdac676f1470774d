"""The ``piiguard`` command. One module per command group; each parses, calls the library, renders.

Errors are caught here, once: a :class:`PiiguardError` prints its message and hint and exits with its
class's code (0 clean, 1 error, 2 usage/config, 3 findings at or above ``--fail-on``).
"""

from __future__ import annotations

import os
import sqlite3
import sys

import typer
from rich.console import Console
from rich.markup import escape

from piiguard.cli import check, contain, copy, demo, incident, info, scan, validate, watch
from piiguard.errors import ConfigError, PiiguardError

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Find customer PII in data stores and keep those stores' security protocols on.")
app.command("scan")(scan.scan)
app.command("scans")(scan.scans)
app.command("check")(check.check)
app.command("watch")(watch.watch)
app.command("exposures")(watch.exposures)
app.command("approve")(contain.approve)
app.add_typer(contain.contain_app, name="contain")
app.command("copy")(copy.copy)
app.add_typer(copy.copies_app, name="copies")
app.add_typer(incident.incident_app, name="incident")
app.command("validate")(validate.validate)
app.command("demo")(demo.demo)
app.add_typer(info.list_app, name="list")
app.add_typer(info.show_app, name="show")


def main() -> None:
    err = Console(stderr=True)
    try:
        code = app(standalone_mode=False)  # without standalone mode, click returns an Exit's code
        if isinstance(code, int):
            sys.exit(code)
    except PiiguardError as exc:
        if isinstance(exc, ConfigError):
            err.print("[red]error:[/red] the configuration is not valid:", highlight=False)
            for problem in exc.problems:
                err.print(f"  {problem}", highlight=False, markup=False)
        else:
            # soft_wrap: a message naming a long path stays on one line, to be read and pasted whole
            err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, emoji=False, soft_wrap=True)
        if exc.hint:
            err.print(f"[dim]hint:[/dim] {escape(exc.hint)}", highlight=False, emoji=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
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
            err.print("[red]error:[/red] the catalog is damaged (SQLite reports it corrupt); the run stopped")
            err.print("[dim]hint:[/dim] restore it from a backup, or move it aside and start a new one (--catalog "
                      "PATH); `sqlite3 FILE 'PRAGMA integrity_check'` shows the damage", soft_wrap=True)
            sys.exit(1)
        # An unexpected error's text or traceback may quote data a driver was handling: print neither
        # unless asked to.
        if os.environ.get("PIIGUARD_DEBUG"):
            raise
        err.print(f"[red]internal error[/red] ({type(exc).__name__}); set PIIGUARD_DEBUG=1 to see the traceback "
                  "(it may contain data values)")
        sys.exit(1)
