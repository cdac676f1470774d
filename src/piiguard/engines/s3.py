"""S3 connections (boto3 / botocore): one place for timeouts and TLS.

Connect and each read are bounded by ``timeout``, one attempt only, and every request as a whole
too: botocore's ``before-send`` and ``needs-retry`` events (the latter follows every attempt, failed
or not) open and close a :func:`piiguard.engines.deadline.deadline` around the exchange, so a peer
streaming or dripping a response is cut. TLS follows ``tls`` (default on), ``verify`` (default on) and
``cafile``; policy's ``require_tls`` is enforced before connecting.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.engines.deadline import Watch, deadline
from piiguard.errors import AuthenticationFailed
from piiguard.model import Store

_open = threading.local()


def endpoint(store: Store) -> str:
    scheme = "https" if tls.flag(store, "tls", True) else "http"
    return f"{scheme}://{store.host or 'localhost'}:{store.port or 443}"


def verify(store: Store) -> bool | str:
    """botocore's ``verify``: a CA file, True (the system's CAs) or False (no verification)."""
    if tls.level(store) is not tls.TlsLevel.VERIFIED:
        return False
    return tls.ca_file(store) or True


def secret(store: Store) -> str | None:
    """The secret access key; refused clearly when the store names an access key id without one."""
    value = resolve_password(store)
    if store.user and not value:
        raise AuthenticationFailed(store.name, "an access key id is set but its secret key is empty",
                                   hint=f"set ${store.password_env or 'AWS_SECRET_ACCESS_KEY'} (or password_file)")
    return value


def client(store: Store, timeout: float, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
    """A boto3 S3 client with the store's credentials (or the given pair), path-style, no retries."""
    import boto3
    from botocore.config import Config as BotoConfig

    tls.enforce(store)
    c = boto3.client(
        "s3", endpoint_url=endpoint(store), region_name=store.options.get("region", "us-east-1"),
        aws_access_key_id=access_key or store.user, aws_secret_access_key=secret_key or secret(store),
        verify=verify(store),
        config=BotoConfig(connect_timeout=timeout, read_timeout=timeout,
                          retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt, no retry
                          s3={"addressing_style": "path"}),
    )

    def arm(**_: Any) -> None:
        cm = deadline(store, timeout, "S3 answer")
        cm.__enter__()
        stack: list[AbstractContextManager[Watch]] = getattr(_open, "stack", [])
        _open.stack = [*stack, cm]

    def disarm(**_: Any) -> None:
        stack: list[AbstractContextManager[Watch]] = getattr(_open, "stack", [])
        if stack:
            _open.stack = stack[:-1]
            stack[-1].__exit__(None, None, None)  # raises StoreUnreachable when the deadline expired

    c.meta.events.register("before-send.s3", arm)
    c.meta.events.register("needs-retry.s3", disarm)
    return c
