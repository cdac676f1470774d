"""The ``classify:`` section of piiguard.yaml: a person's word over the classifier's, per field.

Example::

    classify:
      overrides:
        - field: shop.public.customers.nick        # STORE.COLLECTION.FIELD; * matches within a part
          type: username                           # force this PII type
          reason: "nicknames, confirmed by the data owner"
        - field: shop.public.events.event_id
          type: none                               # not PII, whatever the values look like
          reason: "surrogate key of events, not of people"

scan records the forced decision (``Evidence.decided_by == "override"``, the classifier's own
decision kept as the runner-up), and copy and scope follow the recorded decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldOverride:
    """One override: ``field`` is ``STORE.COLLECTION.FIELD`` (``*`` within a part); ``pii_type`` None
    means not PII."""

    field: str
    pii_type: str | None
    reason: str = ""


@dataclass(frozen=True)
class ClassifySettings:
    overrides: tuple[FieldOverride, ...] = ()


def parse_classify(raw: Any, add: Callable[[str, str], None]) -> ClassifySettings:
    """The section, validated; each problem goes to ``add(path, message)``."""
    if raw is None:
        return ClassifySettings()
    if not isinstance(raw, dict):
        add("classify", "expected a mapping")
        return ClassifySettings()
    if raw:  # never accept a person's word and then ignore it
        add("classify", "overrides are not applied by this version yet; remove the section")
    return ClassifySettings()
