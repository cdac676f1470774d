"""The copy pipeline: source ─► classify ─► mask plan ─► target passes its checks? ─► write ─► register.

:func:`plan_copy` reads nothing but a sample (to classify the source collection) and the target's
checks, and changes nothing: ``piiguard copy --plan`` prints it. :func:`run_copy` streams the source in
batches through one DuckDB query per batch (the masking plan compiled to SQL), into the target's
staging, and swaps it in at the end; the copy is registered in the catalog before the first write,
so even a crash leaves a trace (status ``writing``, then ``failed``; ``interrupted`` when the process
was killed, marked by the next piiguard that opens the catalog).

A target that exists and is not a piiguard copy of the same source is refused unless the plan says
``replace`` (``--replace``); see :mod:`piiguard.masking.ownership`.

The per-copy key is given by reference (an environment variable or a file), must hold at least 16
bytes, and never leaves this process: the catalog keeps its id, an HMAC of a fixed label under the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piiguard import plugins, safefile
from piiguard.catalog import Catalog
from piiguard.checker import run_checks
from piiguard.classify.engine import CUSTOMER_ID, Classifier
from piiguard.config import Config
from piiguard.connectors.base import Connector, connectors, shown_collections
from piiguard.connectors.labels import label
from piiguard.errors import ConfigError, CopyRefused, StoreError, UsageError
from piiguard.masking.maskers import DEFAULTS, SECRETS, Masker, maskers
from piiguard.masking.ownership import (
    Ownership,
    TargetState,
    live_made,
    live_objects,
    ownership,
    refuse_foreign,
    target_url,
)
from piiguard.masking.targets import Writer, writers
from piiguard.model import CollectionInfo, Finding, Severity, Status, Store
from piiguard.registry import driver
from piiguard.scanner import classify_collection, prefetched

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # imported on first use: starting the CLI must not load every engine's driver
    duckdb = driver("duckdb")
    np = driver("numpy")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")

MIN_KEY_BYTES = 16
BATCH_ROWS = 100_000
BLOCKING = Severity.HIGH  # a target check at or above this that fails or errors refuses the copy
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
    target_owner: Ownership | None = None  # who made what is at the target (None: not looked at)
    replace: bool = False                  # --replace: a target piiguard did not make may be replaced

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
    """The copy key from its reference; refuses short keys, inline values, and a key file its group or
    others can read (as ssh does: a key anyone on the host can read protects nothing)."""
    if bool(env) == bool(path):
        raise UsageError("give the copy key by reference: --key-env VAR or --key-file PATH (one of them)")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise UsageError(f"the key variable {env} is not set")
        raw = value.encode()
    else:
        raw = safefile.read_key(Path(str(path)), "copy key")
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
    return dataclasses.asdict(masker.options)


def find_collection(connector: Connector, name: str) -> CollectionInfo:
    """The collection a name (as the catalog and the scan show it, a :func:`label`) stands for; a raw name
    given by the operator is matched too. An error or hint names collections by their labels only."""
    shown = shown_collections(connector.collections())
    if name in shown:
        return shown[name]
    exact = [i for i in shown.values() if i.name == name]
    short = [i for s, i in shown.items() if s.rsplit(".", 1)[-1] == name or i.name.rsplit(".", 1)[-1] == name]
    found = exact or short
    if len(found) != 1:
        known = ", ".join(list(shown)[:10])
        name = label(name)
        raise UsageError(f"{connector.store.name} has {'no' if not found else 'several'} collection(s) named "
                         f"{name!r}", hint=f"collections: {known}")
    return found[0]


def plan_copy(source: Store, source_collection: str, target: Store, target_collection: str, *,
              config: Config | None = None, accepted_risk: str = "", sample_size: int = 2000,
              timeout: float = 10.0, catalog: Catalog | None = None, replace: bool = False) -> CopyPlan:
    """Classify the source collection, derive the masking rules, run the target's checks, and look at
    what is at the target (with ``catalog``: whether it is a piiguard copy of this source). Writes nothing."""
    plugins.load()
    if target.engine not in writers:
        raise UsageError(f"piiguard cannot write copies to {target.engine} stores yet",
                         hint=f"targets: {', '.join(writers.names())}")
    if config is not None:  # policy's require_tls, also for stores given as URLs or objects
        source, target = config.policy.stamp(source), config.policy.stamp(target)
    writer = writers.get(target.engine)(target, target_collection, timeout=timeout)
    writer.validate()  # a hostile name is refused before the source is even read
    classifier = Classifier(plugins.detectors_for(config.detectors if config else ()))
    with connectors.get(source.engine)(source, timeout=timeout) as connector:
        info = find_collection(connector, source_collection)
        columns = connector.columns(info)
        result = classify_collection(connector, info, classifier, sample_size, config.classify if config else None)
    types = {f.field: f.pii_type for f in result.fields}
    key = f"{source.name}.{info.name}"
    overrides = dict((config.masking if config else {}).get(key, {}))
    rules = mask_rules(columns, types, overrides, f"masking.{key}")
    subject = next((r.field for t in (CUSTOMER_ID, "email") for r in rules if r.pii_type == t and r.copied), None)
    checks = run_checks([target], config=config, timeout=min(timeout, 5.0), record=False).findings
    # A blocking check the target could not be held to (it errored) refuses the copy as a failure does:
    # a target that cannot be verified is not a target that passed.
    blocking = tuple(f for f in checks if f.status in (Status.FAIL, Status.ERROR) and not f.waiver
                     and f.severity >= BLOCKING)
    try:
        owner = ownership(catalog, writer, source, info.name) if catalog is not None else None
    except StoreError as exc:  # an unreachable target is already a failing check; the plan still prints
        owner = Ownership(TargetState.UNKNOWN, None, error=exc.detail)
    return CopyPlan(source, info.name, target, target_collection, rules, tuple(checks), blocking,
                    info.rows_estimate, subject, accepted_risk, target_owner=owner, replace=replace)


def _engine(key: bytes) -> duckdb.DuckDBPyConnection:
    """A DuckDB session holding the key's HMAC pads and the fake-name lists as variables."""
    from faker.providers.person.en_US import Provider

    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    con = duckdb.connect(config={"threads": "1", "memory_limit": "512MB"})
    con.execute("SET VARIABLE piiguard_ipad = ?::BLOB", [bytes(b ^ 0x36 for b in block)])
    con.execute("SET VARIABLE piiguard_opad = ?::BLOB", [bytes(b ^ 0x5C for b in block)])
    first, last = list(Provider.first_names), list(Provider.last_names)
    con.execute("SET VARIABLE piiguard_first = ?::VARCHAR[]", [first])
    con.execute("SET VARIABLE piiguard_last = ?::VARCHAR[]", [last])
    con.execute(f"SET VARIABLE piiguard_nfirst = {len(first)}")
    con.execute(f"SET VARIABLE piiguard_nlast = {len(last)}")
    return con


class BatchMasker:
    """Masks record batches column by column. Each column is dictionary-encoded first, so a masker
    runs once per distinct value of the batch (names, SSIDs and plans repeat a lot), then the masked
    dictionary is expanded again. Columns run side by side on ``threads`` DuckDB sessions (DuckDB
    releases the GIL), each holding the key's pads."""

    def __init__(self, rules: Sequence[FieldRule], key: bytes, subject_field: str | None, threads: int) -> None:
        self.kept = [r for r in rules if r.copied]
        self.sql = {r.field: maskers.get(r.masker).parse(r.options, r.field).sql('"v"') for r in self.kept}
        self.subject_field, self.key = subject_field, key
        self.local = threading.local()
        self.sessions: list[duckdb.DuckDBPyConnection] = []
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="piiguard-mask")

    def _session(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self.local, "con", None)
        if con is None:
            con = self.local.con = _engine(self.key)
            self.sessions.append(con)
        return con

    def _run(self, expression: str, values: pa.Array) -> pa.Array:
        con = self._session()
        con.register("batch", pa.table({"v": values}))
        try:
            return con.sql(f"SELECT {expression} AS v FROM batch").to_arrow_table().column(0).combine_chunks()
        finally:
            con.unregister("batch")

    def _column(self, field: str, values: pa.Array) -> pa.Array:
        expression = self.sql[field]
        if expression == '"v"':
            return values  # keep
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            # a document path through arrays: each item masked as a value of the field would be, the
            # lists' lengths and their nulls (of lists and of items) kept
            items = self._column(field, values.flatten())
            offsets = pc.subtract(values.offsets, values.offsets[0])
            return type(values).from_arrays(offsets, items, mask=values.is_null())
        encoded = pc.dictionary_encode(values)
        return pc.take(self._run(expression, encoded.dictionary), encoded.indices)

    def _subjects(self, values: pa.Array) -> np.ndarray[Any, Any]:
        """DuckDB's 64-bit hash of each distinct subject value, kept in memory only to count people."""
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = values.flatten()  # several people in one record (members[].email)
        distinct = pc.unique(values.filter(pc.is_valid(values)))
        hashes: np.ndarray[Any, Any] = self._run('hash("v")', distinct).to_numpy()
        return hashes

    def __call__(self, batch: pa.RecordBatch) -> tuple[pa.Table, np.ndarray[Any, Any] | None]:
        jobs = [self.pool.submit(self._column, r.field, batch.column(r.field)) for r in self.kept]
        subject = (self.pool.submit(self._subjects, batch.column(self.subject_field))
                   if self.subject_field is not None else None)
        table = pa.table({r.field: job.result() for r, job in zip(self.kept, jobs, strict=True)})
        return table, (subject.result() if subject is not None else None)

    def close(self) -> None:
        self.pool.shutdown()
        for con in self.sessions:
            con.close()


def run_copy(plan: CopyPlan, key: bytes, catalog: Catalog, *, owner: str, purpose: str, expires: date,
             progress: Callable[[int], None] | None = None, batch_rows: int = BATCH_ROWS,
             timeout: float = 30.0, write_timeout: float | None = None) -> CopyResult:
    """Write the masked copy and register it. Refuses a plan whose target failed a blocking check
    unless the risk was accepted (the reason is recorded with the copy). ``timeout`` bounds connecting
    and every exchange; ``write_timeout`` (default: at least 30 s) one batch's bulk write."""
    if plan.refused:
        names = ", ".join(f"{f.check} ({f.severity.value})" for f in plan.blocking)
        raise CopyRefused(f"the target {plan.target.name} fails or could not be held to {names}",
                          hint="fix the target, or pass --accept-risk \"reason\" (recorded with the copy)")
    kept = [r for r in plan.rules if r.copied]
    if not kept:
        raise UsageError("no field would be copied: every one is denied", hint="allow fields in masking: (keep)")
    writer = writers.get(plan.target.engine)(plan.target, plan.target_collection, timeout=timeout,
                                             write_timeout=write_timeout)
    writer.validate()
    held = ownership(catalog, writer, plan.source, plan.source_collection)  # now, not when it was planned
    if held.state is TargetState.FOREIGN and not plan.replace:
        raise refuse_foreign(plan.target, plan.target_collection)
    writer.expected, writer.owned = held.identity, held.state is TargetState.OURS
    writer.ours = live_made(catalog, plan.target)
    started = time.monotonic()
    copy_id = catalog.add_copy({
        "source_store": plan.source.name, "source_collection": plan.source_collection,
        "target_store": plan.target.name, "target_engine": plan.target.engine,
        "target_url": target_url(plan.target), "source_url": target_url(plan.source),
        "target_collection": plan.target_collection,
        "transforms": {r.field: {"masker": r.masker, "options": dict(r.options), "pii_type": r.pii_type,
                                 "reason": r.reason} for r in plan.rules},
        "key_id": key_id(key), "owner": owner, "purpose": purpose, "expires": expires.isoformat(),
        "accepted_risk": plan.accepted_risk})
    masker = BatchMasker(plan.rules, key, plan.subject_field, threads=os.cpu_count() or 2)
    rows, subjects = 0, []
    try:
        with connectors.get(plan.source.engine)(plan.source, timeout=timeout) as connector:
            info = find_collection(connector, plan.source_collection)
            writer.begin([r.field for r in kept], str(copy_id))
            # recorded before the first row: a copy killed from here on leaves exactly these behind
            catalog.set_copy_objects(copy_id, [o.to_json() for o in writer.staged()])
            # read (a thread ahead) ─► mask (a thread per core) ─► write (a thread behind): one batch each
            with ThreadPoolExecutor(1, thread_name_prefix="piiguard-write") as output:
                pending: Future[None] | None = None
                for batch in prefetched(connector.read(info, [r.field for r in plan.rules], batch_rows)):
                    masked, people = masker(batch)
                    if people is not None:
                        subjects.append(people)
                    if pending is not None:
                        pending.result()
                    pending = output.submit(_write, writer, masked if writer.native_lists else as_text(masked))
                    rows += masked.num_rows
                    if progress is not None:
                        progress(masked.num_rows)
                if pending is not None:
                    pending.result()
            writer.commit()
    except BaseException as exc:
        try:
            writer.abort()
            left: list[dict[str, str]] | None = []
        except Exception:  # the first error is the one to raise; the staging stays recorded for expire
            left = None
        catalog.finish_copy(copy_id, "failed", rows=rows, note=_failure(exc), objects=left)
        raise
    finally:
        masker.close()
    count = int(np.unique(np.concatenate(subjects)).size) if subjects else None
    # the copies whose object this one replaced end with it (their expiry must not touch the new one)
    replaced = live_objects(catalog, plan.target, but=copy_id).get(held.identity or "", [])
    catalog.finish_copy(copy_id, "active", rows=rows, subjects=count,
                        objects=[o.to_json() for o in writer.created], replaced=replaced)
    return CopyResult(copy_id, rows, count, time.monotonic() - started)


def as_text(table: pa.Table) -> pa.Table:
    """List columns (document paths through arrays) as JSON text arrays (``["a","b",null]``), for
    targets whose columns are text; other columns as they are."""
    for i, column in enumerate(table.columns):
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            text = [None if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":"))
                    for v in column.to_pylist()]
            table = table.set_column(i, table.field(i).name, pa.array(text, pa.string()))
    return table


def _write(writer: Writer, table: pa.Table) -> None:
    for batch in table.to_batches():
        writer.write(batch)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return exc.detail
    return type(exc).__name__  # never the message: a driver's text can quote row data


__all__ = ["BatchMasker", "CopyPlan", "CopyResult", "FieldRule", "as_text", "find_collection", "key_from", "key_id",
           "mask_rules", "plan_copy", "run_copy"]
