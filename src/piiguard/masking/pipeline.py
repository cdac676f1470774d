"""The copy pipeline: source ─► classify ─► mask plan ─► target passes its checks? ─► write ─► register.

:func:`plan_copy` reads nothing but a sample (to classify the source collection) and the target's
checks, and changes nothing: ``piiguard copy --plan`` prints it. :func:`run_copy` streams the source in
batches through one DuckDB query per batch (the masking plan compiled to SQL), into the target's
staging, and swaps it in at the end; the copy is registered in the catalog before the first write,
so even a crash leaves a trace (status ``writing``, then ``failed``).

The per-copy key is given by reference (an environment variable or a file), must hold at least 16
bytes, and never leaves this process: the catalog keeps its id, an HMAC of a fixed label under the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.checker import run_checks
from piiguard.classify.engine import CUSTOMER_ID, Classifier
from piiguard.config import Config
from piiguard.connectors.base import Connector, connectors
from piiguard.errors import ConfigError, CopyRefused, StoreError, UsageError
from piiguard.masking.maskers import DEFAULTS, SECRETS, Drop, Masker, maskers
from piiguard.masking.targets import writers
from piiguard.model import CollectionInfo, Finding, Severity, Status, Store
from piiguard.scanner import classify_collection, prefetched

MIN_KEY_BYTES = 16
BATCH_ROWS = 100_000
BLOCKING = Severity.HIGH  # a failing target check at or above this refuses the copy
KEY_ID_LABEL = b"piiguard copy key id"


@dataclass(frozen=True)
class FieldRule:
    field: str
    pii_type: str | None
    masker: str
    options: Mapping[str, Any]
    reason: str

    @property
    def copied(self) -> bool:
        return maskers.get(self.masker).keeps_column


@dataclass(frozen=True)
class CopyPlan:
    source: Store
    source_collection: str
    target: Store
    target_collection: str
    rules: tuple[FieldRule, ...]
    target_findings: tuple[Finding, ...]
    blocking: tuple[Finding, ...]
    rows_estimate: int | None
    subject_field: str | None
    accepted_risk: str = ""
    waivers: tuple[str, ...] = field(default=())

    @property
    def refused(self) -> bool:
        return bool(self.blocking) and not self.accepted_risk


@dataclass(frozen=True)
class CopyResult:
    copy_id: int
    rows: int
    subjects: int | None
    seconds: float


def key_from(env: str | None, path: str | None) -> bytes:
    """The copy key from its reference; refuses short keys and inline values."""
    if bool(env) == bool(path):
        raise UsageError("give the copy key by reference: --key-env VAR or --key-file PATH (one of them)")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise UsageError(f"the key variable {env} is not set")
        raw = value.encode()
    else:
        try:
            raw = Path(str(path)).read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the key file {path} ({exc.strerror})") from exc
    if len(raw) < MIN_KEY_BYTES:
        raise UsageError(f"the copy key must hold at least {MIN_KEY_BYTES} bytes",
                         hint="e.g. openssl rand -hex 32 > copy.key")
    return raw


def key_id(key: bytes) -> str:
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def mask_rules(columns: Sequence[str], types: Mapping[str, str | None], overrides: Mapping[str, Any],
               where: str) -> tuple[FieldRule, ...]:
    """Each top-level column's rule: the configuration's, else the PII type's default, else deny.

    ``types`` maps field paths to PII types (JSON sub-paths such as ``profile.email`` included);
    ``overrides`` is the configuration's ``masking: {store.collection: {field: …}}`` entry.
    """
    unknown = sorted(set(overrides) - set(columns))
    if unknown:
        raise ConfigError([f"{where}.{f}: no such column in the source" for f in unknown])
    rules = []
    for col in columns:
        nested = sorted({t for f, t in types.items() if t and f != col and (f.startswith(f"{col}.")
                                                                           or f.startswith(f"{col}["))})
        pii = types.get(col) or (nested[0] if len(nested) == 1 else None)
        secret: set[str] = {t for t in (pii, *nested) if t in SECRETS}
        raw = overrides.get(col)
        if raw is not None:
            spec = {"mask": raw} if isinstance(raw, str) else dict(raw)
            name = str(spec.pop("mask", ""))
            waiver = str(spec.pop("waiver", "") or "")
            if name not in maskers:
                known = ", ".join(maskers.names())
                raise ConfigError([f"{where}.{col}.mask: unknown masker {name!r} (known: {known})"])
            masker = maskers.get(name).parse(spec, f"{where}.{col}")
            if secret and name != "drop" and not waiver:
                raise ConfigError([f"{where}.{col}: holds {', '.join(sorted(secret))}, which is never copied; "
                                   "overriding needs waiver: <reason>"])
            reason = f"configured{f' (waiver: {waiver})' if waiver else ''}"
            rules.append(FieldRule(col, pii, name, _options(masker), reason))
        elif secret:
            rules.append(FieldRule(col, pii, "drop", {}, f"holds {', '.join(sorted(secret))}: never copied"))
        elif nested and types.get(col) is None:
            rules.append(FieldRule(col, None, "drop", {}, f"a document holding {', '.join(nested)}: dropped "
                                   "(allow it with a masker, e.g. keep or redact-text)"))
        elif pii in DEFAULTS:
            name, options = DEFAULTS[pii]
            rules.append(FieldRule(col, pii, name, options, f"classified {pii}"))
        elif pii is not None:
            rules.append(FieldRule(col, pii, "drop", {}, f"classified {pii}: no default masker, dropped"))
        else:
            rules.append(FieldRule(col, None, "drop", {}, "not recognised: denied by default (allow it with keep)"))
    return tuple(rules)


def _options(masker: Masker) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(masker.options)


def _collection(connector: Connector, name: str) -> CollectionInfo:
    infos = connector.collections()
    exact = [i for i in infos if i.name == name]
    short = [i for i in infos if i.name.rsplit(".", 1)[-1] == name]
    found = exact or short
    if len(found) != 1:
        known = ", ".join(i.name for i in infos[:10])
        raise UsageError(f"{connector.store.name} has {'no' if not found else 'several'} collection(s) named "
                         f"{name!r}", hint=f"collections: {known}")
    return found[0]


def plan_copy(source: Store, source_collection: str, target: Store, target_collection: str, *,
              config: Config | None = None, accepted_risk: str = "", sample_size: int = 2000,
              timeout: float = 10.0) -> CopyPlan:
    """Classify the source collection, derive the masking rules, run the target's checks. Writes nothing."""
    plugins.load()
    if target.engine not in writers:
        raise UsageError(f"piiguard cannot write copies to {target.engine} stores yet",
                         hint=f"targets: {', '.join(writers.names())}")
    classifier = Classifier(plugins.detectors_for(config.detectors if config else ()))
    with connectors.get(source.engine)(source, timeout=timeout) as connector:
        info = _collection(connector, source_collection)
        columns = connector.columns(info)
        result = classify_collection(connector, info, classifier, sample_size)
    types = {f.field: f.pii_type for f in result.fields}
    key = f"{source.name}.{info.name}"
    overrides = dict((config.masking if config else {}).get(key, {}))
    rules = mask_rules(columns, types, overrides, f"masking.{key}")
    subject = next((r.field for t in (CUSTOMER_ID, "email") for r in rules if r.pii_type == t and r.copied), None)
    checks = run_checks([target], config=config, timeout=min(timeout, 5.0), record=False).findings
    blocking = tuple(f for f in checks if f.status is Status.FAIL and not f.waiver and f.severity >= BLOCKING)
    return CopyPlan(source, info.name, target, target_collection, rules, tuple(checks), blocking,
                    info.rows_estimate, subject, accepted_risk)


def _engine(key: bytes) -> duckdb.DuckDBPyConnection:
    """A DuckDB session holding the key's HMAC pads and the fake-name lists as variables."""
    from faker.providers.person.en_US import Provider

    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    con = duckdb.connect(config={"threads": str(os.cpu_count() or 2), "memory_limit": "1GB"})
    con.execute("SET VARIABLE piiguard_ipad = ?::BLOB", [bytes(b ^ 0x36 for b in block)])
    con.execute("SET VARIABLE piiguard_opad = ?::BLOB", [bytes(b ^ 0x5C for b in block)])
    first, last = list(Provider.first_names), list(Provider.last_names)
    con.execute("SET VARIABLE piiguard_first = ?::VARCHAR[]", [first])
    con.execute("SET VARIABLE piiguard_last = ?::VARCHAR[]", [last])
    con.execute(f"SET VARIABLE piiguard_nfirst = {len(first)}")
    con.execute(f"SET VARIABLE piiguard_nlast = {len(last)}")
    return con


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


SUBJECT = "__piiguard_subject"


def masking_sql(rules: Sequence[FieldRule], subject_field: str | None = None) -> str:
    """One SELECT over the batch; with ``subject_field``, also DuckDB's 64-bit hash of it (counted in
    memory to register how many people the copy holds, never written)."""
    exprs = [f"{maskers.get(r.masker).parse(r.options, r.field).sql(_q(r.field))} AS {_q(r.field)}"
             for r in rules if r.copied]
    if subject_field is not None:
        exprs.append(f"hash({_q(subject_field)}) AS {SUBJECT}")
    return f"SELECT {', '.join(exprs)} FROM batch"


def run_copy(plan: CopyPlan, key: bytes, catalog: Catalog, *, owner: str, purpose: str, expires: date,
             progress: Callable[[int], None] | None = None, batch_rows: int = BATCH_ROWS,
             timeout: float = 30.0) -> CopyResult:
    """Write the masked copy and register it. Refuses a plan whose target failed a blocking check
    unless the risk was accepted (the reason is recorded with the copy)."""
    import time

    if plan.refused:
        names = ", ".join(f"{f.check} ({f.severity.value})" for f in plan.blocking)
        raise CopyRefused(f"the target {plan.target.name} fails {names}",
                          hint="fix the target, or pass --accept-risk \"reason\" (recorded with the copy)")
    kept = [r for r in plan.rules if r.copied]
    if not kept:
        raise UsageError("no field would be copied: every one is denied", hint="allow fields in masking: (keep)")
    started = time.monotonic()
    copy_id = catalog.add_copy({
        "source_store": plan.source.name, "source_collection": plan.source_collection,
        "target_store": plan.target.name, "target_engine": plan.target.engine,
        "target_collection": plan.target_collection,
        "transforms": {r.field: {"masker": r.masker, "options": dict(r.options), "pii_type": r.pii_type,
                                 "reason": r.reason} for r in plan.rules},
        "key_id": key_id(key), "owner": owner, "purpose": purpose, "expires": expires.isoformat(),
        "accepted_risk": plan.accepted_risk})
    writer = writers.get(plan.target.engine)(plan.target, plan.target_collection, timeout=timeout)
    query = masking_sql(plan.rules, plan.subject_field)
    rows, subjects = 0, []
    try:
        with connectors.get(plan.source.engine)(plan.source, timeout=timeout) as connector, _engine(key) as con:
            info = _collection(connector, plan.source_collection)
            writer.begin([r.field for r in kept], str(copy_id))
            for batch in prefetched(connector.read(info, [r.field for r in plan.rules], batch_rows)):
                con.register("batch", pa.Table.from_batches([batch]))
                masked = con.sql(query).to_arrow_table()
                con.unregister("batch")
                if plan.subject_field is not None:
                    ids = masked.column(SUBJECT)
                    subjects.append(ids.filter(pc.is_valid(ids)).to_numpy())
                    masked = masked.drop_columns([SUBJECT])
                for out in masked.to_batches():
                    writer.write(out)
                rows += masked.num_rows
                if progress is not None:
                    progress(masked.num_rows)
            writer.commit()
    except BaseException as exc:
        writer.abort()
        catalog.finish_copy(copy_id, "failed", rows=rows, note=_failure(exc))
        raise
    count = int(np.unique(np.concatenate(subjects)).size) if subjects else None
    catalog.finish_copy(copy_id, "active", rows=rows, subjects=count)
    return CopyResult(copy_id, rows, count, time.monotonic() - started)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return exc.detail
    return type(exc).__name__  # never the message: a driver's text can quote row data


__all__ = ["CopyPlan", "CopyResult", "Drop", "FieldRule", "key_from", "key_id", "mask_rules", "plan_copy", "run_copy"]
