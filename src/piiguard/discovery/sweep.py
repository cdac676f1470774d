"""A TCP connect sweep: rate- and concurrency-capped, asyncio; a host accepting every port is a tarpit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from piiguard.discovery.base import Endpoint


@dataclass(frozen=True)
class SweepResult:
    open: tuple[Endpoint, ...]  # accepted a connection (tarpit hosts' ports left out)
    tarpits: tuple[str, ...]  # hosts that accepted (nearly) every port: reported once each
    probes: int  # connection attempts sent
    seconds: float


def sweep(hosts: Iterable[str], ports: Sequence[int], *, rate: float, concurrency: int, timeout: float,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Try a connection to every host × port, sending nothing; ``progress(done, total)``."""
    raise NotImplementedError
