"""The catalog's discovery tables: the inventory of found stores, fingerprints, canaries, copy links.

A mixin of :class:`piiguard.catalog.Catalog` (everything still goes through that one class); kept in
its own module so the catalog's main module stays readable. Nothing here holds a raw value: the
inventory holds addresses and cleaned banners, fingerprints hold Bloom-filter bits of keyed hashes,
canaries hold a nonce (their values are derived from it and the discovery key) and keyed digests.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from piiguard.discovery.base import CopyLink, Discovered, Endpoint


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _ports(text: object) -> list[int]:
    """The ``also`` column: a JSON list of port numbers (anything else reads as none)."""
    try:
        value = json.loads(str(text or "[]"))
    except ValueError:
        return []
    return [p for p in value if isinstance(p, int) and 0 < p < 65536] if isinstance(value, list) else []


class InventoryTables:
    db: sqlite3.Connection

    # Inventory ---------------------------------------------------------------------------------------

    DISCOVERED_KEYS = ("host", "port", "kind", "engine", "product", "version", "evidence", "registered", "open",
                       "first_seen", "last_seen", "gone_since", "also")

    def record_discovered(self, found: Sequence[Discovered], *,
                          swept: Iterable[Endpoint] | Callable[[Endpoint], bool] = (),
                          at: str | None = None) -> list[Endpoint]:
        """Upsert what a sweep found (``last_seen`` moves on, ``first_seen`` stays); known endpoints the
        sweep covered — listed in ``swept``, or for which ``swept(endpoint)`` is true — that are not in
        ``found`` get ``gone_since``. The predicate is asked about known rows only, so a sweep of a
        large space is judged without listing it.
        Returns the endpoints seen for the first time, or seen again after being gone (what watch
        alerts on)."""
        now = at or _now()
        new: list[Endpoint] = []
        seen = {d.service.endpoint for d in found}
        with self.db:
            for d in found:
                s, ep = d.service, d.service.endpoint
                row = self.db.execute("SELECT gone_since FROM discovered WHERE host = ? AND port = ?",
                                      (ep.host, ep.port)).fetchone()
                if row is None or row[0] is not None:
                    new.append(ep)
                self.db.execute(
                    "INSERT INTO discovered (host, port, kind, engine, product, version, evidence, registered, open,"
                    " first_seen, last_seen, also) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, "
                    "port) DO UPDATE SET kind = excluded.kind, engine = excluded.engine, product = excluded.product, "
                    "version = excluded.version, evidence = excluded.evidence, registered = excluded.registered, "
                    "open = excluded.open, last_seen = excluded.last_seen, gone_since = NULL, also = excluded.also, "
                    "first_seen = CASE WHEN discovered.gone_since IS NULL THEN discovered.first_seen "
                    "ELSE excluded.first_seen END",
                    (ep.host, ep.port, s.kind.value, s.engine, s.product, s.version, s.evidence, d.registered,
                     int(d.open), now, now, json.dumps(sorted(d.also))))
            if callable(swept):
                known = self.db.execute("SELECT host, port FROM discovered WHERE gone_since IS NULL").fetchall()
                covered: Iterable[Endpoint] = [ep for ep in (Endpoint(h, int(p)) for h, p in known) if swept(ep)]
            else:
                covered = swept
            gone = [(now, ep.host, ep.port) for ep in covered if ep not in seen]
            self.db.executemany("UPDATE discovered SET gone_since = ? WHERE host = ? AND port = ? AND "
                                "gone_since IS NULL", gone)
        return new

    def discovered(self, *, include_gone: bool = False) -> list[dict[str, Any]]:
        """The inventory of found stores (and other services), by address."""
        where = "" if include_gone else " WHERE gone_since IS NULL"
        rows = self.db.execute(f"SELECT {', '.join(self.DISCOVERED_KEYS)} FROM discovered{where} "
                               "ORDER BY host, port").fetchall()
        return [{**dict(zip(self.DISCOVERED_KEYS, r, strict=True)), "open": bool(r[8]), "also": _ports(r[12])}
                for r in rows]

    # Fingerprints ------------------------------------------------------------------------------------

    FINGERPRINT_KEYS = ("store", "collection", "field", "kind", "key_id", "people", "capacity", "hashes", "built",
                        "dense", "bits")

    def save_fingerprint(self, record: dict[str, Any]) -> None:
        """Replace the fingerprint of ``record``'s store.collection.field (keys: FINGERPRINT_KEYS)."""
        values = [record.get(k) or _now() if k == "built" else record.get(k) if k == "dense" else record[k]
                  for k in self.FINGERPRINT_KEYS]
        with self.db:
            self.db.execute(f"INSERT OR REPLACE INTO fingerprints ({', '.join(self.FINGERPRINT_KEYS)}) VALUES "
                            f"({', '.join('?' * len(self.FINGERPRINT_KEYS))})", values)

    def fingerprints(self, store: str | None = None, *, with_bits: bool = True) -> list[dict[str, Any]]:
        keys = self.FINGERPRINT_KEYS if with_bits else self.FINGERPRINT_KEYS[:-1]
        where, args = (" WHERE store = ?", (store,)) if store else ("", ())
        rows = self.db.execute(f"SELECT {', '.join(keys)} FROM fingerprints{where} ORDER BY store, collection, "
                               "field", args).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # Canaries ----------------------------------------------------------------------------------------

    CANARY_KEYS = ("id", "store", "collection", "count", "nonce", "key_id", "fields", "status", "created",
                   "planted", "removed", "digests")

    def add_canary(self, store: str, collection: str, count: int, nonce: str, key_id: str,
                   fields: dict[str, str], digests: bytes) -> int:
        """Record a planned canary set (status ``planned``) before anything is inserted."""
        with self.db:
            cur = self.db.execute("INSERT INTO canaries (store, collection, count, nonce, key_id, fields, status, "
                                  "created, digests) VALUES (?, ?, ?, ?, ?, ?, 'planned', ?, ?)",
                                  (store, collection, count, nonce, key_id, json.dumps(fields), _now(), digests))
        return int(cur.lastrowid or 0)

    def set_canary(self, canary_id: int, status: str) -> None:
        """``planted`` or ``removed``, with its time."""
        column = {"planted": "planted", "removed": "removed"}[status]
        with self.db:
            self.db.execute(f"UPDATE canaries SET status = ?, {column} = ? WHERE id = ?", (status, _now(), canary_id))

    def canaries(self, *, status: str | None = None) -> list[dict[str, Any]]:
        where, args = (" WHERE status = ?", (status,)) if status else ("", ())
        rows = self.db.execute(f"SELECT {', '.join(self.CANARY_KEYS)} FROM canaries{where} ORDER BY id",
                               args).fetchall()
        return [{**dict(zip(self.CANARY_KEYS, r, strict=True)), "fields": json.loads(r[6])} for r in rows]

    def canary_version(self) -> tuple[Any, ...]:
        """A cheap marker that changes whenever a set is added, planted or removed (the trap re-reads
        the sets only then)."""
        return tuple(self.db.execute("SELECT count(*), max(id), max(planted), max(removed) FROM canaries").fetchone())

    def record_canary_hit(self, canary_id: int, channel: str, source: str, detail: str = "",
                          incident_id: int | None = None, at: str | None = None) -> int:
        with self.db:
            cur = self.db.execute("INSERT INTO canary_hits (canary_id, at, channel, source, detail, incident_id) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", (canary_id, at or _now(), channel, source, detail,
                                                                incident_id))
        return int(cur.lastrowid or 0)

    HIT_KEYS = ("id", "canary_id", "at", "channel", "source", "detail", "incident_id")

    def canary_hits(self, canary_id: int | None = None) -> list[dict[str, Any]]:
        where, args = (" WHERE canary_id = ?", (canary_id,)) if canary_id is not None else ("", ())
        rows = self.db.execute(f"SELECT {', '.join(self.HIT_KEYS)} FROM canary_hits{where} ORDER BY id",
                               args).fetchall()
        return [dict(zip(self.HIT_KEYS, r, strict=True)) for r in rows]

    # Copy links --------------------------------------------------------------------------------------

    def record_links(self, links: Sequence[CopyLink]) -> None:
        now = _now()
        with self.db:
            for link in links:
                self.db.execute(
                    "INSERT INTO copy_links (store, collection, source_store, source_collection, via, fields, people,"
                    " share, sampled, matched, from_sample, first_seen, last_seen) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (store, collection, source_store, source_collection, via) DO UPDATE SET "
                    "fields = excluded.fields, people = excluded.people, share = excluded.share, "
                    "sampled = excluded.sampled, matched = excluded.matched, from_sample = excluded.from_sample, "
                    "last_seen = excluded.last_seen",
                    (link.store, link.collection, link.source_store, link.source_collection, link.via,
                     json.dumps([list(p) for p in zip(link.fields, link.source_fields, strict=False)]), link.people,
                     link.share, link.sampled, link.matched, int(link.from_sample), now, now))

    def links(self, store: str | None = None, *, source_store: str | None = None) -> list[CopyLink]:
        conditions = [(c, v) for c, v in (("store = ?", store), ("source_store = ?", source_store)) if v]
        where = " WHERE " + " AND ".join(c for c, _ in conditions) if conditions else ""
        rows = self.db.execute("SELECT store, collection, source_store, source_collection, via, fields, people, share,"
                               f" sampled, matched, from_sample FROM copy_links{where} ORDER BY store, collection",
                               tuple(v for _, v in conditions)).fetchall()
        out = []
        for r in rows:
            pairs = json.loads(r[5])
            out.append(CopyLink(r[0], r[1], r[2], r[3], r[4], tuple(p[0] for p in pairs), tuple(p[1] for p in pairs),
                                int(r[6]), float(r[7]), int(r[8]), int(r[9]), bool(r[10])))
        return out
