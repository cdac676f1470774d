"""What a native type decides on its own, and what it rules out: tables of positive and negative cases
through :class:`Classifier`, each with its control (the same values without the native type) where
the native type is what makes the difference."""

from __future__ import annotations

import ipaddress
import random

import pyarrow as pa
import pytest
from helpers import classifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.classify.types import NOT_TEXT, Kind, NativeType
from piiguard.model import Classification

R = random.Random(14)
N = 120


def decide(field: str, values: list[str], native: NativeType | None) -> Classification:
    c = classifier()
    state = c.new_state(field)
    c.observe(state, pa.array(values, pa.string()), native)
    return c.decide(state, "s", "t")


def years(low: int, high: int) -> list[str]:
    return [str(R.randint(low, high)) for _ in range(N)]


def dates(low: int, high: int, time: str = "") -> list[str]:
    return [f"{R.randint(low, high)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}{time}" for _ in range(N)]


INET, CIDR = NativeType("inet", Kind.IP), NativeType("cidr", Kind.NETWORK)
INTEGER, DATE = NativeType("integer", Kind.INTEGER), NativeType("date", Kind.DATE)
TIMESTAMP = NativeType("timestamp with time zone", Kind.TIMESTAMP)
HOSTS = [f"198.51.100.{i % 250 + 1}" for i in range(N)]

POSITIVE = [
    pytest.param("ip-address", "c01", HOSTS, INET, id="inet-obfuscated"),
    pytest.param("ip-address", "comment", HOSTS, INET, id="inet-named-like-text"),
    pytest.param("ip-address", "c01", HOSTS[:80] + ["0.0.0.0"] * 40, INET, id="inet-with-placeholders"),
    pytest.param("ip-address", "peer", [f"2001:db8::{i:x}" for i in range(1, N)], NativeType("INET6", Kind.IP),
                 id="inet6"),
    pytest.param("mac-address", "c02", [f"a4:83:e7:{i % 256:02x}:1b:2c" for i in range(N)],
                 NativeType("macaddr", Kind.MAC), id="macaddr"),
    pytest.param("geo-coordinates", "c03", [f"{R.uniform(-60, 60):.5f},{R.uniform(-170, 170):.5f}" for _ in range(N)],
                 NativeType("geo_point", Kind.GEO_POINT), id="geo_point"),
    pytest.param("birth-date", "birth_year", years(1946, 2006), INTEGER, id="year-by-name"),
    pytest.param("birth-date", "geburtsjahr", years(1990, 1995), INTEGER, id="year-by-german-name"),
    pytest.param("birth-date", "год_рождения", years(1990, 1995), INTEGER, id="year-by-cyrillic-name"),
    pytest.param("birth-date", "c04", years(1946, 2006), INTEGER, id="year-by-distribution"),
    pytest.param("birth-date", "c05", dates(1940, 2005), DATE, id="date-by-distribution"),
    pytest.param("birth-date", "dob", dates(2001, 2003), DATE, id="date-by-name"),
    pytest.param("birth-date", "fecha_nacimiento", dates(1950, 2000, "T00:00:00"), TIMESTAMP, id="timestamp-by-name"),
]

NEGATIVE = [
    pytest.param("ip-address", "client_ip", HOSTS, CIDR, id="cidr-of-hosts-named-ip"),
    pytest.param("ip-address", "c06", [f"10.{i}.0.0/16" for i in range(N)], CIDR, id="cidr-networks"),
    pytest.param("birth-date", "c07", dates(2019, 2025), DATE, id="recent-event-dates"),
    pytest.param("birth-date", "shipped", dates(2019, 2025, "T10:11:12"), TIMESTAMP, id="event-timestamps"),
    pytest.param("birth-date", "c08", years(2016, 2025), INTEGER, id="recent-years"),
    pytest.param("birth-date", "c09", [str(R.randint(0, 5000)) for _ in range(N)], INTEGER, id="counts"),
    pytest.param("birth-date", "c10", years(1995, 1999), INTEGER, id="years-not-spread"),
    pytest.param("customer-identifier", "is_customer", ["1", "0"] * (N // 2), NativeType("boolean", Kind.BOOLEAN),
                 id="boolean-named-customer"),
]


@pytest.mark.parametrize(("pii_type", "field", "values", "native"), POSITIVE)
def test_native_type_decides(pii_type: str, field: str, values: list[str], native: NativeType) -> None:
    got = decide(field, values, native)
    assert got.pii_type == pii_type, got.reason
    assert got.native_type == native.name
    assert got.evidence is not None and got.evidence.kind == native.kind.value


@pytest.mark.parametrize(("pii_type", "field", "values", "native"), NEGATIVE)
def test_native_type_rules_out(pii_type: str, field: str, values: list[str], native: NativeType) -> None:
    assert decide(field, values, native).pii_type != pii_type


def test_inet_is_settled_by_its_type_and_says_so_without_values() -> None:
    got = decide("c01", HOSTS, INET)
    assert got.evidence is not None and got.evidence.decided_by == "native-type"
    assert got.evidence.share == 1.0 and "inet" in got.reason
    assert not any(h in repr(got) for h in HOSTS)


def test_cidr_of_hosts_would_be_an_address_without_its_type() -> None:
    """The control of ``cidr-of-hosts-named-ip``: the veto is what keeps it from being a person's IP."""
    assert decide("client_ip", HOSTS, None).pii_type == "ip-address"
    assert decide("client_ip", HOSTS, CIDR).pii_type is None


def test_an_integer_year_needs_its_type_for_the_distribution() -> None:
    """Four-digit numbers as text (no native type) are not taken for birth years by their spread alone."""
    assert decide("c04", years(1946, 2006), None).pii_type != "birth-date"


PROSE = [f"Customer {i} asked to mail the receipt to person{i}@example.org tomorrow" for i in range(N)]


@pytest.mark.parametrize("kind", sorted(NOT_TEXT), ids=str)
def test_a_non_text_kind_is_never_free_text(kind: Kind) -> None:
    """Whatever the values look like once rendered, a field the engine types as a number, date, address
    or similar is not prose; without the type the same values are free text (the control)."""
    assert decide("notes", PROSE, None).pii_type == "free-text-pii"
    assert decide("notes", PROSE, NativeType(kind.value, kind)).pii_type != "free-text-pii"


@pytest.mark.parametrize("kind", [Kind.BOOLEAN, Kind.NETWORK, Kind.TIME, Kind.INTERVAL], ids=str)
def test_kinds_that_hold_no_identifier(kind: Kind) -> None:
    emails = [f"person{i}@example.org" for i in range(N)]
    assert decide("email", emails, None).pii_type == "email"
    assert decide("email", emails, NativeType(kind.value, kind)).pii_type is None


HOST_ADDRESSES = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6, network="2000::/3"))  # global unicast v6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses=st.lists(HOST_ADDRESSES.filter(lambda a: not (a.is_unspecified or a.is_multicast
                                                      or a.is_reserved or a.is_link_local)),
                          min_size=5, max_size=60, unique=True),
       name=st.text(min_size=1, max_size=20))
def test_any_host_addresses_typed_inet_are_ip_whatever_the_name(addresses: list[object], name: str) -> None:
    values = [str(a) for a in addresses]
    assert decide(name, values, INET).pii_type == "ip-address"


@settings(max_examples=40, deadline=None)
@given(networks=st.lists(st.integers(0, 2**32 - 1).flatmap(
    lambda a: st.integers(8, 32).map(lambda p: str(ipaddress.ip_network((a, p), strict=False)))),
    min_size=5, max_size=60), name=st.sampled_from(["ip", "client_ip", "addr", "c1", "source"]))
def test_any_cidr_is_never_a_persons_ip(networks: list[str], name: str) -> None:
    assert decide(name, networks, CIDR).pii_type is None
