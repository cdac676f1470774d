"""The leak fixture itself must be able to fail: each artefact kind it searches, with a planted value."""

from __future__ import annotations

from pathlib import Path

import leak

from piiguard import synthetic

EMAIL = "planted.person@example.org"


def test_finds_a_seeded_value_in_output_files_and_http(tmp_path: Path) -> None:
    found = leak.Leaks(tmp_path)
    found.seed([EMAIL, "short"])
    assert found.problems() == []
    found.emitted("stdout", f"field email holds {EMAIL}\n")
    (tmp_path / "report.md").write_text(f"x {EMAIL} y")
    (tmp_path / "cat.db-wal").write_bytes(b"\0\1" + EMAIL.encode() + b"\0")
    problems = found.problems()
    assert problems == ["stdout: holds a seeded seeded value", "cat.db-wal: holds a seeded seeded value",
                        "report.md: holds a seeded seeded value"]
    assert all(EMAIL not in p for p in problems)  # it names the artefact, never the value


def test_declared_sources_are_skipped_and_people_files_must_be_0600(tmp_path: Path) -> None:
    found = leak.Leaks(tmp_path)
    found.seed([EMAIL])
    src = tmp_path / "input"
    src.mkdir()
    (src / "customers.csv").write_text(f"email\n{EMAIL}\n")
    found.source(src)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(f"{EMAIL}\n")
    subjects.chmod(0o644)
    found.holds_people(subjects)
    assert found.problems() == ["subjects.csv: holds people's data but is 0o644, not 0600"]
    subjects.chmod(0o600)
    assert found.problems() == []


def test_synthetic_rows_are_seeded_for_the_session(tmp_path: Path) -> None:
    data = synthetic.rows(3, seed=12345)  # conftest wraps synthetic.rows
    found = leak.Leaks(tmp_path)
    found.emitted("json", f'{{"value": "{data["iban"][1]}"}}')
    assert found.problems() == ["json: holds a seeded iban value"]
