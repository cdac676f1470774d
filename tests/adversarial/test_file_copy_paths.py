"""Hostile collection paths for a copy into a file store: ``..``, absolute paths, ``a/../../b``, symbolic
links (to a folder and to a file outside), NUL, very long names. Each is refused before anything is
written, and nothing outside the store's folder changes (the parent folder is listed before and after)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.errors import StoreError, UsageError
from piiguard.masking.pipeline import CopyPlan, plan_copy, run_copy
from piiguard.model import Store

KEY = b"k" * 32
VICTIM = b"someone else's data, outside the store\n"


@dataclasses.dataclass
class World:
    parent: Path
    root: Path
    plan: CopyPlan
    catalog: Catalog


def listing(top: Path) -> dict[str, tuple[str, int, int, str]]:
    """Every entry under ``top`` without following links: kind, size, modification time, link target."""
    out = {}
    for folder, dirs, files in os.walk(top, followlinks=False):
        for name in dirs + files:
            p = Path(folder) / name
            st_ = p.lstat()
            kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
            out[str(p.relative_to(top))] = (kind, st_.st_size if kind == "file" else 0, st_.st_mtime_ns,
                                            os.readlink(p) if kind == "link" else "")
    return out


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    base = Path(tempfile.mkdtemp(prefix="piiguard-paths-"))
    parent, source = base / "parent", base / "source.db"
    root = parent / "store"
    (parent / "outside").mkdir(parents=True)
    (parent / "outside" / "victim.csv").write_bytes(VICTIM)
    (root / "sub").mkdir(parents=True)
    (root / "link").symlink_to(parent / "outside")                          # a folder link pointing out
    (root / "filelink.csv").symlink_to(parent / "outside" / "victim.csv")   # a file link pointing out
    (root / "sub" / "uplink").symlink_to("../..")                           # a relative link, deeper down
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE users (email TEXT, plan TEXT)")
        db.executemany("INSERT INTO users VALUES (?, ?)", [(f"person{i}@example.com", "gold") for i in range(50)])
    prod = Store("prod", "sqlite", path=str(source))
    lake = Store("lake", "files", path=str(root))
    cfg = parse_config({"masking": {"prod.users": {"plan": "keep"}}})
    plan = plan_copy(prod, "users", lake, "first.csv", config=cfg)
    with Catalog(base / "c.db") as catalog:
        yield World(parent, root, plan, catalog)
    shutil.rmtree(base)


def attempt(world: World, path: str) -> bool:
    """Copy into ``path``; whether it was written (False: refused with a UsageError)."""
    try:
        run_copy(dataclasses.replace(world.plan, target_collection=path), KEY, world.catalog, owner="t",
                 purpose="test", expires=date(2030, 1, 1))
    except UsageError as exc:
        assert "\0" not in str(exc) and len(str(exc)) < 600  # the message shows the name, shortened
        return False
    return True


PARTS = st.sampled_from(["a", "sub", "x.csv", "y.parquet", "..", ".", "", "link", "filelink.csv", "uplink",
                         "outside", "victim.csv", "\0", "n" * 300, "é.csv"])


def hostile(outside: str) -> st.SearchStrategy[str]:
    """Paths each holding at least one way out: a '..' or '.' or empty part, an absolute start, a link,
    a NUL, a part too long, or far too many characters."""
    anywhere = st.tuples(st.lists(PARTS, max_size=3), st.sampled_from(["..", "", ".", "a\0b", "c" * 256]))
    at_root = st.tuples(st.just([]), st.sampled_from(["link", "filelink.csv", "sub/uplink"]))  # the links are there
    body = st.tuples(anywhere | at_root, st.lists(PARTS, max_size=3), st.sampled_from(["x.csv", "victim.csv",
                                                                                      "y.parquet"]))
    joined = body.map(lambda t: "/".join([*t[0][0], t[0][1], *t[1], t[2]]))
    return st.one_of(joined, joined.map(lambda p: outside + "/" + p), st.just("d/" * 600 + "x.csv"),
                     joined.map(lambda p: "/" + p))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)
def test_hostile_paths_are_refused_and_nothing_changes(world: World, data: st.DataObject | None) -> None:
    outside = str(world.parent / "outside")
    cases = (["../outside/victim.csv", f"{outside}/victim.csv", "a/../../b.csv", "link/victim.csv", "filelink.csv",
              "sub/uplink/outside/victim.csv", "sub/\0.csv", "a" * 5000 + ".csv", "sub/" + "b" * 300 + ".csv",
              "/etc/piiguard-test.csv", "./x.csv", "sub//x.csv"]
             if data is None else [data.draw(hostile(outside))])
    for path in cases:
        before, copies = listing(world.parent), len(world.catalog.copies())
        assert not attempt(world, path), f"{path[:80]!r} was written"
        assert listing(world.parent) == before  # nothing written, inside the store or out of it
        assert len(world.catalog.copies()) == copies  # refused before it was registered
    assert (world.parent / "outside" / "victim.csv").read_bytes() == VICTIM


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(PARTS, min_size=1, max_size=4).map("/".join) | st.text(max_size=40))
def test_any_path_is_refused_or_lands_inside_the_store(world: World, path: str) -> None:
    def outside_the_store() -> dict[str, tuple[str, int, int, str]]:
        return {k: v for k, v in listing(world.parent).items() if k.split("/")[0] != "store"}

    outside = outside_the_store()
    written = attempt(world, path)
    event("written" if written else "refused")
    if written:
        landed = Path(os.path.realpath(world.root / path))
        assert landed.is_relative_to(world.root) and landed.is_file()
        assert oct(landed.stat().st_mode & 0o777) == "0o600"
        assert ".." not in path.split("/") and not path.startswith("/")
    assert outside_the_store() == outside
    assert (world.parent / "outside" / "victim.csv").read_bytes() == VICTIM


def test_a_file_under_the_staging_name_is_neither_used_nor_removed(world: World) -> None:
    """The staging name is derived from the next copy's id, so anyone can guess it: a file already
    there is not piiguard's, and a failed copy must not remove it on its way out."""
    next_id = max((c["id"] for c in world.catalog.copies()), default=0) + 1
    decoy = world.root / "fresh" / f".taken.csv.piiguard-{next_id}.tmp"
    decoy.parent.mkdir()
    decoy.write_bytes(VICTIM)
    with pytest.raises(StoreError, match="is taken by a file piiguard did not make"):
        run_copy(dataclasses.replace(world.plan, target_collection="fresh/taken.csv"), KEY, world.catalog,
                 owner="t", purpose="test", expires=date(2030, 1, 1))
    assert decoy.read_bytes() == VICTIM and sorted(p.name for p in decoy.parent.iterdir()) == [decoy.name]
    assert world.catalog.copies()[-1]["status"] == "failed"

    def interrupt(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a copy that fails takes the folders it made with it
        run_copy(dataclasses.replace(world.plan, target_collection="made/here/y.csv"), KEY, world.catalog,
                 owner="t", purpose="test", expires=date(2030, 1, 1), progress=interrupt)
    assert not (world.root / "made").exists()
