"""Load the built-in plugins, then third-party ones from the entry-point group ``piiguard.plugins``.

Nothing registers at import time of :mod:`piiguard`; :func:`load` does it once, on first use. A
third-party package exposes a module in the group; importing it runs its ``register`` decorators.
User-defined detectors from ``piiguard.yaml`` are added per configuration (:func:`detectors_for`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import cache
from importlib.metadata import entry_points

from piiguard.classify.detectors import Detector, detectors
from piiguard.config import CustomDetector
from piiguard.errors import PluginError

BUILTIN = (
    "piiguard.connectors.postgres",
    "piiguard.connectors.mysql",
    "piiguard.connectors.sqlite",
    "piiguard.connectors.files",
    "piiguard.connectors.opensearch",
    "piiguard.connectors.mongodb",
    "piiguard.connectors.s3",
    "piiguard.classify.builtin",
    "piiguard.checks.clickhouse",
    "piiguard.checks.mongodb",
    "piiguard.checks.mysql",
    "piiguard.checks.network",
    "piiguard.checks.opensearch",
    "piiguard.checks.postgres",
    "piiguard.checks.redis",
    "piiguard.checks.s3",
    "piiguard.checks.tls",
    "piiguard.watch.sinks",
    "piiguard.contain.clickhouse",
    "piiguard.contain.mongodb",
    "piiguard.contain.mysql",
    "piiguard.contain.opensearch",
    "piiguard.contain.postgres",
    "piiguard.contain.redis",
    "piiguard.contain.s3",
    "piiguard.masking.maskers",
    "piiguard.masking.targets",
    "piiguard.response.evidence",
    "piiguard.response.responders",
)
GROUP = "piiguard.plugins"


@cache
def load() -> None:
    for module in BUILTIN:
        importlib.import_module(module)
    for ep in entry_points(group=GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must say which one it was
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load",
                              hint=f"{type(exc).__name__}; uninstall or fix it") from exc


def detectors_for(custom: Sequence[CustomDetector] = ()) -> list[Detector]:
    """The registered detectors plus the configuration's own types (which may not reuse a name)."""
    load()
    out = [detectors.get(n) for n in detectors.names()]
    for c in custom:
        if c.name in detectors:
            raise PluginError(f"detector {c.name!r} in the configuration clashes with a built-in one",
                              hint="choose another name")
        out.append(Detector(c.name, c.description or f"User-defined type {c.name}.", pattern=c.pattern,
                            context=c.context, min_share=c.min_share, priority=95))
    return out
