"""Server logs are partly written by clients (user names, application_name, statements): whatever
they hold, reading them never raises, and any log_line_prefix a server may have compiles."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.contain.redis import rule_words
from piiguard.response.pglog import LogFormat, parse_time, prefix_pattern, records, zone

PREFIX_PIECES = st.sampled_from(["%m", "%t", "%n", "%p", "%h", "%r", "%u", "%d", "%a", "%q", "%%", "%-10u", "%5p",
                                 "%Z", "%", " ", "[", "]", "(", ")", "|", "\\", "*", "+", "?", "{", "}", ".", "$"])


@given(st.lists(PREFIX_PIECES, max_size=12).map("".join), st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_prefix_compiles_and_any_text_reads(prefix: str, text: str) -> None:
    prefix_pattern(prefix)
    for record in records(text, LogFormat("stderr", prefix, "Europe/Berlin")):
        assert record.at.tzinfo is UTC


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_hostile_csv_and_json_logs_never_raise(body: str) -> None:
    for text in ("2026-11-03 09:00:01.100 CET," + body, '{"timestamp": ' + body, body):
        list(records(text, LogFormat()))


@given(st.text(max_size=60), st.text(max_size=30))
def test_times_parse_or_say_none(text: str, tz: str) -> None:
    at = parse_time(text, zone(tz))
    assert at is None or at.tzinfo is UTC
    assert at is None or isinstance(at, datetime)


@given(st.lists(st.text(alphabet="~+-@*&%#()abc:| ", min_size=1, max_size=12), max_size=10))
def test_rule_words_never_lose_text(words: list[str]) -> None:
    line = " ".join(w.strip() for w in words if w.strip())
    assert " ".join(rule_words(line)) == " ".join(line.split())
