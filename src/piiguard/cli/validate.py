"""``piiguard validate FILE``: check every name and option without touching a store."""

from __future__ import annotations

from pathlib import Path

import typer

from piiguard.cli.common import read_config
from piiguard.config import missing_secrets
from piiguard.errors import ConfigError


def validate(file: Path = typer.Argument(..., help="the configuration file, e.g. piiguard.yaml"),
             skip_env: bool = typer.Option(False, "--skip-env",
                                           help="do not require the password_env variables to be set here "
                                                "(validating in CI, without the secrets)")) -> None:
    """Validate a configuration file: every unknown key or bad value is reported with its path (exit 2).

    Checks every section against the registered plugins: store engines and options, policy check
    ids, alert sinks, masking rules (maskers and their options), responders and their options,
    notices, custom detectors (their patterns must compile). Every secret reference
    (``password_env``, ``webhook_env``, ``client_secret_env``, …) that is not set in this environment
    is reported too, unless ``--skip-env``. No store is contacted."""
    config = read_config(file, everything=False)
    assert config is not None
    problems = [] if skip_env else missing_secrets(config.stores, config.alerts, config.respond)
    if problems:
        raise ConfigError(problems, hint="set them, or run `piiguard validate --skip-env` where they are not needed")
    if config.detectors:  # compiling patterns loads Hyperscan: only when the file declares some
        from piiguard import plugins
        from piiguard.classify.engine import Classifier

        Classifier(plugins.detectors_for(config.detectors))
    typer.echo(f"{file}: valid — {len(config.stores)} store(s), {len(config.detectors)} custom detector(s)")
