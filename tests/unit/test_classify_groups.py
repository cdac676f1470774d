"""Group rules: fields judged with their neighbours (lat/lon pairs, first and last names, address
blocks, the key of event tables), through :class:`Classifier` + :func:`judge` and through a scan of
SQLite and Parquet files. Each positive case has its control: the column alone is not decided so."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker
from helpers import classifier

from piiguard.classify.groups import judge
from piiguard.classify.types import NativeType
from piiguard.model import Classification, ScanMode
from piiguard.scanner import scan

N = 200


def judged(columns: dict[str, list[str]], primary_key: tuple[str, ...] = (),
           types: dict[str, NativeType] | None = None) -> dict[str, Classification]:
    c = classifier()
    states = {name: c.new_state(name) for name in columns}
    for name, values in columns.items():
        c.observe(states[name], pa.array(values, pa.string()), (types or {}).get(name))
    fields = judge([c.decide(s, "s", "t") for s in states.values()], states, primary_key)
    assert [f.field for f in fields] == list(columns)  # the order is kept
    return {f.field: f for f in fields}


def alone(name: str, values: list[str]) -> Classification:
    return judged({name: values})[name]


def floats(low: float, high: float, decimals: int, seed: int) -> list[str]:
    r = random.Random(seed)
    return [f"{r.uniform(low, high):.{decimals}f}" for _ in range(N)]


LAT, LON = floats(35, 60, 6, 1), floats(-10, 30, 6, 2)


# --- latitude and longitude --------------------------------------------------------------------------

@pytest.mark.parametrize("columns", [
    pytest.param({"c1": LAT, "c2": LON}, id="adjacent-obfuscated"),
    pytest.param({"c1": LON, "c2": LAT}, id="lon-then-lat"),
    pytest.param({"home_lat": LAT, "c2": floats(0, 100, 2, 3), "home_lng": LON}, id="named-pair-apart"),
    pytest.param({"c1": floats(35, 60, 4, 4), "c2": floats(-10, 30, 3, 5)}, id="three-and-four-decimals"),
])
def test_a_lat_lon_pair_is_geo(columns: dict[str, list[str]]) -> None:
    got = judged(columns)
    pair = [f for f in got.values() if f.pii_type == "geo-coordinates"]
    assert len(pair) == 2
    for f in pair:
        assert f.evidence is not None and f.evidence.decided_by == "group" and f.evidence.detector == "lat-lon-pair"
        assert not any(v in repr(f) for v in LAT[:20] + LON[:20])


@pytest.mark.parametrize("columns", [
    pytest.param({"c1": LAT}, id="one-float-alone"),
    pytest.param({"c1": LAT, "c2": floats(0, 100, 2, 6)}, id="beside-a-price"),
    pytest.param({"price": floats(1, 80, 2, 7), "tax": floats(0, 20, 2, 8)}, id="two-decimals"),
    pytest.param({"c1": floats(100, 900, 4, 9), "c2": floats(200, 999, 4, 10)}, id="beyond-degrees"),
    pytest.param({"c1": LAT, "c2": [str(i) for i in range(N)]}, id="beside-whole-numbers"),
    pytest.param({"c1": LAT, "c2": floats(0, 100, 2, 3), "c3": LON}, id="apart-and-not-named"),
])
def test_no_pair_no_geo(columns: dict[str, list[str]]) -> None:
    assert not any(f.pii_type == "geo-coordinates" for f in judged(columns).values())


# --- first and last names ----------------------------------------------------------------------------

def _invented(seed: int) -> list[str]:
    """Made-up names no word list holds (``Zorvakquen``)."""
    r = random.Random(seed)
    syllables = ["zor", "vak", "quen", "thra", "mul", "dex", "yor", "piv", "kesh", "wun"]
    return ["".join(r.choice(syllables) for _ in range(3)).capitalize() for _ in range(N)]


def names(locale: str) -> tuple[list[str], list[str]]:
    """Given and family names of a locale, every other one replaced by a made-up name: half in the
    word lists, too few for a decision on one column alone (the locale's own names all are listed)."""
    fake = Faker(locale)
    fake.seed_instance(3)
    first = [fake.first_name() if i % 2 == 0 else w for i, w in enumerate(_invented(1))]
    last = [fake.last_name() if i % 2 == 0 else w for i, w in enumerate(_invented(2))]
    return first, last


@pytest.mark.parametrize("locale", ["de_DE", "it_IT", "es_ES"])
def test_given_and_family_names_side_by_side(locale: str) -> None:
    first, last = names(locale)
    # The control: alone, the given names are too few in the dictionary for a decision.
    assert alone("c1", first).pii_type is None
    got = judged({"c1": first, "c2": last})
    assert (got["c1"].pii_type, got["c2"].pii_type) == ("first-name", "last-name")
    assert got["c1"].evidence is not None and got["c1"].evidence.decided_by == "group"
    assert "beside 'c2'" in got["c1"].reason


def test_a_named_column_fixes_which_is_which() -> None:
    first, last = names("de_DE")
    got = judged({"surname": last, "c2": first})
    assert (got["surname"].pii_type, got["c2"].pii_type) == ("last-name", "first-name")


def test_names_not_beside_each_other_are_left_alone() -> None:
    first, last = names("de_DE")
    got = judged({"c1": first, "c2": [str(i) for i in range(N)], "c3": last})
    assert got["c1"].pii_type is None


# --- address blocks ----------------------------------------------------------------------------------

STREETS = [f"{i % 90 + 1} {['Main', 'Oak', 'Elm', 'Pine'][i % 4]} Street" for i in range(N)]
CITIES = [["Boston", "Denver", "Uffenheim", "Kiel", "Graz", "Linz", "Wels", "Steyr"][i % 8] for i in range(N)]
CODES = [str(1000 + (i * 37) % 8999) for i in range(N)]  # four-digit postcodes (AT, CH, DK …)


def test_street_city_postcode_side_by_side() -> None:
    assert alone("c3", CODES).pii_type is None  # four bare digits: no postcode without a name …
    got = judged({"c1": STREETS, "c2": CITIES, "c3": CODES})
    assert [got[c].pii_type for c in ("c1", "c2", "c3")] == ["street-address", "city", "postal-code"]
    assert got["c3"].evidence is not None and got["c3"].evidence.detector == "address-block"


def test_a_street_in_an_address_block_is_not_free_text() -> None:
    streets = [f"{s}; the parcel goes to the concierge, call ahead please" if i % 3 == 0 else s
               for i, s in enumerate(STREETS)]
    assert alone("c1", streets).pii_type == "free-text-pii"  # the control
    got = judged({"c1": streets, "c2": CITIES, "c3": CODES})
    assert got["c1"].pii_type == "street-address"


def test_numbers_without_an_address_beside_them_are_not_postcodes() -> None:
    got = judged({"c1": CODES, "c2": [str(i) for i in range(N)]})
    assert got["c1"].pii_type is None


# --- the customer key --------------------------------------------------------------------------------

def test_the_key_of_an_event_table_is_not_the_customer_key() -> None:
    events = {"event_id": [str(i + 1) for i in range(N)],
              "ts": [f"2026-03-{i % 28 + 1:02d}T10:{i % 60:02d}:00" for i in range(N)],
              "email": [f"person{i % 12}@example.org" for i in range(N)]}
    got = judged(events, ("event_id",))
    assert got["event_id"].pii_type is None
    assert "events" in got["event_id"].reason and "'ts'" in got["event_id"].reason
    # The control: the same key in a table of people is the customer key.
    people = {"id": events["event_id"], "email": [f"person{i}@example.org" for i in range(N)]}
    assert judged(people, ("id",))["id"].pii_type == "customer-identifier"


# --- through a scan ----------------------------------------------------------------------------------

def _fields(result) -> dict[tuple[str, str], Classification]:  # type: ignore[no-untyped-def]
    return {(c.name, f.field): f for c in result.stores[0].collections for f in c.fields}


def test_scan_of_parquet_and_sqlite_judges_groups(tmp_path: Path) -> None:
    first, last = names("it_IT")
    pq.write_table(pa.table({"c1": [float(x) for x in LAT], "c2": [float(x) for x in LON],
                             "c3": list(range(N))}), tmp_path / "points.parquet")
    with sqlite3.connect(tmp_path / "people.db") as conn:
        conn.execute("CREATE TABLE p (k INTEGER PRIMARY KEY, a TEXT, b TEXT, s TEXT, t TEXT, z INTEGER)")
        conn.executemany("INSERT INTO p VALUES (?, ?, ?, ?, ?, ?)",
                         zip(range(N), first, last, STREETS, CITIES, [int(c) for c in CODES], strict=True))
    got = _fields(scan([f"file://{tmp_path}"], mode=ScanMode.FULL))
    assert got[("points.parquet", "c1")].pii_type == got[("points.parquet", "c2")].pii_type == "geo-coordinates"
    assert got[("points.parquet", "c3")].pii_type is None
    people = _fields(scan([f"sqlite://{tmp_path / 'people.db'}"], mode=ScanMode.FULL))
    assert {f: people[("p", f)].pii_type for f in "abstz"} == {
        "a": "first-name", "b": "last-name", "s": "street-address", "t": "city", "z": "postal-code"}


def test_a_lone_number_column_decided_geo_by_another_source_is_revoked() -> None:
    """A single float column is never coordinates alone: a decision from elsewhere (the learned model) on
    an unnamed one is undone; the same column named ``latitude`` keeps it."""
    import dataclasses

    c = classifier()
    for name, kept in (("c1", None), ("latitude", "geo-coordinates")):
        state = c.new_state(name)
        c.observe(state, pa.array(LAT))
        field = dataclasses.replace(c.decide(state, "s", "t"), pii_type="geo-coordinates", confidence=0.8)
        (got,) = judge([field], {name: state}, ())
        assert got.pii_type == kept


# --- a country column --------------------------------------------------------------------------------

def test_a_country_column_tells_the_locale_of_the_rest() -> None:
    countries = [["Germany", "DE", "deu", "Austria"][i % 4] for i in range(N)]
    first, last = names("de_DE")
    got = judged({"c1": [f"person{i}@example.org" for i in range(N)], "c2": countries, "c3": first, "c4": last})
    notes = got["c1"].evidence.notes if got["c1"].evidence else ()
    assert "locale told by country column 'c2': DE 75%, AT 25%" in notes
    assert got["c2"].pii_type is None
    # The control: a column of many countries, none leading, tells no locale.
    many = [["France", "Spain", "Italy", "Poland", "Greece", "Norway"][i % 6] for i in range(N)]
    spread = judged({"c1": [f"person{i}@example.org" for i in range(N)], "c2": many})["c1"]
    assert spread.evidence is not None and not any("locale" in n for n in spread.evidence.notes)
