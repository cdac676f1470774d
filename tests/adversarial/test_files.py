"""Files that hold people's data: every writer, against an existing file, a planted symbolic link and a
loose umask; key files others can read are refused.

The writers are driven through the command line (``incident scope --out``, ``incident report``,
``incident export``, ``incident notify --spool`` on a real PostgreSQL, the catalog) and through the code
the commands call (the spool's numbering, evidence, :mod:`piiguard.safefile` itself), with one matrix:

- new: the file is 0600, the folders piiguard made for it 0700 (even under umask 000);
- an existing file: refused, left byte for byte; with ``--force`` replaced by a new file (0600);
- a symbolic link: refused, its target untouched; with ``--force`` the link itself is replaced;
- a folder that is a symbolic link: refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import PASSWORD, Server

from piiguard import safefile
from piiguard.errors import FileError, FileRefused, UsageError
from piiguard.masking.pipeline import key_from
from piiguard.response import evidence, notices

KEY = "files-tests-timeline-key-0123456789"
SUBJECT_KEY = "files-tests-subject-key-0123456789"
EMAILS = [f"person{i}@example.org" for i in range(50)]
KEEP = b"somebody else's file\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """umask 000: what piiguard makes must be private by itself, not by the caller's umask."""
    old = os.umask(0)
    yield
    os.umask(old)


class Project:
    """A configured shop (SQLite), scanned, with incident 1 open on it; runs ``piiguard`` against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        db = sqlite3.connect(root / "shop.db")
        db.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, email TEXT, nickname TEXT)")
        db.executemany("INSERT INTO customers (email, nickname) VALUES (?, ?)",
                       [(e, f"nick{i}") for i, e in enumerate(EMAILS)])
        db.commit()
        db.close()
        self.catalog = root / "state" / "c.db"
        self.config = root / "piiguard.yaml"
        self.config.write_text(json.dumps({"catalog": str(self.catalog),
                                           "stores": [{"name": "shop", "url": f"sqlite://{root / 'shop.db'}"}]}))
        self.env = {**os.environ, "PIIGUARD_TIMELINE_KEY": KEY, "SUBJECT_KEY": SUBJECT_KEY}
        self.env.pop("PIIGUARD_CATALOG", None)
        self.ok("scan", "shop")
        self.ok("incident", "open", "shop", "--since", "2026-11-03T08:00")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "piiguard", *args, "-c", str(self.config)],
                              capture_output=True, text=True, env=self.env, cwd=self.root, timeout=300)
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not any(e in done.stdout + done.stderr for e in EMAILS)
        return done

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("files"))


def scope(p: Project, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return p.run("incident", "scope", "1", "--out", str(out), "--key-env", "SUBJECT_KEY", *extra)


def report(p: Project, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return p.run("incident", "report", "1", "--out", str(out), *extra)


def export(p: Project, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return p.run("incident", "export", "1", str(out), *extra)


# (writer, where its data file lands given an --out, the file to plant)
WRITERS = {
    "scope": (scope, lambda out: out),
    "report": (report, lambda out: out / "reports" / "gdpr-art33.md"),
    "export": (export, lambda out: out / "timeline.jsonl"),
}


def out_for(writer: str, tmp_path: Path) -> Path:
    return tmp_path / ("subjects.csv" if writer == "scope" else "out")


@pytest.mark.parametrize("writer", WRITERS)
def test_a_new_file_is_0600_in_0700_folders_whatever_the_umask(project: Project, tmp_path: Path, writer: str,
                                                               loose_umask: None) -> None:
    run, file_of = WRITERS[writer]
    out = tmp_path / "made" / "by" / "piiguard" / out_for(writer, tmp_path).name
    assert run(project, out).returncode == 0
    data = file_of(out)
    assert mode(data) == 0o600
    for folder in [tmp_path / "made", tmp_path / "made" / "by", *([] if writer == "scope" else [out]),
                   *([out / "reports"] if writer == "report" else [])]:
        assert mode(folder) == 0o700, folder
    if writer == "export":
        assert {mode(p) for p in out.iterdir()} == {0o600}


@pytest.mark.parametrize("writer", WRITERS)
def test_an_existing_file_is_kept_unless_forced_then_replaced_whole(project: Project, tmp_path: Path,
                                                                    writer: str) -> None:
    run, file_of = WRITERS[writer]
    out = out_for(writer, tmp_path)
    data = file_of(out)
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(KEEP)
    data.chmod(0o644)
    refused = run(project, out)
    assert refused.returncode != 0 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert data.read_bytes() == KEEP and mode(data) == 0o644
    inode = data.stat().st_ino
    forced = run(project, out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert data.read_bytes() != KEEP and mode(data) == 0o600
    assert data.stat().st_ino != inode  # a new file renamed into place, not the old one rewritten
    assert not [p for p in data.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_planted_link_is_never_followed(project: Project, tmp_path: Path, writer: str) -> None:
    run, file_of = WRITERS[writer]
    out = out_for(writer, tmp_path)
    data = file_of(out)
    data.parent.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "victim"
    target.write_bytes(KEEP)
    target.chmod(0o644)
    data.symlink_to(target)
    refused = run(project, out)
    assert refused.returncode != 0 and "symbolic link" in refused.stderr
    forced = run(project, out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert target.read_bytes() == KEEP and mode(target) == 0o644  # the link's target: untouched both times
    assert not data.is_symlink() and mode(data) == 0o600  # the link itself was replaced


@pytest.mark.parametrize("writer", ["report", "export"])
def test_a_folder_that_is_a_link_is_refused(project: Project, tmp_path: Path, writer: str) -> None:
    run, _ = WRITERS[writer]
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    for extra in ((), ("--force",)):
        done = run(project, tmp_path / "out", *extra)
        assert done.returncode != 0 and "symbolic link" in done.stderr
    assert list((tmp_path / "real").iterdir()) == []


def test_scope_refuses_before_reading_the_store(project: Project, tmp_path: Path) -> None:
    """An existing --out is refused at once, and nothing (no timeline entry) is recorded."""
    (tmp_path / "subjects.csv").write_bytes(KEEP)
    before = sqlite3.connect(project.catalog).execute("SELECT count(*) FROM timeline").fetchone()[0]
    assert scope(project, tmp_path / "subjects.csv").returncode != 0
    after = sqlite3.connect(project.catalog).execute("SELECT count(*) FROM timeline").fetchone()[0]
    assert after == before


def test_the_catalog_and_its_wal_are_0600_whatever_the_umask(tmp_path: Path, loose_umask: None) -> None:
    env = {**os.environ, "PIIGUARD_TIMELINE_KEY": KEY}
    path = tmp_path / "new" / "c.db"
    done = subprocess.run([sys.executable, "-m", "piiguard", "incident", "open", "shop", "--since", "2026-11-03",
                           "--catalog", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    from piiguard.catalog import Catalog
    with Catalog(path, timeline_key=KEY.encode()):
        assert {mode(p) for p in path.parent.iterdir()} == {0o600}  # c.db, c.db-wal, c.db-shm


@pytest.mark.parametrize("planted", ["c.db", "c.db-wal", "c.db-shm"])
def test_a_link_planted_as_the_catalog_or_its_wal_is_refused(tmp_path: Path, planted: str) -> None:
    from piiguard.catalog import Catalog
    from piiguard.errors import CatalogError

    with Catalog(tmp_path / "c.db", timeline_key=KEY.encode()):
        pass
    victim = tmp_path / "victim"
    victim.write_bytes(KEEP)
    if planted == "c.db":
        (tmp_path / "c.db").rename(tmp_path / "real.db")
    (tmp_path / planted).symlink_to(victim)
    with pytest.raises(CatalogError, match="symbolic link"):
        Catalog(tmp_path / "c.db", timeline_key=KEY.encode())
    assert victim.read_bytes() == KEEP


# The notice spool and evidence: the same rules, through the code the commands call -----------------------


def spool_sender(spool: Path) -> notices._Sender:
    options = notices.NoticeOptions(store="crm", table="customers", subject_column="id", email_column="email")
    return notices._Sender(options, spool)


def test_the_spool_is_private_and_keeps_every_earlier_file(tmp_path: Path, loose_umask: None) -> None:
    spool = tmp_path / "spool" / "inc1"
    spool.mkdir(parents=True)
    (spool / "notices-00000.jsonl").write_bytes(KEEP)  # an earlier run's
    victim = tmp_path / "victim"
    victim.write_bytes(KEEP)
    (spool / "notices-00001.jsonl").symlink_to(victim)  # planted
    sender = spool_sender(spool)
    for i in range(notices.SPOOL_PER_FILE + 1):  # two files' worth
        sender.send(f"p{i}@example.org", "s", "b")
    sender.close()
    assert (spool / "notices-00000.jsonl").read_bytes() == KEEP and victim.read_bytes() == KEEP
    written = sorted(p.name for p in spool.iterdir() if not p.is_symlink() and p.name != "notices-00000.jsonl")
    assert written == ["notices-00002.jsonl", "notices-00003.jsonl"]
    assert {mode(spool / n) for n in written} == {0o600}
    lines = sum(len((spool / n).read_text().splitlines()) for n in written)
    assert lines == notices.SPOOL_PER_FILE + 1


def test_a_new_spool_folder_is_0700_and_a_linked_one_refused(tmp_path: Path, loose_umask: None) -> None:
    spool_sender(tmp_path / "a" / "spool").close()
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "spool") == 0o700
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    with pytest.raises(FileRefused, match="symbolic link"):
        spool_sender(tmp_path / "linked")


def test_evidence_is_private_and_replaced_only_when_forced(tmp_path: Path, loose_umask: None) -> None:
    from datetime import UTC, datetime

    from piiguard.model import Store

    log = tmp_path / "pg.log"
    log.write_text("2026-11-03 08:00:02.000 UTC [102] LOG:  connection received: host=198.51.100.7 port=4\n")
    store = Store("a", "postgres", options={"log_file": str(log)})
    folder = tmp_path / "incidents" / "1" / "evidence"
    start = datetime(2026, 11, 3, 8, tzinfo=UTC)
    found = evidence.collect(store, start, None, folder)
    artefact = folder / str(found.artefact)
    assert mode(artefact) == 0o600 and mode(folder) == 0o700
    artefact.write_bytes(KEEP)
    with pytest.raises(FileRefused, match="already exists"):
        evidence.collect(store, start, None, folder)
    assert artefact.read_bytes() == KEEP
    evidence.collect(store, start, None, folder, force=True)
    assert artefact.read_bytes() != KEEP and mode(artefact) == 0o600


# Keys: refused when others can read them -------------------------------------------------------------------


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o606, 0o620])
def test_a_copy_key_file_others_can_reach_is_refused(tmp_path: Path, loose: int) -> None:
    key = tmp_path / "copy.key"
    key.write_text("k" * 40)
    key.chmod(loose)
    with pytest.raises(FileRefused, match=f"permissions {loose:04o} for {key} are too open") as err:
        key_from(None, str(key))
    assert "kkkk" not in str(err.value) and f"chmod 600 {key}" in str(err.value)
    key.chmod(0o600)
    assert key_from(None, str(key)) == b"k" * 40
    key.chmod(0o400)
    assert key_from(None, str(key)) == b"k" * 40


def test_a_key_through_a_link_is_judged_by_the_file_it_reaches(tmp_path: Path) -> None:
    (tmp_path / "real.key").write_text("k" * 40)
    (tmp_path / "real.key").chmod(0o644)
    (tmp_path / "link.key").symlink_to(tmp_path / "real.key")
    with pytest.raises(FileRefused, match="too open"):
        key_from(None, str(tmp_path / "link.key"))


def test_a_key_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match="not a regular file"):
        safefile.read_key(tmp_path)
    os.mkfifo(tmp_path / "fifo.key", 0o600)
    with pytest.raises(FileRefused, match="not a regular file"):  # refused, not waited on
        safefile.read_key(tmp_path / "fifo.key")
    with pytest.raises(FileRefused, match="cannot read"):
        safefile.read_key(tmp_path / "missing.key")
    with pytest.raises(UsageError):
        key_from("NO_SUCH_VARIABLE_FOR_THIS_TEST", None)


@pytest.mark.parametrize("command", [["copy", "a.t", "b.t"], ["incident", "scope", "1", "--out", "x.csv"]])
def test_the_commands_refuse_an_open_key_file_with_sshs_words(tmp_path: Path, command: list[str]) -> None:
    key = tmp_path / "k"
    key.write_text("k" * 40)
    key.chmod(0o644)
    (tmp_path / "piiguard.yaml").write_text(json.dumps({"stores": [
        {"name": "a", "url": f"sqlite://{tmp_path / 'a.db'}"}, {"name": "b", "url": f"sqlite://{tmp_path / 'b.db'}"}]}))
    extra = ["--owner", "o", "--purpose", "p"] if command[0] == "copy" else []
    done = subprocess.run([sys.executable, "-m", "piiguard", *command, "--key-file", str(key), *extra],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PIIGUARD_TIMELINE_KEY": KEY, "PIIGUARD_CATALOG": str(tmp_path / "c.db")})
    assert done.returncode == 2 and f"permissions 0644 for {key} are too open" in done.stderr, done.stderr
    assert "kkkk" not in done.stdout + done.stderr


# The mechanism itself: any state of the path, with or without force ---------------------------------------

STATES = ["none", "file", "link-to-file", "dangling-link", "folder", "link-to-folder"]


@settings(max_examples=60, deadline=None)
@given(state=st.sampled_from(STATES), force=st.booleans(), payload=st.binary(max_size=64))
def test_whatever_is_at_the_path_only_a_new_private_file_or_a_refusal_results(state: str, force: bool,
                                                                              payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        victim, victim_dir, path = root / "victim", root / "victim-dir", root / "out" / "data"
        victim.write_bytes(KEEP)
        victim_dir.mkdir()
        path.parent.mkdir()
        if state == "file":
            path.write_bytes(KEEP)
        elif state == "link-to-file":
            path.symlink_to(victim)
        elif state == "dangling-link":
            path.symlink_to(root / "nowhere")
        elif state == "folder":
            path.mkdir()
        elif state == "link-to-folder":
            path.symlink_to(victim_dir)
        try:
            safefile.write(path, payload, force=force)
            wrote = True
        except FileRefused:
            wrote = False
        assert victim.read_bytes() == KEEP and list(victim_dir.iterdir()) == []  # never through a link
        assert not (root / "nowhere").exists()
        assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
        if wrote:
            assert state == "none" or (force and state != "folder")
            assert not path.is_symlink() and path.read_bytes() == payload and mode(path) == 0o600
        else:
            assert state != "none" and not (force and state in ("file", "link-to-file", "dangling-link"))
            if state == "file":
                assert path.read_bytes() == KEEP


def test_a_full_disk_leaves_no_half_file_and_keeps_the_old_one(tiny_disk: Path,
                                                               fill: Callable[[Path], Path]) -> None:
    old = tiny_disk / "report.md"
    old.write_bytes(KEEP)
    fill(tiny_disk)
    big = "x" * 200_000
    with pytest.raises(FileError, match="disk is full"):
        safefile.write(tiny_disk / "new.md", big)
    with pytest.raises(FileError, match="disk is full"):
        safefile.write(old, big, force=True)
    assert old.read_bytes() == KEEP
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "report.md"]


# The spool through the command, on a real PostgreSQL holding the addresses ----------------------------------


@pytest.mark.integration
def test_notify_spool_on_postgres_is_private_and_keeps_what_was_there(postgres: Server, tmp_path: Path) -> None:
    from conftest import pg_connect

    from piiguard.catalog import Catalog
    from piiguard.response.scope import subject_hash

    db = f"spool_{os.getpid()}"
    with pg_connect(postgres) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.execute(f"CREATE DATABASE {db}")
    try:
        with pg_connect(postgres, db) as conn:
            conn.execute("CREATE TABLE customers (id text PRIMARY KEY, email text, first_name text)")
            for i, e in enumerate(EMAILS):
                conn.execute("INSERT INTO customers VALUES (%s, %s, %s)", (f"c{i}", e, f"Name{i}"))
        catalog = tmp_path / "c.db"
        with Catalog(catalog, timeline_key=KEY.encode()) as cat:
            incident_id = cat.open_incident("crm exposed", ["crm"], "2026-11-03T08:00:00+00:00", ["email"], 50)
            cat.set_scope(incident_id, {subject_hash(SUBJECT_KEY.encode(), f"c{i}"): ["email"] for i in range(50)})
        subjects = tmp_path / "subjects.csv"
        safefile.write(subjects, "subject,exposed\n" + "".join(f"c{i},email\n" for i in range(50)))
        (tmp_path / "piiguard.yaml").write_text(json.dumps({
            "stores": [{"name": "crm", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/{db}",
                        "password_env": "SPOOL_PG_PW"}],
            "respond": {"notices": {"store": "crm", "table": "public.customers", "subject_column": "id",
                                    "email_column": "email", "name_column": "first_name"}}}))
        spool = tmp_path / "spool"
        spool.mkdir(mode=0o755)
        (spool / "notices-00000.jsonl").write_bytes(KEEP)  # an earlier run's, left as it was
        victim = tmp_path / "victim"
        victim.write_bytes(KEEP)
        (spool / "notices-00001.jsonl").symlink_to(victim)  # planted
        old = os.umask(0)
        try:
            done = subprocess.run([sys.executable, "-m", "piiguard", "incident", "notify", str(incident_id),
                                   "--subjects", str(subjects), "--spool", str(spool), "--key-env", "SUBJECT_KEY",
                                   "-c", str(tmp_path / "piiguard.yaml"), "--catalog", str(catalog)],
                                  capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "PIIGUARD_TIMELINE_KEY": KEY, "SUBJECT_KEY": SUBJECT_KEY,
                                       "SPOOL_PG_PW": PASSWORD})
        finally:
            os.umask(old)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "50 notice(s) spooled" in done.stdout and "timeline head 2-" in done.stdout
        assert not any(e in done.stdout + done.stderr for e in EMAILS)
        assert (spool / "notices-00000.jsonl").read_bytes() == KEEP and victim.read_bytes() == KEEP
        written = spool / "notices-00002.jsonl"
        assert mode(written) == 0o600 and len(written.read_text().splitlines()) == 50
        assert sorted(p.name for p in spool.iterdir()) == ["notices-00000.jsonl", "notices-00001.jsonl",
                                                          "notices-00002.jsonl"]
    finally:
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
