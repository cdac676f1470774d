"""Checks decided from piiguard's own registry rather than by talking to an engine: a registered
copy past its expiry that still exists on its target store.

They are registered like every other check (``piiguard show check copy.expired``, SARIF rules,
``policy.skip``, severity overrides and waivers apply), but run only when the checker is given a
catalog: :meth:`CopyExpired.evaluate` reads the copy registry once per run, then probes whether each
expired copy's collection still exists on the stores being checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from piiguard.checks.base import Check, Outcome, Target, checks
from piiguard.errors import StoreError
from piiguard.model import Finding, Severity, Status, Store, Vantage


@checks.register("copy.expired")
class CopyExpired(Check[Target]):
    """A registered copy is past its expiry and still exists.

    Risk: a copy of customer data kept past the date its owner agreed to is data nobody answers for —
    the kind that ends up in the store "that is easier to query" and leaks. Decided from the copy
    registry in piiguard's catalog and an existence probe of the copy's collection on its target
    store (the store's configured credentials); a store that is no copy's target has no finding. A
    copy's target is the store at the address the registry recorded for it, whatever its name.
    Fix: ``piiguard copies expire --apply`` removes expired copies piiguard made (nothing else), or
    agree a new expiry with the copy's owner and register it.
    """

    engine = "*"
    severity, vantage = Severity.HIGH, Vantage.INSIDE
    frequent = False

    @classmethod
    def applies(cls, store: Store) -> bool:
        return False  # not per engine target: the checker runs :meth:`evaluate` with its catalog

    def run(self, target: Target) -> Outcome:
        raise StoreError(target.store.name, "copy.expired is decided from the catalog's copy registry",
                         hint="run it through piiguard check with a catalog")

    @classmethod
    def evaluate(cls, copies: Sequence[dict[str, Any]], stores: Sequence[Store], *,
                 today: str | None = None, timeout: float = 5.0) -> list[Finding]:
        """One finding per checked store that is the target of a registered copy: fail while an
        expired active copy still exists there, error when existence cannot be probed, else pass."""
        from piiguard.masking.ownership import same_place
        from piiguard.masking.targets import writers

        day = today or datetime.now(UTC).date().isoformat()
        out = []
        for store in stores:
            mine = [c for c in copies if same_place(c, store)]  # by where it is, not by a name
            if not mine or store.engine not in writers:
                continue
            due = [c for c in mine if c["status"] == "active" and c["expires"] and str(c["expires"]) < day]
            still, errors = [], []
            for c in due:
                try:
                    if writers.get(store.engine)(store, c["target_collection"], timeout=timeout).exists():
                        still.append(c)
                except StoreError as exc:
                    errors.append(exc.detail)
            if still:
                status = Status.FAIL
                evidence = "; ".join(f"copy {c['id']} ({c['target_collection']}, owner {c['owner']}) expired "
                                     f"{c['expires']}" for c in still) + ": run `piiguard copies expire`"
            elif errors:
                status, evidence = Status.ERROR, f"cannot tell whether expired copies still exist ({errors[0]})"
            else:
                status = Status.PASS
                evidence = (f"{len(mine)} registered cop{'y' if len(mine) == 1 else 'ies'}, none past its expiry "
                            "and still present")
            out.append(Finding("copy.expired", store.name, status, cls.severity, cls.vantage, cls.title(), evidence))
        return out
