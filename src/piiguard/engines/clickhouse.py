"""ClickHouse connections: the HTTP interface (urllib) and the native protocol (clickhouse-driver).

Every request is bounded by ``timeout`` per read and as a whole
(:func:`piiguard.engines.deadline.deadline`: a peer streaming or dripping a body is cut). Long
statements (``post``) take their own ``timeout``. A streamed result (:func:`stream`, a whole-table
read) is bounded as a whole until its first bytes arrive, then by ``timeout`` per read: its length
is the table's. TLS follows ``secure`` (HTTPS, and the native TLS
port), ``ca_certs`` and ``verify``; policy's ``require_tls`` is enforced before connecting.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import IO, Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.engines.deadline import deadline
from piiguard.errors import AuthenticationFailed, StoreError, StoreUnreachable
from piiguard.model import Store

# ClickHouse's error codes for wrong credentials: 192 UNKNOWN_USER, 193 WRONG_PASSWORD, 194
# REQUIRED_PASSWORD, 516 AUTHENTICATION_FAILED (20.x+ says this one whatever was wrong)
AUTH_CODES = {192, 193, 194, 516}
AUTH_HINT = "configure the store's user and password_env (a user allowed from this host)"


def _code(text: str) -> int | None:
    """The number in ``Code: 193`` (None if the answer is not ClickHouse's)."""
    number = text.removeprefix("Code:").strip().rstrip(".")
    return int(number) if number.isdigit() else None


# clickhouse-driver logs a traceback for every failed connection; piiguard reports the failure itself
logging.getLogger("clickhouse_driver.connection").setLevel(logging.CRITICAL)


def base_url(store: Store) -> str:
    scheme = "https" if tls.flag(store, "secure", False) else "http"
    return f"{scheme}://{store.host or 'localhost'}:{store.port or 8123}"


def _opener(store: Store) -> urllib.request.OpenerDirector:
    handlers: list[Any] = []
    if tls.flag(store, "secure", False):
        handlers.append(urllib.request.HTTPSHandler(context=tls.context(store)))
    return urllib.request.build_opener(*handlers)


def _request(store: Store, query: str, body: bytes | None, settings: Mapping[str, str] | None,
             password: str | None) -> urllib.request.Request:
    key = (resolve_password(store) or "") if password is None else password
    params = urllib.parse.urlencode({**(settings or {}), "query": query}, quote_via=urllib.parse.quote)
    return urllib.request.Request(
        f"{base_url(store)}/?{params}", data=body or b"",
        headers={"X-ClickHouse-User": store.user or "default", "X-ClickHouse-Key": key}, method="POST")


@contextlib.contextmanager
def _errors(store: Store, collection: str | None) -> Iterator[None]:
    try:
        yield
    except urllib.error.HTTPError as exc:
        code = exc.read(200).decode("utf-8", "replace").split(",", 1)[0]  # "Code: 60"
        if _code(code) in AUTH_CODES:  # the server's text names the user, never a value: keep only the code
            raise AuthenticationFailed(store.name, f"the server refused the credentials ({code})",
                                       hint=AUTH_HINT) from exc
        raise StoreError(store.name, f"ClickHouse refused ({code})", collection=collection) from exc
    except StoreUnreachable:
        raise
    except (http.client.HTTPException, ValueError, UnicodeError) as exc:  # garbage where HTTP was expected
        raise StoreUnreachable(store.name, f"{store.address} did not answer as ClickHouse's HTTP interface does "
                                           f"({type(exc).__name__})", hint="check the address and port") from exc
    except OSError as exc:
        raise StoreUnreachable(store.name, f"cannot reach {store.address} ({type(exc).__name__})") from exc


def post(store: Store, query: str, body: bytes | None = None, *, timeout: float = 30.0,
         collection: str | None = None, password: str | None = None,
         settings: Mapping[str, str] | None = None) -> str:
    """A POSTed statement (writes, SYSTEM commands, long results) with the store's credentials (or
    its user with ``password``) and query ``settings`` (``readonly``); returns the whole body.
    ClickHouse's error text can quote data: only its code is kept."""
    tls.enforce(store)
    request = _request(store, query, body, settings, password)
    with _errors(store, collection), deadline(store, timeout, "ClickHouse answer"), \
            _opener(store).open(request, timeout=timeout) as response:
        return str(response.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def stream(store: Store, query: str, *, timeout: float, collection: str | None = None,
           settings: Mapping[str, str] | None = None) -> Iterator[IO[bytes]]:
    """A query's result as a readable byte stream, for results too large to hold (a whole table):
    the answer's start is bounded as a whole by ``timeout``, each read after it by ``timeout``.
    Errors raised while the caller reads are translated too (a dropped connection, a server error
    sent after the first rows)."""
    tls.enforce(store)
    request = _request(store, query, None, settings, None)
    with _errors(store, collection):
        with deadline(store, timeout, "ClickHouse answer"):
            response = _opener(store).open(request, timeout=timeout)
        with response:
            yield response


def native(store: Store, timeout: float, *, port: int, user: str = "default", password: str = "") -> Any:
    """A clickhouse-driver client for the native port, every step bounded by ``timeout``; queries
    through it should run inside :func:`native_call` so the whole exchange is bounded too."""
    from clickhouse_driver import Client

    kw: dict[str, Any] = {}
    if tls.flag(store, "secure", False):
        kw = {"secure": True, "verify": tls.level(store) is tls.TlsLevel.VERIFIED, "ca_certs": tls.ca_file(store)}
    return Client(host=store.host or "localhost", port=port, user=user, password=password,
                  connect_timeout=timeout, send_receive_timeout=timeout, sync_request_timeout=timeout, **kw)


def native_call(store: Store, timeout: float, client: Any, query: str) -> Any:
    from clickhouse_driver.errors import ServerException

    with deadline(store, timeout, "native ClickHouse answer"):
        try:
            return client.execute(query)
        except ServerException as exc:
            if exc.code in AUTH_CODES:
                raise AuthenticationFailed(store.name, f"the server refused the credentials (Code: {exc.code})",
                                           hint=AUTH_HINT) from exc
            raise
