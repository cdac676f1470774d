"""Maskers: what a copy does to one field. Registered like every other plugin, with typed options.

A masker compiles to one DuckDB SQL expression over the source column (read as text), so a whole
batch is masked in one vectorised, multi-threaded query and no value passes through Python. The
copy's key never appears in SQL text: its HMAC pads are DuckDB variables (``getvariable``), held in
this process's memory only.

Pseudonyms are HMAC-SHA256 (RFC 2104, computed as SHA-256 over the key's outer pad and the inner
digest): the same value under the same key always maps to the same pseudonym (joins keep working),
and copies made with different keys cannot be linked. Fake names are picked from Faker's name lists
by the HMAC, so they are consistent too.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from piiguard.config import options_from
from piiguard.registry import Registry


def hmac_hex(column: str) -> str:
    """SQL for the hex HMAC-SHA256 of a text column under the copy's key."""
    return (f"sha256(getvariable('piiguard_opad') || unhex(sha256(getvariable('piiguard_ipad') || "
            f"encode({column}))))")


def _hex_int(hex_sql: str, offset: int = 1) -> str:
    """48 bits of a hex digest as a non-negative integer."""
    return f"CAST('0x' || substr({hex_sql}, {offset}, 12) AS BIGINT)"


@dataclass(frozen=True)
class NoOptions:
    pass


class Masker(ABC):
    """One transform. ``Options`` is a frozen dataclass: YAML keys are checked against its fields."""

    Options: ClassVar[type[Any]] = NoOptions
    #: False: the field is not copied at all (the target has no such column).
    keeps_column: ClassVar[bool] = True

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> Masker:
        return cls(options_from(cls.Options, raw, where))

    @abstractmethod
    def sql(self, column: str) -> str:
        """The expression that masks ``column`` (a quoted identifier of a VARCHAR column)."""

    def describe(self) -> str:
        opts = dataclasses.asdict(self.options)
        return ", ".join(f"{k}={v}" for k, v in opts.items())


maskers: Registry[type[Masker]] = Registry("masker", Masker)


@maskers.register("keep")
class Keep(Masker):
    """Copied as it is: for allow-listed fields (and, with a waiver, anything else)."""

    def sql(self, column: str) -> str:
        return column


@maskers.register("drop")
class Drop(Masker):
    """Not copied: the target has no such column. The default for every field the classifier did not
    recognise, so a column added upstream never leaks by default."""

    keeps_column = False

    def sql(self, column: str) -> str:
        return "NULL"


@dataclass(frozen=True)
class PseudonymOptions:
    length: int = 20  # hex characters of the HMAC kept (80 bits)
    shape: str = "plain"  # plain | email

    def __post_init__(self) -> None:
        if not 12 <= self.length <= 64:
            raise ValueError("length must be between 12 and 64")
        if self.shape not in ("plain", "email"):
            raise ValueError("shape must be plain or email")


@maskers.register("pseudonym")
class Pseudonym(Masker):
    """Keyed HMAC-SHA256 pseudonym: consistent within a copy, unlinkable across keys. ``shape: email``
    gives a valid address in the reserved ``.invalid`` domain (never deliverable)."""

    Options = PseudonymOptions

    def sql(self, column: str) -> str:
        h = f"substr({hmac_hex(column)}, 1, {self.options.length})"
        if self.options.shape == "email":
            h = f"'u' || {h} || '@pseudonym.invalid'"
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {h} END"


@dataclass(frozen=True)
class FakeNameOptions:
    part: str = "full"  # first | last | full

    def __post_init__(self) -> None:
        if self.part not in ("first", "last", "full"):
            raise ValueError("part must be first, last or full")


@maskers.register("fake-name")
class FakeName(Masker):
    """A consistent fake name from Faker's en_US lists, chosen by the HMAC of the real one."""

    Options = FakeNameOptions

    def sql(self, column: str) -> str:
        h = hmac_hex(column)
        first = f"list_extract(getvariable('piiguard_first'), 1 + ({_hex_int(h, 1)} % getvariable('piiguard_nfirst')))"
        last = f"list_extract(getvariable('piiguard_last'), 1 + ({_hex_int(h, 13)} % getvariable('piiguard_nlast')))"
        name = {"first": first, "last": last, "full": f"{first} || ' ' || {last}"}[self.options.part]
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {name} END"


@dataclass(frozen=True)
class KeepPrefixOptions:
    keep: int = 5  # leading characters kept; every later digit or letter becomes X

    def __post_init__(self) -> None:
        if not 0 <= self.keep <= 12:
            raise ValueError("keep must be between 0 and 12")


@maskers.register("keep-prefix")
class KeepPrefix(Masker):
    """Keep the first characters (a phone's country and area code, a postcode's district), blank the
    rest: ``+44 20 7946 0123`` → ``+44 2X XXXX XXXX``."""

    Options = KeepPrefixOptions

    def sql(self, column: str) -> str:
        k = self.options.keep
        return f"left({column}, {k}) || regexp_replace(substr({column}, {k + 1}), '[0-9A-Za-z]', 'X', 'g')"


@maskers.register("year")
class Year(Masker):
    """Only the year of a date (birth date → birth year); NULL when no year is found."""

    def sql(self, column: str) -> str:
        return f"nullif(regexp_extract({column}, '(1[89][0-9]{{2}}|20[0-9]{{2}})'), '')"


@dataclass(frozen=True)
class RoundOptions:
    decimals: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.decimals <= 6:
            raise ValueError("decimals must be between 0 and 6")


@maskers.register("round")
class Round(Masker):
    """Cut every decimal number in the value to ``decimals`` places (coordinates: 2 ≈ 1 km)."""

    Options = RoundOptions

    def sql(self, column: str) -> str:
        d = self.options.decimals
        pattern = rf"(-?[0-9]+\.[0-9]{{{d}}})[0-9]*" if d else r"(-?[0-9]+)\.[0-9]*"
        return rf"regexp_replace({column}, '{pattern}', '\1', 'g')"


@maskers.register("ip-prefix")
class IPPrefix(Masker):
    """An address becomes its network, written as one: IPv4 its /24 (``203.0.113.77`` →
    ``203.0.113.0/24``), IPv6 its /48 (``2001:db8:1:2::5`` → ``2001:db8:1::/48``). An IPv4 address
    written as IPv6 (``::ffff:203.0.113.77``, how MariaDB's INET6 holds IPv4 clients) is IPv4: its /24."""

    def sql(self, column: str) -> str:
        v4 = rf"regexp_replace({column}, '^(?:::[fF]{{4}}:)?([0-9]+\.[0-9]+\.[0-9]+)\.[0-9]+$', '\1.0/24')"
        v6 = rf"regexp_replace({column}, '^([0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f]*):.*$', '\1::/48')"
        return f"CASE WHEN contains({column}, ':') AND NOT contains({column}, '.') THEN {v6} ELSE {v4} END"


@maskers.register("mac-vendor")
class MacVendor(Masker):
    """Keep the vendor prefix (OUI, first three octets); the rest is pseudonymised."""

    def sql(self, column: str) -> str:
        tail = rf"regexp_replace(substr({hmac_hex(column)}, 1, 6), '(..)(..)(..)', '\1:\2:\3')"  # one HMAC
        vendor = f"lower(replace(replace(left({column}, 8), '-', ':'), '.', ':'))"
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {vendor} || ':' || {tail} END"


# Spans redacted in free text, in this order: e-mail addresses, street addresses (a house number and
# capitalised words), IPv4 addresses, card-like numbers, phone-like digit runs (SSNs among them).
SPANS = (
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "<email>"),
    (r"\b[0-9]{1,6}( [A-Z][a-z]+\.?)+( [0-9]+)?", "<address>"),
    (r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b", "<ip>"),
    (r"\b(?:[0-9][ -]?){12,18}[0-9]\b", "<number>"),
    (r"\(?\+?[0-9][0-9 ()./-]{7,}[0-9]( ?(x|ext\.?) ?[0-9]+)?", "<phone>"),
)


@maskers.register("redact-text")
class RedactText(Masker):
    """Free text with the PII spans (e-mail and street addresses, phone numbers, IP addresses,
    card-like numbers) replaced in place by ``<email>``, ``<address>``, ``<phone>``, … Person names
    inside text are not found: a field whose text names people needs ``drop``."""

    def sql(self, column: str) -> str:
        out = column
        for pattern, label in SPANS:
            out = f"regexp_replace({out}, '{pattern}', '{label}', 'g')"
        return out


# The masker each PII type gets unless the configuration says otherwise.
DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "customer-identifier": ("pseudonym", {}),
    "email": ("pseudonym", {"shape": "email"}),
    "username": ("pseudonym", {}),
    "device-serial": ("pseudonym", {}),
    "wifi-ssid": ("pseudonym", {}),
    "credit-card": ("pseudonym", {}),
    "iban": ("pseudonym", {}),
    "national-id": ("pseudonym", {}),
    "us-ssn": ("pseudonym", {}),
    "first-name": ("fake-name", {"part": "first"}),
    "last-name": ("fake-name", {"part": "last"}),
    "person-name": ("fake-name", {"part": "full"}),
    "phone": ("keep-prefix", {"keep": 5}),
    "postal-code": ("keep-prefix", {"keep": 3}),
    "street-address": ("drop", {}),
    "city": ("keep", {}),
    "gender": ("keep", {}),
    "birth-date": ("year", {}),
    "geo-coordinates": ("round", {"decimals": 2}),
    "ip-address": ("ip-prefix", {}),
    "mac-address": ("mac-vendor", {}),
    "personal-media-url": ("drop", {}),
    "free-text-pii": ("redact-text", {}),
}
# Never copied: overriding one of these needs a waiver with a reason, recorded with the copy.
SECRETS = frozenset({"api-key", "oauth-token", "password-hash"})
