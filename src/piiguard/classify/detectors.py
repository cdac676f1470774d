"""A detector is data plus one function: a weak pattern for recall, a validator for precision, and
the words in a field's name that make the type more likely.

- ``pattern`` must match a whole value (it is anchored by the engine). RE2/Hyperscan syntax: no
  back-references, no look-around. Keep counted repetitions small (``{2,8}``, not ``{0,500}``): RE2
  leaves its fast DFA for large counts (it made one URL pattern 20× slower); put length limits in
  the validator instead.
- ``context_pattern`` also counts, but only when the field's name carries a ``context`` word — for
  shapes that are ambiguous alone (nine bare digits are an SSN in ``ssn``, a number elsewhere).
- ``validate`` runs once per distinct candidate value.
- ``column_rule`` looks at the column as a whole (distinct ratio, spread of years) — what tells a
  status enum from usernames, or birth dates from event dates.
- ``embedded`` marks types searched *inside* free text (for ``free-text-pii``), with
  ``embedded_pattern`` when the whole-value pattern is too loose to search text with (a street is
  "any value with a digit" for the validator, but a number and a street type inside a note).
- ``prefilter``, when set, is what the engine's Hyperscan pass looks for in place of ``pattern`` to
  tell whether any value of a batch can match at all. It must match every value ``pattern`` does
  (looser is fine: RE2 confirms with ``pattern``); it is for a pattern with a cheap alternative
  that subsumes an expensive one.
- ``unmistakable``: validated values are never anything else (an e-mail, a card), so a column mixing
  them with other values at a third or more still holds them.
- ``vocabulary``: the type is a small vocabulary (gender): a column of one repeated word of it tells
  nothing of anyone and is undecidable.
- ``shape_only``: the type is known by its shape alone (a serial, a five-digit code, a handle), so a
  field name saying the values are some other thing's ids or versions (:data:`THING_WORDS`) outweighs
  the shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from piiguard.registry import Registry


@dataclass(frozen=True)
class ColumnStats:
    """What a column rule may look at: shape, not content."""

    field: str
    tokens: tuple[str, ...]
    non_null: int
    distinct: int
    distinct_ratio: float
    mean_length: float
    spaced_share: float  # share of values containing a space
    matched_values: Sequence[str]  # distinct matched values, for rules like a spread of years


@dataclass(frozen=True)
class Detector:
    name: str
    doc: str
    pattern: str | None = None
    validate: Callable[[str], bool] | None = None
    context: tuple[str, ...] = ()
    context_pattern: str | None = None
    column_rule: Callable[[ColumnStats], bool] | None = None
    min_share: float = 0.8
    embedded: bool = False
    embedded_pattern: str | None = None
    priority: int = 50
    ignore_case: bool = False
    prefilter: str | None = None
    unmistakable: bool = False
    vocabulary: bool = False
    shape_only: bool = False

    @property
    def in_text(self) -> str | None:
        """The pattern searched inside free text."""
        return self.embedded_pattern or self.pattern

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def context_hit(self, tokens: tuple[str, ...]) -> bool:
        compact = "".join(tokens)
        return any(w in tokens or (len(w) >= 5 and w in compact) or w == compact for w in self.context)


#: Words of a field name that say its values are some thing's codes, versions or counts, not a person's.
THING_WORDS = frozenset({"sku", "order", "orders", "batch", "invoice", "product", "item", "part", "lot",
                         "ticket", "version", "firmware", "fw", "build", "release", "hash", "checksum", "sha",
                         "md5", "sha256", "count", "qty", "quantity", "model", "revision", "rev", "job", "run"})

detectors: Registry[Detector] = Registry("detector", Detector)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^A-Za-z]+")


def name_tokens(field: str) -> tuple[str, ...]:
    """``profile.photoURL`` → ('profile', 'photo', 'url'); ``c17`` → ('c',)."""
    spaced = _CAMEL.sub(" ", field)
    return tuple(t.lower() for t in _SPLIT.split(spaced) if t)


def register(detector: Detector) -> Detector:
    detectors.add(detector.name, detector)
    return detector
