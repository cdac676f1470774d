"""MongoDB: a plan for a person, never applied by piiguard.

Turning authorization on needs a restart of ``mongod`` (``security.authorization`` is read at start),
and on FerretDB a restart with a backend URL that carries no password. piiguard does not restart
servers, so the plan lists the steps, the undo and the check that proves them
(``mongodb.no-auth``), and stays ``planned`` until an operator has carried it out.
"""

from __future__ import annotations

from collections.abc import Sequence

from piiguard.checks.mongodb import MongoTarget
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.errors import StoreError, UsageError
from piiguard.model import Finding, Store

MONGOD = ("create an administrator (db.createUser) if none exists, and a least-privilege user per application",
          "set security.authorization: enabled in mongod.conf",
          "restart mongod (one member at a time in a replica set)")
FERRETDB = ("give each application its own PostgreSQL role with a password",
            "restart FerretDB with a --postgresql-url that carries no password, so every client must log in")


@containments.register("mongodb")
class MongoContainment(Containment):
    """Enable authorization — a restart, so planned for a person."""

    engine = "mongodb"
    triggers = frozenset({"mongodb.no-auth", "mongodb.authorization-off"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if not self.triggered(findings):
            return None
        target = MongoTarget(store, timeout=5)
        try:
            steps = FERRETDB if target.ferretdb else MONGOD
        except StoreError:
            steps = MONGOD
        finally:
            target.close()
        return Plan("mongodb", store.name,
                    steps=("needs a restart, which piiguard does not do: carry these out by hand", *steps),
                    undo=("put the previous configuration back and restart",),
                    verify=("mongodb.no-auth",), automatic=False)

    def apply(self, store: Store, plan: Plan) -> None:
        raise UsageError("a MongoDB containment needs a restart: carry out its steps by hand")

    def undo(self, store: Store, plan: Plan) -> None:
        raise UsageError("piiguard applied nothing to undo: the plan was carried out by hand")
