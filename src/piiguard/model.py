"""The domain model: frozen dataclasses and enums, no behaviour beyond small derived values.

A :class:`Classification` never holds a sampled value — only types, counts and confidences. That is
what lets the catalog, the reports and the logs stay free of PII.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Store:
    """One data store. Credentials are references (an environment variable or a file), never values."""

    name: str
    engine: str
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    path: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    tags: Mapping[str, str] = field(default_factory=_frozen)
    options: Mapping[str, str] = field(default_factory=_frozen)  # engine-specific, e.g. clickhouse tcp_port
    allowed_networks: tuple[str, ...] = ()  # who may reach the store; anyone else reaching it is exposure
    probe_from: tuple[str, ...] = ()  # network namespaces on this host to probe from, outside those networks
    require_tls: str = ""  # "", "encrypted" or "verified": a connection with less is refused (engines.tls)

    @property
    def address(self) -> str:
        """Where the store is, without credentials — safe to print."""
        if self.path is not None:
            return self.path
        port = "" if self.port is None else f":{self.port}"
        db = "" if self.database is None else f"/{self.database}"
        user = "" if self.user is None else f"{self.user}@"
        return f"{user}{self.host or 'localhost'}{port}{db}"


class ScanMode(enum.Enum):
    SAMPLE = "sample"
    FULL = "full"


class Estimate(enum.Enum):
    """How a count was obtained — reports say which."""

    EXACT = "exact"
    APPROXIMATE = "approximate"  # planner statistics, HyperLogLog, file metadata
    SAMPLE = "sample"  # extrapolated from a sample


@dataclass(frozen=True)
class CollectionInfo:
    """A table, file or index as listed by a connector, before it is read."""

    name: str
    rows_estimate: int | None
    rows_estimate_kind: Estimate
    primary_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """Why a field was decided as it was (``piiguard explain``, the JSON report, the catalog).

    Names, shares, counts and words of the field's *name* — never a value. ``decided_by`` is one of
    ``detector`` (a pattern + validator), ``model`` (the learned column model), ``native-type`` (the
    engine's own type settles it: ``inet``, ``geo_point``), ``group`` (judged with its neighbours: a
    lat/lon pair, first + last name, an address block), ``column-key`` (the unique id of a collection
    of people), ``override`` (the ``classify:`` section) or ``none`` (nothing reached its bar).
    """

    decided_by: str = "none"
    detector: str | None = None  # the detector (or group rule) that decided, when one did
    share: float | None = None  # share of non-null values the decider matched (validated)
    context: tuple[str, ...] = ()  # words of the field's name that agreed with the decision
    native_type: str | None = None  # the engine's own type, as the engine spells it
    kind: str | None = None  # its piiguard kind (piiguard.classify.types.Kind)
    model: float | None = None  # the learned model's probability for the decided type
    runner_up: str | None = None  # the best type that lost ("none" when a type lost to no PII)
    runner_up_share: float | None = None
    lost_because: str = ""  # why the runner-up lost, in words
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Evidence:
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()
                 if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Classification:
    """What one field holds. Counts and confidences only — never a value."""

    store: str
    collection: str
    field: str
    pii_type: str | None
    confidence: float
    matched: int
    sampled: int
    nulls: int = 0
    distinct: int | None = None
    reason: str = ""
    native_type: str | None = None  # the engine's own type of the field (``inet``, ``Nullable(IPv6)``)
    evidence: Evidence | None = None


class ProblemKind(enum.Enum):
    STORE = "store"
    COLLECTION = "collection"
    FIELD = "field"


@dataclass(frozen=True)
class Problem:
    """Something that stopped part of a scan. The message names where, never what value."""

    kind: ProblemKind
    store: str
    message: str
    collection: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class CollectionResult:
    name: str
    rows_estimate: int | None
    rows_estimate_kind: Estimate
    rows_read: int
    fields: tuple[Classification, ...]

    @property
    def pii_fields(self) -> tuple[Classification, ...]:
        return tuple(f for f in self.fields if f.pii_type is not None)


@dataclass(frozen=True)
class Subjects:
    """Estimated distinct people in a store, from its best identifying field."""

    estimate: int
    collection: str
    field: str
    kind: Estimate
    canaries: int = 0  # planted canary rows taken off the count (they are nobody)


@dataclass(frozen=True)
class StoreResult:
    store: str
    engine: str
    address: str
    collections: tuple[CollectionResult, ...]
    subjects: Subjects | None
    problems: tuple[Problem, ...] = ()

    @property
    def pii_types(self) -> tuple[str, ...]:
        return tuple(sorted({f.pii_type for c in self.collections for f in c.pii_fields if f.pii_type}))


@dataclass(frozen=True)
class ScanResult:
    scan_id: int | None
    mode: ScanMode
    sample_size: int
    started: datetime
    finished: datetime
    stores: tuple[StoreResult, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(p for s in self.stores for p in s.problems)


class Severity(enum.Enum):
    """How bad a failing check is. Ordered: ``Severity.HIGH > Severity.MEDIUM``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def __lt__(self, other: Severity) -> bool:
        return self.rank < other.rank

    def __le__(self, other: Severity) -> bool:
        return self.rank <= other.rank

    def raised(self) -> Severity:
        """One level up (a store holding customer data makes every gap worse)."""
        return list(Severity)[min(self.rank + 1, len(Severity) - 1)]


class Vantage(enum.Enum):
    OUTSIDE = "outside"  # no credentials: what an attacker who reaches the port can do
    INSIDE = "inside"  # with the store's configured credentials: its effective configuration


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # the check could not decide (unreachable, refused, garbage): never silently a pass
    # The protocol does not exist on this engine variant (FerretDB has no bind setting of its own, an S3
    # gateway has no logging API): decided, with its reason, and never counted as a failure.
    NOT_APPLICABLE = "not-applicable"

    @property
    def decided(self) -> bool:
        """Whether the store was held to the protocol (pass or fail): errors and not-applicable prove neither."""
        return self in (Status.PASS, Status.FAIL)


@dataclass(frozen=True)
class Finding:
    """One check's result on one store. ``evidence`` describes settings and behaviour, never data."""

    check: str
    store: str
    status: Status
    severity: Severity
    vantage: Vantage
    title: str
    evidence: str
    pii_types: tuple[str, ...] = ()
    subjects_estimate: int | None = None
    data_context: str = ""
    waiver: str = ""  # set when an unexpired policy waiver accepts this failure


@dataclass(frozen=True)
class Transition:
    """A finding whose status changed (``before`` is None the first time a check runs on a store).
    ``decided`` is the last pass or fail before this change (errors and not-applicable skipped), so
    fail → error → fail is seen as one failure that never ended."""

    event_id: int
    finding: Finding
    before: Status | None
    at: str
    decided: Status | None = None


@dataclass(frozen=True)
class Alert:
    """What a sink receives: names and counts only, never a data value. ``dedupe_key`` is unique per
    transition, so a receiver can drop a repeat after a crash between sending and recording."""

    dedupe_key: str
    event: str  # opened | resolved
    store: str
    check: str
    severity: Severity
    at: str
    title: str
    evidence: str
    pii_types: tuple[str, ...] = ()
    subjects_estimate: int | None = None

    def payload(self) -> dict[str, object]:
        return {"event": self.event, "store": self.store, "check": self.check, "severity": self.severity.value,
                "at": self.at, "title": self.title, "evidence": self.evidence, "pii_types": list(self.pii_types),
                "subjects_estimate": self.subjects_estimate, "dedupe_key": self.dedupe_key}


@dataclass(frozen=True)
class Exposure:
    """A store's exposure window: from the first failing outside probe to the first passing one."""

    id: int
    store: str
    opened_at: str
    closed_at: str | None
    checks: str
    pii_types: tuple[str, ...]
    subjects_estimate: int | None
