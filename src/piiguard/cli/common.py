"""Options and helpers shared by command modules."""

from __future__ import annotations

import logging
from pathlib import Path

from piiguard import plugins
from piiguard.config import Config, load_config

DEFAULT_CONFIG = "piiguard.yaml"
log = logging.getLogger(__name__)


def read_config(path: Path | None, *, everything: bool = True) -> Config | None:
    """The named file, else ./piiguard.yaml when present, else none (URLs only).

    Every command reads its configuration here, so each one validates it as ``validate`` does: every
    section, against the registered plugins' names and typed options. ``everything=False`` loads only
    the plugins validation needs (``validate``); the commands that use the stores load them all."""
    if everything:
        plugins.load()
    if path is None:
        if not Path(DEFAULT_CONFIG).is_file():
            return None
        path = Path(DEFAULT_CONFIG)
    config = load_config(path, schema=plugins.schema())
    log.info("configuration %s: %d store(s)", path, len(config.stores))
    return config
