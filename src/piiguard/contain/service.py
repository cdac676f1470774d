"""Containment as watch runs it: plan for an exposed store, then — by policy — wait for
``piiguard approve ID`` or apply at once within the rate cap; verify by re-probing; record every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from piiguard.catalog import Catalog
from piiguard.checker import check_store
from piiguard.contain.base import Holdings, Plan, containments
from piiguard.errors import UsageError
from piiguard.model import Finding, Status, Store

ACTIVE = ("planned", "applied", "verified")


class Containor:
    def __init__(self, catalog: Catalog, *, mode: str = "never", rate: int = 5, timeout: float = 5.0) -> None:
        self.catalog, self.mode, self.rate, self.timeout = catalog, mode, rate, timeout

    def consider(self, stores: Sequence[Store], findings: Sequence[Finding],
                 exposed: dict[str, Finding | None]) -> list[int]:
        """Plan (and in ``auto`` mode apply) for every exposed store without an active containment."""
        if self.mode == "never":
            return []
        done = []
        for store in stores:
            if exposed.get(store.name) is None or store.engine not in containments:
                continue
            if any(c["status"] in ACTIVE for c in self.catalog.containments(store.name)):
                continue
            plan = containments.get(store.engine)().plan(store, [f for f in findings if f.store == store.name],
                                                         self.holdings(store.name))
            if plan is None:
                continue
            cid = self.catalog.add_containment(store.name, store.engine, dataclasses.asdict(plan), "planned")
            if not plan.automatic:
                self.catalog.set_containment(cid, "planned", "manual: piiguard cannot take these steps itself")
            elif self.mode == "auto":
                since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
                if self.catalog.applied_since(since) >= self.rate:
                    self.catalog.set_containment(cid, "planned", "rate cap reached: waiting for approval")
                else:
                    self.apply(cid, store)
            done.append(cid)
        return done

    def holdings(self, store: str) -> Holdings:
        if self.catalog.data_context(store) is None:
            return None
        out: dict[str, list[str]] = {}
        for collection, _field, pii_type, _confidence in self.catalog.pii_fields(store):
            out.setdefault(collection, []).append(pii_type)
        return out

    def _load(self, containment_id: int) -> tuple[dict[str, Any], Plan]:
        row = self.catalog.containment(containment_id)
        if row is None:
            raise KeyError(containment_id)
        plan_data = dict(row["plan"])
        plan = Plan(**{**plan_data, **{k: tuple(plan_data[k]) for k in ("steps", "undo", "verify")}})
        return row, plan

    def apply(self, containment_id: int, store: Store) -> str:
        """Apply, then verify by re-running the plan's checks; returns the final status."""
        _, plan = self._load(containment_id)
        if not plan.automatic:
            raise UsageError(f"containment {containment_id} is a manual plan: piiguard cannot apply it",
                             hint="carry out its steps by hand (piiguard contain list shows them)")
        containment = containments.get(plan.engine)()
        containment.apply(store, plan)
        self.catalog.set_containment(containment_id, "applied")
        own = containment.verify(store, plan)
        if own is not None:
            ok, evidence = own
            self.catalog.set_containment(containment_id, "verified" if ok else "failed", evidence)
            return "verified" if ok else "failed"
        if not plan.verify:
            self.catalog.set_containment(containment_id, "applied", "no re-probe can prove this step; see its plan")
            return "applied"
        findings = check_store(store, timeout=self.timeout, only=list(plan.verify))
        if findings and all(f.status is Status.PASS for f in findings):
            self.catalog.set_containment(containment_id, "verified", "re-probe passed: " + ", ".join(plan.verify))
            return "verified"
        still = ", ".join(f"{f.check} {f.status.value}" for f in findings)
        self.catalog.set_containment(containment_id, "failed", f"re-probe after applying: {still}")
        return "failed"

    def undo(self, containment_id: int, store: Store) -> None:
        _, plan = self._load(containment_id)
        if not plan.automatic:
            raise UsageError(f"containment {containment_id} is a manual plan: piiguard applied nothing to undo")
        containments.get(plan.engine)().undo(store, plan)
        self.catalog.set_containment(containment_id, "undone")
