"""``piiguard show KIND NAME`` with an unknown name (and ``list checks --engine`` with an unknown engine)
is a usage error, exit 2, with the closest known name, as ``validate`` says it."""

from __future__ import annotations

import subprocess
import sys

import pytest


def piiguard(*args: str) -> tuple[int, str]:
    run = subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr

CASES = [
    (["show", "responder", "sql-session"], "unknown responder 'sql-session' (did you mean 'sql-sessions'?)"),
    (["show", "detector", "emial"], "unknown detector 'emial' (did you mean 'email'?)"),
    (["show", "connector", "postgress"], "unknown connector 'postgress' (did you mean 'postgres'?)"),
    (["show", "check", "tls.requird"], "unknown check 'tls.requird' (did you mean 'tls.required'?)"),
    (["list", "checks", "--engine", "postgrs"], "unknown engine 'postgrs' (did you mean 'postgres'?)"),
    (["show", "connector", "zzzzzz"], "unknown connector 'zzzzzz'"),
]


@pytest.mark.parametrize(("args", "said"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_an_unknown_name_exits_2_with_a_did_you_mean(args: list[str], said: str) -> None:
    code, out = piiguard(*args)
    assert code == 2, out
    assert said in " ".join(out.split())
    assert "piiguard list" in out


@pytest.mark.parametrize("args", [["show", "responder", "sql-sessions"], ["show", "connector", "files"],
                                  ["list", "checks", "--engine", "files"], ["show", "check", "tls.required"]])
def test_a_known_name_still_shows(args: list[str]) -> None:
    code, out = piiguard(*args)
    assert code == 0, out
