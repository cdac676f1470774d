"""``piiguard explain`` names a field with no values undecidable, rather than "not PII"."""

from __future__ import annotations

import pyarrow as pa
import pytest
from helpers import classifier

from piiguard.report.explain import explain_lines


@pytest.mark.parametrize("values", [[None] * 50, [""] * 50, ["  "] * 50], ids=["null", "empty", "blank"])
def test_a_field_without_values_is_named_undecidable(values: list[str | None]) -> None:
    c = classifier()
    state = c.new_state("c01")
    c.observe(state, pa.array(values, pa.string()))
    text = "\n".join(explain_lines(c.decide(state, "s", "t")))
    assert "undecidable" in text and "no values" in text


def test_a_field_with_values_is_not_called_undecidable() -> None:
    c = classifier()
    state = c.new_state("c01")
    c.observe(state, pa.array([f"sku-{i}" for i in range(50)], pa.string()))
    assert "undecidable" not in "\n".join(explain_lines(c.decide(state, "s", "t")))


@pytest.mark.parametrize("size", [201, 10_000, 100_000])
def test_an_overlong_unknown_path_is_not_echoed_whole(size: int) -> None:
    from piiguard.errors import UsageError
    from piiguard.report.explain import find

    with pytest.raises(UsageError) as info:
        find([], "s.t." + "f" * size)
    assert len(info.value.message) < 300 and f"{size + 4:,} characters" in info.value.message
