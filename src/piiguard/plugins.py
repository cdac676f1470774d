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
from types import MappingProxyType

from piiguard.classify.detectors import Detector, detectors
from piiguard.config import CustomDetector
from piiguard.errors import PluginError
from piiguard.schema import PluginSchema

BUILTIN = (
    "piiguard.connectors.postgres",
    "piiguard.connectors.mysql",
    "piiguard.connectors.sqlite",
    "piiguard.connectors.files",
    "piiguard.connectors.opensearch",
    "piiguard.connectors.mongodb",
    "piiguard.connectors.s3",
    "piiguard.connectors.clickhouse",
    "piiguard.connectors.redis",
    "piiguard.classify.builtin",
    "piiguard.checks.clickhouse",
    "piiguard.checks.copies",
    "piiguard.checks.discovery",
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
    "piiguard.response.documents",
)
GROUP = "piiguard.plugins"
# What validating piiguard.yaml needs: the modules that register engines, checks, maskers, responders.
SCHEMA_MODULES = (*(m for m in BUILTIN if m.startswith(("piiguard.connectors.", "piiguard.checks."))),
                  "piiguard.masking.maskers", "piiguard.response.responders",
                  "piiguard.response.documents")


@cache
def load() -> None:
    """Every built-in plugin, then the third-party ones."""
    for module in BUILTIN:
        importlib.import_module(module)
    _third_party()


@cache
def _third_party() -> None:
    for ep in entry_points(group=GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must say which one it was
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load",
                              hint=f"{type(exc).__name__}; uninstall or fix it") from exc


@cache
def schema() -> PluginSchema:
    """What the registered plugins accept, for validating ``piiguard.yaml`` (:mod:`piiguard.schema`).

    Only the modules that name what a configuration may use are imported (not containment, copy
    targets, evidence readers, alert sinks or detectors), and none of them imports an engine's driver
    (see :func:`piiguard.registry.driver`): ``piiguard validate`` stays quick."""
    for module in SCHEMA_MODULES:
        importlib.import_module(module)
    _third_party()
    from piiguard.checks.base import checks, targets
    from piiguard.connectors.base import connectors
    from piiguard.masking.maskers import maskers
    from piiguard.response.responders import responders

    return PluginSchema(
        engines=frozenset(connectors.names()) | frozenset(targets.names()),
        check_ids=frozenset(checks.names()),
        maskers=MappingProxyType({n: maskers.get(n).Options for n in maskers.names()}),
        responders=MappingProxyType({n: responders.get(n).Options for n in responders.names()}),
        responder_engines=MappingProxyType({n: responders.get(n).engines for n in responders.names()}),
        notices=_notice_options,
    )


def _notice_options() -> type:
    # notices imports the catalog, scope and copy pipeline: only for a file with respond.notices
    from piiguard.response.notices import NoticeOptions

    return NoticeOptions


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
