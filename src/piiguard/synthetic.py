"""Synthetic, labelled customer data: the demo's database and the benchmark's table.

One generator for both. Each column has a natural name, an obfuscated one (``c07``) so results can be
shown not to ride on names, and its true label (a PII type, or None for decoys that must not be
flagged: counts, SKUs, firmware versions, event times, booleans, enums, product names, file hashes,
product descriptions, install dates, prices). Every value is made up by Faker and ``random`` —
no real person's data.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from faker import Faker

Make = Callable[[Faker, random.Random], object]


@dataclass(frozen=True)
class Column:
    name: str
    label: str | None
    make: Make


_B64 = string.ascii_letters + string.digits
_CRYPT = "./" + _B64
_DNI = "TRWAGMYFPDXBNJZSQVHLCKE"


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _oauth(f: Faker, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        payload = {"sub": str(uuid.UUID(int=rng.getrandbits(128))), "aud": "alexa", "exp": rng.randint(1, 2**31)}
        return f"{_b64url({'alg': 'RS256', 'typ': 'JWT'})}.{_b64url(payload)}.{_chars(rng, _B64 + '-_', 43)}"
    if kind < 0.7:
        return "Atzr|IwEBI" + _chars(rng, _B64, 80)
    return "ya29.a0Af" + _chars(rng, _B64 + "-_", 100)


def _api_key(f: Faker, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return "sk_live_" + _chars(rng, _B64, 24)
    if kind < 0.5:
        return "AKIA" + _chars(rng, string.ascii_uppercase + string.digits, 16)
    return _chars(rng, _B64, 32)


def _password_hash(f: Faker, rng: random.Random) -> str:
    if rng.random() < 0.6:
        return "$2b$12$" + _chars(rng, _CRYPT, 53)
    return f"$argon2id$v=19$m=65536,t=3,p=4${_chars(rng, _B64, 22)}${_chars(rng, _B64, 43)}"


def _national_id(f: Faker, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        n = rng.randint(10_000_000, 99_999_999)
        return f"{n}{_DNI[n % 23]}"
    prefix = rng.choice("ABCEHJKLMNPRSTWXYZ") + rng.choice("ABCEHJKLMNPRSTWXYZ")
    return f"{prefix}{rng.randint(0, 999999):06d}{rng.choice('ABCD')}"


def _mac(f: Faker, rng: random.Random) -> str:
    return ":".join(f"{rng.randint(0, 255):02x}" for _ in range(6))


VENDOR_SSIDS = ("NETGEAR{n2}", "TP-Link_{h4}", "Linksys{n5}", "xfinitywifi", "ATT{a4}", "HUAWEI-{A4}",
                "SKY{A5}", "BTHub6-{A4}", "Vodafone-{A4}", "FRITZ!Box 7590 {AA}", "MySpectrumWiFi{h2}-5G",
                "dlink-{A4}", "Verizon_{A6}")
PERSONAL_SSIDS = ("The {last} Family", "{first}'s WiFi", "{last}Home 5G", "{last}_Guest", "{first} iPhone",
                  "{last} Network", "Casa {last}", "{first}{last}_2.4G", "Pretty Fly for a WiFi",
                  "FBI Surveillance Van {n2}", "{last}Net", "Bill Wi the Science Fi", "Hide Yo Kids {n2}")


def _ssid(f: Faker, rng: random.Random) -> str:
    tmpl = rng.choice(VENDOR_SSIDS if rng.random() < 0.5 else PERSONAL_SSIDS)
    return tmpl.format(n2=rng.randint(10, 99), n5=rng.randint(10000, 99999), h2=_chars(rng, "0123456789abcdef", 2),
                       h4=_chars(rng, "0123456789ABCDEF", 4), a4=_chars(rng, _B64, 4),
                       A4=_chars(rng, string.ascii_uppercase + string.digits, 4),
                       A5=_chars(rng, string.ascii_uppercase + string.digits, 5),
                       A6=_chars(rng, string.ascii_uppercase + string.digits, 6),
                       AA=_chars(rng, string.ascii_uppercase, 2), last=f.last_name(), first=f.first_name())


def _notes(f: Faker, rng: random.Random) -> str:
    plain = ["Customer asked about the night vision setting.", "Replaced the camera mount under warranty.",
             "Firmware update resolved the streaming issue.", "Asked how to share clips with family.",
             "Subscription renewed after the trial ended.", "Reported choppy video on the doorbell feed."]
    with_pii = [f"Called back on {f.phone_number()} about a missing delivery.",
                f"Please send the replacement to {f.street_address()}.",
                f"Customer wants receipts at {f.email()} from now on.",
                f"Camera at {f.ipv4_public()} keeps dropping off the network.",
                f"Refund issued to card {f.credit_card_number()} per request.",
                f"Verified identity with SSN {f.ssn()} before the reset."]
    return rng.choice(with_pii if rng.random() < 0.4 else plain)


PRODUCTS = ("Indoor Cam 2K", "Outdoor Cam Pro", "Video Doorbell", "Floodlight Cam", "Baby Monitor", "Chime",
            "Smart Lock", "Motion Sensor", "Base Station", "Solar Panel", "Spotlight Cam", "Pet Cam")
DESCRIPTIONS = ("Weatherproof camera with color night vision and two-way audio.",
                "Battery doorbell with head-to-toe view and package detection.",
                "Plug-in chime that rings when someone presses the doorbell.",
                "Motion sensor with a wide field of view for hallways.",
                "Solar panel that keeps outdoor cameras charged all year.",
                "Indoor camera with privacy shutter and person detection.")
_FIRMWARE_HASHES = tuple(f"{random.Random(i).getrandbits(256):064x}" for i in range(40))

COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "customer-identifier", lambda f, r: str(uuid.UUID(int=r.getrandbits(128), version=4))),
    Column("email", "email", lambda f, r: f.email()),
    Column("full_name", "person-name", lambda f, r: f.name()),
    Column("first_name", "first-name", lambda f, r: f.first_name()),
    Column("last_name", "last-name", lambda f, r: f.last_name()),
    Column("nickname", "username", lambda f, r: f.user_name()),
    Column("phone", "phone", lambda f, r: f.phone_number()),
    Column("street_address", "street-address", lambda f, r: f.street_address()),
    Column("postal_code", "postal-code", lambda f, r: f.postcode()),
    Column("city", "city", lambda f, r: f.city()),
    Column("birth_date", "birth-date", lambda f, r: f.date_of_birth(minimum_age=16, maximum_age=90).isoformat()),
    Column("gender", "gender", lambda f, r: r.choice(("female", "male", "non-binary", "female", "male"))),
    Column("last_login_ip", "ip-address", lambda f, r: f.ipv4_public() if r.random() < 0.8 else f.ipv6()),
    Column("device_mac", "mac-address", _mac),
    Column("wifi_ssid", "wifi-ssid", _ssid),
    Column("home_location", "geo-coordinates",
           lambda f, r: f"{r.uniform(25, 49):.6f},{r.uniform(-124, -67):.6f}"),
    Column("device_serial", "device-serial",
           lambda f, r: "G" + _chars(r, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", 15)),
    Column("avatar_url", "personal-media-url",
           lambda f, r: f"https://cdn.example-cams.com/avatars/{uuid.UUID(int=r.getrandbits(128))}.jpg"),
    Column("alexa_refresh_token", "oauth-token", _oauth),
    Column("api_key", "api-key", _api_key),
    Column("password_hash", "password-hash", _password_hash),
    Column("card_number", "credit-card", lambda f, r: f.credit_card_number()),
    Column("iban", "iban", lambda f, r: f.iban()),
    Column("ssn", "us-ssn", lambda f, r: f"{r.choice([r.randint(1, 665), r.randint(667, 899)]):03d}-"
                                         f"{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"),
    Column("national_id", "national-id", _national_id),
    Column("support_notes", "free-text-pii", _notes),
    Column("login_count", None, lambda f, r: r.randint(0, 500)),
    Column("sku", None, lambda f, r: f"SKU-{r.randint(10000, 10040)}"),
    Column("firmware_version", None, lambda f, r: f"{r.randint(1, 4)}.{r.randint(0, 20)}.{r.randint(0, 9)}"),
    Column("last_event_at", None, lambda f, r: (datetime(2026, 11, 1) - timedelta(seconds=r.randint(0, 9**7)))
           .isoformat(timespec="seconds")),
    Column("is_active", None, lambda f, r: r.random() < 0.8),
    Column("plan", None, lambda f, r: r.choice(("free", "plus", "pro", "business"))),
    Column("product_name", None, lambda f, r: r.choice(PRODUCTS)),
    Column("firmware_sha256", None, lambda f, r: r.choice(_FIRMWARE_HASHES)),
    Column("clip_sha256", None, lambda f, r: f"{r.getrandbits(256):064x}"),
    Column("product_description", None, lambda f, r: r.choice(DESCRIPTIONS)),
    Column("battery_pct", None, lambda f, r: round(r.uniform(0, 100), 1)),
    Column("install_date", None, lambda f, r: (date(2026, 11, 1) - timedelta(days=r.randint(0, 1000))).isoformat()),
    Column("price_usd", None, lambda f, r: round(r.uniform(19, 399), 2)),
    Column("temperature_c", None, lambda f, r: round(r.uniform(-10, 45), 1)),
)


def obfuscated(i: int) -> str:
    return f"c{i + 1:02d}"


def rows(n: int, seed: int = 7, columns: tuple[Column, ...] = COLUMNS,
         locales: tuple[str, ...] = ("en_US",)) -> dict[str, list[object]]:
    """``n`` rows as column lists, keyed by natural column name. Deterministic for a seed.

    ``locales`` other than en_US give names, places, phones and addresses of other countries (Faker
    picks one of them per value): the benchmark uses them to show what the US-centred word lists miss.
    """
    fake = Faker(list(locales))
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out: dict[str, list[object]] = {c.name: [] for c in columns}
    for _ in range(n):
        for c in columns:
            out[c.name].append(c.make(fake, rng))
    return out
