"""The learned column model: per-column features → a probability per PII type.

Trained at build time (``scripts/train-column-model``) on generated multi-locale data, shipped in
the package as a small deterministic file, loaded offline. It adds candidates beside the detectors'
(:meth:`piiguard.classify.engine.Classifier.candidates`); checksummed types (card, IBAN, SSN) keep
their validators, and the decision combines both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from piiguard.classify.engine import Candidate, FieldState


class ColumnModel:
    """The shipped model. :meth:`load` returns None when the package carries none."""

    @classmethod
    def load(cls) -> ColumnModel | None:
        return None

    def candidates(self, state: FieldState) -> list[Candidate]:
        return []
