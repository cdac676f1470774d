"""Canary customers: planned, planted, found in copies, removed — piiguard's own rows only."""

from __future__ import annotations

from collections.abc import Sequence

from piiguard.catalog import Catalog
from piiguard.discovery.base import CopyLink
from piiguard.model import Store


def find(store: Store, catalog: Catalog, key: bytes, *, limit: int = 100_000,
         collections: Sequence[str] = ()) -> list[CopyLink]:
    """Canary values of any planted set found in ``store``: each is proof it copies that set's table."""
    raise NotImplementedError
