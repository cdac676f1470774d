"""Decoys a new user's tables held that the classifier flagged (found trying issue 14 on PostgreSQL,
MariaDB and files), each beside a control the same rule must still get right."""

from __future__ import annotations

import random
import uuid

import faker
import pyarrow as pa
import pytest
from helpers import classifier
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.classify import validators
from piiguard.classify.groups import judge
from piiguard.classify.types import Kind, NativeType
from piiguard.model import Classification

N = 200


def judged(columns: dict[str, list[str]], types: dict[str, NativeType] | None = None) -> dict[str, Classification]:
    c = classifier()
    states = {name: c.new_state(name) for name in columns}
    for name, values in columns.items():
        c.observe(states[name], pa.array(values, pa.string()), (types or {}).get(name))
    return {f.field: f for f in judge([c.decide(s, "s", "t") for s in states.values()], states, ())}


def floats(low: float, high: float, decimals: int, seed: int) -> list[str]:
    r = random.Random(seed)
    return [f"{r.uniform(low, high):.{decimals}f}" for _ in range(N)]


@pytest.mark.parametrize("names", [("temperature", "humidity"), ("x_offset", "y_offset"),
                                   ("voltage", "current"), ("score_a", "score_b")])
def test_measurements_in_degree_ranges_are_not_coordinates(names: tuple[str, str]) -> None:
    a, b = floats(-30, 45, 4, 1), floats(0, 100, 4, 2)
    got = judged({names[0]: a, names[1]: b})
    assert not any(f.pii_type == "geo-coordinates" for f in got.values())
    control = judged({"c01": a, "c02": b})  # the same numbers under names that say nothing: a pair
    assert [f.pii_type for f in control.values()] == ["geo-coordinates"] * 2


ORDER_IDS = [f"ORD-2025-{i:06d}" for i in range(N)]
SERIALS = [f"B{random.Random(i).randrange(10**7):07d}Z" for i in range(N)]


@pytest.mark.parametrize("name", ["sku", "order_ref", "batch_code", "product_id", "item"])
@pytest.mark.parametrize("values", [ORDER_IDS, SERIALS], ids=["order-ids", "codes"])
def test_a_name_saying_what_a_code_is_outweighs_its_shape(name: str, values: list[str]) -> None:
    assert judged({name: values})[name].pii_type is None
    assert judged({"device_serial": values})["device_serial"].pii_type == "device-serial"  # the control


def test_five_digit_batch_codes_are_not_postcodes() -> None:
    codes = [f"{10000 + i * 37 % 89999:05d}" for i in range(N)]
    assert judged({"batch_code": codes})["batch_code"].pii_type is None
    assert judged({"zip": codes})["zip"].pii_type == "postal-code"  # the control


@pytest.mark.parametrize("name", ["firmware", "c03", "fw_version"])
def test_firmware_versions_are_not_usernames(name: str) -> None:
    r = random.Random(5)
    versions = [f"v{r.randrange(1, 9)}.{r.randrange(30)}.{r.randrange(60)}" for _ in range(N)]
    assert judged({name: versions})[name].pii_type is None
    handles = [f"user{i}.smith" for i in range(N)]
    assert judged({"c03": handles})["c03"].pii_type == "username"  # the control


@pytest.mark.parametrize("words", [("kobieta", "mężczyzna"), ("kadın", "erkek"), ("女性", "男性"),
                                   ("أنثى", "ذكر"), ("женский", "мужской"), ("femmina", "maschio")],
                         ids=["pl", "tr", "ja", "ar", "ru", "it"])
@pytest.mark.parametrize("name", ["gender", "c09"])
def test_gender_in_other_languages(words: tuple[str, str], name: str) -> None:
    values = [words[i % 2] for i in range(N)]
    assert judged({name: values})[name].pii_type == "gender"


def test_an_inet_column_of_networks_is_not_peoples_addresses() -> None:
    inet = NativeType("inet", Kind.IP)
    networks = [f"10.{i % 250}.{i // 250}.0/24" for i in range(N)]
    assert judged({"c01": networks}, {"c01": inet})["c01"].pii_type is None
    hosts = [f"10.{i % 250}.{i // 250}.7" for i in range(N)]
    assert judged({"c01": hosts}, {"c01": inet})["c01"].pii_type == "ip-address"  # the control


def test_ipv4_clients_in_an_inet6_column_are_addresses() -> None:
    """MariaDB's INET6 holds IPv4 clients as ``::ffff:a.b.c.d``; the pattern took only pure IPv6."""
    mapped = [f"::ffff:198.51.{i % 200}.{i % 250 + 1}" for i in range(N)]
    got = judged({"c01": mapped}, {"c01": NativeType("inet6", Kind.IP)})["c01"]
    assert got.pii_type == "ip-address" and got.evidence is not None and got.evidence.share == 1.0


@pytest.mark.parametrize("other", [[f"see note {i}" for i in range(N)], [str(i) for i in range(N)]], ids=["words", "numbers"])
def test_a_column_half_emails_holds_emails(other: list[str]) -> None:
    values = [f"person{i}@example.org" if i % 2 else other[i] for i in range(N)]
    got = judged({"contact": values})["contact"]
    assert got.pii_type == "email" and got.evidence is not None and got.evidence.share == 0.5
    assert judged({"contact": other})["contact"].pii_type is None  # the control


@pytest.mark.parametrize("value", ["M", "F", "x", "female"])
def test_one_gender_word_repeated_is_undecidable(value: str) -> None:
    assert judged({"c01": [value] * N})["c01"].pii_type is None
    assert judged({"c01": ["M", "F"] * (N // 2)})["c01"].pii_type == "gender"  # the control


def test_the_key_named_for_events_is_not_a_customer_key() -> None:
    """A telemetry table (device serials, addresses, a timestamp) keyed by ``event_id``: no person key
    repeats, but its key's name says its rows are events."""
    r = random.Random(9)
    columns = {"event_id": [str(i + 1) for i in range(N)],
               "device_serial": [f"HW{r.randrange(10**9):09d}X" for _ in range(N)],
               "ts": [f"2026-03-{i % 28 + 1:02d}T10:{i % 60:02d}:00" for i in range(N)],
               "client_ip": [f"198.51.{i % 200}.{i % 250 + 1}" for i in range(N)]}
    got = judged(columns)
    assert got["event_id"].pii_type is None and "events" in got["event_id"].reason
    columns["customer_no"] = columns.pop("event_id")  # the control: a key named otherwise is the key
    assert judged({"customer_no": columns.pop("customer_no"), **columns})["customer_no"].pii_type == "customer-identifier"


@pytest.mark.parametrize("name", ["birth_year", "yob", "year_of_birth"])
def test_birth_years_as_text_by_name(name: str) -> None:
    r = random.Random(3)
    years = [str(r.randrange(1946, 2007)) for _ in range(N)]
    assert judged({name: years})[name].pii_type == "birth-date"
    assert judged({"c04": years})["c04"].pii_type != "birth-date"  # the control: no type, no name


def test_the_key_of_a_telemetry_table_is_not_a_customer_key() -> None:
    """Devices and addresses with a timestamp per row, keyed plainly ``id``: readings, not people."""
    r = random.Random(11)
    columns = {"id": [str(i + 1) for i in range(N)],
               "device_serial": [f"HW{r.randrange(10**9):09d}X" for _ in range(N)],
               "ts": [f"2026-03-{i % 28 + 1:02d}T10:{i % 60:02d}:00" for i in range(N)]}
    got = judged(columns)
    assert got["id"].pii_type is None and "no person's attributes" in got["id"].reason
    columns["email"] = [f"person{i}@example.org" for i in range(N)]  # the control: a person's table
    assert judged(columns)["id"].pii_type == "customer-identifier"


# identifiers that spell letters between their digits: hex ObjectIds cut into "B E B C" read as a street
# type (C, DA, DE are street abbreviations of some locale) half the time, so a Mongo `_id` was a street
_ID_ALPHABETS = ["0123456789abcdef", "0123456789ABCDEF", "0123456789abcdefghijklmnopqrstuvwxyz",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_ID_ALPHABETS).flatmap(lambda a: st.text(a, min_size=8, max_size=40)),
       st.sampled_from(["", "-", "_", ":"]))
def test_an_identifier_is_never_a_street(token: str, sep: str) -> None:
    """The class: runs of digits and letters, glued or joined by a separator inside one word."""
    value = sep.join(token[i:i + 8] for i in range(0, len(token), 8))
    assert not validators.street_address(value)


@pytest.mark.parametrize("name", ["_id", "c01"])
@pytest.mark.parametrize("style", ["objectid", "uuid"])
def test_object_ids_are_not_streets(name: str, style: str) -> None:
    r = random.Random(7)
    ids = [f"{r.getrandbits(96):024x}" if style == "objectid" else
           str(uuid.UUID(int=r.getrandbits(128))) for i in range(N)]
    fake = faker.Faker("en_US")
    fake.seed_instance(3)
    beside = judged({name: ids, "city": [fake.city() for _ in range(N)]})  # a city makes an address block
    assert beside["city"].pii_type == "city" and beside[name].pii_type in (None, "customer-identifier")
    streets = [f"{r.randrange(1, 200)} {w} Street" for w in ["Oak", "Elm", "Main", "Park"] * (N // 4)]
    assert judged({"c02": streets})["c02"].pii_type == "street-address"  # the control
