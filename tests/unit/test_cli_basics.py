"""CLI basics: --version, -v/-q on every command, JSON log lines, and a start that loads no driver."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from piiguard.log import JsonFormatter, LogFormat, TextFormatter, configure

SRC = str(Path(__file__).resolve().parents[2] / "src")
HEAVY = ("psycopg", "pymysql", "redis", "clickhouse_driver", "opensearchpy", "pymongo", "boto3", "botocore",
         "openlineage", "pyarrow", "duckdb", "hyperscan", "numpy")
# Runs the CLI in-process, then prints which heavy packages it imported (at exit, after main's sys.exit).
PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))), file=sys.stderr))
sys.argv = ["piiguard", *sys.argv[1:]]
from piiguard.cli import main
main()
"""
# Makes a package look uninstalled (as in a default install without that extra), then runs the CLI.
WITHOUT = """
import sys
BLOCK = set(sys.argv[1].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = ["piiguard", *sys.argv[2:]]
from piiguard.cli import main
main()
"""


def run(*args: str, code: str | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "piiguard", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": SRC, **(env or {})})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    file = tmp_path / "piiguard.yaml"
    file.write_text("stores:\n  - {name: prod, engine: postgres, host: db.internal, password_env: HD_CLI_PW}\n"
                    "masking:\n  prod.customers: {email: pseudonym}\n"
                    "respond:\n  responders: [{kind: sql-sessions, store: prod, table: s, subject_column: u}]\n")
    return file


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("piiguard ") and result.stdout.split()[1][0].isdigit()


def test_import_of_the_cli_loads_no_driver() -> None:
    code = f"import json, sys; import piiguard.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = run(code=code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_import_of_piiguard_loads_neither_the_scanner_nor_a_driver() -> None:
    code = ("import json, sys; import piiguard; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('piiguard'))))")
    assert json.loads(run(code=code).stdout) == ["piiguard"]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["validate", "CONFIG"], ["list", "maskers"],
                                  ["list", "responders"],
                                  ["scan", "--help"], ["incident", "respond", "--help"]])
def test_help_version_and_validate_load_no_driver(config: Path, args: list[str]) -> None:
    argv = [str(config) if a == "CONFIG" else a for a in args]
    result = run(*argv, code=PROBE % (HEAVY,), env={"HD_CLI_PW": "x", "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    if args == ["list", "responders"]:  # named by the "unknown responder" hint: it must exist
        assert "sql-sessions" in result.stdout and "subject_column*" in result.stdout


def test_top_level_summaries_match_the_commands_docstrings() -> None:
    from piiguard.cli import COMMANDS, _load

    for name, (_, _, summary) in COMMANDS.items():
        command = _load(name)
        text = " ".join((command.help or "").split())
        assert text.startswith(summary), (name, summary, text)


def test_every_command_takes_verbose_quiet_and_log_format() -> None:
    from piiguard.cli import COMMANDS, _load

    def leaves(command: object, path: str) -> list[tuple[str, object]]:
        subs = getattr(command, "commands", None)
        if subs:  # a group that also runs by itself (`piiguard copies`) takes the options too
            runs = [(path, command)] if getattr(command, "invoke_without_command", False) else []
            return runs + [leaf for n, c in subs.items() for leaf in leaves(c, f"{path} {n}")]
        return [(path, command)]

    for name in COMMANDS:
        for path, command in leaves(_load(name), name):
            options = {o for p in command.params for o in p.opts}  # type: ignore[attr-defined]
            assert {"-v", "--verbose", "-q", "--quiet", "--log-format"} <= options, path


def test_verbose_shows_info_logs_before_or_after_the_command(config: Path) -> None:
    quiet = run("validate", str(config), env={"HD_CLI_PW": "x"})
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr
    for args in (["-v", "validate", str(config)], ["validate", "-v", str(config)]):
        loud = run(*args, env={"HD_CLI_PW": "x"})
        assert loud.returncode == 0, loud.stderr
        assert "INFO piiguard.cli.common: configuration" in loud.stderr, args


def test_quiet_hides_warnings(tmp_path: Path) -> None:
    # watch logs a WARNING per alert; an open Redis is an alert (there is none here, so log one directly)
    code = ("import logging, sys; from piiguard.log import configure; configure(quiet=int(sys.argv[1])); "
            "logging.getLogger('piiguard.x').warning('a warning')")
    assert "a warning" in run("0", code=code).stderr
    assert "a warning" not in run("1", code=code).stderr


def test_watch_json_logs_are_one_json_object_per_line(tmp_path: Path) -> None:
    result = run("watch", "--once", "--log-format", "json", "-v", "redis://127.0.0.1:9/0",
                 "--catalog", str(tmp_path / "catalog.db"))
    assert result.returncode == 1  # nothing listens on port 9: the checks could not be decided
    # every log line parses; the last two are the CLI's error and hint, not log records
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("error:", "hint:"))]
    assert lines, result.stderr
    records = [json.loads(line) for line in lines]
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "piiguard.watch.service" and r["message"].startswith("cycle:") for r in records)


def test_log_lines_never_carry_an_exception_text_or_traceback() -> None:
    secret = "maria.garcia@example.com"
    for formatter in (JsonFormatter(), TextFormatter()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger("piiguard.test-leak")
        logger.addHandler(handler)
        try:
            raise ValueError(f"duplicate key value ({secret})")  # the kind of text drivers write
        except ValueError:
            logger.exception("insert failed")
        finally:
            logger.removeHandler(handler)
        out = stream.getvalue()
        assert secret not in out and "Traceback" not in out
        assert "ValueError" in out


def test_third_party_loggers_stay_at_warning_when_verbose() -> None:
    stream = io.StringIO()
    configure(verbose=2, fmt=LogFormat.json, stream=stream)
    try:
        logging.getLogger("opensearchpy.trace").debug("curl -XPOST ... {'email': 'x@y.z'}")
        logging.getLogger("piiguard.scanner").debug("sampled 3 collections")
    finally:
        configure()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["logger"] for r in lines] == ["piiguard.scanner"]


def test_a_missing_driver_names_its_extra(tmp_path: Path) -> None:
    result = run("pymongo,bson", "scan", "mongodb://127.0.0.1:9/db", code=WITHOUT,
                 env={"PIIGUARD_CATALOG": str(tmp_path / "catalog.db"), "COLUMNS": "300"})
    assert result.returncode == 1
    assert "the pymongo package is not installed" in result.stdout
    assert "install the mongodb extra" in result.stdout
    checked = run("pymongo,bson", "check", "mongodb://127.0.0.1:9/db", "-f", "json", code=WITHOUT,
                  env={"PIIGUARD_CATALOG": str(tmp_path / "catalog.db")})
    evidence = {f["evidence"] for f in json.loads(checked.stdout)["findings"]}
    assert evidence == {"the pymongo package is not installed; it is needed for this engine — "
                        "install the mongodb extra: pip install 'piiguard[mongodb]'"}


def test_a_missing_openlineage_is_said_before_the_copy(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
    result = run("openlineage", "copy", f"sqlite:///{db}#t", f"sqlite:///{tmp_path / 'b.db'}#t", "--owner", "o",
                 "--purpose", "p", "--key-env", "HD_KEY", "--lineage", f"file:{tmp_path / 'l.jsonl'}", code=WITHOUT,
                 env={"HD_KEY": "k" * 32, "PIIGUARD_CATALOG": str(tmp_path / "catalog.db")})
    assert result.returncode == 1, result.stderr
    assert "--lineage needs the openlineage-python package" in result.stderr
    assert not (tmp_path / "b.db").exists()
