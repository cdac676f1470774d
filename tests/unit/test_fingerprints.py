"""Copy fingerprints without a server: the key, normalisation, the Bloom set and its false matches."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.discovery import fingerprints as fp
from piiguard.discovery.bloom import TARGET_RATE, Bloom, sized, words
from piiguard.discovery.settings import DiscoverySettings
from piiguard.errors import ConfigError

KEY = bytes(range(32))
E, K = fp.Kind.EMAIL, fp.Kind.KEY

# (id, kind, a, b, same): whether a source value a and a copy's value b are the same person
CASES = [
    ("email-case", E, "Anna.Meier@Example.COM", "anna.meier@example.com", True),
    ("email-space", E, " anna@example.com\t", "anna@example.com", True),
    ("email-nfkc-fullwidth", E, "ａｎｎａ@example.com", "anna@example.com", True),
    ("email-casefold-sharp-s", E, "STRASSE@example.de", "straße@example.de", True),
    ("email-subaddress-kept", E, "anna+shop@example.com", "anna@example.com", False),
    ("email-dots-kept", E, "a.nna@gmail.com", "anna@gmail.com", False),
    ("email-other-domain", E, "anna@example.com", "anna@example.org", False),
    ("key-leading-zeros", K, "00042", "42", True),
    ("key-plus-sign", K, "+42", "42", True),
    ("key-decimal-zero", K, "42.0", "42", True),
    ("key-spaces", K, " 42 ", "42", True),
    ("key-other-int", K, "42", "420", False),
    ("key-uuid-case", K, "0E2B1B1C-1234-4A2B-8C3D-00000000000A", "0e2b1b1c-1234-4a2b-8c3d-00000000000a", True),
    ("key-uuid-braces", K, "{0e2b1b1c-1234-4a2b-8c3d-00000000000a}", "0e2b1b1c12344a2b8c3d00000000000a", True),
    ("key-uuid-urn", K, "urn:uuid:0e2b1b1c-1234-4a2b-8c3d-00000000000a", "0e2b1b1c-1234-4a2b-8c3d-00000000000a",
     True),
    ("key-uuid-other", K, "0e2b1b1c-1234-4a2b-8c3d-00000000000a", "0e2b1b1c-1234-4a2b-8c3d-00000000000b", False),
    ("key-text-case-kept", K, "CUST-A1", "cust-a1", False),
    ("key-not-decimal", K, "42.5", "42", False),
]


@pytest.mark.parametrize(("kind", "a", "b", "same"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_normalisation(kind: fp.Kind, a: str, b: str, same: bool) -> None:
    da, db = fp.digest(KEY, a, kind), fp.digest(KEY, b, kind)
    assert da is not None and db is not None
    assert (da == db) is same


@pytest.mark.parametrize("value", ["", "   ", "no-at-sign", "@example.com", "anna@", "a b@example.com",
                                   "x" * 400 + "@example.com"], ids=["empty", "blank", "no-at", "no-local",
                                                                      "no-domain", "space", "too-long"])
def test_not_an_email_gives_no_digest(value: str) -> None:
    assert fp.digest(KEY, value, E) is None


def test_kinds_are_separate_and_keyed() -> None:
    assert fp.digest(KEY, "a@b.co", E) != fp.digest(KEY, "a@b.co", K)
    assert fp.digest(KEY, "42", K) != fp.digest(bytes(32), "42", K)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=300, unique=True))
def test_bloom_has_no_false_negatives(values: list[str]) -> None:
    digests = [d for v in values if (d := fp.digest(KEY, v, K)) is not None]
    if not digests:
        return
    h1, h2 = words(b"".join(digests))
    bloom = Bloom.empty(len(digests))
    bloom.add(h1, h2)
    assert bloom.contains(h1, h2).all()
    again = Bloom.from_bytes(bloom.to_bytes(), bloom.hashes)
    assert again.contains(h1, h2).all()


def test_false_match_rate_within_target_on_a_million_values() -> None:
    added = np.frombuffer(secrets.token_bytes(32 * 100_000), dtype=np.uint8)
    others = np.frombuffer(secrets.token_bytes(32 * 1_000_000), dtype=np.uint8)
    bloom = Bloom.empty(125_000)  # as build sizes it: people × 1.25 headroom
    bloom.add(*words(added))
    measured = float(bloom.contains(*words(others)).mean())
    assert measured <= TARGET_RATE  # 1e-4 target at full capacity; ~1.2e-5 expected at 80 % of it
    assert bloom.false_rate() <= TARGET_RATE
    # the estimate from the bits predicts the measured rate (within sampling noise of ~12 hits in 1M)
    assert abs(measured - bloom.false_rate()) < 1e-5


def test_sizing_at_ten_million() -> None:
    bits, hashes = sized(10_000_000)
    assert 190_000_000 < bits < 193_000_000 and hashes == 13  # 24 MB for 10M people at 1e-4


def test_binomial_bound() -> None:
    assert fp.binomial_tail(0, 1000, 1e-4) == 1.0
    assert fp.binomial_tail(1, 1000, 1e-4) == pytest.approx(1 - (1 - 1e-4) ** 1000, rel=1e-6)
    assert fp.binomial_tail(6, 100_000, 1e-5) > fp.ALPHA > fp.binomial_tail(20, 100_000, 1e-5)


# The key ---------------------------------------------------------------------------------------------

def test_key_from_env_hex_base64_and_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = os.urandom(32)
    for text, want in ((raw.hex(), raw), (base64.b64encode(raw).decode(), raw),
                       ("a long passphrase of text", b"a long passphrase of text")):
        monkeypatch.setenv("FP_KEY", text)
        assert fp.load_key(DiscoverySettings(key_env="FP_KEY")) == want
    assert len(fp.key_id(raw)) == 16 and raw.hex()[:16] not in fp.key_id(raw)


@pytest.mark.parametrize(("settings_", "env", "setting", "needle"), [
    (DiscoverySettings(), None, "discovery.key_env", "no fingerprint key is configured"),
    (DiscoverySettings(key_env="FP_UNSET_KEY"), None, "discovery.key_env", "FP_UNSET_KEY is not set"),
    (DiscoverySettings(key_env="FP_KEY"), "short-key", "discovery.key_env", "holds 9 bytes"),
    (DiscoverySettings(key_env="FP_KEY"), base64.b64encode(b"x" * 8).decode(), "discovery.key_env", "bytes"),
], ids=["missing-setting", "unset-env", "short-raw", "short-base64"])
def test_key_errors_name_the_setting(monkeypatch: pytest.MonkeyPatch, settings_: DiscoverySettings,
                                     env: str | None, setting: str, needle: str) -> None:
    monkeypatch.delenv("FP_UNSET_KEY", raising=False)
    if env is not None:
        monkeypatch.setenv("FP_KEY", env)
    with pytest.raises(ConfigError) as info:
        fp.load_key(settings_)
    assert info.value.message.startswith(setting) and needle in info.value.message
    assert "head -c 32 /dev/urandom | base64" in (info.value.hint or "") or "chmod" in (info.value.hint or "")
    if env:
        assert env not in str(info.value)


@given(st.binary(min_size=0, max_size=15))
def test_every_short_key_is_refused(key: bytes) -> None:
    os.environ["FP_SHORT_KEY"] = base64.b64encode(key).decode() if key else ""
    try:
        with pytest.raises(ConfigError):
            fp.load_key(DiscoverySettings(key_env="FP_SHORT_KEY"))
    finally:
        del os.environ["FP_SHORT_KEY"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660], ids=["group-read", "others-read", "group-write"])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "fp.key"
    path.write_text(os.urandom(32).hex())
    path.chmod(mode)
    with pytest.raises(ConfigError) as info:
        fp.load_key(DiscoverySettings(key_file=str(path)))
    assert info.value.message.startswith("discovery.key_file") and "too open" in info.value.message
    path.chmod(0o600)
    assert len(fp.load_key(DiscoverySettings(key_file=str(path)))) == 32
    with pytest.raises(ConfigError, match=r"discovery\.key_file: cannot read"):
        fp.load_key(DiscoverySettings(key_file=str(tmp_path / "missing.key")))


def test_catalog_holds_no_key_and_no_value(tmp_path: Path) -> None:
    key = os.urandom(32)
    emails = [f"person{i}.seeded@example.net" for i in range(2000)]
    digests = [fp.digest(key, e, E) for e in emails]
    h1, h2 = words(b"".join(d for d in digests if d))
    bloom = Bloom.empty(len(emails))
    bloom.add(h1, h2)
    path = tmp_path / "catalog.db"
    with Catalog(path) as cat:
        cat.save_fingerprint({"store": "prod", "collection": "customers", "field": "email", "kind": "email",
                              "key_id": fp.key_id(key), "people": 2000, "capacity": 2000, "hashes": bloom.hashes,
                              "built": None, "bits": bloom.to_bytes()})
        src = fp.sources(cat, key)[0]
        assert src.bloom.contains(h1, h2).all()
        with pytest.raises(ConfigError, match="built with another key"):
            fp.sources(cat, os.urandom(32))
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (key, key.hex().encode(), base64.b64encode(key), b"seeded@example.net",
                   *(d for d in digests[:50] if d), *(d[:8] for d in digests[:50] if d)):
        assert secret not in blob


@given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=0, max_value=6))
def test_any_integer_matches_its_padded_text(n: int, zeros: int) -> None:
    assert fp.digest(KEY, "0" * zeros + str(n), K) == fp.digest(KEY, f" {n} ", K)
    assert fp.digest(KEY, str(n), K) != fp.digest(KEY, str(n + 1), K)


@given(st.from_regex(r"[a-z0-9._%+-]{1,20}@[a-z0-9-]{1,12}\.[a-z]{2,6}", fullmatch=True))
def test_any_email_matches_its_case_and_space_variants(email: str) -> None:
    assert fp.digest(KEY, f"  {email.upper()}\n", E) == fp.digest(KEY, email, E)
    assert fp.digest(KEY, email, E) != fp.digest(KEY, "x" + email, E)


@given(st.text(max_size=60))
def test_hostile_text_never_raises(value: str) -> None:
    for kind in fp.Kind:
        out = fp.digest(KEY, value, kind)
        assert out is None or len(out) == 32


def _sqlite_copy(path: Path, emails: list[str]) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE members (contact TEXT, n INTEGER)")
        db.executemany("INSERT INTO members VALUES (?, ?)", [(e, i) for i, e in enumerate(emails)])


def test_false_matches_of_a_crowded_set_make_no_link_but_real_ones_do(tmp_path: Path) -> None:
    from piiguard.model import Store

    key = os.urandom(32)
    source = [f"src{i}.person@example.net" for i in range(7_000)]
    h1, h2 = words(b"".join(d for e in source if (d := fp.digest(key, e, E))))
    bloom = Bloom.empty(4_000)  # sized for 4,000, holding 7,000: a false-match rate near 1 %
    bloom.add(h1, h2)
    assert 0.005 < bloom.false_rate() < 0.2
    catalog = tmp_path / "catalog.db"
    with Catalog(catalog) as cat:
        cat.save_fingerprint({"store": "prod", "collection": "customers", "field": "email", "kind": "email",
                              "key_id": fp.key_id(key), "people": 7_000, "capacity": 4_000,
                              "hashes": bloom.hashes, "built": None, "bits": bloom.to_bytes()})
        strangers = [f"other{i}.person@example.org" for i in range(5_000)]
        _sqlite_copy(tmp_path / "none.db", strangers)
        assert fp.match(Store("none", "sqlite", path=str(tmp_path / "none.db")), cat, key) == []
        _sqlite_copy(tmp_path / "some.db", strangers[:4_000] + source[:1_000])
        links = fp.match(Store("some", "sqlite", path=str(tmp_path / "some.db")), cat, key)
    assert [(x.fields, x.source_fields) for x in links] == [(("contact",), ("email",))]
    assert abs(links[0].people - 1_000) <= 100  # the expected false matches are taken off


def test_build_refuses_an_unknown_or_unscanned_store(tmp_path: Path) -> None:
    from piiguard.config import parse_config
    from piiguard.errors import UsageError

    _sqlite_copy(tmp_path / "shop.db", ["anna@example.com"])
    cfg = parse_config({"stores": [{"name": "shop", "url": f"sqlite://{tmp_path / 'shop.db'}"}]})
    with Catalog(tmp_path / "catalog.db") as cat:
        with pytest.raises(UsageError, match="'nope' names no configured store") as unknown:
            fp.build(cfg, cat, KEY, ["nope"])
        assert "shop" in (unknown.value.hint or "")
        with pytest.raises(UsageError, match="no scan of shop") as unscanned:
            fp.build(cfg, cat, KEY, ["shop.members"])
        assert "piiguard scan shop" in (unscanned.value.hint or "")
        assert fp.build(cfg, cat, KEY) == []  # every store, none scanned: nothing, no error


# Partial reads and counter-like keys (SQLite is a real engine: no server needed) ----------------------

def _prod(path: Path, people: int, *, padded: bool = False) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?)",
                       [(f"{i:010d}" if padded else str(i), f"p{i}.x@example.com") for i in range(1, people + 1)])


def _built(tmp_path: Path, key: bytes, people: int, *, padded: bool = False) -> tuple[Catalog, list[fp.Built]]:
    from piiguard.config import parse_config
    from piiguard.model import Store
    from piiguard.scanner import scan

    _prod(tmp_path / "prod.db", people, padded=padded)
    cat = Catalog(tmp_path / "catalog.db")
    scan([Store("prod", "sqlite", path=str(tmp_path / "prod.db"))], catalog=cat, sample_size=2000)
    cfg = parse_config({"stores": [{"name": "prod", "url": f"sqlite://{tmp_path / 'prod.db'}"}]})
    return cat, fp.build(cfg, cat, key, ["prod"])


@pytest.mark.parametrize("order", ["prod-first", "prod-last", "prod-middle"])
def test_a_partial_read_is_a_random_sample_in_any_storage_order(tmp_path: Path, order: str) -> None:
    """3,000 of prod's people and 6,000 others in one table, limit 1,000: the first 1,000 records would
    give 9,000 people (prod first) or none (prod last); a random sample gives about 3,000."""
    import random
    import sqlite3

    from piiguard.model import Store

    key = os.urandom(32)
    cat, _ = _built(tmp_path, key, 10_000)
    ours = [(f"p{i}.x@example.com",) for i in range(1, 3001)]
    others = [(f"o{i}@example.org",) for i in range(6000)]
    rows = {"prod-first": ours + others, "prod-last": others + ours,
            "prod-middle": others[:3000] + ours + others[3000:]}[order]
    with sqlite3.connect(tmp_path / "copy.db") as db:
        db.execute("CREATE TABLE t (email TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", rows)
    copy = Store("copy", "sqlite", path=str(tmp_path / "copy.db"))
    with cat:
        whole = fp.match(copy, cat, key)
        sampled = fp.match(copy, cat, key, limit=1000, rng=random.Random(7))
    assert len(whole) == 1 and not whole[0].from_sample and abs(whole[0].people - 3000) <= 10  # false matches
    assert len(sampled) == 1 and sampled[0].from_sample
    assert abs(sampled[0].people - 3000) <= 450, sampled[0].people


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 10**12), size=st.integers(20, 5000), step=st.integers(1, 300),
       padded=st.booleans())
def test_a_counter_is_dense_and_random_ids_are_not(start: int, size: int, step: int, padded: bool) -> None:
    ids = [start + i * step for i in range(size)]
    span = fp._Span()
    span.add([f"{n:015d}" if padded else str(n) for n in ids])
    assert span.dense(size) is (size / ((size - 1) * step + 1) >= fp.DENSE)  # 1..N dense, every 300th not
    rnd = np.random.default_rng(start % 2**32)
    sparse = fp._Span()
    sparse.add([str(int(n)) for n in rnd.integers(0, 2**62, size=size)])  # random 62-bit ids: no counter
    assert not sparse.dense(size)
    uuids = fp._Span()
    uuids.add([str(UUID(int=int(n))) for n in rnd.integers(0, 2**62, size=size)])
    assert not uuids.dense(size)


def test_counter_columns_and_a_few_values_make_no_link_but_a_real_copy_links_with_both(tmp_path: Path) -> None:
    import sqlite3

    from piiguard.model import Store

    key = os.urandom(32)
    cat, made = _built(tmp_path, key, 5_000, padded=True)  # "0000000001" … : a dense key
    assert {(b.field, b.dense) for b in made} == {("customer_id", True), ("email", False)}
    with sqlite3.connect(tmp_path / "other.db") as db:
        db.execute("CREATE TABLE invoices (invoice_no INTEGER, line INTEGER, amount TEXT)")
        db.executemany("INSERT INTO invoices VALUES (?, ?, ?)",
                       [(i, i % 9 + 1, f"{i % 97}.50") for i in range(1, 5001)])  # 1..N, and 9 values
        db.execute("CREATE TABLE few (contact TEXT)")  # nine of prod's e-mails, many times: nine people
        db.executemany("INSERT INTO few VALUES (?)", [(f"p{i % 9 + 1}.x@example.com",) for i in range(900)])
    with sqlite3.connect(tmp_path / "copy.db") as db:
        db.execute("CREATE TABLE members (ref INTEGER, member_email TEXT)")
        db.executemany("INSERT INTO members VALUES (?, ?)", [(i, f"p{i}.x@example.com") for i in range(1, 2001)])
    with cat:
        assert fp.match(Store("other", "sqlite", path=str(tmp_path / "other.db")), cat, key) == []
        links = fp.match(Store("copy", "sqlite", path=str(tmp_path / "copy.db")), cat, key)
        cat.record_links(links)
        assert cat.links("copy") == links
        assert [r["dense"] for r in cat.fingerprints(with_bits=False)] == [1, 0]
    assert [(x.fields, x.source_fields, x.people) for x in links] == [
        (("member_email", "ref"), ("email", "customer_id"), 2000)]
