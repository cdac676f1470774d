"""A second Catalog on the same file in one process (watch's delivery and sweep threads) must not drop
the process's SQLite locks: another process that opens and closes the catalog beside it (``piiguard
exposures`` during a watch) would then look like the last connection, checkpoint and remove the -wal,
and what the first process commits afterwards would be lost when it dies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from piiguard.catalog import Catalog

KEY = b"k" * 32
WRITER = """
import os, subprocess, sys
from piiguard.catalog import Catalog
path, second = sys.argv[1], sys.argv[2] == "1"
one = Catalog(path, timeline_key=b"k" * 32)
two = Catalog(path, timeline_key=b"k" * 32) if second else None
reader = "from piiguard.catalog import Catalog; import sys; Catalog(sys.argv[1], timeline_key=b'k' * 32).close()"
subprocess.run([sys.executable, "-c", reader, path], check=True)
one.open_incident("after the other process closed", ["s"], "2026-01-01", [], None)
os._exit(0)  # dies without closing, as a killed watch does
"""


@pytest.mark.parametrize("second", [False, True], ids=["one-catalog", "two-catalogs"])
def test_what_a_process_commits_survives_another_process_closing_the_catalog(tmp_path: Path, second: bool) -> None:
    path = tmp_path / "c.db"
    Catalog(path, timeline_key=KEY).close()  # an existing catalog, as watch finds it
    subprocess.run([sys.executable, "-c", WRITER, str(path), "1" if second else "0"], check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    with Catalog(path, timeline_key=KEY) as cat:
        assert [i["title"] for i in cat.incidents()] == ["after the other process closed"]


def test_a_second_catalog_on_a_file_still_refuses_a_foreign_file(tmp_path: Path) -> None:
    """Skipping the header check applies only to a file this process already has open as a catalog."""
    from piiguard.errors import CatalogError

    with Catalog(tmp_path / "c.db", timeline_key=KEY):
        foreign = tmp_path / "other.db"
        foreign.write_bytes(b"not a database at all" * 10)
        with pytest.raises(CatalogError):
            Catalog(foreign)
