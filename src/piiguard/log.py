"""Logging for the command line: ``-v`` / ``-q`` on every command, text or JSON lines on stderr.

Only piiguard's own loggers (``piiguard.*``) follow ``-v``: ``-v`` shows INFO, ``-vv`` DEBUG, ``-q``
only errors. Third-party loggers stay at WARNING whatever the verbosity, because drivers log what
they send and receive at DEBUG (opensearch-py's ``opensearchpy.trace`` logs request and response
bodies, which hold the very records piiguard is protecting).

``--log-format json`` (for ``watch`` under a supervisor or log shipper) writes one JSON object per
line: ``ts``, ``level``, ``logger``, ``message`` and the ``extra`` fields a call passes. An exception
is logged by its class name only, never its text or traceback: a driver's error text can quote row
data (see :mod:`piiguard.errors`).

piiguard's messages name stores, collections, fields, check ids and counts, never a data value.
A library's message is not piiguard's to vouch for (clickhouse-driver logs "Failed to connect …"
with the driver's exception): a record from any other logger is shown by its logger, level and
exception class only — its text withheld — and known drivers' loggers are set to ERROR.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

LOGGER = "piiguard"
# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def _safe_exception(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        return record.exc_info[0].__name__
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line; exceptions by class name only."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        if (error := _safe_exception(record)) is not None:
            out["error"] = error
        for key, value in vars(record).items() if _ours(record) else ():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``; exceptions by class name only."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(_with_message(record))
        error = _safe_exception(record)
        return line if error is None else f"{line} ({error})"


# drivers that log connection failures (with tracebacks) at WARNING; piiguard reports them itself
DRIVER_LOGGERS = ("clickhouse_driver", "clickhouse_connect", "pymongo", "opensearchpy", "opensearch",
                  "elastic_transport", "urllib3", "botocore", "boto3", "s3transfer", "redis", "psycopg",
                  "pymysql", "kafka", "aiosmtpd", "mail.log")


def _ours(record: logging.LogRecord) -> bool:
    return record.name == LOGGER or record.name.startswith(LOGGER + ".")


def _message(record: logging.LogRecord) -> str:
    if _ours(record):
        return record.getMessage()
    return "a library's message, withheld (its text can quote data values)"


def _with_message(record: logging.LogRecord) -> logging.LogRecord:
    record.message = _message(record)
    return record


def level_for(verbose: int, quiet: int) -> int:
    """WARNING by default; each ``-v`` one step more detail, ``-q`` errors only."""
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def configure(verbose: int = 0, quiet: int = 0, fmt: LogFormat = LogFormat.text, stream: IO[str] | None = None) -> None:
    """Route ``piiguard.*`` logs to stderr at the chosen level, replacing an earlier configuration."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_piiguard", False)]:
        root.removeHandler(old)
    handler._piiguard = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # third-party loggers: never below WARNING (see the module docstring)
    for name in DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger(LOGGER).setLevel(level_for(verbose, quiet))
