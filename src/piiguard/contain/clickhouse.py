"""ClickHouse: give the default user a generated password through an override in the server's
``users.d`` (``options.config_dir``), then ``SYSTEM RELOAD CONFIG``. The password is written to a
0600 file in piiguard's data directory and the plan keeps only that file's path (a reference, never
the secret). Undo removes the override (piiguard's own file; nothing of the server's is changed or
deleted) and reloads. Needs write access to ``users.d`` on this host.
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
CLOSED = """<yandex>
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
        return Plan("clickhouse", store.name,
                    steps=(f"write {path}: user default gets a generated password (kept in {secret})",
                           "SYSTEM RELOAD CONFIG"),
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
        secret_file = Path(plan.data["secret_file"])
        if not secret_file.exists():  # idempotent: a second apply keeps the first password
            secret_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(24))
        digest = hashlib.sha256(secret_file.read_text().encode()).hexdigest()
        path = Path(plan.data["path"])
        path.parent.mkdir(exist_ok=True)
        path.write_text(CLOSED.format(digest=digest))
        self._reload(store, plan)

    def undo(self, store: Store, plan: Plan) -> None:
        Path(plan.data["path"]).unlink(missing_ok=True)
        self._reload(store, plan)
