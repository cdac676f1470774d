"""What a containment action is: a plan (what will change, how to undo it), then apply, then verify
by re-probing, each step recorded in the catalog. Nothing is ever deleted; every action is
idempotent (applying twice changes nothing more) and reversible (``piiguard contain undo ID``).

An engine registers one :class:`Containment`. Its plan is computed from the failing findings, what
the latest scan found where (``holdings``: collection → PII types, None if never scanned) and the
store's current state (read with the store's credentials), and holds everything ``undo`` needs —
never a secret and never a data value. It is verified by re-running the plan's checks, or where no
check can prove the step, by the containment's own :meth:`Containment.verify` probe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from piiguard.model import Finding, Status, Store
from piiguard.registry import Registry

Holdings = Mapping[str, Sequence[str]] | None  # collection → PII types from the latest scan


@dataclass(frozen=True)
class Plan:
    engine: str
    store: str
    steps: tuple[str, ...]  # what will change, for a person to read before approving
    undo: tuple[str, ...]  # how it will be undone
    verify: tuple[str, ...]  # the checks that must pass afterwards
    data: dict[str, Any] = field(default_factory=dict)  # what apply/undo need (no secrets, no data)
    # False: piiguard cannot take these steps itself (e.g. they need a restart): the plan is for a person
    automatic: bool = True


class Containment(ABC):
    engine: ClassVar[str]
    #: the failing checks this containment closes; no plan when none of them failed
    triggers: ClassVar[frozenset[str]] = frozenset()

    def triggered(self, findings: Sequence[Finding]) -> bool:
        return any(f.check in self.triggers and f.status is Status.FAIL for f in findings)

    @abstractmethod
    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        """The action for these failing findings, or None when there is nothing this engine can close."""

    @abstractmethod
    def apply(self, store: Store, plan: Plan) -> None:
        """Carry the plan out (idempotent)."""

    @abstractmethod
    def undo(self, store: Store, plan: Plan) -> None:
        """Put back what the plan changed (idempotent)."""

    def verify(self, store: Store, plan: Plan) -> tuple[bool, str] | None:
        """A re-probe of its own (passed, evidence), for steps no check can prove; None: the checks."""
        return None


containments: Registry[type[Containment]] = Registry("containment", Containment)
