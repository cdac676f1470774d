"""Scan: for each store, list its collections, read a sample (or everything), classify every field,
estimate how many people the store holds, and record it all in the catalog.

A failing store or collection becomes a :class:`Problem` on the result and the scan goes on; the
caller decides the exit code. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from queue import Empty, Queue
from typing import Protocol, TypeVar

from piiguard import plugins
from piiguard.catalog import Catalog
from piiguard.catalog.owners import RunStatus
from piiguard.classify.engine import CUSTOMER_ID, Classifier, FieldState
from piiguard.classify.groups import judge
from piiguard.classify.settings import ClassifySettings
from piiguard.config import Config, store_from_url
from piiguard.connectors.base import Batch, Connector, connectors, shown_collections
from piiguard.connectors.labels import label
from piiguard.errors import PiiguardError, StoreError, UsageError
from piiguard.model import (
    CollectionInfo,
    CollectionResult,
    Estimate,
    Problem,
    ProblemKind,
    ScanMode,
    ScanResult,
    Store,
    StoreResult,
    Subjects,
)
from piiguard.system import system_collection

DEFAULT_SAMPLE = 1000
BATCH_ROWS = 50_000
SUBJECT_TYPES = (CUSTOMER_ID, "email")
MAX_FIELDS = 10_000  # distinct field paths classified per collection; more are counted as a problem


class Progress(Protocol):
    """What a scan reports while it runs (the CLI draws bars from it)."""

    def collection_started(self, store: str, collection: str, total: int | None) -> None: ...

    def advanced(self, rows: int) -> None: ...

    def collection_finished(self) -> None: ...


class NoProgress:
    def collection_started(self, store: str, collection: str, total: int | None) -> None:
        pass

    def advanced(self, rows: int) -> None:
        pass

    def collection_finished(self) -> None:
        pass


@dataclass(frozen=True)
class ScanOptions:
    mode: ScanMode = ScanMode.SAMPLE
    sample_size: int = DEFAULT_SAMPLE
    batch_rows: int = BATCH_ROWS
    timeout: float = 10.0


def resolve_stores(targets: Sequence[str], config: Config | None) -> list[Store]:
    """Store names from the configuration, or URLs; no targets means every configured store."""
    if not targets:
        if config is None or not config.stores:
            raise UsageError("nothing to scan", hint="name stores from piiguard.yaml or give store URLs")
        return list(config.stores)
    out = []
    for t in targets:
        store = config.store(t) if config is not None else None
        if store is None and "://" in t:
            store = store_from_url(t)
        if store is None:
            raise UsageError(f"unknown store {t!r}", hint="give a store name from the configuration or a URL")
        out.append(store)
    return out


def _classify_collection(
    connector: Connector, classifier: Classifier, info: CollectionInfo, options: ScanOptions, progress: Progress,
    pool: ThreadPoolExecutor, shown: str | None = None, settings: ClassifySettings | None = None,
) -> tuple[CollectionResult, dict[str, FieldState], list[Problem]]:
    """Read and classify one collection; ``shown`` is its name as output (a :func:`label`); the
    overrides of ``settings`` (the ``classify:`` section) have the last word.

    What the reader skipped or why it stopped becomes a problem on the collection, with the counts:
    the rows that were read are still classified and recorded."""
    store = connector.store.name
    shown = label(info.name) if shown is None else shown
    states: dict[str, FieldState] = {}
    rows = 0
    skipped: dict[str, int] = {}
    stopped: list[str] = []
    beyond: set[str] = set()  # field paths past MAX_FIELDS

    def feed(batch: Batch) -> None:
        nonlocal rows
        rows += batch.rows
        for reason, count in batch.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
        if batch.stopped is not None and batch.stopped not in stopped:
            stopped.append(batch.stopped)
        for name in batch.columns:
            if name not in states and name not in beyond:
                if len(states) < MAX_FIELDS:
                    states[name] = classifier.new_state(name)
                else:
                    beyond.add(name)  # their names only, to count them; never their values
        # Fields are independent; Arrow and Hyperscan release the GIL, so they run side by side.
        list(pool.map(lambda item: classifier.observe(states[item[0]], item[1], batch.types.get(item[0])),
                      [(n, a) for n, a in batch.columns.items() if n in states]))
        for name, note in batch.notes.items():
            for st in states.values() if name == "*" else [states[name]] if name in states else []:
                if note not in st.notes:
                    st.notes.append(note)
        progress.advanced(batch.rows)

    if options.mode is ScanMode.SAMPLE:
        progress.collection_started(store, shown, min(options.sample_size, info.rows_estimate or
                                                      options.sample_size))
        feed(connector.sample(info, options.sample_size))
    else:
        progress.collection_started(store, shown, info.rows_estimate)
        for batch in prefetched(connector.batches(info, options.batch_rows)):
            feed(batch)
    fields = [classifier.decide(st, store, shown) for st in states.values()]
    fields = judge(fields, states, info.primary_key)
    if settings is not None:
        fields = settings.apply(fields)
    if rows == 0 and skipped:  # nothing was read: say so, not "the rest was classified"
        problems = [Problem(ProblemKind.COLLECTION, store, f"no row could be read: {count:,} {reason} skipped", shown,
                            "nothing in it was classified; check the file's format (for a CSV, its delimiter: "
                            "set the store option delimiter) or repair or re-export the data")
                    for reason, count in sorted(skipped.items())]
    else:
        problems = [Problem(ProblemKind.COLLECTION, store, f"{count:,} {reason} skipped; {rows:,} row(s) read",
                            shown, "the rest was classified; repair or re-export the data to have it all read")
                    for reason, count in sorted(skipped.items())]
    problems += [Problem(ProblemKind.COLLECTION, store, f"reading stopped: {why}; {rows:,} row(s) read before it",
                         shown, "the rows before it were classified; repair or re-export the data")
                 for why in stopped]
    if beyond:
        problems.append(Problem(ProblemKind.COLLECTION, store, f"{len(beyond):,} field path(s) beyond the first "
                                f"{MAX_FIELDS:,} not classified", shown,
                                "documents keyed by values make a field per key; scan a collection of fewer shapes"))
    result = CollectionResult(shown, info.rows_estimate, info.rows_estimate_kind, rows, tuple(fields))
    return result, states, problems


B = TypeVar("B")


def prefetched(batches: Iterator[B]) -> Iterator[B]:
    """Read the next batch in a background thread while this one is classified, or masked and
    written (one batch ahead, so memory stays bounded). Errors from the reader are raised here, in order."""
    queue: Queue[tuple[B | None, BaseException | None]] = Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                queue.put((batch, None))
            queue.put((None, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put((None, exc))

    reader = threading.Thread(target=read, name="piiguard-reader", daemon=True)
    reader.start()
    try:
        while True:
            batch, error = queue.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put, then let it finish
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        reader.join()


COUNTED_FIELDS = 3


def _subjects(connector: Connector, infos: dict[str, CollectionInfo], results: list[CollectionResult],
              states: dict[str, dict[str, FieldState]]) -> Subjects | None:
    """Distinct people ≈ distinct values of the best identifying field (a customer key, else e-mail);
    the largest count over the store's collections (a lower bound of their union). System collections
    (an audit index) are recorded but are not the customers: never counted here."""
    best: Subjects | None = None
    for kind in SUBJECT_TYPES:
        for c in results:
            if system_collection(connector.store.engine, c.name):
                continue
            # At most COUNTED_FIELDS counts per collection: its fields of this kind with the most distinct
            # values in the sample (a wide export of 1,000 e-mail columns must not be read 1,000 times).
            fields = [f for f in c.fields if f.pii_type == kind]
            fields.sort(key=lambda f: states[c.name][f.field].stats_distinct, reverse=True)
            for f in fields[:COUNTED_FIELDS]:
                try:
                    counted = connector.distinct(infos[c.name], f.field)
                except StoreError:
                    counted = None  # no privilege or a timeout on the count: estimate from the sample
                if counted is None:
                    st = states[c.name][f.field]
                    ratio = st.stats_distinct / max(1, st.stats_seen)
                    total = (c.rows_estimate or c.rows_read) * st.non_null / max(1, c.rows_read)
                    counted = (round(ratio * total) if ratio >= 0.95 else st.stats_distinct, Estimate.SAMPLE)
                if best is None or counted[0] > best.estimate:
                    best = Subjects(counted[0], c.name, f.field, counted[1])
        if best is not None:
            return best
    return None


def classify_collection(connector: Connector, info: CollectionInfo, classifier: Classifier,
                        sample_size: int, settings: ClassifySettings | None = None) -> CollectionResult:
    """Sample and classify one collection of an open connector (a copy's plan starts here)."""
    options = ScanOptions(ScanMode.SAMPLE, sample_size, BATCH_ROWS, connector.timeout)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return _classify_collection(connector, classifier, info, options, NoProgress(), pool,
                                    settings=settings)[0]


# Driver exception classes that mean "the session is gone" (psycopg and PyMySQL OperationalError and
# InterfaceError, PyMongo AutoReconnect, the builtin ConnectionError): matched by name, so the scanner
# needs no driver imports. A retry of a collection whose error was something else costs one more try.
CONNECTION_LOST = frozenset({"OperationalError", "InterfaceError", "AutoReconnect", "ConnectionError",
                             "ConnectionFailure", "ConnectionTimeout"})


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the connection to the store was lost."""
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; a cycle is not followed forever
        if seen is None:
            return False
        if any(k.__name__ in CONNECTION_LOST for k in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reconnect(store: Store, options: ScanOptions, old: Connector) -> Connector:
    """A new session after the old one was lost: a restarted server takes a moment to accept again,
    so opening is tried for up to ``timeout`` seconds."""
    with contextlib.suppress(Exception):  # the old session is already broken; closing it may fail too
        old.close()
    deadline = time.monotonic() + max(options.timeout, 1.0)
    while True:
        connector = connectors.get(store.engine)(store, timeout=options.timeout)
        try:
            connector.open()
            return connector
        except StoreError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def scan_store(store: Store, classifier: Classifier, options: ScanOptions,
               progress: Progress | None = None, settings: ClassifySettings | None = None) -> StoreResult:
    """Scan one store; its failures become problems on the result.

    A collection whose read fails because the connection was lost (the server restarted, a proxy
    dropped the session) is tried once more on a new connection; a second failure is its problem."""
    progress = progress or NoProgress()
    problems: list[Problem] = []
    results: list[CollectionResult] = []
    states: dict[str, dict[str, FieldState]] = {}
    subjects: Subjects | None = None
    connector: Connector | None = None
    try:
        connector = connectors.get(store.engine)(store, timeout=options.timeout)
        connector.open()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            # by the name shown: labels made unique within a store, the same way on every read
            infos = shown_collections(connector.collections())
            for shown, info in infos.items():
                for attempt in (1, 2):
                    try:
                        result, states[shown], found = _classify_collection(connector, classifier, info, options,
                                                                            progress, pool, shown, settings)
                        results.append(result)
                        problems.extend(found)
                    except StoreError as exc:
                        if attempt == 1 and connection_lost(exc):
                            try:
                                connector = _reconnect(store, options, connector)
                            except StoreError as again:
                                problems.append(Problem(ProblemKind.COLLECTION, store.name,
                                                        f"{exc.detail}; the connection was lost and could not be "
                                                        "opened again", shown, again.hint))
                                raise
                            continue
                        detail = exc.detail + ("; failed again after reconnecting" if attempt == 2 else "")
                        problems.append(Problem(ProblemKind.COLLECTION, store.name, detail, shown, exc.hint))
                    except Exception as exc:  # one collection's crash must not lose the others
                        if os.environ.get("PIIGUARD_DEBUG"):
                            raise  # the CLI prints the traceback
                        # The type only: a reader's message can quote the value it choked on.
                        problems.append(Problem(ProblemKind.COLLECTION, store.name,
                                                f"could not be read: internal error ({type(exc).__name__})", shown,
                                                "the other collections were read; PIIGUARD_DEBUG=1 shows the "
                                                "traceback (check it for data values before sharing it)"))
                    finally:
                        progress.collection_finished()
                    break
            subjects = _subjects(connector, infos, results, states)
    except StoreError as exc:
        problems.append(Problem(ProblemKind.STORE, store.name, exc.detail,
                                None if exc.collection is None else label(exc.collection), exc.hint))
    except PiiguardError as exc:
        problems.append(Problem(ProblemKind.STORE, store.name, exc.message, None, exc.hint))
    except Exception as exc:  # last line of defence: a driver's surprise is this store's problem
        # only the class is kept: a driver's text can quote the data it choked on
        problems.append(Problem(ProblemKind.STORE, store.name,
                                f"the {store.engine} driver failed on this store's answer ({type(exc).__name__})",
                                None, "check the address and port: the peer may not be this engine"))
    finally:
        if connector is not None:
            with contextlib.suppress(Exception):  # a session lost mid-scan may fail to close as well
                connector.close()
    return StoreResult(store.name, store.engine, store.address, tuple(results), subjects, tuple(problems))


def without_canaries(result: StoreResult, catalog: Catalog) -> StoreResult:
    """The people estimate less the canaries planted in the collection it counts (``canary plant``): an
    exact count takes them off exactly; a sampled one extrapolates to the table's row count, which holds
    the planted rows too, so the same number comes off."""
    subjects = result.subjects
    if subjects is None:
        return result
    planted = sum(int(c["count"]) for c in catalog.canaries(status="planted")
                  if c["store"] == result.store and c["collection"] == subjects.collection)
    if not planted:
        return result
    return dataclasses.replace(result, subjects=dataclasses.replace(
        subjects, estimate=max(0, subjects.estimate - planted), canaries=planted))


def scan(targets: Sequence[str | Store] = (), *, config: Config | None = None,
         mode: ScanMode = ScanMode.SAMPLE, sample_size: int = DEFAULT_SAMPLE,
         catalog: Catalog | None = None, progress: Progress | None = None,
         batch_rows: int = BATCH_ROWS, timeout: float = 10.0) -> ScanResult:
    """Scan stores (names from ``config``, URLs, or :class:`Store` objects) and return the result.

    Records it in ``catalog`` when one is given. Never prints, never exits.
    """
    if sample_size < 1:
        raise UsageError("--sample must be at least 1")
    plugins.load()
    stores = [t for t in targets if isinstance(t, Store)]
    names = [t for t in targets if isinstance(t, str)]
    if names or not stores:
        stores += resolve_stores(names, config)
    classifier = Classifier(plugins.detectors_for(config.detectors if config else ()))
    options = ScanOptions(mode, sample_size, batch_rows, timeout)
    started = datetime.now(UTC)
    scan_id = catalog.start_scan(mode, sample_size) if catalog is not None else None
    results = []
    try:
        for store in stores:
            result = scan_store(store, classifier, options, progress, config.classify if config else None)
            if catalog is not None:
                result = without_canaries(result, catalog)
            if catalog is not None and scan_id is not None:
                catalog.record_store(scan_id, store, result)
            results.append(result)
    except BaseException as exc:  # the scan's row must not say "running" forever; the error goes on up
        if catalog is not None and scan_id is not None:
            catalog.end_scan(scan_id, RunStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED)
        raise
    out = ScanResult(scan_id, mode, sample_size, started, datetime.now(UTC), tuple(results))
    if catalog is not None:
        catalog.finish_scan(out)
    return out

