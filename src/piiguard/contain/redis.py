"""Redis: disable the ACL default user (what unauthenticated clients run as) and drop the clients
connected as it. Undo restores the default user's exact previous rules (selectors included), so
``ACL LIST`` and ``CONFIG GET *`` read as before; the dropped connections are not brought back
(clients reconnect). Needs the store's administrator credentials (ACL, CLIENT KILL).

piiguard never disables the account it logs in with: when the store's user is ``default`` (or
none), the plan is for a person — create an administrator ACL user, make it the store's user, and
contain again — and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from piiguard.checks.redis import RedisTarget
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.errors import StoreError
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
        if (store.user or "default") == "default":
            return Plan("redis", store.name,
                        steps=("piiguard logs in as the default user: disabling it would lock piiguard out, "
                               "so it is left to a person",
                               "ACL SETUSER <admin> on >long-random-password ~* &* +@all (a named administrator)",
                               "make <admin> the store's user (user, password_env) and run containment again, "
                               "or ACL SETUSER default off by hand"),
                        undo=("ACL SETUSER default with its previous rules (ACL LIST before the change)",),
                        verify=("redis.no-auth",), automatic=False)
        with _client(store) as client:
            rules = next((str(r) for r in client.acl_list() if str(r).startswith("user default ")),
                         "user default off")
        previous = rule_words(rules)[2:]  # the rules after "user default"
        return Plan("redis", store.name,
                    steps=("ACL SETUSER default off", "CLIENT KILL USER default",
                           f"{store.user} (piiguard's own administrator) stays enabled"),
                    undo=(f"ACL SETUSER default reset {' '.join(_shown(previous))}",),
                    verify=("redis.no-auth",), data={"previous_rules": previous, "keeps": store.user})

    def apply(self, store: Store, plan: Plan) -> None:
        with _client(store) as client:
            client.execute_command("ACL", "SETUSER", "default", "off")
            client.execute_command("CLIENT", "KILL", "USER", "default")

    def undo(self, store: Store, plan: Plan) -> None:
        rules: list[Any] = list(plan.data["previous_rules"])
        # What apply left: the same rules, switched off. Anything else is someone's later change,
        # which undo must not overwrite.
        contained = ["off" if r == "on" else r for r in rules]
        with _client(store) as client:
            now = next((str(r) for r in client.acl_list() if str(r).startswith("user default ")), "")
            if rule_words(now)[2:] not in (contained, rules):
                raise StoreError(store.name, "the default user was changed after containment; undo would "
                                 "overwrite that change", hint="compare ACL GETUSER default with the plan's undo "
                                 "step and restore it by hand if it should go back")
            client.execute_command("ACL", "SETUSER", "default", "reset", *rules)


def rule_words(rule: str) -> list[str]:
    """An ACL LIST line as the arguments ACL SETUSER takes: words, except that a selector
    (``(~keys +get)``, Redis 7) is one argument with its spaces."""
    words: list[str] = []
    depth = 0
    for word in rule.split():
        if depth:
            words[-1] += " " + word
        else:
            words.append(word)
        depth += word.count("(") - word.count(")")
    return words


def _shown(rules: list[str]) -> list[str]:
    """Password hashes are not secrets, but nobody needs to read them in a plan."""
    return ["#<hash>" if r.startswith("#") else r for r in rules]
