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

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from piiguard.model import Classification, Evidence
from piiguard.schema import did_you_mean, key_path

SECTION_KEYS = {"overrides"}
OVERRIDE_KEYS = {"field", "type", "reason"}
NOT_PII = "none"
MAX_REASON = 500  # a reason is a sentence for the evidence and the report, not a document


@dataclass(frozen=True)
class FieldOverride:
    """One override: ``field`` is ``STORE.COLLECTION.FIELD`` (``*`` within a part); ``pii_type`` None
    means not PII."""

    field: str
    pii_type: str | None
    reason: str = ""

    def matches(self, store: str, collection: str, field: str) -> bool:
        return _compiled(self.field).fullmatch(f"{store}.{collection}.{field}") is not None


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # ``*`` stays within a part, so ``shop.*.nick`` does not reach into another collection's field.
    # Collection names hold dots themselves (``public.customers``): the whole path is matched at once.
    return re.compile("[^.]*".join(re.escape(piece) for piece in pattern.split("*")))


@dataclass(frozen=True)
class ClassifySettings:
    overrides: tuple[FieldOverride, ...] = ()

    def override_for(self, store: str, collection: str, field: str) -> FieldOverride | None:
        """The first override naming the field: the file's order is the person's order of precedence."""
        return next((o for o in self.overrides if o.matches(store, collection, field)), None)

    def apply(self, fields: Sequence[Classification]) -> list[Classification]:
        """The classifier's decisions with every override applied: the forced type is the decision and
        the classifier's own becomes the runner-up, so ``explain`` still shows what the values said."""
        out = []
        for f in fields:
            rule = self.override_for(f.store, f.collection, f.field)
            out.append(f if rule is None else _forced(f, rule))
        return out


def _forced(f: Classification, rule: FieldOverride) -> Classification:
    own = f.evidence or Evidence()
    same = f.pii_type == rule.pii_type
    why = f"override in piiguard.yaml ({rule.field})" + (f": {rule.reason}" if rule.reason else "")
    lost = "" if same else f"a person's word in the classify: section outranks the classifier ({own.decided_by})"
    evidence = dataclasses.replace(
        own, decided_by="override", detector=None, model=None,
        runner_up=None if same else (f.pii_type or NOT_PII), runner_up_share=None if same else own.share,
        share=own.share if same else None, context=own.context if same else (),
        lost_because=lost, notes=(*own.notes, why))
    return dataclasses.replace(f, pii_type=rule.pii_type, confidence=1.0, matched=f.matched if same else 0,
                               reason=why, evidence=evidence)


def parse_classify(raw: Any, add: Callable[[str, str], None], known_types: Iterable[str]) -> ClassifySettings:
    """The section, validated; each problem goes to ``add(path, message)``. ``known_types`` are the PII
    types an override may force (the detectors' names)."""
    if raw is None:
        return ClassifySettings()
    if not isinstance(raw, dict):
        add("classify", "expected a mapping with an 'overrides' list")
        return ClassifySettings()
    for key in raw:
        if key not in SECTION_KEYS:
            add(key_path("classify", key), f"unknown key{did_you_mean(key, SECTION_KEYS)}")
    items = raw.get("overrides")
    if items is None:
        return ClassifySettings()
    if not isinstance(items, list):
        add("classify.overrides", "expected a list of {field, type, reason}")
        return ClassifySettings()
    known = set(known_types)
    overrides = []
    for i, item in enumerate(items):
        rule = _parse_override(item, f"classify.overrides[{i}]", add, known)
        if rule is not None:
            overrides.append(rule)
    return ClassifySettings(tuple(overrides))


def _parse_override(item: Any, path: str, add: Callable[[str, str], None], known: set[str]) -> FieldOverride | None:
    if not isinstance(item, dict):
        add(path, "expected a mapping with field, type and reason")
        return None
    ok = True
    for key in item:
        if key not in OVERRIDE_KEYS:
            add(key_path(path, key), f"unknown key{did_you_mean(key, OVERRIDE_KEYS)}")
            ok = False
    field, pii_type, reason = item.get("field"), item.get("type"), item.get("reason", "")
    if not isinstance(field, str) or not field:
        add(f"{path}.field", "expected STORE.COLLECTION.FIELD (a string; * matches within a part)")
        ok = False
    elif field.count(".") < 2 or any(not part for part in field.split(".")):
        add(f"{path}.field", "expected STORE.COLLECTION.FIELD: three non-empty parts separated by dots")
        ok = False
    if not isinstance(pii_type, str) or not pii_type:
        add(f"{path}.type", f"expected a PII type or {NOT_PII!r} (not PII)")
        ok = False
    elif pii_type != NOT_PII and pii_type not in known:
        add(f"{path}.type", f"unknown PII type {pii_type!r}{did_you_mean(pii_type, known | {NOT_PII})}; "
            f"known: {', '.join(sorted(known))}, or {NOT_PII!r}")
        ok = False
    if not isinstance(reason, str):
        add(f"{path}.reason", "expected a string: why the classifier is overruled")
        ok = False
    elif len(reason) > MAX_REASON:
        add(f"{path}.reason", f"longer than {MAX_REASON} characters; say why in a sentence")
        ok = False
    if not (ok and isinstance(field, str) and isinstance(pii_type, str) and isinstance(reason, str)):
        return None
    return FieldOverride(field, None if pii_type == NOT_PII else pii_type, reason)
