"""Detection tables: for every PII type, columns that must be flagged as it and columns that must not.

Each case is a whole column (a field name and its values) since decisions are made per column. The
obfuscated name ``c7`` shows the values alone carry the decision.
"""

from __future__ import annotations

import random

import pytest
from helpers import classify

R = random.Random(5)


def rep(values: list[str], n: int = 40) -> list[str]:
    return [values[i % len(values)] for i in range(n)]


def uniq(make, n: int = 40) -> list[str]:  # type: ignore[no-untyped-def]
    return [make(i) for i in range(n)]


POSITIVE: dict[str, list[tuple[str, list[str]]]] = {
    "email": [("c7", uniq(lambda i: f"user{i}.name@mail{i % 3}.example.com"))],
    "phone": [("c7", uniq(lambda i: f"+1-415-555-{1000 + i:04d}")), ("tel", uniq(lambda i: f"(212) 555-{2000 + i}")),
              ("c8", uniq(lambda i: [f"+49 (0) 7601 89{i:04d}", f"06 12 22 {i:02d} 83", f"06{i:08d}"][i % 3]))],
    "ip-address": [("c7", uniq(lambda i: f"203.0.113.{i + 1}")), ("c8", uniq(lambda i: f"2001:db8::{i + 1:x}"))],
    "mac-address": [("c7", uniq(lambda i: f"a4:83:e7:{i:02x}:1b:2c")), ("bssid", uniq(lambda i: f"a483e7{i:02x}1b2c"))],
    "credit-card": [("c7", rep(["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004"]))],
    "iban": [("c7", rep(["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "FR1420041010050500013M02606"]))],
    "us-ssn": [("c7", uniq(lambda i: f"{123 + i:03d}-45-{6789 + i}")), ("ssn", uniq(lambda i: f"{234 + i:03d}12{3456 + i}"))],
    "national-id": [("c7", rep(["12345678Z", "AB123456C", "RSSMRA85T10A562S", "X1234567L"]))],
    "street-address": [("c7", uniq(lambda i: f"{100 + i} {['Main', 'Oak', 'Elm'][i % 3]} Street Apt. {i}")),
                       ("c8", uniq(lambda i: [f"{i}, avenue Carlier", f"Ullrichring {i}/43", f"Flat {i}b\nHoward Lane",
                                              f"Hauptstraße {i}"][i % 4]))],
    "postal-code": [("c7", uniq(lambda i: f"{10000 + i * 7}")), ("zip", uniq(lambda i: f"{1000 + i}"))],
    "city": [("c7", rep(["Boston", "North Jamesville", "Port Heather", "Lake Susan", "Springfield", "Denver",
                         "Uffenheim", "Marseille", "Smithton", "East Allen", "Davebury", "Lauramouth"]))],
    "first-name": [("c7", rep(["James", "Mary", "Robert", "Patricia", "Jennifer", "Michael", "Linda", "Claire",
                               "Sergio", "Emily", "Noah", "Olivia"]))],
    "last-name": [("c7", rep(["Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Wilson",
                              "Morel", "Baum", "Marshall", "Bevan-Smith"]))],
    "person-name": [("c7", rep(["James Smith", "Mary Johnson", "Dr. Robert Brown", "Garcia, Linda", "Ann Lee Jr.",
                                "Dorothée Wagner", "Abdul Bevan-Smith", "Naomi Parkes", "Claire Morel",
                                "Mrs Deborah Perry"]))],
    "username": [("c7", uniq(lambda i: ["jsmith", "mary.j", "rbrown", "lgarcia_", "dmiller"][i % 5] + str(i)))],
    "birth-date": [("c7", uniq(lambda i: f"{1940 + i}-0{1 + i % 9}-1{i % 9}"))],
    "gender": [("c7", rep(["female", "male", "non-binary", "F", "M"]))],
    "geo-coordinates": [("c7", uniq(lambda i: f"{37.7 + i / 100:.5f},{-122.4 - i / 100:.5f}")),
                        ("latitude", uniq(lambda i: f"{37.7 + i / 1000:.6f}"))],
    "wifi-ssid": [("c7", rep(["NETGEAR42", "TP-Link_4A2B", "Smith Family WiFi", "xfinitywifi", "Casa Lopez",
                              "Home_5G", "Linksys01234"]))],
    "device-serial": [("c7", uniq(lambda i: f"G0{i:02d}KX7{R.randint(1000, 9999)}Q"))],
    "personal-media-url": [("c7", uniq(lambda i: f"https://cdn.example.com/avatars/u{i}.jpg")),
                           ("c8", uniq(lambda i: f"https://img.example.com/profile/{i}/large"))],
    "oauth-token": [("c7", uniq(lambda i: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + f"sig{i}abcDEF123")),
                    ("c8", uniq(lambda i: f"Atzr|IwEBIA{R.getrandbits(200):x}Qz{i}"))],
    "api-key": [("c7", uniq(lambda i: f"sk_live_{R.getrandbits(120):x}Ab{i}")),
                ("c8", uniq(lambda i: "".join(R.choices("abcdefghijkLMNOPQRS0123456789", k=32))))],
    "password-hash": [("c7", uniq(lambda i: "$2b$12$" + "".join(R.choices("./ABCabc0123456789xyzXYZ", k=53)))),
                      ("password", uniq(lambda i: f"{R.getrandbits(128):032x}"))],
    "customer-identifier": [("customer_id", uniq(lambda i: str(1000 + i))),
                            ("user_uuid", uniq(lambda i: f"6513270e-269e-4d37-b2a7-{i:012x}"))],
    "free-text-pii": [("c7", rep(["Call me back at +1 415 555 0199 please.", "Ship it to the office please today.",
                                  "Mail receipts to jane.doe@example.com from now on.", "Works fine after update now."]))],
}

NEGATIVE: dict[str, list[tuple[str, list[str]]]] = {
    "email": [("c7", rep(["user at example dot com", "@handle", "name@"]))],
    "phone": [("c7", uniq(lambda i: f"2024-01-{1 + i % 28:02d}")), ("c8", uniq(lambda i: f"{i}.{i}5"))],
    "ip-address": [("c7", rep(["1.2.3", "999.1.1.1", "10.0.0"])), ("version", rep(["2.14.3", "1.0.9"]))],
    "mac-address": [("c7", rep(["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"])), ("c8", uniq(lambda i: f"a483e7{i:02x}1b2c"))],
    "credit-card": [("c7", uniq(lambda i: f"4111 1111 1111 {1112 + i}"))],
    "iban": [("c7", rep(["DE89370400440532013001", "GB00 WEST 1234 5698 7654 32"]))],
    "us-ssn": [("c7", rep(["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567"])),
               ("c8", uniq(lambda i: f"{234 + i:03d}12{3456 + i}"))],
    "national-id": [("c7", rep(["12345678A", "QQ123456Z", "RSSMRA85T10A562X"]))],
    "street-address": [("c7", rep(["Smart Camera 2 Pro", "Floodlight Cam", "Version 3 release"]))],
    "postal-code": [("c7", uniq(lambda i: str(i))), ("sku", uniq(lambda i: f"SKU-{10000 + i}"))],
    "city": [("c7", rep(["active", "pending", "closed"])), ("c8", rep(["Smart Lock", "Video Doorbell", "Chime"]))],
    "first-name": [("c7", rep(["Smith", "Johnson", "Garcia", "Nguyen", "Rodriguez", "Martinez", "Hernandez"]))],
    "last-name": [("c7", rep(["Indoor Cam 2K", "Solar Panel", "Chime Pro", "Base Station"])),
                  ("colour", rep(["Brown", "Green", "White", "Black", "Gray", "Silver"]))],
    "person-name": [("c7", rep(["Indoor Cam 2K", "Solar Panel", "Video Doorbell", "Base Station"]))],
    "username": [("status", rep(["active", "inactive", "pending", "closed"])), ("plan", rep(["free", "pro"])),
                 ("c7", uniq(lambda i: ["Leonhard", "Wilfriede", "Emily", "Claire"][i % 4] + "abcdefghij"[i % 10]))],
    "birth-date": [("c7", uniq(lambda i: f"2025-0{1 + i % 9}-1{i % 9}")), ("c8", uniq(lambda i: f"2026-11-0{1 + i % 9}T12:00:{i % 60:02d}"))],
    "gender": [("c7", rep(["S", "M", "L", "XL"])), ("c8", rep(["true", "false"]))],
    "geo-coordinates": [("c7", uniq(lambda i: f"{19 + i}.99")), ("price", uniq(lambda i: f"{19 + i}.99"))],
    "wifi-ssid": [("c7", rep(["SKU-10001", "Indoor Cam 2K", "pending"]))],
    "device-serial": [("c7", rep(["SKU-10001", "SKU-10002", "SKU-10003"])), ("c8", uniq(lambda i: f"{i}.{i}.1"))],
    "personal-media-url": [("c7", rep(["https://shop.example.com/products/cam.jpg", "https://shop.example.com/p/chime.png"])),
                           ("c8", uniq(lambda i: f"https://docs.example.com/guide/{i}"))],
    "oauth-token": [("c7", uniq(lambda i: f"{R.getrandbits(256):064x}"))],
    "api-key": [("c7", uniq(lambda i: f"{R.getrandbits(256):064x}")), ("c8", uniq(lambda i: f"6513270e-269e-4d37-b2a7-{i:012x}"))],
    "password-hash": [("file_sha256", uniq(lambda i: f"{R.getrandbits(256):064x}"))],
    "customer-identifier": [("login_count", rep(["1", "2", "3", "2", "5"])), ("c7", uniq(lambda i: str(1000 + i)))],
    "free-text-pii": [("description", rep(["Weatherproof camera with color night vision.", "Battery doorbell with wide view."]))],
}


def _cases(table: dict[str, list[tuple[str, list[str]]]]) -> list[object]:
    return [pytest.param(t, f, v, id=f"{t}-{f}") for t, cases in table.items() for f, v in cases]


@pytest.mark.parametrize(("pii_type", "field", "values"), _cases(POSITIVE))
def test_flags(pii_type: str, field: str, values: list[str]) -> None:
    got = classify(field, values)
    assert got.pii_type == pii_type, got.reason
    assert got.confidence >= 0.5


@pytest.mark.parametrize(("pii_type", "field", "values"), _cases(NEGATIVE))
def test_does_not_flag(pii_type: str, field: str, values: list[str]) -> None:
    assert classify(field, values).pii_type != pii_type


def test_nulls_and_empty_are_not_pii() -> None:
    got = classify("email", [None, "", "  "] * 10)
    assert got.pii_type is None and got.sampled == 0 and got.nulls == 30
