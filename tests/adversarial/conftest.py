"""Fixtures of the hostile-input tests: a tiny disk of the test's own, and a way to fill it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import missing


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of the test's own (needs root), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing("root and mount(8), for a tmpfs to fill")
    where = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        missing(f"a tmpfs mount ({done.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    with contextlib.suppress(OSError):  # until ENOSPC
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    assert shutil.disk_usage(folder).free < 8192
    return filler


@pytest.fixture
def fill() -> Callable[[Path], Path]:
    """Fills the disk holding a folder; returns the filler file (remove it to free the space)."""
    return _fill
