from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import piiguard
from piiguard.catalog import Catalog
from piiguard.catalog.migrations import MIGRATIONS
from piiguard.config import parse_config
from piiguard.errors import CatalogError, PluginError


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "members.csv"
    path.write_text("card,email\n" + "".join(f"LOY-{10000000 + i},m{i}@example.net\n" for i in range(50)))
    return path


def test_custom_detector_from_yaml(tmp_path: Path) -> None:
    config = parse_config({"stores": [{"name": "m", "url": f"file://{_csv(tmp_path)}"}],
                           "detectors": [{"name": "loyalty-number", "pattern": "LOY-[0-9]{8}",
                                          "context": ["card"]}]})
    result = piiguard.scan(config=config)
    types = {f.field: f.pii_type for f in result.stores[0].collections[0].fields}
    assert types == {"card": "loyalty-number", "email": "email"}


def test_custom_detector_may_not_shadow_a_builtin(tmp_path: Path) -> None:
    config = parse_config({"stores": [{"name": "m", "url": f"file://{_csv(tmp_path)}"}],
                           "detectors": [{"name": "email", "pattern": "x"}]})
    with pytest.raises(PluginError, match="clashes with a built-in"):
        piiguard.scan(config=config)


def test_custom_pattern_must_suit_both_engines() -> None:
    from piiguard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"detectors\[0\]\.pattern: not valid RE2 syntax"):
        parse_config({"detectors": [{"name": "x-id", "pattern": "X(?=[0-9])[0-9]+"}]})


def test_catalog_migrates_once_and_records_scans(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        assert cat.version == len(MIGRATIONS)
        result = piiguard.scan([f"file://{_csv(tmp_path)}"], catalog=cat)
    with Catalog(path) as cat:  # reopening applies nothing new and keeps the data
        assert cat.version == len(MIGRATIONS)
        assert ("members.csv", "email", "email", 1.0) in [(a, b, c, round(d, 1)) for a, b, c, d in
                                                         cat.pii_fields("members.csv")]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM scans WHERE finished IS NOT NULL").fetchone()[0] == 1
        assert result.scan_id == 1


def test_newer_catalog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(CatalogError, match="newer"):
        Catalog(path)
