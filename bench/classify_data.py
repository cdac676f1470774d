"""Labelled multi-locale tables for the classification benchmark (bench/classify.py), on a fixed split.

The rule, kept in docs/benchmark.md and enforced by tests/unit/test_benchmark_split.py:

- **tuning** — Faker only, the 15 locales of :data:`TUNING`, seed 14001. Detector work, word lists,
  the column model and thresholds may look at it.
- **held-out** — Mimesis only, the 13 locales of :data:`HELD_OUT` (languages the tuning side does not
  use), seed 14101. Nothing is tuned on it; nothing under src/ imports Mimesis. A held-out figure is
  reported as measured; a fix it prompts must be justified without it, and is then measured on a new
  held-out split, since this one is spent once looked at.

Each locale gives two tables, ``customers_<locale>`` and ``events_<locale>``. Every column carries its
true label (a piiguard PII type, or None for a decoy that must get none), its native types (Arrow,
PostgreSQL, MariaDB) and the natural names it may go by; obfuscated names are ``c01``…. Columns that
real schemas keep side by side (first and last name; street, city, postcode; latitude and longitude)
stay together when the column order is shuffled. Values are made up by the generators — no real
person's data.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Split:
    name: str
    generator: str  # the only package its values come from
    locales: tuple[str, ...]
    seed: int


TUNING = Split("tuning", "faker", ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL",
                                   "sv_SE", "tr_TR", "ru_RU", "ja_JP", "zh_CN", "ar_AA", "he_IL"), 14001)
HELD_OUT = Split("held-out", "mimesis", ("cs", "da", "fi", "hu", "no", "sk", "et", "hr", "uk", "kk", "el", "fa",
                                         "ko"), 14101)
SPLITS = (TUNING, HELD_OUT)


@dataclass(frozen=True)
class Spec:
    """One column: its truth, where it lives, how each store types it, what people call it."""

    key: str
    label: str | None  # the piiguard PII type it holds; None: a decoy, which must get no type
    table: str  # "customers" or "events"
    block: str  # columns of one block stay adjacent and in this order
    names: tuple[str, ...]  # natural names; a table picks one
    arrow: pa.DataType
    pg: str
    my: str


_S, _TS, _TSZ = pa.string(), pa.timestamp("us"), pa.timestamp("us", tz="UTC")
COLUMNS: tuple[Spec, ...] = (
    Spec("first", "first-name", "customers", "name", ("first_name", "given_name", "firstname", "fname"), _S,
         "text", "VARCHAR(100)"),
    Spec("last", "last-name", "customers", "name", ("last_name", "surname", "family_name", "lastname"), _S,
         "text", "VARCHAR(100)"),
    Spec("full", "person-name", "customers", "full", ("full_name", "name", "display_name", "contact_name"), _S,
         "text", "VARCHAR(200)"),
    Spec("email", "email", "customers", "email", ("email", "email_address", "mail", "contact_email"), _S,
         "text", "VARCHAR(200)"),
    Spec("alt_emails", "email", "customers", "alt_emails", ("alt_emails", "other_emails", "email_aliases"),
         pa.list_(_S), "text[]", "JSON"),
    Spec("phone", "phone", "customers", "phone", ("phone", "phone_number", "mobile", "tel"), _S, "text",
         "VARCHAR(50)"),
    Spec("street", "street-address", "customers", "address", ("street", "street_address", "address_line1",
                                                             "address"), _S, "text", "VARCHAR(200)"),
    Spec("city", "city", "customers", "address", ("city", "town", "locality"), _S, "text", "VARCHAR(100)"),
    Spec("postcode", "postal-code", "customers", "address", ("postcode", "postal_code", "zip"), _S, "text",
         "VARCHAR(20)"),
    Spec("birth_date", "birth-date", "customers", "birth_date", ("birth_date", "dob", "date_of_birth", "born_on"),
         pa.date32(), "date", "DATE"),
    Spec("birth_year", "birth-date", "customers", "birth_year", ("birth_year", "year_of_birth", "yob"),
         pa.int64(), "integer", "INT"),
    Spec("gender", "gender", "customers", "gender", ("gender", "sex"), _S, "text", "VARCHAR(30)"),
    Spec("username", "username", "customers", "username", ("username", "nickname", "login", "handle"), _S,
         "text", "VARCHAR(100)"),
    Spec("iban", "iban", "customers", "iban", ("iban", "bank_account", "payout_iban"), _S, "text", "VARCHAR(40)"),
    Spec("card", "credit-card", "customers", "card", ("card_number", "cc_number", "pan"), _S, "text",
         "VARCHAR(30)"),
    Spec("signup_at", None, "customers", "signup_at", ("signup_at", "created_at", "registered_at"), _TSZ,
         "timestamptz", "DATETIME"),
    Spec("login_count", None, "customers", "login_count", ("login_count", "logins", "visits"), pa.int64(),
         "integer", "INT"),
    Spec("status", None, "customers", "status", ("status", "account_status", "state"), _S, "text", "VARCHAR(20)"),
    Spec("plan_price", None, "customers", "plan_price", ("plan_price", "price", "monthly_fee"),
         pa.decimal128(10, 2), "numeric(10,2)", "DECIMAL(10,2)"),
    Spec("event_id", None, "events", "event_id", ("event_id", "id", "seq"), pa.int64(), "bigint", "BIGINT"),
    Spec("event_at", None, "events", "event_at", ("event_at", "occurred_at", "ts", "logged_at"), _TS,
         "timestamp", "DATETIME"),
    Spec("serial", "device-serial", "events", "serial", ("device_serial", "serial_number", "sn", "hw_serial"), _S,
         "text", "VARCHAR(40)"),
    Spec("mac", "mac-address", "events", "mac", ("device_mac", "mac", "mac_address", "hwaddr"), _S, "macaddr",
         "VARCHAR(20)"),
    Spec("ip", "ip-address", "events", "ip", ("client_ip", "ip", "remote_addr", "source_ip"), _S, "inet", "INET6"),
    Spec("lat", "geo-coordinates", "events", "geo", ("lat", "latitude", "gps_lat"), pa.float64(),
         "double precision", "DOUBLE"),
    Spec("lon", "geo-coordinates", "events", "geo", ("lon", "longitude", "gps_lng"), pa.float64(),
         "double precision", "DOUBLE"),
    Spec("sku", None, "events", "sku", ("sku", "product_code", "item_sku"), _S, "text", "VARCHAR(30)"),
    Spec("file_hash", None, "events", "file_hash", ("file_sha256", "checksum", "blob_hash"), _S, "text",
         "VARCHAR(128)"),
    Spec("network", None, "events", "network", ("network", "subnet", "allowed_cidr"), _S, "cidr", "VARCHAR(43)"),
    Spec("firmware", None, "events", "firmware", ("firmware_version", "fw_version", "version"), _S, "text",
         "VARCHAR(30)"),
    Spec("bytes_sent", None, "events", "bytes_sent", ("bytes_sent", "payload_bytes", "count"), pa.int64(),
         "bigint", "BIGINT"),
    Spec("event_status", None, "events", "event_status", ("result", "event_status", "outcome"), _S, "text",
         "VARCHAR(20)"),
)
TABLES = ("customers", "events")
STATUS = ("active", "pending", "suspended", "closed", "trial")
OUTCOME = ("ok", "retry", "timeout", "denied", "error")
_UNTIL = datetime(2026, 12, 1)  # fixed, not "now": the same seed gives the same table on any day
_NULLABLE_SHARE = 0.03  # PII columns have a few NULLs, as real ones do

# ISO 13616 lengths of the held-out countries' IBANs; Korea has none, so its table borrows a neighbour's.
_IBAN_LENGTHS = {"cs": ("CZ", 24), "da": ("DK", 18), "fi": ("FI", 18), "hu": ("HU", 28), "no": ("NO", 15),
                 "sk": ("SK", 24), "et": ("EE", 20), "hr": ("HR", 21), "uk": ("UA", 29), "kk": ("KZ", 20),
                 "el": ("GR", 27), "fa": ("IR", 26), "ko": ("FI", 18)}


@dataclass
class Table:
    """One generated table: its columns in order, each with its natural name, and its values."""

    name: str
    locale: str
    split: Split
    columns: list[tuple[Spec, str]]  # (spec, natural name) in column order
    values: dict[str, list[Any]]  # spec key -> one Python value per row (None for NULL)

    def names(self, style: str) -> list[str]:
        return [n if style == "natural" else f"c{i + 1:02d}" for i, (_, n) in enumerate(self.columns)]

    def truth(self, style: str) -> dict[str, str | None]:
        return dict(zip(self.names(style), (s.label for s, _ in self.columns), strict=True))


Make = Callable[[Any, random.Random], Any]


def _mac(raw: str, r: random.Random) -> str:
    """The notations MACs are stored in: colon, dash, Cisco dots, bare; either case."""
    digits = raw.replace(":", "").replace("-", "").lower()
    form = r.randrange(5)
    if form == 0:
        out = ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    elif form == 1:
        out = "-".join(digits[i:i + 2] for i in range(0, 12, 2)).upper()
    elif form == 2:
        out = ".".join(digits[i:i + 4] for i in range(0, 12, 4))
    elif form == 3:
        out = digits
    else:
        out = ":".join(digits[i:i + 2] for i in range(0, 12, 2)).upper()
    return out


def _iban(country: str, length: int, r: random.Random) -> str:
    bban = "".join(r.choice("0123456789") for _ in range(length - 4))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _network(ip: str, r: random.Random) -> str:
    return str(ipaddress.ip_network(f"{ip}/{r.choice((8, 16, 20, 24, 28))}", strict=False))


def _faker_makers(locale: str) -> dict[str, Make]:
    masks = ("??##-####-??##", "##??#####?", "???-########", "#?#?#?#?#?#?")
    upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return {
        "first": lambda f, r: f.first_name(),
        "last": lambda f, r: f.last_name(),
        "full": lambda f, r: f.name(),
        "email": lambda f, r: f.email(),
        "alt_emails": lambda f, r: [f.email() for _ in range(r.randint(1, 3))],
        "phone": lambda f, r: f.phone_number(),
        "street": lambda f, r: f.street_address(),
        "city": lambda f, r: f.city(),
        "postcode": lambda f, r: f.postcode(),
        "birth_date": lambda f, r: f.date_between(date(1941, 1, 1), date(2007, 12, 31)),
        "birth_year": lambda f, r: f.date_between(date(1946, 1, 1), date(2006, 12, 31)).year,
        # Faker ships no gender words per locale; what it has are the profile's letters
        "gender": lambda f, r: f.random_element(("M", "F")) if r.random() < 0.5 else f.random_element(
            ("male", "female")),
        "username": lambda f, r: f.user_name(),
        "iban": lambda f, r: f.iban(),
        "card": lambda f, r: f.credit_card_number(),
        "signup_at": lambda f, r: f.date_time_between(datetime(2020, 1, 1), _UNTIL, tzinfo=UTC),
        "login_count": lambda f, r: f.random_int(0, 900),
        "status": lambda f, r: f.random_element(STATUS),
        "plan_price": lambda f, r: Decimal(f"{f.random_int(100, 49999) / 100:.2f}"),
        "event_at": lambda f, r: f.date_time_between(datetime(2024, 12, 1), _UNTIL),
        "serial": lambda f, r: f.bothify(r.choice(masks), letters=upper),
        "mac": lambda f, r: _mac(f.mac_address(), r),
        "ip": lambda f, r: f.ipv4_public() if r.random() < 0.75 else f.ipv6(),
        "lat": lambda f, r: round(float(f.latitude()), r.choice((4, 5, 6))),
        "lon": lambda f, r: round(float(f.longitude()), r.choice((4, 5, 6))),
        "sku": lambda f, r: f.bothify(r.choice(("SKU-#####", "??-####-?", "#####-??")), letters=upper),
        "file_hash": lambda f, r: f.sha256() if r.random() < 0.7 else f.md5(),
        "network": lambda f, r: f.ipv4(network=True),
        "firmware": lambda f, r: f.numerify(r.choice(("%.#.##", "v%.##.#", "%.#.#-rc#"))),
        "bytes_sent": lambda f, r: f.random_int(0, 10**7),
        "event_status": lambda f, r: f.random_element(OUTCOME),
    }


def _mimesis_makers(locale: str) -> dict[str, Make]:
    masks = ("@@##-####-@@##", "##@@#####@", "@@@-########", "#@#@#@#@#@#@")
    country, length = _IBAN_LENGTHS[locale]
    return {
        "first": lambda g, r: g.person.first_name(),
        "last": lambda g, r: g.person.last_name(),
        "full": lambda g, r: g.person.full_name(),
        "email": lambda g, r: g.person.email(),
        "alt_emails": lambda g, r: [g.person.email() for _ in range(r.randint(1, 3))],
        "phone": lambda g, r: g.person.phone_number(),
        "street": lambda g, r: g.address.address(),
        "city": lambda g, r: g.address.city(),
        "postcode": lambda g, r: g.address.postal_code(),
        "birth_date": lambda g, r: g.datetime.date(start=1941, end=2007),
        "birth_year": lambda g, r: g.datetime.year(1946, 2006),
        "gender": lambda g, r: g.person.gender(),
        "username": lambda g, r: g.person.username(),
        "iban": lambda g, r: _iban(country, length, r),
        "card": lambda g, r: g.payment.credit_card_number(),
        "signup_at": lambda g, r: g.datetime.datetime(start=2020, end=2026).replace(tzinfo=UTC),
        "login_count": lambda g, r: g.numeric.integer_number(0, 900),
        "status": lambda g, r: g.choice(STATUS),
        "plan_price": lambda g, r: Decimal(f"{g.finance.price(1, 499):.2f}"),
        "event_at": lambda g, r: g.datetime.datetime(start=2024, end=2026),
        "serial": lambda g, r: g.code.imei() if r.random() < 0.3 else g.random.generate_string_by_mask(
            r.choice(masks), "@", "#"),
        "mac": lambda g, r: _mac(g.internet.mac_address(), r),
        "ip": lambda g, r: g.internet.ip_v4() if r.random() < 0.75 else g.internet.ip_v6(),
        "lat": lambda g, r: round(g.address.latitude(), r.choice((4, 5, 6))),
        "lon": lambda g, r: round(g.address.longitude(), r.choice((4, 5, 6))),
        "sku": lambda g, r: g.random.generate_string_by_mask(r.choice(("SKU-#####", "@@-####-@", "#####-@@")),
                                                             "@", "#"),
        "file_hash": lambda g, r: g.cryptographic.hash(),
        "network": lambda g, r: _network(g.internet.ip_v4(), r),
        "firmware": lambda g, r: g.development.version() + ("" if r.random() < 0.8 else f"-rc{r.randint(1, 9)}"),
        "bytes_sent": lambda g, r: g.numeric.integer_number(0, 10**7),
        "event_status": lambda g, r: g.choice(OUTCOME),
    }


def _source(split: Split, locale: str, seed: int) -> tuple[Any, dict[str, Make]]:
    """The split's generator for one locale: Faker for tuning, Mimesis for held-out, nothing else."""
    if split.generator == "faker":
        from faker import Faker

        fake = Faker(locale)
        fake.seed_instance(seed)
        return fake, _faker_makers(locale)
    from mimesis import Generic
    from mimesis.locales import Locale

    return Generic(Locale(locale), seed=seed), _mimesis_makers(locale)


def _order(specs: list[Spec], r: random.Random) -> list[Spec]:
    """Blocks shuffled, each kept whole; an event table's surrogate key stays first, as schemas put it."""
    blocks: dict[str, list[Spec]] = {}
    for s in specs:
        blocks.setdefault(s.block, []).append(s)
    first = [b for b in blocks if b == "event_id"]
    rest = [b for b in blocks if b != "event_id"]
    r.shuffle(rest)
    return [s for b in first + rest for s in blocks[b]]


def tables(split: Split, rows: int, locales: int | None = None) -> list[Table]:
    """The tables of ``split`` (of its first ``locales`` locales), ``rows`` rows each. Deterministic for
    the split's seed."""
    out: list[Table] = []
    for i, locale in enumerate(split.locales[:locales]):
        seed = split.seed * 100 + i
        source, makers = _source(split, locale, seed)
        r = random.Random(seed)
        for table in TABLES:
            specs = _order([s for s in COLUMNS if s.table == table], r)
            columns = [(s, r.choice(s.names)) for s in specs]
            values: dict[str, list[Any]] = {}
            for s in specs:
                if s.key == "event_id":
                    start = r.randint(1, 10**6)
                    values[s.key] = list(range(start, start + rows))
                    continue
                make = makers[s.key]
                values[s.key] = [None if s.label and r.random() < _NULLABLE_SHARE else make(source, r)
                                 for _ in range(rows)]
            out.append(Table(f"{table}_{locale.lower()}", locale, split, columns, values))
    return out


def text(value: Any) -> str | None:
    """A value as a CSV export spells it: ISO dates and times, JSON-style lists, None for NULL."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def arrow_table(t: Table, style: str, typed: bool) -> pa.Table:
    """The table in Arrow: native types for Parquet (``typed``), all text for CSV."""
    arrays = [pa.array(t.values[s.key], type=s.arrow) if typed else pa.array([text(v) for v in t.values[s.key]],
                                                                            type=pa.string())
              for s, _ in t.columns]
    return pa.table(arrays, names=t.names(style))
