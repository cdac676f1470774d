"""No identifier reaches the terminal raw: ANSI escapes, C0/C1 controls, newlines, bidi overrides and
isolates and zero-width characters in store, collection, field names and evidence are printed as
escapes by every table and line renderer (Hypothesis), and labels escape only after PII is replaced."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from piiguard.connectors.labels import label
from piiguard.model import Finding, Severity, Status, Vantage
from piiguard.report import render_table
from piiguard.report.findings import render_table as render_findings
from piiguard.scanner import scan

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE = ["\x1b[31m", "\x1b]8;;http://x\x07", "\n", "\r", "\x9b", "\u202e", "\u2066", "\u2069", "\u200b",
           "\ufeff", "\x00", "\u2028"]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text("abcXYZ09_-", min_size=1, max_size=4)),
                        min_size=1, max_size=6).map("".join)


def unsafe(out: str) -> list[str]:
    """Characters a terminal would act on or hide (layout newlines excepted)."""
    return [hex(ord(ch)) for ch in out if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


@SETTINGS
@given(folder=hostile_text, file=hostile_text, column=hostile_text)
def test_scan_table_escapes_every_identifier(folder: str, file: str, column: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        safe_folder = folder.replace("/", "_").replace("\x00", "0")
        safe_file = file.replace("/", "_").replace("\x00", "0")
        d = Path(tmp) / safe_folder
        d.mkdir()
        col = column.replace('"', "").replace("\x00", "0")
        (d / f"{safe_file}.csv").write_text(f'"{col}",email\n' + "".join(f"v{i},p{i}@example.com\n"
                                                                        for i in range(10)))
        result = scan([f"file://{d}", f"file://{d}/missing{safe_file}"])
        out = io.StringIO()
        render_table(result, Console(file=out, width=300), all_fields=True)
        assert unsafe(out.getvalue()) == [], out.getvalue()


@SETTINGS
@given(store=hostile_text, evidence=hostile_text)
def test_findings_table_escapes_store_and_evidence(store: str, evidence: str) -> None:
    findings = (Finding("redis.no-auth", store, Status.FAIL, Severity.HIGH, Vantage.OUTSIDE, "t",
                        f"ACL user {evidence} has no password", data_context=evidence, waiver=evidence),)
    out = io.StringIO()
    render_findings(findings, Console(file=out, width=300))
    assert unsafe(out.getvalue()) == []


@pytest.mark.parametrize(("name", "shown"), [
    ("a\u200b@b.co", "<email>"),  # the zero-width space cannot hide the address, nor be half an escape
    ("\nhans.mueller@example.de", "<email>"),
    ("x\x1bhans.mueller@example.de", "x\\x1b<email>"),
    ("f\udcff.csv", "f\\udcff.csv"),
    ("a\u202eb", "ab"),
    ("first_name", "first_name"),
], ids=["zero-width", "newline", "escape-before", "surrogate", "bidi", "plain"])
def test_label_replaces_before_escaping(name: str, shown: str) -> None:
    assert label(name) == shown
    assert label(label(name)) == label(name)


def test_copy_plan_shows_labels_not_column_names(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE t ("hans.mueller@example.de" TEXT, "+49 30 12345678" TEXT, email TEXT, '
                     '"x\x1b[31m\u202e" TEXT)')
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(f"v{i}", "w", f"e{i}@example.com", "z")
                                                               for i in range(30)])
    (tmp_path / "lake").mkdir()
    done = subprocess.run([sys.executable, "-m", "piiguard", "copy", f"sqlite://{db}#t",
                           f"file://{tmp_path}/lake#out.csv", "--plan", "--catalog", str(tmp_path / "c.db")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "<email>" in done.stdout and "<phone>" in done.stdout
    for raw in ("hans.mueller", "12345678", "\x1b", "\u202e"):
        assert raw not in done.stdout + done.stderr
