"""OpenSearch / Elasticsearch: block reads on the indices that hold PII (``index.blocks.read``).

The block refuses every search and get on those indices — for an anonymous client and for the
application alike — while the cluster, its other indices and writes keep working, so nothing is
lost and the application fails loudly instead of leaking. Which indices: those the latest scan
found PII in; a store never scanned gets every non-system index blocked (the plan says so). The
security plugin's ``security-auditlog-*`` indices are never blocked: they are the evidence the
response reads. Undo
puts each index's previous setting back. Verified by a search on each blocked index, which must be
refused with a cluster block (no check can prove this: the cluster may still answer ``GET /``).
Needs the store's credentials with ``indices:admin/settings/update`` on those indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from piiguard.connectors.opensearch import errors
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.engines.opensearch import client
from piiguard.model import Finding, Store
from piiguard.registry import driver
from piiguard.system import system_collection

if TYPE_CHECKING:
    from opensearchpy import exceptions as oe
else:  # imported on first use: starting the CLI must not load every engine's driver
    oe = driver("opensearchpy.exceptions")

BLOCK = "index.blocks.read"
SHOWN = 10


@containments.register("opensearch")
class OpenSearchContainment(Containment):
    """Block reads on the indices that hold PII."""

    engine = "opensearch"
    triggers = frozenset({"opensearch.anonymous-access", "opensearch.security-disabled",
                          "opensearch.default-credentials", "opensearch.anonymous-role"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if not self.triggered(findings):
            return None
        es = client(store, 10)
        with errors(store):
            rows = es.cat.indices(format="json", h="index", expand_wildcards="open")
            # system indices, and the security plugin's audit log: the response needs that trail readable
            live = sorted(r["index"] for r in rows if not system_collection(store.engine, r["index"]))
            if holdings is None:
                indices, why = live, "never scanned: every index is blocked"
            else:
                indices, why = [i for i in live if holdings.get(i)], "the indices the latest scan found PII in"
            if not indices:
                return None
            current = es.indices.get_settings(index=",".join(indices), name=BLOCK, flat_settings=True)
        previous = {i: current.get(i, {}).get("settings", {}).get(BLOCK) for i in indices}
        shown = ", ".join(indices[:SHOWN]) + (f" and {len(indices) - SHOWN} more" if len(indices) > SHOWN else "")
        return Plan("opensearch", store.name,
                    steps=(f"set {BLOCK}=true on {len(indices)} index(es) ({why}): {shown}",),
                    undo=(f"put {BLOCK} back to its previous value on the same indices",),
                    verify=(), data={"previous": previous})

    def apply(self, store: Store, plan: Plan) -> None:
        es = client(store, 30)
        with errors(store):
            es.indices.put_settings(index=",".join(plan.data["previous"]), body={BLOCK: True})

    def undo(self, store: Store, plan: Plan) -> None:
        es = client(store, 30)
        with errors(store):
            for index, value in plan.data["previous"].items():
                es.indices.put_settings(index=index, body={BLOCK: value})

    def verify(self, store: Store, plan: Plan) -> tuple[bool, str]:
        es = client(store, 10)
        open_ = []
        for index in plan.data["previous"]:
            try:
                es.search(index=index, body={"size": 0})
                open_.append(index)
            except oe.AuthorizationException as exc:  # 403 cluster_block_exception
                if "cluster_block_exception" not in str(exc):
                    open_.append(index)
        if open_:
            return False, f"a search was still answered on {len(open_)} index(es): {', '.join(open_[:SHOWN])}"
        return True, f"searches on all {len(plan.data['previous'])} blocked index(es) are refused by the block"
