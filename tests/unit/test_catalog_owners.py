"""Run owners: a run whose owner process is gone is marked interrupted when the catalog is opened; a
live owner's run, or another host's, is left alone. Several processes may open a new catalog at once."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from piiguard.catalog import Catalog
from piiguard.catalog.owners import Owner, current, process_started
from piiguard.model import ScanMode


def test_an_owner_is_alive_only_as_the_same_process() -> None:
    me = current()
    assert me.alive() and me.started == process_started(os.getpid()) != ""
    assert not Owner(me.host, me.pid, str(int(me.started) + 1)).alive()  # the pid, reused by a later process
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not Owner(me.host, int(done.stdout), "").alive()  # exited
    assert Owner("another-host.invalid", 1, "1").alive()  # cannot be seen from here: not judged


def _copy(cat: Catalog) -> int:
    return cat.add_copy({"source_store": "s", "source_collection": "c", "target_store": "t", "target_engine": "files",
                         "target_collection": "x.csv", "transforms": {}, "key_id": "k", "owner": "o",
                         "purpose": "p", "expires": "2030-01-01", "accepted_risk": ""})


def test_opening_the_catalog_marks_dead_owners_runs_interrupted(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        dead_scan, live_scan, remote_scan = (cat.start_scan(ScanMode.SAMPLE, 10) for _ in range(3))
        dead_copy, live_copy = _copy(cat), _copy(cat)
        cat.db.execute("UPDATE scans SET owner_pid = 999999999 WHERE id = ?", (dead_scan,))
        cat.db.execute("UPDATE scans SET owner_host = 'elsewhere', owner_pid = 999999999 WHERE id = ?",
                       (remote_scan,))
        cat.db.execute("UPDATE copies SET owner_started = '1' WHERE id = ?", (dead_copy,))
        cat.db.commit()
    with Catalog(tmp_path / "c.db") as cat:
        scans = {s["id"]: s["status"] for s in cat.scans()}
        copies = {c["id"]: c["status"] for c in cat.copies()}
    assert scans == {dead_scan: "interrupted", live_scan: "running", remote_scan: "running"}
    assert copies == {dead_copy: "interrupted", live_copy: "writing"}


def _open(path: str) -> int:
    with Catalog(path) as cat:
        return cat.version


def test_processes_opening_a_new_catalog_at_once_all_get_it(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(_open, [str(tmp_path / "c.db")] * 8)
    assert len(set(versions)) == 1 and versions[0] > 0
