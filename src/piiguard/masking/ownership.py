"""Own only what you made: whether a copy's target may be replaced, and what an expired copy removes.

A target collection that exists is replaced only if it is, physically, the object a live piiguard
copy *of the same source* created (same table OID, index UUID or file inode, as the registry
recorded it); anything else — a table a person made, a copy of another source, a table dropped
and made again under the copy's name — is refused unless ``--replace`` is given.

``copies expire`` removes only the objects the expired copy recorded, only while each is still that
object, and never one another live copy recorded too: two copies into one target, the first one
expiring, leaves the second's data where it is. It also removes the staging a copy killed mid-write
left behind (recorded before its first row), under the same rule.

A copy's target is found by *where* it is — the URL the registry recorded when the copy was made
(engine, host, port, database or real path; never a password) — not by the store's name: a store
named like the copy's target but somewhere else is refused loudly, and a copy whose target is no
configured store is expired through its recorded URL (credentials by the engine's default reference).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from piiguard.catalog import Catalog
from piiguard.catalog.owners import RunStatus
from piiguard.config import store_from_url
from piiguard.errors import ConfigError, PiiguardError, StoreError, UsageError
from piiguard.masking.targets import CopyObject, Writer, writers
from piiguard.model import Store

# the URL scheme written for each engine (one of config.URL_SCHEMES)
_SCHEME = {"postgres": "postgresql", "files": "file"}


def target_url(store: Store) -> str:
    """Where ``store`` is, as a URL without credentials: ``postgresql://user@host:port/db``, ``file:///real/path``."""
    scheme = _SCHEME.get(store.engine, store.engine)
    if store.path is not None:
        return f"{scheme}://{os.path.realpath(store.path)}"
    user = f"{store.user}@" if store.user else ""
    return f"{scheme}://{user}{(store.host or 'localhost').lower()}:{store.port or ''}/{store.database or ''}"


def _place(url: str) -> str:
    """The part of a target URL that says where (the user name is who, not where)."""
    scheme, _, rest = url.partition("://")
    if rest.startswith("/"):
        return url
    return f"{scheme}://{rest.rpartition('@')[2] if '@' in rest.split('/', 1)[0] else rest}"


def same_place(copy: dict[str, Any], store: Store) -> bool:
    """Whether ``store`` is where ``copy`` was written (by the recorded URL; by name for copies
    registered before URLs were recorded)."""
    if copy.get("target_url"):
        return copy["target_engine"] == store.engine and _place(str(copy["target_url"])) == _place(target_url(store))
    return bool(copy["target_store"] == store.name)


def same_source(copy: dict[str, Any], source: Store) -> bool:
    """Whether ``copy`` was made from ``source``: by the recorded source URL (by name before it was recorded)."""
    if copy.get("source_url"):
        return _place(str(copy["source_url"])) == _place(target_url(source))
    return bool(copy["source_store"] == source.name)


class TargetMismatch(PiiguardError):
    """A configured store has the copy's target name but is somewhere else."""


def resolve_target(copy: dict[str, Any], stores: Sequence[Store]) -> Store | None:
    """The store ``copy`` was written to: a configured store at its recorded URL (its credentials),
    else the recorded URL itself. A configured store with the target's name but another address
    raises :class:`TargetMismatch`; ``None`` only for a copy registered without a URL whose store
    is not configured."""
    here = [s for s in stores if same_place(copy, s)]
    if here:
        return next((s for s in here if s.name == copy["target_store"]), here[0])
    if not copy.get("target_url"):
        return None
    named = next((s for s in stores if s.name == copy["target_store"]), None)
    if named is not None:
        raise TargetMismatch(f"copy {copy['id']}: the configured store {named.name!r} is at {target_url(named)}, "
                             f"but the copy was written to {copy['target_url']}: nothing removed",
                             hint="configure the copy's target under its address, or rename the other store")
    return store_from_url(str(copy["target_url"]), name=str(copy["target_store"]), where=f"copy {copy['id']}")


class TargetState(Enum):
    ABSENT = "absent"            # nothing there: the copy creates it
    OURS = "ours"                # a live piiguard copy of the same source: replaced by the new copy
    FOREIGN = "foreign"          # anything else: refused unless --replace
    UNKNOWN = "unknown"          # the target could not be asked (--plan only; the copy itself asks again)


FOREIGN_TEXT = "target exists and is not a piiguard copy of this source"


@dataclass(frozen=True)
class Ownership:
    state: TargetState
    identity: str | None               # what is at the target now (None: nothing)
    copies: tuple[int, ...] = ()       # the live copies whose recorded object that is
    error: str = ""                    # UNKNOWN: why

    def verdict(self, replace: bool) -> str:
        """One line for ``--plan``."""
        if self.state is TargetState.UNKNOWN:
            return f"could not look at the target ({self.error}): the copy looks again before writing"
        if self.state is TargetState.ABSENT:
            return "target does not exist: the copy creates it"
        if self.state is TargetState.OURS:
            return f"target is piiguard copy {', '.join(map(str, self.copies))} of this source: it is replaced"
        return f"{FOREIGN_TEXT}: " + ("would be replaced (--replace)" if replace else
                                      "would be refused / replaced with --replace")


def live_objects(catalog: Catalog, store: Store, *, but: int | None = None) -> dict[str, list[int]]:
    """Identity → the live (``active`` or ``writing``) copies into ``store`` that recorded it."""
    out: dict[str, list[int]] = {}
    for c in catalog.copies():
        if not same_place(c, store) or c["id"] == but or c["status"] not in (RunStatus.ACTIVE, RunStatus.WRITING):
            continue
        for o in c["objects"]:
            out.setdefault(str(o["id"]), []).append(int(c["id"]))
    return out


def live_made(catalog: Catalog, store: Store) -> frozenset[tuple[str, str]]:
    """(name, identity) of every object the live copies into ``store`` recorded."""
    return frozenset((str(o["name"]), str(o["id"])) for c in catalog.copies(status=RunStatus.ACTIVE)
                     if same_place(c, store) for o in c["objects"])


def ownership(catalog: Catalog | None, writer: Writer, source: Store, source_collection: str) -> Ownership:
    """Who made what is at the writer's collection now. Without a catalog nothing is provably ours."""
    now = writer.identity()
    if now is None:
        return Ownership(TargetState.ABSENT, None)
    if catalog is None:
        return Ownership(TargetState.FOREIGN, now)
    ours = tuple(int(c["id"]) for c in catalog.copies(status=RunStatus.ACTIVE)
                 if same_place(c, writer.store) and same_source(c, source)
                 and c["source_collection"] == source_collection and any(o["id"] == now for o in c["objects"]))
    return Ownership(TargetState.OURS if ours else TargetState.FOREIGN, now, ours)


def refuse_foreign(target: Store, collection: str) -> UsageError:
    return UsageError(f"{target.name}.{collection}: {FOREIGN_TEXT}; piiguard replaces only its own copies",
                      hint="copy to another collection, or pass --replace to replace it (its data is lost)")


class Action(Enum):
    REMOVE = "remove"          # the copy's objects are there as it made them
    GONE = "gone"              # nothing it made is left
    NOT_OURS = "not-ours"      # its name now holds something else (or another live copy's object): kept
    NO_RECORD = "no-record"    # registered before objects were recorded: nothing is provably its
    NO_STORE = "no-store"      # registered without its target's URL, and no configured store has its name
    MISMATCH = "mismatch"      # a configured store has the target's name but another address: refused
    ERROR = "error"            # the target store could not be asked (the copy stays registered)


@dataclass(frozen=True)
class Expiry:
    copy: dict[str, Any]
    action: Action
    store: Store | None = None
    remove: tuple[CopyObject, ...] = ()
    keep: tuple[CopyObject, ...] = ()
    removed: tuple[CopyObject, ...] = ()
    error: str = ""


def plan_expiry(catalog: Catalog, today: str, stores: Sequence[Store]) -> list[Expiry]:
    """What expiring each active copy past its date would do, and removing what interrupted copies
    (killed mid-write) left behind; changes nothing. Each copy's target is found by
    :func:`resolve_target` among the configured ``stores``."""
    out = []
    leftovers = [c for status in (RunStatus.INTERRUPTED, RunStatus.FAILED) for c in catalog.copies(status=status)
                 if c["objects"]]  # a failed copy records objects only when its clean-up failed too
    for c in [*catalog.copies(status=RunStatus.ACTIVE, expired_before=today), *leftovers]:
        try:
            store = resolve_target(c, stores)
        except TargetMismatch as exc:
            out.append(Expiry(c, Action.MISMATCH, error=exc.message))
            continue
        except ConfigError as exc:  # a recorded URL that no longer parses (an edited catalog)
            out.append(Expiry(c, Action.ERROR, error=f"its recorded target cannot be used ({exc.message})"))
            continue
        objects = [CopyObject.from_json(o) for o in c["objects"]]
        if store is None:
            out.append(Expiry(c, Action.NO_STORE))
            continue
        if not objects:
            out.append(Expiry(c, Action.NO_RECORD))
            continue
        writer = writers.get(store.engine)(store, c["target_collection"])
        shared = live_objects(catalog, store, but=int(c["id"]))
        try:
            now = {o: writer.identity_of(o) for o in objects}
        except StoreError as exc:
            out.append(Expiry(c, Action.ERROR, store, error=str(exc)))
            continue
        if all(v is None for v in now.values()):
            out.append(Expiry(c, Action.GONE))
            continue
        remove = tuple(o for o in objects if now[o] == o.id and o.id not in shared)
        keep = tuple(o for o in objects if o not in remove and now[o] is not None)
        out.append(Expiry(c, Action.REMOVE if remove else Action.NOT_OURS, store, remove, keep))
    return out


def apply_expiry(catalog: Catalog, step: Expiry) -> Expiry:
    """Remove what ``step`` planned (each object checked again just before) and mark the copy removed;
    a store that refuses comes back as ``Action.ERROR`` (the copy stays registered, to try again)."""
    if step.store is None or step.action is not Action.REMOVE:
        return step
    writer = writers.get(step.store.engine)(step.store, step.copy["target_collection"])
    try:
        removed = tuple(o for o in step.remove if writer.drop(o))
    except StoreError as exc:
        return dataclasses.replace(step, action=Action.ERROR, error=str(exc))
    # what is still there (an alias goes with its index, a folder may hold someone else's file now)
    left = tuple(o for o in (*step.keep, *step.remove) if o not in removed and writer.identity_of(o) is not None)
    what = f"removed {', '.join(o.name for o in removed) or 'nothing'}" + (
        f"; kept: {', '.join(o.name for o in left)}" if left else "")
    if step.copy["status"] in (RunStatus.INTERRUPTED, RunStatus.FAILED):  # keeps its status; nothing is left
        status = RunStatus(step.copy["status"])
        catalog.finish_copy(int(step.copy["id"]), status, note=f"{status.value}, {what}", objects=[])
    else:
        catalog.finish_copy(int(step.copy["id"]), RunStatus.REMOVED, note=f"expired {step.copy['expires']}, {what}")
    return dataclasses.replace(step, removed=removed, keep=left)


def forget(catalog: Catalog, step: Expiry, note: str) -> None:
    """Nothing of the copy is left to remove: an expired one is ``removed``; an interrupted (or failed)
    one keeps its status with nothing recorded any more."""
    if step.copy["status"] in (RunStatus.INTERRUPTED, RunStatus.FAILED):
        status = RunStatus(step.copy["status"])
        catalog.finish_copy(int(step.copy["id"]), status, note=f"{status.value}, {note}", objects=[])
    else:
        catalog.finish_copy(int(step.copy["id"]), RunStatus.REMOVED, note=note)
