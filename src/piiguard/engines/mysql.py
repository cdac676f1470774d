"""MariaDB/MySQL connections (PyMySQL): one place for timeouts and TLS.

The handshake is bounded by ``timeout`` — each read and write (PyMySQL's ``read_timeout`` and
``write_timeout``, which it also uses for the greeting) and the whole exchange
(:func:`piiguard.engines.deadline.deadline`: a peer dripping a greeting byte by byte is cut). Once
logged in, statements may read for ``query_timeout`` (a scan's sampling query is allowed to work).
TLS follows the store's ``ssl``, ``ssl_ca`` and ``ssl_verify`` options; policy's ``require_tls`` is
enforced before connecting.
"""

from __future__ import annotations

import ssl
import struct
from functools import cache
from typing import TYPE_CHECKING, Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.engines.deadline import deadline
from piiguard.errors import AuthenticationFailed, StoreUnreachable
from piiguard.model import Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import pymysql
else:  # imported on first use: starting the CLI must not load every engine's driver
    pymysql = driver("pymysql")


ER_ACCESS_DENIED, ER_BAD_DB = 1045, 1049
# what PyMySQL raises on a peer that is not MySQL: its own errors, and parse failures on garbage
@cache
def driver_errors() -> tuple[type[BaseException], ...]:
    """What a PyMySQL exchange raises on a hostile or broken peer (a function: the driver loads on use)."""
    return (pymysql.err.Error, ssl.SSLError, OSError, ValueError, IndexError, UnicodeError, struct.error)


@cache
def unverified_context() -> ssl.SSLContext:
    """TLS without checking the certificate, built once: PyMySQL would otherwise build a fresh one
    (reading the CA bundle, ~20 ms) for every connection — the cost of a watch cycle."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_params(store: Store) -> dict[str, Any]:
    """PyMySQL's TLS arguments from the store's options; none when the store does not ask for TLS."""
    if tls.level(store) is tls.TlsLevel.NONE:
        return {}
    return {"ssl": tls.context(store)}


def open_session(store: Store, timeout: float, *, user: str, password: str, query_timeout: float | None = None,
                 use_tls_settings: bool = True, **kw: Any) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection, the handshake bounded by ``timeout``. Driver errors are raised as they
    are (callers judge them); the deadline becomes StoreUnreachable. ``use_tls_settings=False`` is
    for outside probes, which pass their own ``ssl``/``ssl_disabled``."""
    if use_tls_settings:
        tls.enforce(store)
        kw = {**tls_params(store), **kw}
    with deadline(store, timeout, "MariaDB/MySQL handshake"):
        conn = pymysql.connect(host=store.host or "localhost", port=store.port or 3306, user=user,
                               password=password, connect_timeout=timeout, read_timeout=timeout,
                               write_timeout=timeout, **kw)
    if query_timeout is not None:
        conn._read_timeout = query_timeout  # type: ignore[attr-defined]  # re-read before every read
    return conn


def connect(store: Store, timeout: float, *, query_timeout: float | None = None,
            **kw: Any) -> pymysql.connections.Connection[Any]:
    """A session with the store's credentials; errors name what to check and never quote the driver."""
    try:
        return open_session(store, timeout, user=store.user or "root", password=resolve_password(store) or "",
                            query_timeout=query_timeout, **kw)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if code == ER_ACCESS_DENIED:
            raise AuthenticationFailed(store.name, "access denied",
                                       hint=f"check the user and ${store.password_env or 'MYSQL_PWD'}") from exc
        if code == ER_BAD_DB:
            raise StoreUnreachable(store.name, "unknown database", hint="check the database name") from exc
        raise unreachable(store, exc) from exc
    except driver_errors() as exc:
        raise unreachable(store, exc) from exc


def unreachable(store: Store, exc: BaseException) -> StoreUnreachable:
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return StoreUnreachable(store.name, "the server's TLS certificate was not verified",
                                hint="check ssl_ca (the CA that signed the server's certificate) and the host name")
    if isinstance(exc, pymysql.err.OperationalError):
        return StoreUnreachable(store.name, f"cannot connect to {store.address}",
                                hint="is the server up and reachable from here?")
    # garbage, a hang-up mid-greeting, a packet out of sequence: something answered, not this engine
    return StoreUnreachable(store.name, f"{store.address} did not answer as MariaDB/MySQL does "
                                        f"({type(exc).__name__})", hint="check the address and port")
