"""The engine-independent TLS requirement: ``require_tls`` (a store's own, or policy's by tag)."""

from __future__ import annotations

from piiguard.checks.base import Check, Outcome, Target, checks, failed, passed
from piiguard.engines import tls
from piiguard.model import Severity, Store, Vantage


@checks.register("tls.required")
class TlsRequired(Check[Target]):
    """The connection does not use the TLS that policy requires (``require_tls``).

    Risk: credentials and customer data cross the network in plain text, or over TLS whose
    certificate nobody checks — a man in the middle reads them, or impersonates the store to collect
    the password. piiguard itself refuses to connect to such a store (every inside check reports it).
    Fix: turn TLS on in the store and set its client options: PostgreSQL ``sslmode=verify-full`` and
    ``sslrootcert``; MySQL ``ssl_ca``; Redis ``rediss://`` and ``ssl_ca_certs``; ClickHouse ``secure``
    and ``ca_certs``; OpenSearch ``tls``, ``verify_certs`` and ``cafile``; MongoDB ``tls`` and
    ``tlsCAFile``; S3 ``tls`` and ``verify`` (see piiguard.engines.tls).
    """

    engine = "*"
    severity, vantage = Severity.HIGH, Vantage.INSIDE

    @classmethod
    def applies(cls, store: Store) -> bool:
        return bool(store.require_tls)

    def run(self, target: Target) -> Outcome:
        store = target.store
        need, have = tls.TlsLevel(store.require_tls), tls.level(store)
        if have.rank < need.rank:
            return failed(f"policy requires {need.value} TLS; the store is configured with {tls.describe(store)}")
        if hasattr(type(target), "session"):  # prove it: open the inside session with exactly these settings
            session = target.session  # type: ignore[attr-defined]
            pgconn = getattr(session, "pgconn", None)
            if pgconn is not None and not pgconn.ssl_in_use:
                return failed("the PostgreSQL session is not encrypted")
            return passed(f"{tls.describe(store)}; a session was opened with these settings")
        return passed(f"{tls.describe(store)} (as configured; piiguard has no session to prove it with)")
