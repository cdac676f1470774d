"""The trap: where a canary's token, link or e-mail lands when someone uses leaked data.

``watch`` serves it (``discovery.canary.trap``, optionally ``discovery.canary.smtp``). A request or a
mail that carries a planted canary value is proof of access: it is recorded with time and source
address, alerted through the configured sinks and entered on an incident's timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from piiguard.discovery.settings import CanarySettings


@dataclass(frozen=True)
class Hit:
    canary_id: int
    store: str  # where the canary was planted
    collection: str
    channel: str  # http | smtp
    source: str  # the client's address:port
    at: str  # ISO time
    incident_id: int | None = None


class Trap:
    """Listens on ``settings.trap`` (and ``settings.smtp``) in threads; ``on_hit`` is called once per hit,
    after it is recorded in the catalog at ``catalog_path``."""

    def __init__(self, settings: CanarySettings, catalog_path: Path, key: bytes,
                 on_hit: Callable[[Hit], None] | None = None) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def addresses(self) -> list[str]:
        """Where it listens (host:port), once started."""
        raise NotImplementedError
