"""Drivers are imported on first use (piiguard.registry.driver); the real import sits under
``if TYPE_CHECKING:`` for mypy. A name imported there and used at run time must also be bound in the
``else:`` branch, or the module fails with a NameError only when that engine is used — mypy cannot
see it, and only a test against that engine's server would."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "piiguard"
MODULES = sorted(SRC.rglob("*.py"))


def _annotation_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        parts = [getattr(node, "annotation", None), getattr(node, "returns", None)]
        if isinstance(node, ast.arguments):
            parts += [a.annotation for a in (*node.posonlyargs, *node.args, *node.kwonlyargs)]
        for part in parts:
            if part is not None:
                out.update(id(n) for n in ast.walk(part))
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_names_imported_for_type_checking_are_bound_at_run_time(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typed: set[str] = set()
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.Import | ast.ImportFrom):
                    typed.update(a.asname or a.name.split(".")[0] for a in imp.names)
            bound.update(t.id for n in node.orelse if isinstance(n, ast.Assign) for t in n.targets
                         if isinstance(t, ast.Name))
    if path.name == "__init__.py" and path.parent == SRC:
        bound |= typed  # the package's PEP 562 __getattr__ binds its API names on first use
    annotations = _annotation_nodes(tree)
    # A function that imports the name itself (a lazy import of numpy, pyarrow) binds it for its own body.
    local: set[int] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            own = {a.asname or a.name.split(".")[0] for n in ast.walk(func) if isinstance(n, ast.Import | ast.ImportFrom)
                   for a in n.names}
            local.update(id(n) for n in ast.walk(func) if isinstance(n, ast.Name) and n.id in own)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            and id(n) not in annotations and id(n) not in local}
    assert not (typed - bound) & used, f"used at run time but only imported for type checking: {(typed - bound) & used}"


def test_the_check_catches_a_missing_binding(tmp_path: Path) -> None:
    bad = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pyarrow.fs as fs\nelse:\n    pass\n" \
          "def f() -> None:\n    fs.S3FileSystem()\n"
    file = tmp_path / "bad.py"
    file.write_text(bad)
    with pytest.raises(AssertionError, match="fs"):
        test_names_imported_for_type_checking_are_bound_at_run_time(file)
