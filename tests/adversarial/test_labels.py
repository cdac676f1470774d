"""Values never become names: headerless CSVs, PII-shaped keys and file names, and symbolic links.

Each test scans real files through the files connector (as tests/unit/test_files_sqlite.py does) and
then looks for the planted values in every output: the JSON report, the table, and the catalog's bytes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from built_servers import OpenSearch, start_opensearch, stop_opensearch
from rich.console import Console

from piiguard.catalog import Catalog
from piiguard.connectors.labels import header_is_data, label
from piiguard.model import ScanMode, ScanResult
from piiguard.report import render_json, render_table
from piiguard.scanner import scan


def outputs(result: ScanResult, catalog: Path | None = None) -> str:
    """Everything a scan puts out: JSON, the table (all fields), and the catalog file with its WAL."""
    table = io.StringIO()
    render_table(result, Console(file=table, width=200), all_fields=True)
    text = render_json(result) + table.getvalue()
    if catalog is not None:
        for f in catalog.parent.glob(catalog.name + "*"):
            text += f.read_bytes().decode("utf-8", "replace")
    return text


def names(result: ScanResult) -> dict[str, list[str]]:
    return {c.name: [f.field for f in c.fields] for s in result.stores for c in s.collections}


def scan_folder(folder: Path, catalog: Path) -> ScanResult:
    with Catalog(catalog) as cat:
        return scan([f"file://{folder}"], catalog=cat, mode=ScanMode.FULL)


PII_FIRST_ROWS = [
    pytest.param("alice.first@example.com,+1 415 555 0134,Boston", id="email-phone"),
    pytest.param("Alice Smithson,1985-03-04,12 Elm Street", id="name-birthdate-street"),
    pytest.param("4111 1111 1111 1111,DE89370400440532013000,alice", id="card-iban"),
    pytest.param("10.20.30.40,aa:bb:cc:dd:ee:01,router", id="ip-mac"),
    pytest.param("1738194,Boston,blue", id="number"),
    pytest.param("1987-05-01,Boston,blue", id="date"),
]


@pytest.mark.parametrize("first", PII_FIRST_ROWS)
def test_a_first_row_that_is_data_is_no_header(tmp_path: Path, first: str) -> None:
    rest = "".join(f"u{i}@example.net,+1 415 555 {1000 + i},Paris\n" for i in range(30))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "export.csv").write_text(first + "\n" + rest)
    result = scan_folder(tmp_path / "d", tmp_path / "c.db")
    assert names(result)["export.csv"] == ["col_1", "col_2", "col_3"]
    assert result.stores[0].collections[0].rows_read == 31  # the first row is read as a record
    text = outputs(result, tmp_path / "c.db")
    for cell in first.split(","):
        assert cell not in text


def test_names_over_names_is_a_record_but_a_real_header_stays(tmp_path: Path) -> None:
    """Shape: ``Alice,Smith`` over first and last names is a record; ``first,last`` over the same is a
    header (the words name the fields), and so is a typical export's header."""
    people = "".join(f"{f},{s}\n" for f, s in [("Bob", "Jones"), ("Carol", "Brown"), ("Dan", "Miller"),
                                                ("Erin", "Wilson"), ("Frank", "Moore"), ("Grace", "Taylor")] * 5)
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.csv").write_text("Alice,Smith\n" + people)
    (d / "b.csv").write_text("first,last\n" + people)
    (d / "c.csv").write_text("email,city,username,phone,first_name,created_at\n" +
                             "".join(f"u{i}@example.net,Boston,user{i}x,+1 415 555 {1000 + i},Ann,2024-01-0{i % 9 + 1}\n"
                                     for i in range(20)))
    result = scan_folder(d, tmp_path / "c.db")
    got = names(result)
    assert got["a.csv"] == ["col_1", "col_2"] and "Alice" not in outputs(result, tmp_path / "c.db")
    assert got["b.csv"] == ["first", "last"]
    assert got["c.csv"] == ["email", "city", "username", "phone", "first_name", "created_at"]


@pytest.mark.parametrize(("header", "rows", "expected"), [
    pytest.param(["id", "email"], [["1", "a@b.co"]], False, id="plain-header"),
    pytest.param(["E-mail Address", "Full Name"], [["a@b.co", "Ann Lee"]], False, id="spaced-header"),
    pytest.param(["nickname", "wifi_ssid"], [["camfan_1", "NETGEAR42"], ["camfan_2", "Home_5G"]], False,
                 id="context-words"),
    pytest.param(["a@b.co", "x"], [["c@d.co", "y"]], True, id="pii-cell"),
    pytest.param(["3.5", "x"], [["2", "y"]], True, id="numeric-cell"),
    pytest.param(["Mark", "Jones"], [["Ann", "Lee"], ["Bob", "Smith"], ["Cy", "Brown"]], True, id="same-shape"),
    pytest.param(["SN-0001", "k9x2"], [["SN-0002", "p3q4"], ["SN-0003", "r5s6"]], True, id="codes-same-shape"),
    pytest.param(["Name", "City"], [["Alice", "Boston"], ["Bob", "Paris"]], False, id="words-over-words"),
    pytest.param(["serial", "code"], [["SN-0002", "p3q4"], ["SN-0003", "r5s6"]], False, id="words-over-codes"),
])
def test_header_is_data_cases(header: list[str], rows: list[list[str]], expected: bool) -> None:
    assert header_is_data(header, rows) is expected


def test_pii_shaped_keys_and_file_names_are_shown_as_their_type(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    docs = [{"by_email": {f"owner{i}@example.com": {"phone": f"+1 415 555 {2000 + i}"}},
             f"+1 212 555 {3000 + i}": "x", "Jane Q Doe": i} for i in range(5)]
    (d / "maps.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    (d / "backup-zed.user@example.org.csv").write_text("n\n1\n2\n")
    result = scan_folder(d, tmp_path / "c.db")
    got = names(result)
    assert got["maps.jsonl"] == ["by_email.<email>.phone", "<phone>", "<person-name>"]
    assert "<email>.csv" in got  # the file's name held an address
    text = outputs(result, tmp_path / "c.db")
    for doc in docs:
        for value in (next(iter(doc["by_email"])), *[k for k in doc if k.startswith("+")]):
            assert value not in text
    assert "zed.user" not in text and "Jane Q Doe" not in text


def test_label_escapes_control_characters_and_keeps_plain_names() -> None:
    assert label("email") == "email" and label("profile.photo_url") == "profile.photo_url"
    assert label("x\x1b[31mred") == "x\\x1b[31mred"
    assert label("id\udcff") == "id\\udcff"  # a file name that was not UTF-8 (surrogate escape)
    assert label("by_phone.+14155550134") == "by_phone.<phone>"
    assert len(label("k" * 10_000)) <= 201


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("token_holder\nrootsecret-line-one\n")
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "ok.csv").write_text("email\nk@example.com\n")
    os.symlink(outside / "secret.csv", d / "link.csv")
    os.symlink(outside, d / "sub" / "dirlink")
    os.symlink("/etc/passwd", d / "passwd.csv")
    run = subprocess.run([sys.executable, "-m", "piiguard", "scan", f"file://{d}", "--format", "json",
                          "--catalog", str(tmp_path / "c.db")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    problems = {p["collection"]: p["message"] for p in report["stores"][0]["problems"]}
    assert problems == {"link.csv": "a symbolic link: not followed", "passwd.csv": "a symbolic link: not followed",
                        "sub/dirlink": "a symbolic link: not followed"}
    assert [c["collection"] for c in report["stores"][0]["collections"]] == ["ok.csv"]
    text = run.stdout + run.stderr + (tmp_path / "c.db").read_bytes().decode("utf-8", "replace")
    for leaked in ("token_holder", "rootsecret", "root:", str(outside), "/etc/passwd"):
        assert leaked not in text


@pytest.fixture(scope="module")
def opensearch_node() -> Iterator[OpenSearch]:
    node = start_opensearch(secured=False)  # one plain node: the labels do not depend on security
    yield node
    stop_opensearch(node)


def test_opensearch_keys_that_are_pii_are_shown_as_types(opensearch_node: OpenSearch) -> None:
    """Documents keyed by phone number and by a person's name, and a key holding Rich markup. (Index
    names are lower case without ``@`` in OpenSearch: only keys can carry values there.)"""
    lines = []
    for i in range(40):
        lines.append({"index": {"_index": "by-key", "_id": str(i)}})
        lines.append({"by_phone": {f"+1212555{3100 + i}": {"since": 2020 + i % 5}}, "[/]": f"x{i}",
                      "Maria Gonzalez": i})
    status, _ = opensearch_node.request("POST", "/_bulk?refresh=true",
                                        ("\n".join(json.dumps(x) for x in lines) + "\n").encode())
    assert status == 200
    scanned = scan([opensearch_node.store()])
    result = scanned.stores[0]
    assert result.problems == ()
    fields = {f.field for c in result.collections if c.name == "by-key" for f in c.fields}
    assert fields == {"by_phone.<phone>.since", "[/]", "<person-name>"}
    assert "2125553101" not in outputs(scanned) and "Gonzalez" not in outputs(scanned)


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfemail,n\n" + b"".join(b"b%d@example.com,%d\n" % (i, i)
                                                                          for i in range(10)))
    result = scan([f"file://{tmp_path}/bom.csv"])
    assert names(result)["bom.csv"] == ["email", "n"] and not result.problems
