"""The discovery key: plainly non-random keys and another user's key file are refused (fx8, defect 3).

The variety rule is a sanity check against placeholders and typed patterns, not an entropy proof
(piiguard.discovery.keys.weakness)."""

from __future__ import annotations

import base64
import os
import string
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from piiguard import safefile
from piiguard.discovery.keys import load_key
from piiguard.discovery.settings import DiscoverySettings
from piiguard.errors import ConfigError, FileRefused

ENV = "PIIGUARD_FX8_KEY"


@contextmanager
def key_in_env(text: str) -> Iterator[DiscoverySettings]:
    os.environ[ENV] = text
    try:
        yield DiscoverySettings(key_env=ENV)
    finally:
        del os.environ[ENV]


@pytest.mark.parametrize("text", ["0" * 31, "ÄÄÄÄÄÄÄÄ", "k" * 48, "0123456789abcdef" * 2, "abcd" * 8],
                         ids=["31-zeros-text", "8-umlauts-16-bytes", "k-base64", "hex-repeated-block", "text-abcd"])
def test_the_reported_weak_keys_are_refused(text: str) -> None:
    with key_in_env(text) as s, pytest.raises(ConfigError) as info:
        load_key(s)
    assert info.value.message.startswith("discovery.key_env") and "not a random key" in info.value.message
    assert text not in info.value.message and "/dev/urandom" in (info.value.hint or "")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=7), st.integers(min_value=16, max_value=64))
def test_low_variety_keys_are_refused(alphabet: bytes, size: int) -> None:
    """Any key of fewer than 8 distinct byte values, however long, given as hex."""
    key = (alphabet * size)[:size]
    with key_in_env(key.hex()) as s, pytest.raises(ConfigError, match="not a random key"):
        load_key(s)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=16), st.integers(min_value=2, max_value=6))
def test_a_repeated_block_is_refused(block: bytes, copies: int) -> None:
    key = block * max(copies, -(-16 // len(block)))
    text = base64.b64encode(key).decode()
    # a base64 text of only hex digits (``AAAA…`` for zero bytes) is read as hex: half as many bytes
    assume(not all(c in string.hexdigits for c in text))
    with key_in_env(text) as s, pytest.raises(ConfigError, match="not a random key"):
        load_key(s)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=16, max_value=64), st.sampled_from(["hex", "base64"]))
def test_random_keys_are_accepted(size: int, form: str) -> None:
    key = os.urandom(size)
    with key_in_env(key.hex() if form == "hex" else base64.b64encode(key).decode()) as s:
        assert load_key(s) == key


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "discovery.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    path.chmod(0o600)
    assert load_key(DiscoverySettings(key_file=str(path)))  # root's own file: accepted
    os.chown(path, 65534, 65534)  # nobody
    with pytest.raises(FileRefused) as info:
        safefile.read_key(path, "discovery key")
    assert "belongs to another user" in info.value.message and "chown" in (info.value.hint or "")
    with pytest.raises(ConfigError) as err:
        load_key(DiscoverySettings(key_file=str(path)))
    assert err.value.message.startswith("discovery.key_file") and "another user" in err.value.message
