"""What a check is, and the per-engine target it runs against.

A check is one security protocol of one engine. Its class docstring is its user documentation
(``piiguard show check ID`` prints it): the first line is the title, then **Risk:** and **Fix:**.
``vantage`` says where it looks from: ``OUTSIDE`` checks use no credentials — they do what an
attacker who reaches the port can do, and nothing that writes, configures or runs anything on the
target; ``INSIDE`` checks read the effective configuration with the store's configured (read-only)
credentials.

A :class:`Target` is opened once per store and shared by that engine's checks, so a settings query
or a connection is made once. A check returns an :class:`Outcome`; when it cannot decide it raises
(:class:`~piiguard.errors.StoreError` or anything else) and the runner records an ``error`` finding
with the reason — never a pass.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from piiguard.model import Severity, Status, Store, Vantage
from piiguard.registry import Registry


@dataclass(frozen=True)
class Outcome:
    status: Status
    evidence: str


def passed(evidence: str) -> Outcome:
    return Outcome(Status.PASS, evidence)


def failed(evidence: str) -> Outcome:
    return Outcome(Status.FAIL, evidence)


class Target(ABC):  # noqa: B024 — a base with shared state; engines add their own probes
    """A store as checks see it. Engines subclass it with cached probes and an inside session."""

    def __init__(self, store: Store, *, timeout: float = 5.0) -> None:
        self.store = store
        self.timeout = timeout

    def close(self) -> None:  # noqa: B027 — optional
        """Release connections opened by the checks."""


T = TypeVar("T", bound=Target)


class Check(ABC, Generic[T]):
    """One protocol of one engine. Subclasses set the class attributes and implement :meth:`run`."""

    engine: ClassVar[str]  # "*": every engine
    severity: ClassVar[Severity]
    vantage: ClassVar[Vantage]
    anchors: ClassVar[tuple[str, ...]] = ()  # CIS control, nuclei template, nmap script

    @abstractmethod
    def run(self, target: T) -> Outcome:
        """Pass or fail with evidence (settings and behaviour, never data values)."""

    @classmethod
    def applies(cls, store: Store) -> bool:
        """Whether the check says anything about this store (e.g. it needs configuration it lacks)."""
        return True

    @classmethod
    def title(cls) -> str:
        return (inspect.getdoc(cls) or "").splitlines()[0]

    @classmethod
    def doc(cls) -> str:
        return inspect.getdoc(cls) or ""


checks: Registry[type[Check[Any]]] = Registry("check", Check)
targets: Registry[type[Target]] = Registry("check target", Target)
