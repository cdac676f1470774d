"""OpenSearch and Elasticsearch clusters, over their REST API with ``opensearch-py``.

One connector serves both: everything it calls (``_cat/indices``, ``_search``, scroll, ``_mapping``,
the cardinality aggregation) means the same on Elasticsearch 7/8 and OpenSearch 1–3. Indices whose
names start with a dot (the security plugin's, Dashboards') are system indices and are not scanned.
A collection is an index; its documents' ``_source`` is flattened into field paths
(``profile.wifi.ssid``; list items ``devices[].serial``).

Sampling asks for ``n`` documents in ``random_score`` order (a scoring pass, never a sort of the
index), seeded by the index's name so that two scans of an unchanged index read the same documents
(a search returns each document once); a full scan scrolls. Fields are typed, and geo points and
numeric dates rendered, by the index's mapping (:mod:`piiguard.connectors.osmapping`). Distinct
counts for the subject estimate come from the ``cardinality`` aggregation (HyperLogLog++,
approximate) on the field or its ``.keyword`` sub-field.

Whole-collection reads (incident scope, copies from the index) take the fields asked for by path, with
``_source`` filtered to them, by point in time and ``search_after`` where the cluster has them
(OpenSearch 2.4+, one slice per shard; Elasticsearch 7.12+), else by scroll; the point in time or
scroll is released however the read ends. A read stops past the reported document count (plus a
margin) and after 360 × the timeout. A copy's columns are the field paths of a sample of 1,000
documents and those the mapping declares. Reading needs the ``indices:data/read/point_in_time/create``
permission where a point in time is used (in OpenSearch's ``read`` action group).

Options: ``tls`` (default true; ``false`` for plain HTTP), ``cafile`` (a private CA). The password
comes from ``OPENSEARCH_PASSWORD`` unless the store names another reference.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from piiguard.connectors import osmapping
from piiguard.connectors.base import (
    Batch,
    Connector,
    connectors,
    document_record_batches,
    documents_batch,
    source_keys,
)
from piiguard.connectors.labels import label
from piiguard.engines.opensearch import client
from piiguard.errors import AuthenticationFailed, CollectionError, StoreError, StoreUnreachable
from piiguard.model import CollectionInfo, Estimate, Store
from piiguard.registry import driver
from piiguard.system import SystemKind, system_kind

if TYPE_CHECKING:
    import opensearchpy
    import opensearchpy.helpers as opensearch_helpers
    import pyarrow as pa
    from opensearchpy import OpenSearch
    from opensearchpy import exceptions as oe
else:  # imported on first use: starting the CLI must not load every engine's driver
    opensearchpy = driver("opensearchpy")
    opensearch_helpers = driver("opensearchpy.helpers")
    oe = driver("opensearchpy.exceptions")
    pa = driver("pyarrow")

SCROLL_MARGIN = 1_000  # documents past the reported count a full scan still reads (indexed meanwhile)
SCROLL_BUDGET = 360  # × timeout: the longest a full scan's scroll may take (an hour at 10 s)
CARDINALITY_PRECISION = 40_000  # the aggregation's maximum: exact below it, within a few % above
KEEP_ALIVE = "2m"  # how long a point in time or scroll lives between two pages
PAGE = 10_000  # documents per page at most (the index.max_result_window default)
COLUMNS_SAMPLE = 1_000  # documents sampled for a collection's field paths


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
    reads_paths = True
    es: OpenSearch

    def open(self) -> None:
        self.es = client(self.store, self.timeout)
        with errors(self.store):
            if not isinstance(info := self.es.info(), dict) or not isinstance(info.get("version"), dict):
                raise ValueError("not OpenSearch's root answer")  # `[]` or `""` is no cluster
        self.version: dict[str, Any] = info["version"]

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

    def _properties(self, collection: CollectionInfo) -> dict[str, Any]:
        """The index's mapped fields (those of every index an alias or pattern names, merged)."""
        out: dict[str, Any] = {}
        with errors(self.store, collection.name):
            for index in _mappings(self.es.indices.get_mapping(index=collection.name)):
                out.update({k: v for k, v in index.items() if k not in out})
        return out

    def _typed(self, docs: Sequence[dict[str, Any]], properties: dict[str, Any]) -> Batch:
        batch = documents_batch([osmapping.render(d, properties) for d in docs])
        batch.types = osmapping.typed(batch.columns, osmapping.mapped_types(properties))
        return batch

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        seed = zlib.crc32(collection.name.encode("utf-8", "surrogatepass")) & 0x3FFFFFFF
        query = {"size": n, "query": {"function_score": {
            "query": {"match_all": {}}, "random_score": {"seed": seed, "field": "_seq_no"}}}}
        properties = self._properties(collection)
        with errors(self.store, collection.name):
            hits = self.es.search(index=collection.name, body=query)["hits"]["hits"]
            return self._typed([h.get("_source") or {} for h in hits], properties)

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

        properties = self._properties(collection)
        with errors(self.store, collection.name):
            hits_left = bounded_hits()
            while chunk := list(itertools.islice(hits_left, batch_rows)):
                yield self._typed(chunk, properties)

    def columns(self, collection: CollectionInfo) -> list[str]:
        """The field paths a sample of documents holds, and those the mapping declares that the sample
        missed (named through the arrays the sample saw, and through ``nested`` fields), sorted."""
        paths = set(self.sample(collection, COLUMNS_SAMPLE).columns)
        arrays = {p[:i].replace("[]", "") for p in paths for i in range(len(p)) if p.startswith("[]", i)}
        with errors(self.store, collection.name):
            for index in _mappings(self.es.indices.get_mapping(index=collection.name)):
                _mapped(index, "", arrays, paths)
        return sorted(paths)

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Every document's ``_source`` (filtered to what ``columns`` need), by point in time and
        ``search_after`` where the cluster has them (OpenSearch 2.4+, Elasticsearch 7.12+), else by
        scroll; the point in time or scroll is released however the read ends. Bounded like
        :meth:`batches`: the reported count plus a margin, and a time budget."""
        includes = source_keys(columns)
        source: Any = includes if includes is not None else True
        # batches of a page at most: documents are held as dicts until converted, whatever the caller asks
        page = min(batch_rows, PAGE)
        with closing(self._documents(collection, source, page)) as docs:  # closed now, not when collected
            yield from document_record_batches(docs, columns, page)

    def _documents(self, collection: CollectionInfo, source: Any, page: int) -> Generator[dict[str, Any]]:
        reported = collection.rows_estimate or 0
        limit = reported + max(SCROLL_MARGIN, reported // 10)
        budget = self.timeout * SCROLL_BUDGET
        until = time.monotonic() + budget
        n = 0
        with errors(self.store, collection.name), closing(self._pages(collection.name, {
                "size": page, "_source": source})) as pages:
            for hits in pages:
                n += len(hits)
                if n > limit:
                    raise CollectionError(self.store.name, f"the read went past the {reported:,} documents the "
                                          "index reports: stopped", collection=collection.name)
                if time.monotonic() > until:
                    raise CollectionError(self.store.name, f"the read took longer than {budget:.0f} s: stopped",
                                          collection=collection.name)
                for hit in hits:
                    yield hit.get("_source") or {}

    def _pages(self, index: str, body: dict[str, Any]) -> Generator[list[dict[str, Any]]]:
        """Pages of hits: a point in time where the cluster has one, else a scroll."""
        version = self.version
        if version.get("distribution") == "opensearch" and _number(version) >= (2, 4):
            yield from self._opensearch_pit(index, body)
        elif "distribution" not in version and _number(version) >= (7, 12):
            yield from self._elastic_pit(index, body)
        else:
            yield from self._scroll(index, body)

    def _opensearch_pit(self, index: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        # OpenSearch has no _shard_doc tie-breaker, and _doc is unique within a shard only: one slice per
        # shard (a slice is exactly one shard when max equals the shard count) sorted by _doc is exact.
        settings = self.es.indices.get_settings(index=index, name="index.number_of_shards")
        shards = sum(int(s["settings"]["index"]["number_of_shards"]) for s in settings.values())
        pit = self.es.transport.perform_request("POST", f"/{quote(index, safe='')}/_search/point_in_time",
                                                params={"keep_alive": KEEP_ALIVE})["pit_id"]
        try:
            for part in range(shards):
                query = {**body, "pit": {"id": pit, "keep_alive": KEEP_ALIVE}, "sort": [{"_doc": "asc"}],
                         "track_total_hits": False}
                if shards > 1:
                    query["slice"] = {"id": part, "max": shards}
                yield from self._after(query)
        finally:
            self._release("DELETE", "/_search/point_in_time", {"pit_id": [pit]})

    def _elastic_pit(self, index: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        # _shard_doc, the tie-breaker that makes search_after exact across shards, came in 7.12
        # (https://www.elastic.co/guide/en/elasticsearch/reference/7.12/paginate-search-results.html)
        pit = {"id": self.es.transport.perform_request("POST", f"/{quote(index, safe='')}/_pit",
                                                       params={"keep_alive": KEEP_ALIVE})["id"]}
        try:
            yield from self._after({**body, "pit": {**pit, "keep_alive": KEEP_ALIVE}, "sort": [{"_shard_doc": "asc"}],
                                    "track_total_hits": False}, pit)
        finally:
            self._release("DELETE", "/_pit", {"id": pit["id"]})

    def _after(self, query: dict[str, Any], pit: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        while True:
            answer = self.es.transport.perform_request("POST", "/_search", body=query)
            hits: list[dict[str, Any]] = answer["hits"]["hits"]
            if not hits:
                return
            yield hits
            if pit is not None and answer.get("pit_id"):
                pit["id"] = answer["pit_id"]  # Elasticsearch may hand on a new id: the one to use and release
                query["pit"]["id"] = answer["pit_id"]
            query["search_after"] = hits[-1]["sort"]

    def _scroll(self, index: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        answer = self.es.search(index=index, body={**body, "sort": ["_doc"]}, params={"scroll": KEEP_ALIVE})
        scroll = answer.get("_scroll_id")
        try:
            while hits := answer["hits"]["hits"]:
                yield hits
                answer = self.es.scroll(body={"scroll": KEEP_ALIVE, "scroll_id": scroll})
                scroll = answer.get("_scroll_id") or scroll
        finally:
            if scroll:
                self._release("DELETE", "/_search/scroll", {"scroll_id": [scroll]})

    def _release(self, method: str, path: str, body: dict[str, Any]) -> None:
        # one that could not be released is dropped by the server after KEEP_ALIVE; the read's own
        # error, if any, is the one to raise
        with suppress(oe.OpenSearchException, StoreError, ValueError):
            self.es.transport.perform_request(method, path, body=body)

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


def _number(version: dict[str, Any]) -> tuple[int, ...]:
    """``"2.19.4"`` → (2, 19, 4); a version it cannot read is (0,) (the oldest: scroll)."""
    try:
        return tuple(int(p) for p in str(version.get("number", "")).split("-")[0].split(".")[:2])
    except ValueError:
        return (0,)


def _mapped(properties: dict[str, Any], prefix: str, arrays: set[str], out: set[str]) -> None:
    """The mapping's leaf fields as field paths, ``[]`` after ``nested`` fields and after the arrays a
    sample saw (``arrays`` holds their paths without ``[]``)."""
    for key, spec in properties.items():
        path = f"{prefix}.{label(str(key))}" if prefix else label(str(key))
        if spec.get("type") == "nested" or path.replace("[]", "") in arrays:
            path += "[]"
        children = spec.get("properties")
        if isinstance(children, dict):
            _mapped(children, path, arrays, out)
        elif spec.get("type") not in (None, "object", "nested", "alias") and not any(
                p == path or p.startswith(f"{path}[]") for p in out):
            out.add(path)


def _mappings(answer: Any) -> list[dict[str, Any]]:
    """Each index's mapped ``properties`` from a ``_mapping`` answer; what is not shaped like one (a
    peer that is not OpenSearch answers anything) is left out rather than crashing the read."""
    out: list[dict[str, Any]] = []
    for index in (answer.values() if isinstance(answer, dict) else ()):
        mappings = index.get("mappings") if isinstance(index, dict) else None
        properties = mappings.get("properties") if isinstance(mappings, dict) else None
        if isinstance(properties, dict):
            out.append(properties)
    return out
