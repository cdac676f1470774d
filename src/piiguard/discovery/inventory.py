"""Discovered stores against the configured ones: registered or not, the finding, ``adopt``."""

from __future__ import annotations

from collections.abc import Sequence

from piiguard.discovery.base import Discovered, Service
from piiguard.model import Finding, Store


def registered_at(service: Service, stores: Sequence[Store]) -> str | None:
    """The configured store at the service's address (host resolved, default port filled in), or None."""
    raise NotImplementedError


def unregistered_finding(found: Discovered) -> Finding | None:
    """``discovery.unregistered-store``: critical when it is open from outside; None when registered."""
    raise NotImplementedError


def adopt_entry(row: dict[str, object], name: str) -> str:
    """The piiguard.yaml entry (YAML text) for a discovered store, credentials as references to fill in."""
    raise NotImplementedError
