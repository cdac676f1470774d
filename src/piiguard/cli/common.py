"""Options and helpers shared by command modules."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piiguard import plugins
from piiguard.config import Config, load_config

if TYPE_CHECKING:
    from piiguard.catalog import Catalog

DEFAULT_CONFIG = "piiguard.yaml"
CATALOG_HELP = "catalog file (default: $PIIGUARD_CATALOG, the config's catalog:, or the user data dir)"
log = logging.getLogger(__name__)


class Format(StrEnum):
    """``--format`` of the commands that list or show what the catalog holds (``table`` is another
    name for ``text``, as ``scan`` and ``check`` call it)."""

    text = "text"
    table = "table"
    json = "json"


FORMAT = typer.Option(Format.text, "--format", "-f", help="text for people, json for machines (one document on "
                      "stdout; keys in docs/json.md)")


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


def open_catalog(option: Path | None, config: Config | None) -> Catalog:
    """The catalog for every command: ``--catalog``, else ``$PIIGUARD_CATALOG``, else the configuration's
    ``catalog:``, else the user's data folder (one rule, :func:`piiguard.catalog.resolve`)."""
    from piiguard import catalog  # here: validate and --help need no catalog

    return catalog.Catalog(catalog.resolve(option, config.catalog if config else None,
                                           config.source if config else None))
