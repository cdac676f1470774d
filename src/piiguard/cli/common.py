"""Options and helpers shared by command modules."""

from __future__ import annotations

from pathlib import Path

from piiguard import plugins
from piiguard.catalog import Catalog, resolve
from piiguard.checks.base import checks, targets
from piiguard.config import Config, load_config
from piiguard.connectors.base import connectors

DEFAULT_CONFIG = "piiguard.yaml"
CATALOG_HELP = "catalog file (default: $PIIGUARD_CATALOG, the config's catalog:, or the user data dir)"


def read_config(path: Path | None) -> Config | None:
    """The named file, else ./piiguard.yaml when present, else none (URLs only)."""
    plugins.load()
    if path is None:
        if not Path(DEFAULT_CONFIG).is_file():
            return None
        path = Path(DEFAULT_CONFIG)
    return load_config(path, engines=set(connectors.names()) | set(targets.names()), check_ids=set(checks.names()))


def open_catalog(option: Path | None, config: Config | None) -> Catalog:
    """The catalog for every command: ``--catalog``, else ``$PIIGUARD_CATALOG``, else the configuration's
    ``catalog:``, else the user's data folder (one rule, :func:`piiguard.catalog.resolve`)."""
    return Catalog(resolve(option, config.catalog if config else None, config.source if config else None))
