"""A relative ``catalog:`` resolves beside the configuration file as the user named it — beside a
symlink, not its target (fx8, defect 4; the rule is in README's configuration reference)."""

from __future__ import annotations

from pathlib import Path

import pytest

from piiguard.catalog import resolve
from piiguard.cli.common import read_config


def test_a_relative_catalog_in_a_symlinked_config_is_beside_the_link(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIIGUARD_CATALOG", raising=False)
    shared, site = tmp_path / "shared", tmp_path / "site"
    shared.mkdir()
    site.mkdir()
    real = shared / "piiguard.yaml"
    real.write_text("catalog: state/catalog.db\n")
    link = site / "piiguard.yaml"
    link.symlink_to(real)
    cfg = read_config(link)
    assert cfg is not None
    assert resolve(None, cfg.catalog, cfg.source) == site / "state" / "catalog.db"
    direct = read_config(real)
    assert direct is not None and resolve(None, direct.catalog, direct.source) == shared / "state" / "catalog.db"
