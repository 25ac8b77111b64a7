"""The package's floors run one way: a module imports only from its own floor or the floors below it, including
imports inside functions (they are read from the source, not from what happens to be loaded).

Floors, bottom to top (documented in docs/design.md and the README's layout section):
base (errors, io, linalg, validation, metrics) -> encoders, data, losses -> store -> adapters -> upgrade -> search ->
backfill -> training -> plan -> experiments, report -> serve -> cli. Within a floor, imports may go either
way; between floors, only down.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hotswap"
FLOORS = (
    {"__init__", "errors", "io", "linalg", "validation", "metrics"},
    {"encoders", "data", "losses"},
    {"store"},
    {"adapters"},
    {"upgrade"},
    {"search"},
    {"backfill"},
    {"training"},
    {"plan"},
    {"experiments", "report"},
    {"serve"},
    {"cli"},
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``hotswap`` import in ``path``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "hotswap":
                out += [(node.lineno, f"hotswap.{a.name}") for a in node.names]
            elif node.module.startswith("hotswap."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("hotswap.")]
    return out


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_package_has_a_floor():
    packages = {p.name if p.is_dir() else p.stem for p in SRC.iterdir()
                if (p.is_dir() and (p / "__init__.py").is_file()) or p.suffix == ".py"}
    assert packages <= set(FLOOR), f"give these a floor in FLOORS: {sorted(packages - set(FLOOR))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_goes_up_a_floor(path):
    here = _package("hotswap." + ".".join(path.relative_to(SRC).with_suffix("").parts))
    upward = [f"line {line}: {module}" for line, module in _imports(path)
              if FLOOR[_package(module)] > FLOOR[here]]
    assert not upward, f"{path.relative_to(SRC)} ({here}, floor {FLOOR[here]}) imports from above: {upward}"


def test_the_walker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from hotswap.cli import app\n    import hotswap.serve.app\n")
    assert [m for _, m in _imports(module)] == ["hotswap.cli", "hotswap.serve.app"]
