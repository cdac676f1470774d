"""The classification benchmark's split holds (docs/benchmark.md, bench/classify_data.py).

Held-out data is Mimesis's, in locales whose languages the tuning side never uses; nothing that ships
(src/) or tunes imports Mimesis, and no tuning list names a held-out language's locale.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import classify_data as data  # noqa: E402

HELD_OUT_LANGUAGES = {"cs", "da", "fi", "hu", "no", "nb", "nn", "sk", "et", "hr", "uk", "kk", "el", "fa", "ko"}
#: The one file allowed to import Mimesis: the held-out generator. The runner reaches it through there.
MIMESIS_ALLOWED = {ROOT / "bench" / "classify_data.py"}


def language(locale: str) -> str:
    return re.split(r"[_\-]", locale)[0].lower()


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if called in ("__import__", "import_module"):
                found.add(str(node.args[0].value).split(".")[0])
    return found


def python_files() -> list[Path]:
    return [p for d in ("src", "bench", "scripts", "tests") for p in (ROOT / d).rglob("*.py")
            if "/out/" not in str(p)]


def test_the_split_is_the_documented_one() -> None:
    assert (data.TUNING.generator, data.TUNING.seed, len(data.TUNING.locales)) == ("faker", 14001, 15)
    assert (data.HELD_OUT.generator, data.HELD_OUT.seed) == ("mimesis", 14101)
    assert set(data.HELD_OUT.locales) == {"cs", "da", "fi", "hu", "no", "sk", "et", "hr", "uk", "kk", "el", "fa", "ko"}
    doc = (ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    for split in data.SPLITS:
        assert str(split.seed) in doc
        assert all(f"`{loc}`" in doc for loc in split.locales), split.name


def test_no_language_is_on_both_sides() -> None:
    tuning = {language(loc) for loc in data.TUNING.locales}
    assert not tuning & {language(loc) for loc in data.HELD_OUT.locales}
    assert not tuning & HELD_OUT_LANGUAGES


# A locale id (cs_CZ, nb_NO, el-GR), or a held-out language code alone in quotes ("fi"), except the codes
# that are also everyday tokens in code: "no" (yes/no), "uk" (the country), "et", "el".
_BARE = sorted(HELD_OUT_LANGUAGES - {"no", "uk", "et", "el"})
_ALL = "|".join(sorted(HELD_OUT_LANGUAGES))
HELD_OUT_LOCALE = re.compile(rf"""(?<![A-Za-z])(?:({_ALL})[_-][A-Z]{{2}}\b|["']({"|".join(_BARE)})["'])""")


@pytest.mark.parametrize("path", [p for p in python_files() if p.is_relative_to(ROOT / "src")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_shipped_names_a_held_out_locale(path: Path) -> None:
    """Word lists, the column model and thresholds are built from tuning locales only."""
    hits = [m.group(0) for m in HELD_OUT_LOCALE.finditer(path.read_text(encoding="utf-8"))]
    assert not hits, f"{path.relative_to(ROOT)} names held-out locales {sorted(set(hits))}"


def test_only_the_held_out_generator_imports_mimesis() -> None:
    importers = {p for p in python_files() if "mimesis" in imports(p)}
    assert importers <= MIMESIS_ALLOWED, sorted(str(p.relative_to(ROOT)) for p in importers - MIMESIS_ALLOWED)
    assert importers, "the held-out generator no longer uses Mimesis"


def test_the_import_check_sees_every_way_of_importing(tmp_path: Path) -> None:
    """The check above can fail: each spelling of an import is seen."""
    for i, line in enumerate(("import mimesis", "from mimesis.locales import Locale", "import mimesis.enums as e",
                              "__import__('mimesis')", "importlib.import_module('mimesis.builtins')")):
        f = tmp_path / f"m{i}.py"
        f.write_text(f"def f():\n    {line}\n")
        assert "mimesis" in imports(f), line


@pytest.mark.parametrize("text", ['LOCALES = ("cs_CZ", "de_DE")', "Faker('da_DK')", 'names_for("fi")',
                                  "src = {'ko': KO}", "nb-NO", '"el_GR"', "'uk_UA'"])
def test_the_locale_check_sees_held_out_spellings(text: str) -> None:
    assert HELD_OUT_LOCALE.search(text)


@pytest.mark.parametrize("text", ['("de_DE", "fr_FR")', "no_value = 1", "'ja_JP'", "el = 3", "if x is no:", 'answer = "no"', "'uk'"])
def test_the_locale_check_passes_tuning_text(text: str) -> None:
    assert not HELD_OUT_LOCALE.search(text)


def test_tuning_tables_come_from_faker_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generating the tuning split never touches Mimesis: with it unimportable, the split still builds."""
    monkeypatch.setitem(sys.modules, "mimesis", None)
    monkeypatch.setitem(sys.modules, "mimesis.locales", None)
    tables = data.tables(data.TUNING, 5, locales=2)
    assert [t.locale for t in tables] == ["en_US", "en_US", "de_DE", "de_DE"]
    with pytest.raises(ImportError):
        data.tables(data.HELD_OUT, 5, locales=1)


@pytest.mark.parametrize("split", data.SPLITS, ids=lambda s: s.name)
def test_tables_are_deterministic_labelled_and_mixed(split: data.Split) -> None:
    one, two = data.tables(split, 20, locales=2), data.tables(split, 20, locales=2)
    assert [(t.name, t.names("natural"), t.values) for t in one] == [(t.name, t.names("natural"), t.values) for t in two]
    for t in one:
        truth = t.truth("obfuscated")
        assert list(truth) == [f"c{i + 1:02d}" for i in range(len(t.columns))]
        labels = set(truth.values())
        assert None in labels and len(labels - {None}) >= 4, t.name  # PII columns and decoys side by side
        for spec, name in t.columns:
            assert name in spec.names and len(t.values[spec.key]) == 20
        keys = [s.key for s, _ in t.columns]
        for a, b in (("first", "last"), ("street", "city"), ("city", "postcode"), ("lat", "lon")):
            if a in keys:
                assert keys.index(b) == keys.index(a) + 1, (t.name, a, b)


def test_every_label_is_a_piiguard_type() -> None:
    """Scoring compares type names: a label piiguard cannot emit would score 0 whatever it does."""
    from piiguard import plugins

    plugins.load()
    known = {d.name for d in plugins.detectors_for(())}
    assert {s.label for s in data.COLUMNS if s.label} <= known
