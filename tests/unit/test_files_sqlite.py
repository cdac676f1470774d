"""Files and SQLite: formats, nesting, and bad input (ragged rows, invalid UTF-8, blobs, huge values)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from piiguard.model import ProblemKind, ScanMode, Store
from piiguard.scanner import scan

EMAILS = [f"person{i}@example.org" for i in range(200)]


def fields(result, i: int = 0):  # type: ignore[no-untyped-def]
    return {(f.collection, f.field): f for c in result.stores[i].collections for f in c.fields}


def test_folder_of_csv_jsonl_parquet(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("email,n\n" + "".join(f"{e},{i}\n" for i, e in enumerate(EMAILS)))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"user": {"contact": e, "photo": f"https://x.io/avatars/{i}.png"},
                                                          "tags": ["a", "b"]}) + "\n" for i, e in enumerate(EMAILS)))
    pq.write_table(pa.table({"ip": [f"198.51.100.{i % 250 + 1}" for i in range(200)]}), tmp_path / "c.parquet")
    (tmp_path / "notes.txt").write_text("not a data file")
    (tmp_path / "empty.csv").write_bytes(b"")
    result = scan([f"file://{tmp_path}"], mode=ScanMode.FULL)
    # notes.txt is not read, and said so (never by its name): the one problem
    assert [(p.collection, p.message) for p in result.problems] == [(".", "1 file(s) of unknown type not read")]
    assert any(c.name == "empty.csv" and c.rows_read == 0 for c in result.stores[0].collections)
    got = fields(result)
    assert got[("a.csv", "email")].pii_type == "email" and got[("a.csv", "n")].pii_type is None
    assert got[("b.jsonl", "user.contact")].pii_type == "email"
    assert got[("b.jsonl", "user.photo")].pii_type == "personal-media-url"
    assert got[("c.parquet", "ip")].pii_type == "ip-address"
    assert not any(c == "notes.txt" for c, _ in got)


def test_ragged_csv_and_invalid_utf8(tmp_path: Path) -> None:
    body = b"email,city\n" + b"".join(f"{e},Boston\n".encode() for e in EMAILS[:100])
    body += b"broken,row,with,extra\n" + b"caf\xe9@example.org,Paris\n"
    (tmp_path / "x.csv").write_bytes(body)
    result = scan([Store("x", "files", path=str(tmp_path / "x.csv"))])
    email = fields(result)[("x.csv", "email")]
    assert email.pii_type == "email"
    # Nothing left out silently: each is a problem on the collection, with counts, never the value.
    messages = sorted(p.message for p in result.problems)
    assert messages == ["1 byte sequence(s) not valid UTF-8 skipped; 101 row(s) read",
                        "1 row(s) with the wrong number of fields skipped; 101 row(s) read"]
    assert all(p.collection == "x.csv" and p.kind is ProblemKind.COLLECTION for p in result.problems)
    assert "broken" not in repr(result) and "caf" not in repr(result)


def test_sqlite_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE "user list ü" ("E-mail Address" TEXT, photo BLOB, "nothing" TEXT, big TEXT)')
        conn.executemany('INSERT INTO "user list ü" VALUES (?, ?, NULL, ?)',
                         [(e, bytes([0xFF, 0xFE, i % 256]), None) for i, e in enumerate(EMAILS)])
        conn.execute('UPDATE "user list ü" SET big = ? WHERE rowid = 1', ("a" * 100_000_000,))
        conn.execute("CREATE TABLE empty (email TEXT)")
        cols = ", ".join(f"c{i} TEXT" for i in range(1000))
        conn.execute(f"CREATE TABLE wide ({cols})")
        conn.execute(f"INSERT INTO wide (c0, c999) VALUES ('{EMAILS[0]}', '{EMAILS[1]}')")
    result = scan([f"sqlite://{db}"])
    got = fields(result)
    assert got[("user list ü", "E-mail Address")].pii_type == "email"
    assert "binary" in got[("user list ü", "photo")].reason
    assert got[("user list ü", "nothing")].pii_type is None and got[("user list ü", "big")].pii_type is None
    assert len([k for k in got if k[0] == "wide"]) == 1000
    assert not result.problems


def test_missing_store_is_a_problem_and_exit_code_1(tmp_path: Path) -> None:
    result = scan([f"sqlite://{tmp_path}/nope.db", f"file://{tmp_path}"])
    assert result.stores[0].problems[0].kind is ProblemKind.STORE
    assert "check the path" in (result.stores[0].problems[0].hint or "")
    run = subprocess.run([sys.executable, "-m", "piiguard", "scan", f"sqlite://{tmp_path}/nope.db",
                          "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "no database file" in run.stdout


def test_scan_without_targets_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "piiguard", "scan", "--catalog", str(tmp_path / "c.db")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2 and "nothing to scan" in run.stderr
    bad = subprocess.run([sys.executable, "-m", "piiguard", "scan", "--no-such-option"], capture_output=True, text=True)
    assert bad.returncode == 2 and "No such option" in bad.stderr


def test_validate_and_demo(tmp_path: Path) -> None:
    bad = tmp_path / "piiguard.yaml"
    bad.write_text("stores:\n  - name: a\n    engine: postgres\n    prot: 1\n")
    run = subprocess.run([sys.executable, "-m", "piiguard", "validate", str(bad)], capture_output=True, text=True)
    assert run.returncode == 2 and "stores[0].prot: unknown key" in run.stderr
    demo = subprocess.run([sys.executable, "-m", "piiguard", "demo", "--dir", str(tmp_path / "d"), "--rows", "300"],
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "wifi-ssid" in demo.stdout and "oauth-token" in demo.stdout and "analytics-export" in demo.stdout
    show = subprocess.run([sys.executable, "-m", "piiguard", "show", "detector", "wifi-ssid"],
                          capture_output=True, text=True)
    assert "SSID" in show.stdout


def test_full_scan_is_deterministic_across_processes(tmp_path: Path) -> None:
    """Past the validation budget counts are estimated from random rows: the same data must give the
    same estimate in every run (Python's hash order differs between processes)."""
    from piiguard import synthetic

    cols = tuple(c for c in synthetic.COLUMNS if c.name in ("nickname", "support_notes", "card_number"))
    data = synthetic.rows(6000, seed=3, columns=cols)
    pq.write_table(pa.table({k: pa.array([str(v) for v in vs]) for k, vs in data.items()}), tmp_path / "t.parquet")
    outputs = []
    for seed in ("1", "2"):
        run = subprocess.run([sys.executable, "-m", "piiguard", "scan", f"file://{tmp_path}/t.parquet", "--full",
                              "--format", "json", "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True,
                             env={**__import__("os").environ, "PYTHONHASHSEED": seed}, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append([(f["field"], f["pii_type"], f["matched"]) for f in json.loads(run.stdout)["fields"]])
    assert outputs[0] == outputs[1]
    assert any("estimated" in f["reason"] for f in json.loads(run.stdout)["fields"])


def test_a_plain_id_key_with_handle_values_is_the_customer_key(tmp_path: Path) -> None:
    """``id`` holding ``cust-00001`` looks like a username by shape; as the table's unique key beside other
    PII it is the key that links rows to people."""
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT, nickname TEXT)")
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                     [(f"cust-{i:05d}", f"u{i}@example.com", f"camfan_{i}") for i in range(300)])
    conn.commit()
    conn.close()
    result = scan([Store("s", "sqlite", path=str(db))]).stores[0]
    types = {f.field: f.pii_type for f in result.collections[0].fields}
    assert types == {"id": "customer-identifier", "email": "email", "nickname": "username"}
    assert result.subjects is not None and result.subjects.field == "id"
