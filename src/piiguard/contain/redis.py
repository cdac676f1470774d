"""Redis: disable the ACL default user (what unauthenticated clients run as) and drop the clients
connected as it. Undo restores the default user's exact previous rules. Needs the store's
administrator credentials (ACL, CLIENT KILL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from piiguard.checks.redis import RedisTarget
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.model import Finding, Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import redis
else:  # imported on first use: starting the CLI must not load every engine's driver
    redis = driver("redis")


def _client(store: Store) -> redis.Redis:
    """The same administrator session the inside checks use (timeouts, no retries, clear errors)."""
    return RedisTarget(store, timeout=5).session


@containments.register("redis")
class RedisContainment(Containment):
    """Disable the default user and disconnect its clients."""

    engine = "redis"
    triggers = frozenset({"redis.no-auth", "redis.default-user-nopass", "redis.weak-password"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if not self.triggered(findings):
            return None
        with _client(store) as client:
            rules = next((r for r in client.acl_list() if str(r).startswith("user default ")), "user default off")
        previous = str(rules).split()[2:]  # the rules after "user default"
        return Plan("redis", store.name,
                    steps=("ACL SETUSER default off", "CLIENT KILL USER default"),
                    undo=(f"ACL SETUSER default reset {' '.join(_shown(previous))}",),
                    verify=("redis.no-auth",), data={"previous_rules": previous})

    def apply(self, store: Store, plan: Plan) -> None:
        with _client(store) as client:
            client.execute_command("ACL", "SETUSER", "default", "off")
            client.execute_command("CLIENT", "KILL", "USER", "default")

    def undo(self, store: Store, plan: Plan) -> None:
        rules: list[Any] = list(plan.data["previous_rules"])
        with _client(store) as client:
            client.execute_command("ACL", "SETUSER", "default", "reset", *rules)


def _shown(rules: list[str]) -> list[str]:
    """Password hashes are not secrets, but nobody needs to read them in a plan."""
    return ["#<hash>" if r.startswith("#") else r for r in rules]
