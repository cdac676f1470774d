"""Redis connections (redis-py): one place for timeouts and TLS.

Every read, write and connect is bounded by ``timeout`` (``socket_timeout``,
``socket_connect_timeout``), nothing is retried, and the first exchange (``PING``, after ``AUTH``) runs
under an overall deadline: a peer that streams bytes without a line end, or drips them, is cut. TLS
follows ``rediss://`` (the ``tls`` option), ``ssl_ca_certs`` and ``ssl_cert_reqs``; policy's
``require_tls`` is enforced before connecting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.engines.deadline import deadline
from piiguard.errors import AuthenticationFailed, StoreUnreachable
from piiguard.model import Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import redis
    import redis.backoff
    import redis.retry
else:  # imported on first use: starting the CLI must not load every engine's driver
    redis = driver("redis")



def tls_params(store: Store) -> dict[str, Any]:
    if tls.level(store) is tls.TlsLevel.NONE:
        return {}
    verified = tls.level(store) is tls.TlsLevel.VERIFIED
    return {"ssl": True, "ssl_ca_certs": tls.ca_file(store), "ssl_cert_reqs": "required" if verified else "none",
            "ssl_check_hostname": verified}


def client(store: Store, timeout: float, *, decode_responses: bool = True, ping: bool = True,
           host: str | None = None, port: int | None = None) -> redis.Redis:
    """A client with the store's credentials and database; ``ping`` proves it answers (within the
    deadline) before it is returned. Errors name what to check."""
    tls.enforce(store)
    db = int(store.database) if store.database and store.database.isdigit() else 0
    c = redis.Redis(host=host or store.host or "localhost", port=port or store.port or 6379, username=store.user,
                    password=resolve_password(store), db=db,
                    socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=decode_responses,
                    retry=_no_retry(), **tls_params(store))  # a probe does not retry
    if ping:
        try:
            with deadline(store, timeout, "Redis answer"):
                c.ping()
        except redis.AuthenticationError as exc:
            c.close()
            raise AuthenticationFailed(store.name, "the server refused the credentials",
                                       hint="configure the store's user and password_env (an ACL user)") from exc
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            c.close()
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise StoreUnreachable(store.name, "the server's TLS certificate was not verified",
                                       hint="check ssl_ca_certs and the host name") from exc
            raise StoreUnreachable(store.name, f"cannot talk to {store.address} ({type(exc).__name__})") from exc
        except (redis.RedisError, ValueError, UnicodeError) as exc:
            c.close()
            raise StoreUnreachable(store.name, f"{store.address} did not answer as Redis does "
                                               f"({type(exc).__name__})") from exc
        except StoreUnreachable:  # the deadline cut it
            c.close()
            raise
    return c


def _no_retry() -> Any:
    return driver("redis.retry").Retry(driver("redis.backoff").NoBackoff(), 0)
