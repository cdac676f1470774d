"""A first row of the same class as the column under it (names, CJK, @handles) is data, so it never
becomes a column name; real headers in several languages stay headers; e-mails followed by ``_`` in
a file name are replaced; keys that are ids are ``<id>``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.connectors.labels import header_is_data, label

NAMES = [["Hans", "Müller"], ["Anna", "Schmidt"], ["Jörg", "Weber"], ["Peter", "Meyer"], ["Maria", "Wagner"]]
CJK = [["佐藤", "花子"], ["鈴木", "一郎"], ["高橋", "次郎"], ["田中", "三郎"]]
HANDLES = [["@hans_m", "Berlin"], ["@anna", "Hamburg"], ["@jw", "München"], ["@p_m", "Bremen"]]


@pytest.mark.parametrize(("first", "rows", "data"), [
    (["Käthe", "Schröder"], NAMES, True),
    (["山田", "太郎"], CJK, True),
    (["@kaethe_s", "Köln"], HANDLES, True),
    (["first_name", "last_name"], NAMES, False),
    (["Vorname", "Nachname"], NAMES, False),
    (["名前", "名"], CJK, False),
    (["user", "city"], HANDLES, False),
    (["Status"], [["Active"], ["Pending"], ["Closed"], ["Active"]], False),
], ids=["names", "cjk", "handles", "english-header", "german-header", "japanese-header", "handle-header",
        "words-over-words"])
def test_first_row_of_the_columns_class(first: list[str], rows: list[list[str]], data: bool) -> None:
    assert header_is_data(first, rows) is data


@pytest.mark.parametrize(("name", "shown"), [
    ("kunde.vier@example.de_export.csv", "<email>_export.csv"),
    ("export_kunde@example.de.csv", "<email>.csv"),  # the stem is taken as one address
    ("7000000", "<id>"),
    ("123e4567-e89b-12d3-a456-426614174000", "<id>"),
    ("00493012340000", "<id>"),
    ("2024", "2024"),
    ("käthe@müller.de", "<email>"),  # internationalised (RFC 6531)
    ("kunde0@müller.de", "<email>"),
    ("profil_käthe@müller.de_export", "<email>_export"),
    ("Straße", "Straße"),
])
def test_names_around_separators_and_ids(name: str, shown: str) -> None:
    assert label(name) == shown


USERNAMES = [["k.novak77"], ["pavel_dvorak"], ["jana1987"], ["tomas.svoboda"], ["eva_k"], ["martin99"]]


@pytest.mark.parametrize("header", ["c06", "col12", "f3", "firmware_version", "jmeno", "uzivatel_jmeno",
                                    "datum_narozeni", "kayttaja"])
def test_identifier_shaped_header_over_handles_is_a_header(header: str) -> None:
    """Obfuscated (``c06``) and other-language snake_case names look like usernames themselves: above a
    column of usernames they are still a header (they made every column ``col_N`` before)."""
    assert header_is_data([header], USERNAMES) is False


@given(st.from_regex(r"[a-z]{1,3}\d{1,3}|[a-z]{3,9}_[a-z]{3,9}", fullmatch=True))
@settings(max_examples=60, deadline=None)
def test_any_identifier_header_over_usernames_is_a_header(header: str) -> None:
    assert header_is_data([header], USERNAMES) is False
