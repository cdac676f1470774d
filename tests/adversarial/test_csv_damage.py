"""Damaged CSV never loses the file silently: a ragged row with bytes that are not UTF-8 is skipped
and counted (the others read), and a quote left open is named with the lines it swallowed."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_readers import CONTROL, control_read, problems, run

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
bad_bytes = st.binary(min_size=1, max_size=8).filter(lambda b: b"\n" not in b and b"\r" not in b and b'"' not in b and b"," not in b)


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@SETTINGS
@given(noise=bad_bytes.filter(_not_utf8), where=st.integers(0, 999), extra=st.integers(1, 3))
def test_ragged_row_with_bad_bytes_is_skipped_not_fatal(noise: bytes, where: int, extra: int) -> None:
    unraisable: list[Any] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "d"
            d.mkdir()
            (d / "control.csv").write_text(CONTROL)
            good = [f"g{i}@example.com,Berlin\n".encode() for i in range(1000)]
            bad = b"x@example.com,K" + noise + b"ln" + b",extra" * extra + b"\n"
            (d / "g.csv").write_bytes(b"email,city\n" + b"".join(good[:where]) + bad + b"".join(good[where:]))
            result, text = run(d)
            control_read(result)
            g = {c.name: c for c in result.stores[0].collections}["g.csv"]
            assert g.rows_read == 1000
            assert "1 row(s) with the wrong number of fields skipped; 1,000 row(s) read" in problems(result, "g.csv")
            assert "x@example.com" not in text
    finally:
        sys.unraisablehook = hook
    assert unraisable == []  # Arrow's "Exception ignored in … UnicodeDecodeError" on stderr


@SETTINGS
@given(at=st.integers(0, 60), after=st.integers(1, 150))
def test_an_unclosed_quote_is_named_with_the_lines_it_swallowed(at: int, after: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        d.mkdir()
        (d / "control.csv").write_text(CONTROL)
        rows = [f"r{i}@example.com,{i}\n" for i in range(at)]
        rows.append(f'r{at}@example.com,"oops\n')
        rows += [f"r{i}@example.com,{i}\n" for i in range(at + 1, at + 1 + after)]
        (d / "q.csv").write_text("email,n\n" + "".join(rows))
        result, _ = run(d)
        control_read(result)
        q = {c.name: c for c in result.stores[0].collections}["q.csv"]
        assert q.rows_read == at + 1
        assert problems(result, "q.csv") == [
            f"{after + 1:,} line(s) after a quote that is never closed (read as one value) skipped; "
            f"{at + 1:,} row(s) read"]


def test_quotes_inside_values_and_multiline_values_are_not_a_problem(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "control.csv").write_text(CONTROL)
    (d / "ok.csv").write_text('email,note\na@example.com,6"2 tall\nb@example.com,"two\nlines"\n'
                              'c@example.com,"say ""hi"""\n')
    result, _ = run(d)
    assert problems(result, "ok.csv") == []
    assert {c.name: c for c in result.stores[0].collections}["ok.csv"].rows_read == 3
