"""Which engine answers on an open port: each engine's outside probe (the check targets' own code)."""

from __future__ import annotations

from collections.abc import Sequence

from piiguard.discovery.base import Endpoint, Service
from piiguard.model import Finding, Store


def identify(endpoint: Endpoint, *, timeout: float, guess: bool = False) -> Service:
    """What answers at ``endpoint``; never raises for what the peer does (that is a Service too)."""
    raise NotImplementedError


def identify_all(endpoints: Sequence[Endpoint], *, timeout: float, guess: bool = False,
                 concurrency: int = 64) -> list[Service]:
    raise NotImplementedError


def as_store(service: Service, name: str | None = None) -> Store:
    """The store checks and connectors use for a found service (no credentials)."""
    raise NotImplementedError


def outside_findings(service: Service, *, timeout: float, name: str | None = None) -> tuple[list[Finding], bool]:
    """The engine's outside checks on the found store, and whether one that exposes failed (it is open)."""
    raise NotImplementedError
