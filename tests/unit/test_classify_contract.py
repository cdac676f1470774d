"""What the classification contract promises on its own: a customer key decided from its collection
keeps the field's native type and says why, and a ``classify:`` section naming what does not exist
is refused rather than silently ignored."""

from __future__ import annotations

import pyarrow as pa
import pytest

from piiguard import plugins
from piiguard.classify.engine import Classifier
from piiguard.classify.groups import judge
from piiguard.classify.types import Kind, NativeType
from piiguard.config import parse_config
from piiguard.errors import ConfigError


def test_a_column_key_keeps_its_native_type_and_evidence() -> None:
    classifier = Classifier(plugins.detectors_for(()))
    states = {name: classifier.new_state(name) for name in ("id", "email")}
    uuid = NativeType("uuid", Kind.UUID)
    classifier.observe(states["id"], pa.array([f"123e4567-e89b-12d3-a456-{i:012d}" for i in range(200)]), uuid)
    classifier.observe(states["email"], pa.array([f"person{i}@example.org" for i in range(200)]))
    fields = judge([classifier.decide(st, "s", "c") for st in states.values()], states, ("id",))
    key = fields[0]
    assert key.pii_type == "customer-identifier"
    assert key.native_type == "uuid"
    assert key.evidence is not None and key.evidence.decided_by == "column-key"
    assert key.evidence.kind == "uuid" and key.evidence.share == 1.0


@pytest.mark.parametrize("section", [{"overrides": [{"field": "a.b.c", "type": "no-such"}]}, {"anything": 1}])
def test_a_classify_section_with_unknown_names_is_refused(section: object) -> None:
    with pytest.raises(ConfigError, match="classify"):
        parse_config({"classify": section})


@pytest.mark.parametrize("section", [None, {}])
def test_an_empty_classify_section_is_accepted(section: object) -> None:
    parse_config({"classify": section})
