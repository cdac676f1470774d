"""The whole-collection reader of files and S3 (versitygw), as scope and copy use it.

A raw export of a subset of the members (a CSV of some, JSON Lines of others with nested profiles and
device arrays, a Parquet file with a struct and a list of structs; the subsets overlap, and some
members appear in two JSON lines) sits in a local folder
and in a bucket. ``piiguard incident scope`` on each must name exactly the members the test wrote and,
for each, exactly the categories their records held — both worked out here from what was written,
not from piiguard. Then ``piiguard copy`` takes the JSON Lines export into PostgreSQL: masked, each
device serial in an array pseudonymised on its own; a scope of that copy traces its pseudonyms back.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from built_servers import S3Server, start_versitygw, stop_versitygw
from conftest import pg_connect
from leak import Leaks
from servers import PASSWORD, Server

from piiguard.catalog import Catalog
from piiguard.connectors.files import Files
from piiguard.errors import CollectionError, UsageError
from piiguard.masking.pipeline import find_collection
from piiguard.model import Store
from piiguard.response.incidents import open_by_hand
from piiguard.response.scope import find_scope
from piiguard.scanner import scan

MEMBERS = 400
PW = "PIIGUARD_READ_PW"
KEY = "read-files-copy-key-0123456789"
BUCKET = "exports"
# what each field holds, by construction (the scan is asserted to agree before any scope is trusted)
TYPES = {"id": "customer-identifier", "member_id": "customer-identifier", "customer_id": "customer-identifier",
         "contact.email": "email", "email": "email", "phone": "phone", "profile.email": "email",
         "profile.phone": "phone", "devices[].serial": "device-serial", "devices[].mac": "mac-address"}
MASKED = {"member_id": "pseudonym", "profile.email": "pseudonym", "profile.phone": "keep-prefix",
          "devices[].serial": "pseudonym", "devices[].mac": "mac-vendor"}
FIRSTS = ["olivia", "liam", "emma", "noah", "ava", "elijah", "sophia", "james"]


def member(i: int) -> dict[str, str]:
    return {"id": f"mem-{i:06d}", "email": f"{FIRSTS[i % 8]}.{i}@example.org", "phone": f"+44 20 7946 {i:04d}",
            "serial": f"SN-{i:08d}", "mac": f"3c:5a:b4:{i // 65536 % 256:02x}:{i // 256 % 256:02x}:{i % 256:02x}"}


@dataclass
class Export:
    """The raw export as written: file name → bytes, and per member id the categories written."""

    files: dict[str, bytes]
    people: dict[str, set[str]]
    jsonl: dict[str, set[str]]  # id → the fields its JSON lines held
    serials: dict[str, list[list[str | None]]]  # id → the devices[].serial list of each JSON line


def export(compress_csv: bool) -> Export:
    people: dict[str, set[str]] = {}
    jsonl: dict[str, set[str]] = {}
    serials: dict[str, list[list[str | None]]] = {}

    def held(pid: str, *fields: str) -> None:
        people.setdefault(pid, set()).update(TYPES[f] for f in fields)

    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "email", "phone"])
    for i in range(0, 160):  # members 0–159 in the CSV; every 7th without a phone
        m = member(i)
        phone = "" if i % 7 == 0 else m["phone"]
        w.writerow([m["id"], m["email"], phone])
        held(m["id"], "id", "email", *(["phone"] if phone else []))
    lines: list[str] = []
    for i in [*range(120, 280), *range(200, 220)]:  # members 120–279, and 200–219 in a second line
        m = member(i)
        doc: dict[str, Any] = {"member_id": m["id"]}
        fields = ["member_id"]
        second = i in range(200, 220) and any(json.loads(line)["member_id"] == m["id"] for line in lines)
        if not second:
            doc["profile"] = {"email": m["email"], **({"phone": m["phone"]} if i % 3 == 0 else {})}
            fields += ["profile.email", *(["profile.phone"] if i % 3 == 0 else [])]
        if i % 2 == 0 or second:  # devices: the member's serial and MAC, and one device with no serial
            doc["devices"] = [{"serial": m["serial"], "mac": m["mac"]}, {"mac": m["mac"][:-2] + "ff"}]
            fields += ["devices[].serial", "devices[].mac"]
            serials.setdefault(m["id"], []).append([m["serial"], None])
        else:
            serials.setdefault(m["id"], []).append([])
        held(m["id"], *fields)
        jsonl.setdefault(m["id"], set()).update(fields)
        lines.append(json.dumps(doc))
    rows = []
    for i in range(260, 340):  # members 260–339 in Parquet: a struct and a list of structs
        m = member(i)
        rows.append({"customer_id": m["id"], "contact": {"email": m["email"] if i % 4 else None},
                     "devices": [{"serial": m["serial"]}] if i % 5 else []})
        held(m["id"], "customer_id", *(["contact.email"] if i % 4 else []),
             *(["devices[].serial"] if i % 5 else []))
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    text = out.getvalue().encode()
    return Export({"members.csv.gz" if compress_csv else "members.csv": gzip.compress(text) if compress_csv else text,
                   "profiles.jsonl": ("\n".join(lines) + "\n").encode(), "devices.parquet": parquet.getvalue()},
                  people, jsonl, serials)


def seed(leaks: Leaks) -> None:
    for key in ("id", "email", "phone", "serial", "mac"):
        leaks.seed((member(i)[key] for i in range(MEMBERS)), key)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_versitygw()
    yield server
    stop_versitygw(server)


def store_config(kind: str, tmp_path: Path, s3: S3Server | None, data: Export, leaks: Leaks,
                 bucket: str = BUCKET) -> dict[str, Any]:
    """The export written to a local folder (CSV plain) or a bucket (CSV gzip), and its store's config."""
    if kind == "files":
        folder = tmp_path / "exports"
        folder.mkdir()
        for name, body in data.files.items():
            (folder / name).write_bytes(body)
            leaks.source(folder / name)
        return {"name": "raw", "url": f"file://{folder}"}
    assert s3 is not None
    c = s3.client()
    c.create_bucket(Bucket=bucket)
    for name, body in data.files.items():
        c.put_object(Bucket=bucket, Key=f"2026/{name}", Body=body)
    secret = tmp_path / "s3-secret"
    secret.write_text(s3.secret_key)
    return {"name": "raw", "engine": "s3", "host": "127.0.0.1", "port": s3.port, "database": bucket,
            "user": s3.access_key, "password_file": str(secret), "options": {"tls": "false"}}


def run(config: Path, catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "piiguard", *args, "-c", str(config), "--catalog", str(catalog)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def stores_of(config: Path) -> dict[str, Store]:
    from piiguard.config import load_config

    return {s.name: s for s in load_config(config).stores}


@pytest.fixture(params=["files", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_scope_of_a_raw_export_is_exactly_the_subset(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                     leaks: Leaks) -> None:
    seed(leaks)
    s3 = request.getfixturevalue("s3") if kind == "s3" else None
    data = export(compress_csv=kind == "s3")
    config = tmp_path / "piiguard.yaml"
    config.write_text(json.dumps({"stores": [store_config(kind, tmp_path, s3, data, leaks)]}))
    catalog = tmp_path / "c.db"
    stores = stores_of(config)
    with Catalog(catalog) as cat:
        result = scan([stores["raw"]], catalog=cat).stores[0]
        assert result.problems == ()
        found = {(c.name.rsplit("/", 1)[-1], f.field): f.pii_type for c in result.collections for f in c.pii_fields}
        prefix = "members.csv.gz" if kind == "s3" else "members.csv"
        assert found == {**{(prefix, f): TYPES[f] for f in ("id", "email", "phone")},
                         **{("profiles.jsonl", f): TYPES[f] for f in MASKED},
                         **{("devices.parquet", f): TYPES[f] for f in ("customer_id", "contact.email", "devices[].serial")}}
        incident_id = open_by_hand(cat, "raw", "2026-11-30T00:00:00+00:00")
        direct = find_scope(cat, cat.incident(incident_id) or {}, stores, KEY.encode(), timeout=10)
    expected = {pid: sorted(types) for pid, types in data.people.items()}
    assert {p: sorted(t) for p, t in direct.people.items()} == expected

    subjects = tmp_path / "private" / "subjects.csv"
    leaks.holds_people(subjects)
    os.environ["PIIGUARD_SCOPE_KEY"] = KEY
    try:
        run(config, catalog, "incident", "scope", str(incident_id), "--out", str(subjects),
            "--key-env", "PIIGUARD_SCOPE_KEY")
    finally:
        del os.environ["PIIGUARD_SCOPE_KEY"]
    with subjects.open() as f:
        rows = {r["subject"]: sorted(r["exposed"].split(";")) for r in csv.DictReader(f)}
    assert rows == expected
    assert len(rows) == 340 and oct(subjects.stat().st_mode & 0o777) == "0o600"


def test_a_broken_record_fails_the_read_without_its_value(tmp_path: Path, leaks: Leaks) -> None:
    """A JSON line that does not parse and a ragged CSV row: the read fails after the last batch, with
    counts by reason; the message holds no value from the file."""
    from piiguard.errors import CollectionError

    seed(leaks)
    folder = tmp_path / "broken"
    folder.mkdir()
    m = member(1)
    (folder / "a.jsonl").write_text(json.dumps({"id": m["id"]}) + "\n{\"id\": \"" + m["email"] + "\n")
    (folder / "b.csv").write_text(f"id,email\n{m['id']},{m['email']}\n{m['id']},{m['email']},{m['phone']}\n")
    leaks.source(folder / "a.jsonl")
    leaks.source(folder / "b.csv")
    with Files(Store("broken", "files", path=str(folder))) as files:
        for name, reason in (("a.jsonl", "1 line(s) that are not valid JSON"),
                             ("b.csv", "1 row(s) with the wrong number of fields")):
            info = find_collection(files, name)
            with pytest.raises(CollectionError) as caught:
                list(files.read(info, files.columns(info), 100))
            assert reason in str(caught.value) and m["email"] not in str(caught.value)
            assert m["id"] not in str(caught.value)


def pseudonym(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:20]


def test_copy_from_a_bucket_masks_each_item_and_scope_traces_it_back(s3: S3Server, postgres: Server, tmp_path: Path,
                                                                     leaks: Leaks) -> None:
    seed(leaks)
    data = export(compress_csv=True)
    raw = store_config("s3", tmp_path, s3, data, leaks, bucket="copies")
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS read_copy")
        conn.execute("CREATE DATABASE read_copy")
    target = {"name": "wh", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/read_copy", "password_env": PW}
    config = tmp_path / "piiguard.yaml"
    config.write_text(json.dumps({"stores": [raw, target]}))
    catalog = tmp_path / "c.db"
    os.environ[PW], os.environ["PIIGUARD_READ_KEY"] = PASSWORD, KEY
    try:
        run(config, catalog, "copy", "raw.copies/2026/profiles.jsonl", "wh.public.profiles",
            "--key-env", "PIIGUARD_READ_KEY", "--owner", "analytics", "--purpose", "test", "--accept-risk",
            "a throwaway test server")
        with pg_connect(postgres, "read_copy") as conn:
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'profiles' "
                "ORDER BY ordinal_position")]
            rows = conn.execute('SELECT "member_id", "profile.email", "devices[].serial", "devices[].mac" '
                                'FROM profiles').fetchall()
        assert columns == ["member_id", "profile.email", "profile.phone", "devices[].serial", "devices[].mac"]
        by_member = {pid: [json.loads(r[2]) if r[2] is not None else [] for r in rows if r[0] == pseudonym(pid)]
                     for pid in data.serials}
        # each serial its own pseudonym, in its place; the device without one stays null; lengths kept
        assert by_member == {pid: [[None if s is None else pseudonym(s) for s in line] for line in lines]
                             for pid, lines in data.serials.items()}
        assert all(r[1] is None or r[1].endswith("@pseudonym.invalid") for r in rows)
        macs = [json.loads(r[3]) for r in rows if r[3] is not None]
        raw_macs = {member(i)["mac"] for i in range(MEMBERS)}
        assert macs and all(len(m) == 2 and all(x.startswith("3c:5a:b4:") and x not in raw_macs for x in m)
                            for m in macs)
        with Catalog(catalog) as cat:
            (record,) = cat.copies(status="active")
            assert record["transforms"]["devices[].serial"]["masker"] == "pseudonym"
            assert {f: t["masker"] for f, t in record["transforms"].items()} == MASKED

            # the masked copy is exposed: its pseudonyms are traced back through the bucket
            stores = stores_of(config)
            scan([stores["wh"]], catalog=cat)
            incident_id = open_by_hand(cat, "wh", "2026-11-30T00:00:00+00:00")
            scope = find_scope(cat, cat.incident(incident_id) or {}, stores, KEY.encode(), timeout=10)
        # exactly the members of the JSON lines, each with what their lines held, as the copy masked it
        assert {p: sorted(t) for p, t in scope.people.items()} == {
            pid: sorted(f"{TYPES[f]} ({MASKED[f]})" for f in fields) for pid, fields in data.jsonl.items()}
    finally:
        del os.environ[PW], os.environ["PIIGUARD_READ_KEY"]


def test_a_folder_copied_into_parquet_is_masked_per_item_and_traced_back(tmp_path: Path, leaks: Leaks) -> None:
    """A files source and a files target (Parquet): the list column arrives as JSON text arrays of
    pseudonyms, and scope reads the copy by its column names (``devices[].serial``) to trace them back."""
    from datetime import date

    from piiguard.masking.pipeline import plan_copy, run_copy

    seed(leaks)
    data = export(compress_csv=False)
    raw = Store("raw", "files", path=str(tmp_path / "exports"))
    store_config("files", tmp_path, None, data, leaks)
    (tmp_path / "copies").mkdir()
    target = Store("lake", "files", path=str(tmp_path / "copies"))
    leaks.holds_people(tmp_path / "copies" / "profiles.parquet")  # masked, but people's data: 0600
    with Catalog(tmp_path / "c.db") as cat:
        plan = plan_copy(raw, "profiles.jsonl", target, "profiles.parquet", accepted_risk="test", catalog=cat)
        run_copy(plan, KEY.encode(), cat, owner="lake", purpose="test", expires=date(2030, 1, 1))
        table = pq.read_table(tmp_path / "copies" / "profiles.parquet")
        assert table.schema.field("devices[].serial").type == pa.string()
        got = [(pid, json.loads(s) if s else []) for pid, s in zip(table.column("member_id").to_pylist(),
                                                                     table.column("devices[].serial").to_pylist(),
                                                                     strict=True)]
        want = [(pseudonym(pid), [None if x is None else pseudonym(x) for x in line])
                for pid, lines in data.serials.items() for line in lines]
        assert sorted(got, key=str) == sorted(want, key=str)
        stores = {"raw": raw, "lake": target}
        scan([target], catalog=cat)
        incident_id = open_by_hand(cat, "lake", "2026-11-30T00:00:00+00:00")
        scope = find_scope(cat, cat.incident(incident_id) or {}, stores, KEY.encode(), timeout=10)
    assert {p: sorted(t) for p, t in scope.people.items()} == {
        pid: sorted(f"{TYPES[f]} ({MASKED[f]})" for f in fields) for pid, fields in data.jsonl.items()}


def test_objects_named_by_phone_numbers_scope_each_and_hostile_records_are_counted(
        s3: S3Server, tmp_path: Path) -> None:
    """Two objects whose keys hold phone numbers (``<phone>.jsonl``, ``<phone>.jsonl~2`` in raw-key order), one
    of them with a JSON line nested 10,000 deep: the scope reads on, counts it unreadable; a copy's reader
    still refuses. No raw key in the scope's output, the catalog's collections, or an error."""
    owners = ["+14155550134", "+14155550199"]
    c = s3.client()
    c.create_bucket(Bucket="named")
    for n, owner in enumerate(owners):
        lines = [json.dumps({"customer_id": f"CUST-{n}{i:05d}", "email": f"buyer.{n}.{i}@example.org"})
                 for i in range(25)]
        if n == 1:
            lines.insert(5, "[" * 10_000 + "]" * 10_000)
        c.put_object(Bucket="named", Key=f"by-phone/{owner}.jsonl", Body=("\n".join(lines) + "\n").encode())
    secret = tmp_path / "s3-secret"
    secret.write_text(s3.secret_key)
    store = Store("raw", "s3", host="127.0.0.1", port=s3.port, database="named", user=s3.access_key,
                  password_file=str(secret), options={"tls": "false"})
    with Catalog(tmp_path / "c.db") as cat:
        scan([store], catalog=cat)
        incident_id = open_by_hand(cat, "raw", "2026-11-30T00:00:00+00:00")
        found = find_scope(cat, cat.incident(incident_id) or {}, {"raw": store}, KEY.encode(), timeout=10)
        names = [collection for collection, *_ in cat.pii_fields("raw")]
    assert sorted(found.collections) == ["raw.named/by-phone/<phone>.jsonl", "raw.named/by-phone/<phone>.jsonl~2"]
    assert len(found.people) == 50 and found.unreadable == 1
    assert found.collections["raw.named/by-phone/<phone>.jsonl~2"]["unreadable"] == 1
    shown = json.dumps(found.limits()) + "".join(found.sources) + "".join(names)
    assert not [o for o in owners if o in shown or o[2:] in shown]
    from piiguard.connectors.s3 import S3

    with S3(store, timeout=10) as reader:
        info = find_collection(reader, "named/by-phone/<phone>.jsonl~2")
        assert info.name.endswith(owners[1] + ".jsonl")
        with pytest.raises(CollectionError, match="could not be read whole"):
            list(reader.read(info, ["email"], 100))
        with pytest.raises(UsageError) as exc:
            find_collection(reader, "named/by-phone/<phone>.jsonl~5")
    assert not [o for o in owners if o in f"{exc.value} {exc.value.hint}"]
