"""Canary values: derived, unique, shaped like the PII type they stand in for, found in any text, and
keyed (another key derives other values and other digests). The discovery key's bad forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.classify.detectors import detectors
from piiguard.discovery import canary_values as cv
from piiguard.discovery.fingerprints import key_id, load_key
from piiguard.discovery.settings import CanarySettings, DiscoverySettings
from piiguard.discovery.trap import Trap
from piiguard.errors import ConfigError, UsageError

KEY = b"u" * 32
D = cv.Deriver(KEY, "nonce-1", "canary.example.com", "https://trap.example.com")
SHAPED = [(t, k) for t, k in cv.BY_PII_TYPE.items()]


@pytest.mark.parametrize(("pii_type", "kind"), SHAPED, ids=[t for t, _ in SHAPED])
def test_each_kind_passes_the_detector_of_its_pii_type(pii_type: str, kind: cv.ValueKind) -> None:
    plugins.load()
    det = detectors.get(pii_type)
    for i in range(50):
        value = str(D.value(i, "f", kind))
        if det.pattern:
            flags = re.IGNORECASE if det.ignore_case else 0
            assert re.fullmatch(det.pattern, value, flags), (pii_type, i)
        if det.validate:
            assert det.validate(value), (pii_type, i)


def test_values_are_derived_unique_and_keyed() -> None:
    fields = {"email": cv.ValueKind.EMAIL, "token": cv.ValueKind.TOKEN, "mac": cv.ValueKind.MAC,
              "serial": cv.ValueKind.SERIAL, "phone": cv.ValueKind.PHONE, "link": cv.ValueKind.LINK}
    rows = D.rows(500, fields)
    assert rows == D.rows(500, fields)  # derived again exactly: what remove relies on
    for f in fields:
        if f != "phone":  # 78,900 fictional numbers: a repeat in 500 is possible, and harmless
            assert len({r[f] for r in rows}) == 500, f
    other = cv.Deriver(b"v" * 32, "nonce-1", "canary.example.com", "https://trap.example.com").rows(500, fields)
    assert not {r["token"] for r in rows} & {r["token"] for r in other}
    assert cv.digests(KEY, rows, fields) != cv.digests(b"v" * 32, rows, fields)
    assert len(cv.digests(KEY, rows, fields)) == 500 * 6 * cv.DIGEST_BYTES
    assert all(r["email"].endswith("@canary.example.com") for r in rows)
    assert all(int(r["mac"][:2], 16) & 0b11 == 0b10 for r in rows)  # locally administered, unicast
    assert all(re.fullmatch(r"\+1 \d{3} 555 01\d\d", r["phone"]) for r in rows)  # the fiction range
    assert all(r["link"].startswith("https://trap.example.com/c/") for r in rows)


def test_text_is_cut_to_the_column_but_email_keeps_its_domain() -> None:
    assert len(D.value(1, "f", cv.ValueKind.TOKEN, 12)) == 12
    assert D.value(1, "f", cv.ValueKind.EMAIL, 12).endswith("@canary.example.com")


SEPARATORS = st.sampled_from([" ", "\n", "/", "=", "&", "?", '"', "'", "<", ">", ",", ";", "\t", "(", ")"])


@settings(max_examples=200)
@given(i=st.integers(0, 10_000), kind=st.sampled_from([k for k in cv.ValueKind if k.matchable]),
       before=st.text(max_size=40), sep1=SEPARATORS, sep2=SEPARATORS, after=st.text(max_size=40))
def test_a_value_anywhere_in_text_is_a_candidate(i: int, kind: cv.ValueKind, before: str, sep1: str, sep2: str,
                                                  after: str) -> None:
    value = cv.matched_form(D.value(i, "f", kind), kind)
    text = f"{before}{sep1}{value}{sep2}{after}"
    digests = {cv.digest(KEY, c) for c in cv.candidates(text)}
    assert cv.digest(KEY, value) in digests


def test_candidates_case_and_trailing_punctuation() -> None:
    email = D.value(3, "e", cv.ValueKind.EMAIL)
    assert cv.digest(KEY, email) in {cv.digest(KEY, c) for c in cv.candidates(f"Mail {email.upper()}.")}


def test_the_key_missing_short_or_open_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_DISCOVERY_KEY", raising=False)
    cases = [(DiscoverySettings(), "discovery.key_env"),
             (DiscoverySettings(key_env="PG_DISCOVERY_KEY"), "PG_DISCOVERY_KEY is not set")]
    short = tmp_path / "short.key"
    short.write_text("abc")
    short.chmod(0o600)
    cases.append((DiscoverySettings(key_file=str(short)), "discovery.key_file: the key holds 3 bytes"))
    loose = tmp_path / "loose.key"
    loose.write_text("x" * 40)
    loose.chmod(0o644)
    cases.append((DiscoverySettings(key_file=str(loose)), "discovery.key_file: permissions"))
    cases.append((DiscoverySettings(key_file=str(tmp_path / "absent")), "discovery.key_file: cannot read"))
    for settings_, message in cases:
        with pytest.raises(ConfigError) as err:
            load_key(settings_)
        assert message in err.value.message and err.value.hint, message
    monkeypatch.setenv("PG_DISCOVERY_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16 are needed"):
        load_key(DiscoverySettings(key_env="PG_DISCOVERY_KEY"))
    monkeypatch.setenv("PG_DISCOVERY_KEY", "yQ3mZ8pLw2Vx7Rb5Kt9Nc4Hs6Jd1Fg0A")
    key = load_key(DiscoverySettings(key_env="PG_DISCOVERY_KEY"))
    # valid base64: the key is its decoded bytes (piiguard.discovery.keys.decode_key)
    assert len(key) >= 16 and key_id(key) != key_id(b"z" * 32) and "yQ3mZ8pL" not in key_id(key)


def test_a_trap_with_nowhere_to_listen_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"discovery\.canary\.trap"):
        Trap(CanarySettings(domain="canary.example.com"), tmp_path / "c.db", KEY)
    with pytest.raises(UsageError, match=r"discovery\.canary\.trap: 'nowhere' is not host:port"):
        Trap(CanarySettings(trap="nowhere"), tmp_path / "c.db", KEY).start()


def test_a_trap_on_a_port_in_use_names_the_setting(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        trap = Trap(CanarySettings(trap="127.0.0.1:0", smtp=f"127.0.0.1:{port}"), tmp_path / "c.db", KEY)
        with pytest.raises(UsageError, match=rf"discovery\.canary\.smtp: cannot listen on 127\.0\.0\.1:{port}"):
            trap.start()
        assert trap.addresses == []  # the HTTP side it had opened is closed again


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**12, 10**12), st.integers(0, 10**9), st.integers(0, 40), st.binary(min_size=32, max_size=32))
def test_numbers_fall_inside_the_span_then_just_past_it(lo: int, width: int, attempt: int, seed: bytes) -> None:
    value = cv.in_span(seed, (lo, lo + width), attempt)
    if attempt < cv.IN_SPAN_ATTEMPTS:
        assert lo <= value <= lo + width
    else:
        assert value == lo + width + 1 + attempt - cv.IN_SPAN_ATTEMPTS


HANDLE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", min_size=1, max_size=32)


@settings(max_examples=200, deadline=None)
@given(st.lists(HANDLE, min_size=10, max_size=60), st.integers(0, 30))
def test_a_shaped_user_name_keeps_the_samples_classes_and_lengths_and_copies_none(
        sample: list[str], index: int) -> None:
    shape = cv.shape_of(sample)
    if shape is None:  # too short to be distinctive
        assert sorted(len(s) for s in sample)[-1 - len(sample) // 10] < cv.SHAPE_MIN_LENGTH
        return
    value = D.value(index, "user", cv.ValueKind.USERNAME, shape=shape)
    _, _, lo, hi = cv.parse_shape(shape)
    joined = "".join(sample)

    def classes(text: str) -> set[str]:
        return {"a" if c.islower() else "A" if c.isupper() else "9" if c.isdigit() else c for c in text}

    assert lo <= len(value) <= hi and classes(value) <= classes(joined) and value not in sample
    assert value == D.value(index, "user", cv.ValueKind.USERNAME, shape=shape)  # re-derivable from the shape
    assert cv.decode_kind(cv.encode_kind(cv.ValueKind.USERNAME, shape)) == (cv.ValueKind.USERNAME, shape)
