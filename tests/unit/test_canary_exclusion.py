"""Who a notice must not reach, and where a copy link says it is: classes of input (Hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from piiguard.cli.fingerprint import where
from piiguard.discovery import canary_values as cv
from piiguard.response.notices import Canaries

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
DOMAIN = "canary.example.com"


@given(local=LABEL, sub=st.lists(LABEL, max_size=2), upper=st.booleans(), dot=st.booleans())
def test_an_address_at_the_canary_domain_or_below_is_a_canary(local: str, sub: list[str], upper: bool,
                                                               dot: bool) -> None:
    at = ".".join([*sub, DOMAIN]) + ("." if dot else "")
    address = f"{local}@{at.upper() if upper else at}"
    assert Canaries(DOMAIN)("cus_1", address)


@given(local=LABEL, prefix=LABEL)
def test_a_lookalike_domain_is_a_person(local: str, prefix: str) -> None:
    """``evilcanary.example.com`` and ``canary.example.com.evil.org`` are someone else's: notified."""
    is_canary = Canaries(DOMAIN)
    assert not is_canary("cus_1", f"{local}@{prefix}{DOMAIN}")
    assert not is_canary("cus_1", f"{local}@{DOMAIN}.{prefix}.org")
    assert not is_canary("cus_1", f"{local}@example.com")


@given(index=st.integers(0, 50), nonce=LABEL)
def test_a_canary_value_is_known_without_the_domain(index: int, nonce: str) -> None:
    key = b"k" * 32
    row = cv.Deriver(key, nonce, "other.example.org").rows(index + 1, {"email": cv.ValueKind.EMAIL,
                                                                      "id": cv.ValueKind.IDENTIFIER})[index]
    digests = frozenset(cv.split(cv.digests(key, [row], {"email": cv.ValueKind.EMAIL,
                                                          "id": cv.ValueKind.IDENTIFIER})))
    by_value = Canaries(None, key, digests)
    assert by_value("someone", row["email"]) and by_value(row["id"], "someone@example.org")
    assert not by_value("cus_0000", "someone@example.org")
    assert not Canaries(None, None, digests)(row["id"], row["email"])  # no key: only the domain could tell


@given(host=st.from_regex(r"127\.0\.0\.[1-9]:[1-9][0-9]{2,4}", fullmatch=True), database=LABEL, table=LABEL)
def test_a_url_store_writes_its_database_once(host: str, database: str, table: str) -> None:
    shown = where(f"{host}/{database}", f"{database}.{table}")
    assert shown == f"{host}/{database}.{table}" and f"{database}.{database}." not in shown.replace(host, "")
