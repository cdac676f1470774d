"""ClickHouse: give the default user a generated password through an override in the server's
``users.d`` (``options.config_dir``), then ``SYSTEM RELOAD CONFIG``. The password is written to a
0600 file in piiguard's data directory and the plan keeps only that file's path (a reference, never
the secret). Undo removes the override (piiguard's own file; nothing of the server's is changed or
deleted) and reloads. Needs write access to ``users.d`` on this host. When piiguard itself logs in
as default, the plan says that its own login changes with it, and where the new password is.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from pathlib import Path

from platformdirs import user_data_dir

from piiguard.config import resolve_password
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.engines import clickhouse
from piiguard.errors import StoreError, StoreUnreachable
from piiguard.model import Finding, Store

OVERRIDE = "zz-piiguard-containment.xml"
MARKER = "<!-- written by piiguard containment: piiguard contain undo removes it -->"
CLOSED = MARKER + """
<yandex>
  <users>
    <default>
      <password remove="remove"></password>
      <password_sha256_hex>{digest}</password_sha256_hex>
    </default>
  </users>
</yandex>
"""


def _override(store: Store) -> Path:
    return Path(store.options["config_dir"]) / "users.d" / OVERRIDE


@containments.register("clickhouse")
class ClickHouseContainment(Containment):
    """Restrict the default user to loopback through a users.d override."""

    engine = "clickhouse"
    triggers = frozenset({"clickhouse.default-no-password"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if "config_dir" not in store.options or not self.triggered(findings):
            return None
        path = _override(store)
        secret = Path(user_data_dir("piiguard")) / "secrets" / f"clickhouse-{store.name.replace('/', '_')}-default"
        own = () if (store.user or "default") != "default" else (
            f"piiguard logs in as default too: until undo, its inside checks need the generated password "
            f"(point the store's password_file at {secret}); undo and SYSTEM RELOAD CONFIG use it already",)
        return Plan("clickhouse", store.name,
                    steps=(f"write {path}: user default gets a generated password (kept in {secret})",
                           "SYSTEM RELOAD CONFIG", *own),
                    undo=(f"remove {path}", "SYSTEM RELOAD CONFIG"), verify=("clickhouse.default-no-password",),
                    data={"path": str(path), "secret_file": str(secret)})

    def _reload(self, store: Store, plan: Plan) -> None:
        """POST (GET queries are read-only) as the store's user; while the generated password is in
        force and the store's user is default, with that password."""
        secret = Path(plan.data["secret_file"])
        passwords = [resolve_password(store) or ""] + ([secret.read_text()] if secret.exists() else [])
        for password in passwords:
            try:
                clickhouse.post(store, "SYSTEM RELOAD CONFIG", timeout=10, password=password)
                return
            except StoreUnreachable:
                raise
            except StoreError:  # refused with this password: try the next
                continue
        raise StoreError(store.name, "SYSTEM RELOAD CONFIG was refused", hint="reload the server's configuration")

    def apply(self, store: Store, plan: Plan) -> None:
        path = Path(plan.data["path"])
        if path.exists() and not _ours(path):
            raise StoreError(store.name, f"{path.name} exists in users.d and piiguard did not write it",
                             hint="piiguard replaces only its own files: rename that file, then contain again")
        secret_file = Path(plan.data["secret_file"])
        if not secret_file.exists():  # idempotent: a second apply keeps the first password
            secret_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(24))
        digest = hashlib.sha256(secret_file.read_text().encode()).hexdigest()
        path.parent.mkdir(exist_ok=True)
        path.write_text(CLOSED.format(digest=digest))
        self._reload(store, plan)

    def undo(self, store: Store, plan: Plan) -> None:
        path = Path(plan.data["path"])
        if path.exists() and not _ours(path):
            raise StoreError(store.name, f"{path.name} in users.d is no longer the file piiguard wrote",
                             hint="it was left in place; remove the override by hand if it should go")
        path.unlink(missing_ok=True)
        self._reload(store, plan)


def _ours(path: Path) -> bool:
    """Whether piiguard wrote this override (its first line is piiguard's marker)."""
    try:
        return path.read_text().startswith(MARKER)
    except OSError:
        return False
