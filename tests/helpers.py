from __future__ import annotations

from functools import cache

import pyarrow as pa

from piiguard import plugins
from piiguard.classify.engine import Classifier
from piiguard.model import Classification, Status


@cache
def classifier() -> Classifier:
    return Classifier(plugins.detectors_for())


def classify(field: str, values: list[str | None]) -> Classification:
    c = classifier()
    state = c.new_state(field)
    c.observe(state, pa.array(values, pa.string()))
    return c.decide(state, "s", "t")


def engine_checks(engine: str) -> set[str]:
    """The engine's own checks (not the engine-independent ones such as network.exposed)."""
    from piiguard.checker import check_ids

    return {i for i in check_ids(engine) if i.startswith(f"{engine}.")}


def assert_fails_exactly(statuses: dict[str, Status], expected: set[str]) -> None:
    """The insecure-variant verdict: these checks fail, every other passes, none could not decide."""
    assert {c for c, s in statuses.items() if s is Status.FAIL} == expected
    assert [c for c, s in statuses.items() if s is Status.ERROR] == []
