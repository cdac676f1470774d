"""PostgreSQL connections (psycopg 3): one place for timeouts and TLS.

``timeout`` bounds the whole connection, not each attempt: libpq tries every address of a host name
and, with ``sslmode=prefer``, TLS and then plain text, each for ``connect_timeout``; the attempts run
under one overall deadline (:func:`piiguard.engines.deadline.bounded`). Statements get a server-side
``statement_timeout`` of 30 × the timeout (a scan's sampling query is allowed to work). TLS follows the
store's ``sslmode`` and ``sslrootcert``; policy's ``require_tls`` is enforced before connecting.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.engines.deadline import bounded
from piiguard.errors import AuthenticationFailed, StoreUnreachable
from piiguard.model import Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import psycopg
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")


STATEMENT_BUDGET = 30  # × timeout: how long one statement may run on the server


def tls_params(store: Store) -> dict[str, str]:
    """libpq's TLS parameters from the store's options (sslmode defaults to libpq's own, prefer)."""
    params = {"sslmode": store.options.get("sslmode", "prefer")}
    if store.options.get("sslrootcert"):
        params["sslrootcert"] = tls.ca_file(store) or store.options["sslrootcert"]
    return params


def open_session(store: Store, timeout: float, *, use_tls_settings: bool = True,
                 **params: Any) -> psycopg.Connection[Any]:
    """A psycopg connection to the store's host and port, bounded by ``timeout`` overall. Driver
    errors are raised as they are (callers judge them); only the deadline becomes StoreUnreachable.
    ``use_tls_settings=False`` is for outside probes, which see what any client sees."""
    if use_tls_settings:
        tls.enforce(store)
        params = {**tls_params(store), **params}
    params.setdefault("host", store.host or "localhost")
    params.setdefault("port", store.port or 5432)
    params.setdefault("dbname", store.database or "postgres")
    # libpq's connect_timeout is whole seconds, at least 2 (1 is raised to 2); the deadline is exact
    params["connect_timeout"] = max(2, math.ceil(timeout))
    # libpq has no read timeout: statements are bounded by the server's statement_timeout, and a peer
    # that vanishes mid-statement by TCP keepalives (about 4 × timeout)
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", max(1, math.ceil(timeout)))
    params.setdefault("keepalives_interval", max(1, math.ceil(timeout)))
    params.setdefault("keepalives_count", 3)

    def attempt() -> psycopg.Connection[Any]:
        return psycopg.connect(**params)

    return bounded(store, timeout, attempt, "PostgreSQL handshake", late=lambda conn: conn.close())


def connect(store: Store, timeout: float, *, read_only: bool = False, autocommit: bool = True,
            application: str = "piiguard") -> psycopg.Connection[Any]:
    """A session with the store's credentials; ``read_only`` for scans. Errors name what to check."""
    options = f"-c statement_timeout={int(timeout * STATEMENT_BUDGET * 1000)}"
    if read_only:
        options = f"-c default_transaction_read_only=on {options}"
    try:
        return open_session(store, timeout, user=store.user, password=resolve_password(store),
                            application_name=application, autocommit=autocommit, options=options)
    except psycopg.OperationalError as exc:
        raise translate(store, exc) from exc


def translate(store: Store, exc: psycopg.OperationalError) -> StoreUnreachable | AuthenticationFailed:
    """A connection failure as piiguard's error; the driver's text is read, never copied."""
    text = str(exc)
    if "password authentication failed" in text or "no password supplied" in text:
        return AuthenticationFailed(store.name, "authentication failed",
                                    hint=f"check the user and the password in ${store.password_env or 'PGPASSWORD'}")
    if "certificate verify failed" in text or "root certificate file" in text or "does not match host name" in text:
        return StoreUnreachable(store.name, f"the server's TLS certificate was not verified ({_tls_reason(text)})",
                                hint="check sslrootcert (the CA that signed the server's certificate) and the "
                                     "host name")
    if "does not exist" in text:
        return StoreUnreachable(store.name, "database or role does not exist",
                                hint="check database and user in the store's address")
    if "server does not support SSL" in text:
        return StoreUnreachable(store.name, "the server does not offer TLS and sslmode requires it",
                                hint="turn ssl on in postgresql.conf, or lower sslmode")
    return StoreUnreachable(store.name, f"cannot connect to {store.address}",
                            hint="is the server up and reachable from here?")


def _tls_reason(text: str) -> str:
    if "does not match host name" in text:
        return "the certificate is for another host name"
    if "root certificate file" in text:
        return "the sslrootcert file cannot be read"
    return "signed by a CA other than sslrootcert's"
