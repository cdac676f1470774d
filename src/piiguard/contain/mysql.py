"""MariaDB/MySQL: lock the accounts that let anyone in — those with no password and anonymous ones
(``ALTER USER … ACCOUNT LOCK``; nothing is dropped). Undo unlocks exactly the accounts it locked.
Needs the store's administrator credentials (ALTER USER / CREATE USER privilege). The account piiguard
logs in with is never locked (the plan names it), or piiguard could neither verify nor undo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from piiguard.checks.mysql import MySQLTarget, no_password
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.model import Finding, Store


def _account(a: dict[str, Any]) -> str:
    return "'{}'@'{}'".format(str(a["user"]).replace("'", "''"), str(a["host"]).replace("'", "''"))


@containments.register("mysql")
class MySQLContainment(Containment):
    """Lock password-less and anonymous accounts."""

    engine = "mysql"
    triggers = frozenset({"mysql.empty-password", "mysql.empty-auth-string", "mysql.anonymous-account"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if not self.triggered(findings):
            return None
        own = store.user or "root"  # the account piiguard logs in with (the inside session's default)
        target = MySQLTarget(store, timeout=5)
        try:
            open_accounts = [a for a in target.accounts if not a["locked"] and a["user"] != own
                             and (a["user"] == "" or no_password(a))]
        finally:
            target.close()
        if not open_accounts:
            return None
        accounts = [_account(a) for a in open_accounts]
        keeps = f"'{own}' (piiguard's own login) is never locked: give it a password by hand if it has none"
        return Plan("mysql", store.name, steps=(*(f"ALTER USER {a} ACCOUNT LOCK" for a in accounts), keeps),
                    undo=tuple(f"ALTER USER {a} ACCOUNT UNLOCK" for a in accounts),
                    verify=("mysql.empty-password",), data={"accounts": accounts, "keeps": own})

    def _run(self, store: Store, statements: Sequence[str]) -> None:
        target = MySQLTarget(store, timeout=5)
        try:
            with target.session.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            target.close()

    def apply(self, store: Store, plan: Plan) -> None:
        self._run(store, [f"ALTER USER {a} ACCOUNT LOCK" for a in plan.data["accounts"]])

    def undo(self, store: Store, plan: Plan) -> None:
        self._run(store, [f"ALTER USER {a} ACCOUNT UNLOCK" for a in plan.data["accounts"]])
