"""A file that changes while a full scan reads it (truncated, appended to, touched) is reported."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from piiguard.model import ScanMode
from piiguard.scanner import scan


class Meddler:
    """A scan's progress that changes the file once the first batch has been read."""

    def __init__(self, change: Callable[[], None]) -> None:
        self.change, self.done = change, False

    def collection_started(self, store: str, collection: str, total: int | None) -> None:
        pass

    def advanced(self, rows: int) -> None:
        if not self.done:
            self.done = True
            self.change()

    def collection_finished(self) -> None:
        pass


@pytest.mark.parametrize("how", ["truncate", "append", "touch"])
def test_a_file_changed_during_a_full_scan_is_a_problem(tmp_path: Path, how: str) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("email,note\n")
        pad = "x" * 200
        # 70 MB: batches of 16 MiB, the reader at most two ahead, so the change lands mid-read
        f.writelines(f"person{i}@example.com,{pad}\n" for i in range(300_000))
    changes = {"truncate": lambda: os.truncate(path, path.stat().st_size // 2),
               "append": lambda: path.open("a").write("late@example.com,1\n"),
               "touch": lambda: os.utime(path, ns=(1, 1))}
    result = scan([f"file://{path}"], mode=ScanMode.FULL, progress=Meddler(changes[how]))
    assert any("the file changed while it was read" in p.message for p in result.problems), result.problems


def test_an_unchanged_file_is_not_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(1000)))
    result = scan([f"file://{path}"], mode=ScanMode.FULL, progress=Meddler(lambda: None))
    assert result.problems == ()
