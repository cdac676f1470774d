"""OpenSearch and Elasticsearch connections (opensearch-py): one place for timeouts and TLS.

No retries, each read bounded by ``timeout`` and each whole request too: the connection class runs
every request under :func:`piiguard.engines.deadline.deadline`, so a peer streaming or dripping a
body is cut. TLS follows ``tls`` (default on), ``verify_certs`` (default on with TLS) and
``cafile``/``ca_certs``; policy's ``require_tls`` is enforced before connecting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from piiguard.config import resolve_password
from piiguard.engines import tls
from piiguard.engines.deadline import deadline
from piiguard.model import Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import opensearchpy
    from opensearchpy import OpenSearch, Urllib3HttpConnection
else:  # imported on first use: starting the CLI must not load every engine's driver
    opensearchpy = driver("opensearchpy")



def _bounded(store: Store, timeout: float) -> type[Urllib3HttpConnection]:
    class Bounded(opensearchpy.Urllib3HttpConnection):
        def perform_request(self, *args: Any, **kwargs: Any) -> Any:
            with deadline(store, timeout, "OpenSearch answer"):
                return super().perform_request(*args, **kwargs)

    return Bounded


def client(store: Store, timeout: float) -> OpenSearch:
    """A client with the store's credentials, no retries, every request bounded by ``timeout``."""
    tls.enforce(store)
    password = resolve_password(store)
    on = tls.flag(store, "tls", True)
    verify = tls.level(store) is tls.TlsLevel.VERIFIED
    return opensearchpy.OpenSearch(
        hosts=[{"host": store.host or "localhost", "port": store.port or 9200}],
        use_ssl=on, verify_certs=verify, ca_certs=tls.ca_file(store),
        ssl_show_warn=False, http_auth=(store.user, password or "") if store.user else None,
        timeout=timeout, max_retries=0, retry_on_timeout=False, connection_class=_bounded(store, timeout),
    )
