"""PostgreSQL: ``REVOKE CONNECT ON DATABASE … FROM PUBLIC`` on the exposed database and terminate the
sessions coming from outside the store's ``allowed_networks`` (none are terminated when the store
names no allowed networks). Undo grants CONNECT back to PUBLIC if it had it. Superusers bypass the
CONNECT privilege, so this does not close a ``trust`` line for a superuser: the plan says so, and the
lasting fix is pg_hba.conf. Needs a superuser (or the database owner plus pg_signal_backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from piiguard.checks.postgres import PostgresTarget
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.model import Finding, Store
from piiguard.registry import driver

if TYPE_CHECKING:
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    sql = driver("psycopg.sql")


def _session(store: Store) -> Any:
    target = PostgresTarget(store, timeout=5)
    session = target.session
    session.execute("SET default_transaction_read_only = off")  # the inside session is read-only by default
    return session


@containments.register("postgres")
class PostgresContainment(Containment):
    """Revoke CONNECT from PUBLIC and end sessions from outside the allowed networks."""

    engine = "postgres"
    triggers = frozenset({"postgres.trust-auth", "postgres.default-password"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if not self.triggered(findings):
            return None
        db = store.database or "postgres"
        with _session(store) as conn:
            public = conn.execute(
                "SELECT count(*) FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
                "WHERE d.datname = %s AND a.grantee = 0 AND a.privilege_type = 'CONNECT'", [db]).fetchone()[0]
        networks = list(store.allowed_networks)
        steps = [f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC"]
        steps.append(f"terminate sessions on {db} from outside {', '.join(networks)}" if networks
                     else "terminate no sessions (the store names no allowed_networks)")
        steps.append("note: superusers bypass CONNECT; fix pg_hba.conf to close a trust line for them")
        return Plan("postgres", store.name, steps=tuple(steps),
                    undo=(f"GRANT CONNECT ON DATABASE {db} TO PUBLIC",) if public else (),
                    verify=(), data={"database": db, "public_had_connect": bool(public), "networks": networks})

    def apply(self, store: Store, plan: Plan) -> None:
        db = plan.data["database"]
        with _session(store) as conn:
            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
            if plan.data["networks"]:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                             "AND client_addr IS NOT NULL AND pid <> pg_backend_pid() "
                             "AND NOT client_addr <<= ANY(%s::inet[])", [db, plan.data["networks"]])

    def undo(self, store: Store, plan: Plan) -> None:
        if plan.data["public_had_connect"]:
            with _session(store) as conn:
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(
                    sql.Identifier(plan.data["database"])))
