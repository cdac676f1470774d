"""Names are printed literally: Rich markup, emoji codes and escapes in store, collection and field
names, through the real CLI (table and JSON) and the findings renderers (table, JSON, SARIF)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from piiguard.model import Finding, Severity, Status, Vantage
from piiguard.report.findings import render_json, render_sarif, render_table

NAMES = ["[/]", "[bold]x[/bold]", "[link=https://example.org]l[/link]", ":smile:", "[red]"]


def test_markup_in_names_through_the_scan_cli(tmp_path: Path) -> None:
    d = tmp_path / "[bold]d[_bold]"
    d.mkdir()
    header = ",".join(f'"{n}"' for n in NAMES)
    rows = "".join(",".join(f"m{i}{j}@example.com" for j in range(len(NAMES))) + "\n" for i in range(20))
    (d / "[red]t[_red].csv").write_text(header + "\n" + rows)
    (d / "[i].jsonl").write_text("".join(json.dumps({"[/]": {"[b]k": f"j{i}@example.com"}}) + "\n"
                                         for i in range(20)))
    base = [sys.executable, "-m", "piiguard", "scan", f"file://{d}", "--catalog", str(tmp_path / "c.db")]
    table = subprocess.run([*base, "--all-fields"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "300"})
    assert table.returncode == 0, table.stdout + table.stderr
    assert "internal error" not in table.stderr
    for name in [*NAMES, "[red]t[_red].csv", "[i].jsonl", "[/].[b]k", "[bold]d[_bold]"]:
        assert name in table.stdout, name
    assert "😄" not in table.stdout
    js = subprocess.run([*base, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert js.returncode == 0, js.stderr
    report = json.loads(js.stdout)
    assert {f["field"] for f in report["fields"]} == {*NAMES, "[/].[b]k"}
    assert "m1" + "1@example.com" not in table.stdout + js.stdout


def test_markup_in_findings_table_json_and_sarif() -> None:
    findings = tuple(Finding("redis.no-auth", name, status, Severity.HIGH, Vantage.OUTSIDE, "t",
                             f"evidence {name}", data_context=name, waiver=name if status is Status.FAIL else "")
                     for name in NAMES for status in Status)
    out = io.StringIO()
    render_table(findings, Console(file=out, width=400), show_passed=True)
    for name in NAMES:
        assert f"evidence {name}" in out.getvalue()
    assert "😄" not in out.getvalue()
    assert {f["store"] for f in json.loads(render_json(findings))["findings"]} == set(NAMES)
    sarif = json.loads(render_sarif(findings, "0"))
    texts = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert all(any(t.startswith(f"{n}: evidence {n}") for t in texts) for n in NAMES)
