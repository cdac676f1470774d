"""An engine piiguard has no checks for (files, sqlite) is not-applicable in ``check`` (exit 0) and in a
copy's plan, never "could not be decided"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from piiguard.checker import run_checks
from piiguard.model import Status, Store


def piiguard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("engine", ["files", "sqlite"])
def test_no_checks_is_not_applicable(tmp_path: Path, engine: str) -> None:
    path = tmp_path / ("data" if engine == "files" else "a.db")
    if engine == "files":
        path.mkdir()
    else:
        path.write_bytes(b"")
    findings = run_checks([Store("s", engine, path=str(path))]).findings
    assert findings and all(f.status is Status.NOT_APPLICABLE for f in findings)


def test_check_and_copy_plan_with_a_files_store(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "src" / "c.csv").write_text("customer_id;plan\n" + "".join(f"cust-{i:04d};basic\n"
                                                                          for i in range(30)))
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"catalog: {tmp_path / 'c.db'}\nstores:\n"
                   f"  - name: src\n    engine: files\n    path: {tmp_path / 'src'}\n"
                   f"  - name: dst\n    engine: files\n    path: {tmp_path / 'dst'}\n")
    run = piiguard("check", "-c", str(cfg), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 could not be decided" in run.stdout
    plan = piiguard("copy", "src.c.csv", "dst.c.csv", "--plan", "-c", str(cfg), cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "0 could not be decided" in plan.stdout and "REFUSED" not in plan.stdout
