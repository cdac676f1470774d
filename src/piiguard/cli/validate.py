"""``piiguard validate FILE``: check every name and option without touching a store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from piiguard import plugins
from piiguard.classify.engine import Classifier
from piiguard.cli.common import read_config


def validate(file: Path = typer.Argument(..., help="the configuration file, e.g. piiguard.yaml")) -> None:
    """Validate a configuration file: every unknown key or bad value is reported with its path (exit 2)."""
    config = read_config(file)
    assert config is not None
    Classifier(plugins.detectors_for(config.detectors))  # custom patterns must compile too
    Console().print(f"{file}: valid — {len(config.stores)} store(s), {len(config.detectors)} custom detector(s)")
