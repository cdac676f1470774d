"""A timeline that proves itself: each attack on the catalog's timeline rows is found.

The attacker here has the catalog file (SQLite, writable) but not the timeline key — except where a
test says it has the key too; then only a head recorded outside the catalog finds the rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.catalog import timeline as tl
from piiguard.errors import CatalogError, FileRefused, UsageError
from piiguard.response import incidents

KEY = b"timeline-key-for-the-tests-0123456789"
ENTRIES = 6  # "opened" and five notes


def make(path: Path, key: bytes = KEY) -> tuple[Catalog, int]:
    cat = Catalog(path, timeline_key=key)
    incident_id = cat.open_incident("test", ["s"], "2026-11-03T08:00:00+00:00", ["email"], 10)
    for i in range(ENTRIES - 1):
        cat.event(incident_id, "note", {"i": i})
    return cat, incident_id


def rows(cat: Catalog, incident_id: int) -> list[tuple[Any, ...]]:
    return cat.db.execute("SELECT seq, at, kind, payload FROM timeline WHERE incident_id = ? ORDER BY seq",
                          (incident_id,)).fetchall()


def rewrite(cat: Catalog, incident_id: int, entries: list[tuple[Any, ...]], mac: Any, seal: str | None) -> None:
    """Replace the whole timeline with ``entries`` (seq, at, kind, payload), chained by ``mac``."""
    cat.db.execute("DELETE FROM timeline WHERE incident_id = ?", (incident_id,))
    prev = tl.GENESIS
    for seq, (_old, at, kind, payload) in enumerate(entries, start=1):
        digest = mac(prev, incident_id, seq, at, kind, payload)
        cat.db.execute("INSERT INTO timeline VALUES (?,?,?,?,?,?,?)", (incident_id, seq, at, kind, payload, prev,
                                                                       digest))
        prev = digest
    if seal is not None:
        cat.db.execute("UPDATE incidents SET timeline_seal = ? WHERE id = ?", (seal, incident_id))
    cat.db.commit()


def test_an_untouched_timeline_verifies_and_its_head_is_the_last_entry(tmp_path: Path) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    result = incidents.verify(cat, incident_id)
    last = rows(cat, incident_id)[-1]
    assert result.ok and result.entries == ENTRIES
    assert result.head == tl.Head(ENTRIES, cat.db.execute("SELECT hash FROM timeline WHERE seq = ?",
                                                          (last[0],)).fetchone()[0])
    assert incidents.verify(cat, incident_id, result.head).ok


def test_entries_are_keyed_not_plain_hashes(tmp_path: Path) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    _seq, at, kind, payload = rows(cat, incident_id)[0]
    stored = cat.db.execute("SELECT hash FROM timeline WHERE seq = 1").fetchone()[0]
    expected = hmac.new(KEY, "\n".join((tl.GENESIS, str(incident_id), "1", at, kind, payload)).encode(),
                        hashlib.sha256).hexdigest()
    assert stored == expected
    assert stored != tl.unkeyed_hash(tl.GENESIS, incident_id, 1, at, kind, payload)


@pytest.mark.parametrize(("attack", "broken_at"), [
    ("UPDATE timeline SET payload = '{\"i\":9}' WHERE seq = 3", 3),
    ("UPDATE timeline SET kind = 'nothing' WHERE seq = 2", 2),
    ("DELETE FROM timeline WHERE seq = 6", 6),
    ("DELETE FROM timeline WHERE seq >= 4", 4),
    ("DELETE FROM timeline", 1),
    ("DELETE FROM timeline WHERE seq = 3", 3),
    ("UPDATE timeline SET seq = 100 WHERE seq = 2; UPDATE timeline SET seq = 2 WHERE seq = 3; "
     "UPDATE timeline SET seq = 3 WHERE seq = 100", 2),
    ("UPDATE incidents SET timeline_seal = NULL", ENTRIES + 1),
], ids=["edit", "edit-kind", "delete-last", "delete-last-three", "delete-all", "delete-middle", "reorder",
        "seal-removed"])
def test_each_attack_on_the_rows_is_found(tmp_path: Path, attack: str, broken_at: int) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    cat.db.executescript(attack)
    result = incidents.verify(cat, incident_id)
    assert not result.ok and result.broken_at == broken_at, result


def test_deleting_the_last_entry_and_its_seal_copied_from_before_is_found(tmp_path: Path) -> None:
    """The attacker cannot make the seal of a shorter timeline; the old seal names the longer one."""
    cat, incident_id = make(tmp_path / "c.db")
    cat.db.execute("DELETE FROM timeline WHERE seq = ?", (ENTRIES,))
    cat.db.commit()
    result = incidents.verify(cat, incident_id)
    assert not result.ok and "deleted" in result.reason


def test_rebuilding_the_chain_without_the_key_is_found(tmp_path: Path) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    entries = rows(cat, incident_id)
    entries[2] = (*entries[2][:3], json.dumps({"i": 999}))
    rewrite(cat, incident_id, entries, tl.unkeyed_hash, None)  # the old, unkeyed chain: anyone can compute it
    result = incidents.verify(cat, incident_id)
    assert not result.ok and result.broken_at == 1 and "unkeyed" in result.reason


def test_rebuilding_the_chain_and_seal_with_a_guessed_key_is_found(tmp_path: Path) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    guess = b"guessed-key-guessed-key-guessed"
    entries = rows(cat, incident_id)[:-2]
    rewrite(cat, incident_id, entries, lambda *m: tl.entry_mac(guess, *m), None)
    last = cat.db.execute("SELECT hash FROM timeline ORDER BY seq DESC LIMIT 1").fetchone()[0]
    cat.db.execute("UPDATE incidents SET timeline_seal = ?", (tl.Head(len(entries), last).seal(guess, incident_id),))
    cat.db.commit()
    result = incidents.verify(cat, incident_id)
    assert not result.ok and result.broken_at == 1 and "HMAC" in result.reason


@pytest.mark.parametrize("change", ["edit", "delete-last"])
def test_a_rewrite_with_the_key_is_found_by_the_recorded_head(tmp_path: Path, change: str) -> None:
    """With the key, a rewrite is self-consistent: only a head recorded outside the catalog finds it."""
    cat, incident_id = make(tmp_path / "c.db")
    recorded = incidents.verify(cat, incident_id).head
    assert recorded is not None
    entries = rows(cat, incident_id)
    if change == "edit":
        entries[1] = (*entries[1][:3], json.dumps({"i": 123}))
    else:
        entries = entries[:-1]
    rewrite(cat, incident_id, entries, lambda *m: tl.entry_mac(KEY, *m), None)
    last = cat.db.execute("SELECT hash FROM timeline ORDER BY seq DESC LIMIT 1").fetchone()[0]
    cat.db.execute("UPDATE incidents SET timeline_seal = ?", (tl.Head(len(entries), last).seal(KEY, incident_id),))
    cat.db.commit()
    assert incidents.verify(cat, incident_id).ok  # the limit of what the catalog alone can prove
    result = incidents.verify(cat, incident_id, recorded)
    assert not result.ok
    assert result.broken_at == ENTRIES  # the recorded head names entry 6: missing, or not as it was
    assert ("rewritten" if change == "edit" else "deleted") in result.reason


def test_a_catalog_put_back_from_an_older_copy_is_found_by_the_head(tmp_path: Path) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    cat.close()
    shutil.copy(tmp_path / "c.db", tmp_path / "old.db")
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        head = cat.event(incident_id, "responded", {"responder": "sql-sessions"})
    assert head is not None and head.entries == ENTRIES + 1
    shutil.copy(tmp_path / "old.db", tmp_path / "c.db")
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        assert incidents.verify(cat, incident_id).ok
        result = incidents.verify(cat, incident_id, head)
    assert not result.ok and result.broken_at == ENTRIES + 1


def test_a_wrong_key_is_named_not_taken_for_tampering(tmp_path: Path) -> None:
    make(tmp_path / "c.db")[0].close()
    with Catalog(tmp_path / "c.db", timeline_key=b"another-key-another-key-another") as cat:
        result = incidents.verify(cat, 1)
    assert not result.ok and "not the one this incident was opened with" in result.reason
    assert tl.key_id(KEY) in result.reason and "another" not in result.reason


ATTACKS = st.one_of(
    st.tuples(st.just("edit"), st.integers(1, ENTRIES)),
    st.tuples(st.just("delete"), st.integers(1, ENTRIES)),
    st.tuples(st.just("truncate"), st.integers(1, ENTRIES)),
    st.tuples(st.just("swap"), st.integers(1, ENTRIES - 1)),
    st.tuples(st.just("time"), st.integers(1, ENTRIES)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacks=st.lists(ATTACKS, min_size=1, max_size=3))
def test_any_mix_of_attacks_without_the_key_is_found(attacks: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cat, incident_id = make(Path(folder) / "c.db")
        before = rows(cat, incident_id)
        for op, n in attacks:
            if op == "edit":
                cat.db.execute("UPDATE timeline SET payload = payload || ' ' WHERE seq = ?", (n,))
            elif op == "delete":
                cat.db.execute("DELETE FROM timeline WHERE seq = ?", (n,))
            elif op == "truncate":
                cat.db.execute("DELETE FROM timeline WHERE seq >= ?", (n,))
            elif op == "time":
                cat.db.execute("UPDATE timeline SET at = '2020-01-01T00:00:00+00:00' WHERE seq = ?", (n,))
            else:  # swap the content of two neighbours, keeping their positions and hashes
                a = cat.db.execute("SELECT at, kind, payload FROM timeline WHERE seq = ?", (n,)).fetchone()
                b = cat.db.execute("SELECT at, kind, payload FROM timeline WHERE seq = ?", (n + 1,)).fetchone()
                if a and b:
                    cat.db.execute("UPDATE timeline SET at = ?, kind = ?, payload = ? WHERE seq = ?", (*b, n))
                    cat.db.execute("UPDATE timeline SET at = ?, kind = ?, payload = ? WHERE seq = ?", (*a, n + 1))
        cat.db.commit()
        changed = rows(cat, incident_id) != before
        result = incidents.verify(cat, incident_id)
        cat.close()
    assert result.ok is not changed  # every change found; an attack that changed nothing is no attack


# The key: by reference, outside the catalog, created 0600 when none is given -------------------------


def test_without_a_key_one_is_created_0600_in_a_0700_folder_outside_the_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tl.KEY_ENV, raising=False)
    monkeypatch.delenv(tl.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with Catalog(tmp_path / "data" / "c.db") as cat:
        incident_id = cat.open_incident("t", ["s"], "2026-11-03T08:00:00+00:00", [], None)
    key_file = tmp_path / "config" / "piiguard" / "timeline.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    key = key_file.read_bytes().strip()
    assert key not in (tmp_path / "data" / "c.db").read_bytes()
    with Catalog(tmp_path / "data" / "c.db", timeline_key=key) as cat:  # the same key, found again
        assert incidents.verify(cat, incident_id).ok


def test_the_variable_comes_before_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k").write_text("file-key-file-key-file-key")
    (tmp_path / "k").chmod(0o600)
    monkeypatch.setenv(tl.KEY_FILE_ENV, str(tmp_path / "k"))
    assert tl.load_key() == b"file-key-file-key-file-key"
    monkeypatch.setenv(tl.KEY_ENV, "env-key-env-key-env-key")
    assert tl.load_key() == b"env-key-env-key-env-key"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_timeline_key_file_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        mode: int) -> None:
    (tmp_path / "k").write_text("file-key-file-key-file-key")
    (tmp_path / "k").chmod(mode)
    monkeypatch.delenv(tl.KEY_ENV, raising=False)
    monkeypatch.setenv(tl.KEY_FILE_ENV, str(tmp_path / "k"))
    with pytest.raises(FileRefused, match=f"permissions {mode:04o} for .* are too open") as err:
        tl.load_key()
    assert "file-key" not in str(err.value)


def test_a_short_timeline_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tl.KEY_ENV, "short")
    with pytest.raises(UsageError, match="at least 16 bytes"):
        tl.load_key()


# The head leaves the catalog with each step: printed, exported, checked by verify --head -----------------


def piiguard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_head_is_printed_exported_and_checked_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, tl.KEY_ENV: KEY.decode(), "PIIGUARD_CATALOG": str(tmp_path / "c.db")}
    opened = piiguard("incident", "open", "shop", "--since", "2026-11-03T08:00", env=env)
    assert opened.returncode == 0, opened.stderr
    first = opened.stdout.split("timeline head ")[1].split()[0]
    assert tl.Head.parse(first).entries == 1
    bundle = tmp_path / "bundle"
    exported = piiguard("incident", "export", "1", str(bundle), env=env)
    assert exported.returncode == 0, exported.stderr
    assert (bundle / "HEAD").read_text().strip() == first  # the head the bundle's timeline ends with
    assert json.loads((bundle / "incident.json").read_text())["timeline_head"] == first
    after_export = exported.stdout.split("timeline head ")[1].split()[0]
    assert tl.Head.parse(after_export).entries == 2
    ok = piiguard("incident", "verify", "1", "--head", first, env=env)
    assert ok.returncode == 0 and after_export in ok.stdout, ok.stdout
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:  # the attacker removes the export's entry
        cat.db.execute("DELETE FROM timeline WHERE seq = 2")
        cat.db.execute("UPDATE incidents SET timeline_seal = ?",
                       (tl.Head.parse(first).seal(KEY, 1),))  # and, holding the key, reseals
        cat.db.commit()
    assert piiguard("incident", "verify", "1", env=env).returncode == 0
    broken = piiguard("incident", "verify", "1", "--head", after_export, env=env)
    assert broken.returncode == 1 and "were deleted" in broken.stdout
    bad = piiguard("incident", "verify", "1", "--head", "not-a-head", env=env)
    assert bad.returncode == 2 and "COUNT-HMAC" in bad.stderr


# What lies outside the chain must still agree with it ------------------------------------------------------


@pytest.mark.parametrize(("attack", "named"), [
    ("UPDATE incidents SET window_start = '2026-11-04T08:00:00+00:00'", "window_start"),
    ("UPDATE incidents SET window_end = '2026-11-03T08:05:00+00:00'", "window_end"),
    ("UPDATE incidents SET subjects_estimate = 1", "subjects_estimate"),
    ("UPDATE incidents SET pii_types = '[]'", "pii_types"),
    ("UPDATE incidents SET aware_at = '2026-12-31T00:00:00+00:00'", "aware_at"),
    ("DELETE FROM scope WHERE rowid IN (SELECT rowid FROM scope LIMIT 1)", "scope"),
], ids=["window-start", "window-end", "people", "types", "aware", "scope-row"])
def test_an_edited_incident_row_or_scope_is_found(tmp_path: Path, attack: str, named: str) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    cat.set_scope(incident_id, {"h1": ["email"], "h2": ["email"]})
    cat.event(incident_id, "scoped", {"people": 2})
    cat.close_window(incident_id, "2026-11-03T09:00:00+00:00")
    assert incidents.verify(cat, incident_id).ok
    cat.db.execute(attack)
    cat.db.commit()
    result = incidents.verify(cat, incident_id)
    assert not result.ok and named in result.reason


def test_an_incident_deleted_whole_is_found_by_its_recorded_head(tmp_path: Path) -> None:
    cat, incident_id = make(tmp_path / "c.db")
    head = incidents.verify(cat, incident_id).head
    cat.db.executescript("PRAGMA foreign_keys = OFF; DELETE FROM timeline; DELETE FROM incidents;")
    with pytest.raises(UsageError, match="no incident"):
        incidents.verify(cat, incident_id)
    result = incidents.verify(cat, incident_id, head)
    assert not result.ok and "were deleted" in result.reason


def test_an_entry_is_never_signed_with_another_key(tmp_path: Path) -> None:
    """A lost or swapped key file must not quietly start a second chain no key verifies."""
    make(tmp_path / "c.db")[0].close()
    with Catalog(tmp_path / "c.db", timeline_key=b"a-new-key-made-after-a-loss!") as cat:
        with pytest.raises(CatalogError, match="signed with another key"):
            cat.event(1, "note", {})
        assert len(rows(cat, 1)) == ENTRIES
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        assert incidents.verify(cat, 1).ok
