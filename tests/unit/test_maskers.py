"""Maskers run in DuckDB exactly as a copy runs them (BatchMasker), without a server."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest

from piiguard import plugins
from piiguard.errors import ConfigError
from piiguard.masking.maskers import maskers
from piiguard.masking.pipeline import BatchMasker, FieldRule, mask_rules

plugins.load()
RUNNABLE = sorted(set(maskers.names()) - {"drop"})
KEY = b"unit-test-key-0123456789"
VALUES = ["ann@example.com", "", None, "+44 20 7946 0123", "203.0.113.77", "2001:db8:1:2::5",
          "00-1A-2B-3C-4D-5E", "born 1984-03-02", "51.507351,-0.127758"]


def masked(name: str, values: list[str | None], key: bytes = KEY, **options: object) -> list[str | None]:
    rule = FieldRule("v", None, name, options, "test")
    masker = BatchMasker([rule], key, None, threads=1)
    try:
        table, _ = masker(pa.RecordBatch.from_pydict({"v": pa.array(values, pa.string())}))
    finally:
        masker.close()
    return table.column("v").to_pylist()


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_masker_runs_and_keeps_nulls(name: str) -> None:
    out = masked(name, VALUES)
    assert len(out) == len(VALUES) and out[2] is None


def test_pseudonym_is_hmac_sha256_and_depends_on_the_key() -> None:
    (out,) = masked("pseudonym", ["ann@example.com"], length=64)
    assert out == hmac.new(KEY, b"ann@example.com", hashlib.sha256).hexdigest()
    assert masked("pseudonym", ["ann@example.com"], key=b"another-key-0123456789") != [out[:20]]
    (shaped,) = masked("pseudonym", ["ann@example.com"], shape="email")
    assert shaped.startswith("u") and shaped.endswith("@pseudonym.invalid")


def test_generalisations() -> None:
    assert masked("ip-prefix", ["203.0.113.77", "2001:db8:1:2::5"]) == ["203.0.113.0/24", "2001:db8:1::/48"]
    # IPv4 clients in an IPv6 column (MariaDB INET6): their /24, not a /48 of ::ffff
    assert masked("ip-prefix", ["::ffff:203.0.113.77", "::FFFF:198.51.100.9"]) == ["203.0.113.0/24", "198.51.100.0/24"]
    assert masked("keep-prefix", ["+44 20 7946 0123"]) == ["+44 2X XXXX XXXX"]
    assert masked("year", ["born 1984-03-02", "n/a"]) == ["1984", None]
    assert masked("round", ["51.507351,-0.127758"]) == ["51.50,-0.12"]
    (mac,) = masked("mac-vendor", ["00-1A-2B-3C-4D-5E"])
    assert mac.startswith("00:1a:2b:") and len(mac) == 17 and mac != "00:1a:2b:3c:4d:5e"
    first = masked("fake-name", ["Ann", "Bob", "Ann"], part="first")
    assert first[0] == first[2] and first[0] not in ("Ann", None)


def test_redact_text_keeps_words_and_removes_spans() -> None:
    (out,) = masked("redact-text", ["Mail ann@example.com or call +1 (415) 555-0100 x12 from 203.0.113.7"])
    assert out == "Mail <email> or call <phone> from <ip>"


def test_options_are_typed() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        maskers.get("pseudonym").parse({"lenght": 10}, "masking.s.t.f")
    with pytest.raises(ConfigError, match="length must be between"):
        maskers.get("pseudonym").parse({"length": 4}, "masking.s.t.f")


def test_rules_deny_by_default_and_never_copy_secrets() -> None:
    types = {"id": "customer-identifier", "token": "oauth-token", "plan": None, "profile": None,
             "profile.email": "email"}
    rules = {r.field: r for r in mask_rules(["id", "token", "plan", "profile"], types, {}, "masking.s.t")}
    assert rules["id"].masker == "pseudonym"
    assert rules["token"].masker == "drop" and "never copied" in rules["token"].reason
    assert rules["plan"].masker == "drop" and "denied by default" in rules["plan"].reason
    assert rules["profile"].masker == "drop" and "document holding email" in rules["profile"].reason
    allowed = {r.field: r for r in mask_rules(["plan"], types, {"plan": "keep"}, "masking.s.t")}
    assert allowed["plan"].masker == "keep"
    with pytest.raises(ConfigError, match="no such column"):
        mask_rules(["plan"], types, {"nope": "keep"}, "masking.s.t")
