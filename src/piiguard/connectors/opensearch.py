"""OpenSearch and Elasticsearch clusters, over their REST API with ``opensearch-py``.

One connector serves both: everything it calls (``_cat/indices``, ``_search``, scroll, ``_mapping``,
the cardinality aggregation) means the same on Elasticsearch 7/8 and OpenSearch 1–3. Indices whose
names start with a dot (the security plugin's, Dashboards') are system indices and are not scanned.
A collection is an index; its documents' ``_source`` is flattened into field paths
(``profile.wifi.ssid``; list items ``devices[].serial``).

Sampling asks for ``n`` documents in ``random_score`` order (a scoring pass, never a sort of the
index); a full scan scrolls. Distinct counts for the subject estimate come from the ``cardinality``
aggregation (HyperLogLog++, approximate) on the field or its ``.keyword`` sub-field.

Options: ``tls`` (default true; ``false`` for plain HTTP), ``cafile`` (a private CA). The password
comes from ``OPENSEARCH_PASSWORD`` unless the store names another reference.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from piiguard.connectors.base import Batch, Connector, connectors, document_batches, documents_batch
from piiguard.engines.opensearch import client
from piiguard.errors import AuthenticationFailed, CollectionError, StoreUnreachable
from piiguard.model import CollectionInfo, Estimate, Store
from piiguard.registry import driver
from piiguard.system import SystemKind, system_kind

if TYPE_CHECKING:
    import opensearchpy
    import opensearchpy.helpers as opensearch_helpers
    from opensearchpy import OpenSearch
    from opensearchpy import exceptions as oe
else:  # imported on first use: starting the CLI must not load every engine's driver
    opensearchpy = driver("opensearchpy")
    opensearch_helpers = driver("opensearchpy.helpers")
    oe = driver("opensearchpy.exceptions")

SCROLL_MARGIN = 1_000  # documents past the reported count a full scan still reads (indexed meanwhile)
SCROLL_BUDGET = 360  # × timeout: the longest a full scan's scroll may take (an hour at 10 s)
CARDINALITY_PRECISION = 40_000  # the aggregation's maximum: exact below it, within a few % above


@contextmanager
def errors(store: Store, collection: str | None = None) -> Iterator[None]:
    """The client's exceptions as piiguard's, without the server's response body (it may quote data)."""
    try:
        yield
    except oe.AuthenticationException as exc:
        raise AuthenticationFailed(store.name, "the cluster refused the credentials (401)",
                                   hint="check the store's user and password reference") from exc
    except oe.ConnectionError as exc:
        raise StoreUnreachable(store.name, f"cannot reach {store.address} ({type(exc.info).__name__})",
                               hint="check host, port and the tls option") from exc
    except oe.TransportError as exc:
        # the error type only when it is a name (OpenSearch's JSON error); a non-JSON body is never echoed
        kind = exc.error if isinstance(exc.error, str) and exc.error.replace("_", "").isalnum() else ""
        message = f"the cluster answered {exc.status_code}" + (f" ({kind})" if kind else "")
        if collection is not None:
            raise CollectionError(store.name, message, collection=collection) from exc
        raise StoreUnreachable(store.name, message) from exc
    except (oe.OpenSearchException, ValueError, UnicodeError, TypeError, KeyError, AttributeError,
            IndexError) as exc:  # an answer that is not OpenSearch's JSON
        raise StoreUnreachable(store.name, f"{store.address} did not answer as OpenSearch does ({type(exc).__name__})",
                               hint="check host, port and the tls option") from exc


@connectors.register("opensearch")
class OpenSearchConnector(Connector):
    """An OpenSearch or Elasticsearch cluster; one collection per (non-system) index."""

    privileges = ("cluster: monitor (cat indices); indices: read, view_index_metadata on the indices to scan"
                  " (OpenSearch security: the built-in readall role)")
    es: OpenSearch

    def open(self) -> None:
        self.es = client(self.store, self.timeout)
        with errors(self.store):
            if not isinstance(info := self.es.info(), dict) or not isinstance(info.get("version"), dict):
                raise ValueError("not OpenSearch's root answer")  # `[]` or `""` is no cluster

    def close(self) -> None:
        if getattr(self, "es", None) is not None:
            self.es.close()

    def collections(self) -> list[CollectionInfo]:
        with errors(self.store):  # the answer is parsed inside: `[1,2,3]` is not OpenSearch's
            rows = self.es.cat.indices(format="json", h="index,docs.count", expand_wildcards="open")
            if not isinstance(rows, list):  # an empty or other body must not pass for an empty cluster
                raise ValueError("not a list of indices")
            return [CollectionInfo(str(r["index"]), int(r.get("docs.count") or 0), Estimate.EXACT)
                    for r in sorted(rows, key=lambda r: r["index"])
                    if system_kind("opensearch", str(r["index"])) is not SystemKind.CATALOG]

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        query = {"size": n, "query": {"function_score": {
            "query": {"match_all": {}}, "random_score": {"seed": random.randrange(1 << 30), "field": "_seq_no"}}}}
        with errors(self.store, collection.name):
            hits = self.es.search(index=collection.name, body=query)["hits"]["hits"]
            return documents_batch([h.get("_source") or {} for h in hits])

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        hits = opensearch_helpers.scan(self.es, index=collection.name, query={"query": {"match_all": {}}},
                      size=min(batch_rows, 10_000), scroll="2m", preserve_order=False)
        # a scroll that never ends (a peer handing out pages forever) stops at the reported count plus
        # a margin (documents indexed meanwhile), and after SCROLL_BUDGET x timeout in all
        reported = collection.rows_estimate or 0
        limit = reported + max(SCROLL_MARGIN, reported // 10)
        until = time.monotonic() + self.timeout * SCROLL_BUDGET

        def bounded_hits() -> Iterator[dict[str, Any]]:
            for n, hit in enumerate(hits):
                if n >= limit:
                    raise CollectionError(self.store.name, f"the scroll went past the {reported:,} documents "
                                          "the index reports: stopped", collection=collection.name)
                if time.monotonic() > until:
                    raise CollectionError(self.store.name, f"the scroll took longer than "
                                          f"{self.timeout * SCROLL_BUDGET:.0f} s: stopped", collection=collection.name)
                yield hit.get("_source") or {}

        with errors(self.store, collection.name):
            yield from document_batches(bounded_hits(), batch_rows)

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        path = field.replace("[]", "")
        with errors(self.store, collection.name):
            mapping = self.es.indices.get_field_mapping(index=collection.name, fields=path)
        # {index: {"mappings": {path: {"full_name": path, "mapping": {leaf: {"type": …}}}}}}
        spec: dict[str, Any] = {}
        for index in mapping.values():
            entries: dict[str, Any] = index.get("mappings", {})
            for entry in entries.values():
                leaves: dict[str, Any] = entry.get("mapping", {})
                spec = next(iter(leaves.values()), spec)
        if not spec:
            return None
        target = path if spec.get("type") != "text" else (f"{path}.keyword" if "keyword" in spec.get("fields", {})
                                                          else None)
        if target is None:
            return None  # analysed text without a keyword sub-field cannot be aggregated
        body = {"size": 0, "aggs": {"n": {"cardinality": {"field": target,
                                                          "precision_threshold": CARDINALITY_PRECISION}}}}
        with errors(self.store, collection.name):
            value = self.es.search(index=collection.name, body=body)["aggregations"]["n"]["value"]
        return int(value), Estimate.APPROXIMATE
