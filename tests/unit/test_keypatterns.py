"""Redis key patterns: grouping by shape never puts an id, e-mail or number of a key in a pattern's name."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.connectors.keypatterns import MAX_SIBLINGS, MIN_KEYS, Patterns, glob, group, is_data, variable_part


@pytest.mark.parametrize(("keys", "expected"), [
    pytest.param([f"session:cust-{i}" for i in range(5)], {"session:*"}, id="ids"),
    pytest.param([f"user:{i}:profile" for i in range(5)] + [f"user:{i}:cart" for i in range(5)],
                 {"user:*:profile", "user:*:cart"}, id="id-in-the-middle"),
    pytest.param([f"session:{n}@example.com" for n in "abcd"], {"session:*"}, id="emails"),
    pytest.param(["cfg:app", "cfg:app", "cfg:app"], {"cfg:app"}, id="a-shared-word-stays"),
    pytest.param(["user:alice", "user:bob", "user:carol"], {"user:*"}, id="words-used-once-are-data"),
    pytest.param([f"user:{w}" for w in string.ascii_lowercase for _ in range(MIN_KEYS)], {"user:*"},
                 id="many-siblings-are-one-place"),
    pytest.param(["a:1", "a:1:meta", "a:2", "a:2:meta", "a:3", "a:3:meta"], {"a:*", "a:*:meta"},
                 id="lengths-differ"),
])
def test_groups(keys: list[str], expected: set[str]) -> None:
    groups = group(keys)
    assert set(groups) == expected
    assert sorted(i for members in groups.values() for i in members) == list(range(len(keys)))


@pytest.mark.parametrize(("segment", "data"), [
    ("session", False), ("user_profile", False), ("", False),
    ("123", True), ("cust-123", True), ("a@b.co", True), ("0b5f8c1e-5a8e-4c1f-9d27-2b64f0c7d2a1", True),
    ("x" * 40, True), ("müller", True), ("a.b", True),
])
def test_is_data(segment: str, data: bool) -> None:
    assert is_data(segment) is data


def test_assign_prefers_a_word_then_the_wildcard() -> None:
    p = Patterns(["session:*", "session:index", "user:*:profile"])
    assert p.assign("session:index") == "session:index"
    assert p.assign("session:abc-9") == "session:*"
    assert p.assign("user:42:profile") == "user:*:profile"
    assert p.assign("user:42:cart") is None  # a shape no pattern has
    assert variable_part("user:*:profile", "user:42:profile") == "42"
    assert variable_part("cfg:app", "cfg:app") is None
    assert glob("a[1]:*:b?") == "a\\[1\\]:*:b\\?"


_word = st.sampled_from(["session", "user", "profile", "cart", "cache", "token", "v", "meta"])
_email = st.builds(lambda u, d: f"{u}@{d}.com", st.text(string.ascii_lowercase, min_size=3, max_size=8),
                   st.text(string.ascii_lowercase, min_size=3, max_size=8))
_number = st.integers(min_value=0, max_value=10**12).map(str)
_id = st.one_of(_number, st.uuids().map(str), st.builds(lambda n: f"cust-{n}", _number), _email,
                st.text(string.ascii_letters + string.digits, min_size=6, max_size=20).filter(
                    lambda s: any(c.isdigit() for c in s)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(_word, min_size=0, max_size=3), _id, st.lists(_word, min_size=0, max_size=2)),
                min_size=1, max_size=40))
def test_no_id_email_or_number_in_a_pattern(shapes: list[tuple[list[str], str, list[str]]]) -> None:
    keys = [":".join([*before, ident, *after]) for before, ident, after in shapes]
    groups = group(keys)
    patterns = Patterns(groups)
    for pattern, members in groups.items():
        assert not any(c.isdigit() or c == "@" for c in pattern)
        for i in members:
            assert shapes[i][1] not in pattern
            assert patterns.assign(keys[i]) == pattern  # any key finds its way back to its own pattern
    assert sum(len(m) for m in groups.values()) == len(keys)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
                                 "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent",
                                 "victor", "walter"]), min_size=MAX_SIBLINGS + 1, max_size=60, unique=True))
def test_many_distinct_words_at_one_place_are_a_wildcard(names: list[str]) -> None:
    keys = [f"user:{n}:profile" for n in names for _ in range(MIN_KEYS)]
    assert set(group(keys)) == {"user:*:profile"}


_segment = st.one_of(_word, _id, st.just(""))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10_000), _segment, _segment), min_size=1, max_size=4),
       st.lists(st.tuples(_word, _id), min_size=0, max_size=10))
def test_keys_of_thousands_of_segments_are_grouped_and_assigned(
        deep: list[tuple[int, str, str]], shallow: list[tuple[str, str]]) -> None:
    """Grouping and assigning walk the segments without recursion: a key of 10,000 ``:`` places is a key
    like any other, and the keys beside it keep their patterns."""
    keys = [":".join([first, *([middle] * (n - 1))]) for n, first, middle in deep]
    keys += [f"{w}:{i}" for w, i in shallow]
    groups = group(keys)
    patterns = Patterns(groups)
    assert sorted(i for members in groups.values() for i in members) == list(range(len(keys)))
    for pattern, members in groups.items():
        for i in members:
            assert pattern.count(":") == keys[i].count(":")
            assert patterns.assign(keys[i]) == pattern
        matcher = glob(pattern)
        assert len(matcher) <= len(pattern)  # a run of * places is one short MATCH
        assert matcher.count("*:*:*") == 0


def test_a_deep_key_beside_ordinary_keys() -> None:
    deep = ":".join(["x"] + [str(i) for i in range(10_000)])
    keys = [f"session:cust-{i}" for i in range(5)] + [deep]
    groups = group(keys)
    assert set(groups) == {"session:*", ":".join(["*"] * 10_001)}
    assert Patterns(groups).assign(deep) == ":".join(["*"] * 10_001)
    assert glob(":".join(["*"] * 10_001)) == "*:*"
    assert variable_part(":".join(["*"] * 10_001), deep) == deep
