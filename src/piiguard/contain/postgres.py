"""PostgreSQL: ``REVOKE CONNECT ON DATABASE … FROM PUBLIC`` on the exposed database and terminate the
sessions coming from outside the store's ``allowed_networks`` (none are terminated when the store
names no allowed networks). Undo grants CONNECT back to PUBLIC if it had it. Superusers bypass the
CONNECT privilege, so this does not close a ``trust`` line for a superuser: the plan says so, and the
lasting fix is pg_hba.conf. piiguard's own role is never locked out: when it connects only through
PUBLIC, the plan first grants it CONNECT by name (and undo revokes exactly that grant). Needs a
superuser (or the database owner plus pg_signal_backend).
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
            # Does piiguard's own role connect only through PUBLIC? Then revoking would lock it out.
            me, kept = conn.execute(
                "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
                "OR d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
                "OR EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
                "WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
                "AND a.privilege_type = 'CONNECT') FROM pg_database d WHERE d.datname = %s", [db]).fetchone()
        networks = list(store.allowed_networks)
        steps = [] if kept else [f"GRANT CONNECT ON DATABASE {db} TO {me} (piiguard's own role keeps its access)"]
        steps.append(f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC")
        steps.append(f"terminate sessions on {db} from outside {', '.join(networks)}" if networks
                     else "terminate no sessions (the store names no allowed_networks)")
        steps.append("note: superusers bypass CONNECT; fix pg_hba.conf to close a trust line for them")
        undo = ([f"GRANT CONNECT ON DATABASE {db} TO PUBLIC"] if public else []) + \
            ([] if kept else [f"REVOKE CONNECT ON DATABASE {db} FROM {me} (the grant piiguard added)"])
        return Plan("postgres", store.name, steps=tuple(steps), undo=tuple(undo), verify=(),
                    data={"database": db, "public_had_connect": bool(public), "networks": networks,
                          "keeps": str(me), "granted_self": not kept})

    def apply(self, store: Store, plan: Plan) -> None:
        db = plan.data["database"]
        with _session(store) as conn:
            if plan.data.get("granted_self"):
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(db), sql.Identifier(plan.data["keeps"])))
            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
            if plan.data["networks"]:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                             "AND client_addr IS NOT NULL AND pid <> pg_backend_pid() "
                             "AND NOT client_addr <<= ANY(%s::inet[])", [db, plan.data["networks"]])

    def undo(self, store: Store, plan: Plan) -> None:
        db = sql.Identifier(plan.data["database"])
        with _session(store) as conn:
            if plan.data["public_had_connect"]:
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(db))
            if plan.data.get("granted_self"):  # only the grant piiguard itself added
                conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                    db, sql.Identifier(plan.data["keeps"])))
