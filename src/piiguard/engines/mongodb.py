"""MongoDB connections (pymongo): one place for timeouts and TLS.

pymongo connects and monitors in threads of its own, so a deadline on the caller's thread cannot
reach its sockets; its own limits do instead: server selection, connect and each socket read are
bounded by ``timeout``, reads and writes are not retried, and ``timeoutMS`` (client-side operation
timeout) bounds each whole operation, server selection included. TLS follows ``tls``,
``cafile``/``tlsCAFile`` and ``tlsAllowInvalidCertificates``; policy's ``require_tls`` is enforced
before connecting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.model import Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import pymongo
else:  # imported on first use: starting the CLI must not load every engine's driver
    pymongo = driver("pymongo")



def limits(timeout: float) -> dict[str, Any]:
    ms = max(1, int(timeout * 1000))
    return {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "socketTimeoutMS": ms, "timeoutMS": ms,
            "retryReads": False, "retryWrites": False, "directConnection": True, "appname": "piiguard"}


def client(store: Store, timeout: float, *, credentials: bool = True) -> pymongo.MongoClient[dict[str, Any]]:
    """A direct connection; ``credentials=False`` connects as an anonymous client would."""
    tls.enforce(store)
    kwargs: dict[str, Any] = {**limits(timeout), "tls": tls.flag(store, "tls", False)}
    if kwargs["tls"]:
        if tls.ca_file(store):
            kwargs["tlsCAFile"] = tls.ca_file(store)
        if tls.level(store) is not tls.TlsLevel.VERIFIED:
            kwargs["tlsAllowInvalidCertificates"] = True
    if credentials and store.user:
        kwargs.update(username=store.user, password=resolve_password(store) or "")
        if store.options.get("auth_mechanism"):
            kwargs["authMechanism"] = store.options["auth_mechanism"]
    return pymongo.MongoClient(store.host or "localhost", store.port or 27017, **kwargs)


def anonymous(host: str, port: int, timeout: float, *, tls_insecure: bool) -> pymongo.MongoClient[dict[str, Any]]:
    """An outside probe's client: no credentials, TLS without verification when the port wants TLS."""
    extra: dict[str, Any] = {"tls": True, "tlsInsecure": True} if tls_insecure else {}
    return pymongo.MongoClient(host, port, **limits(timeout), **extra)
