"""The package's floors run one way: a module imports only from its own floor or the floors below it, including
imports inside functions (they are read from the source, not from what happens to be loaded).

Floors, bottom to top (documented in docs/design.md and the README's layout section):
base (errors, io, linalg, validation, metrics, runinfo, figures) -> encoders, data, losses -> store -> adapters ->
upgrade -> search -> backfill -> training -> plan -> serve -> cli; then the paper harness, a distribution of its own
(harness/src/hotswap_harness): experiments, report -> its cli. Within a floor, imports may go either way; between
floors, only down; so the library never imports the harness.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hotswap"
HARNESS = ROOT / "harness" / "src" / "hotswap_harness"
FLOORS = (
    {"__init__", "errors", "io", "linalg", "validation", "metrics", "runinfo", "figures"},
    {"encoders", "data", "losses"},
    {"store"},
    {"adapters"},
    {"upgrade"},
    {"search"},
    {"backfill"},
    {"training"},
    {"plan"},
    {"serve"},
    {"cli"},
    {"harness.__init__", "harness.experiments", "harness.report"},
    {"harness.cli"},
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}


def _package(module: str) -> str:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "__init__"
    return f"harness.{name}" if parts[0] == "hotswap_harness" else name


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``hotswap`` import in ``path``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in ("hotswap", "hotswap_harness"):
                out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
            elif node.module.startswith(("hotswap.", "hotswap_harness.")):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith(("hotswap.", "hotswap_harness"))]
    return out


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py")) + sorted(HARNESS.rglob("*.py"))


def _name(path: Path) -> str:
    """The module's dotted name: ``hotswap.x.y`` or ``hotswap_harness.x.y``."""
    top = HARNESS if path.is_relative_to(HARNESS) else SRC
    return ".".join([top.name, *path.relative_to(top).with_suffix("").parts])


def test_every_package_has_a_floor():
    packages = {_package(_name(p if p.suffix == ".py" else p / "__init__.py"))
                for top in (SRC, HARNESS) for p in top.iterdir()
                if p.is_dir() and any(p.glob("*.py")) or p.suffix == ".py"}
    assert packages <= set(FLOOR), f"give these a floor in FLOORS: {sorted(packages - set(FLOOR))}"


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_import_goes_up_a_floor(path):
    here = _package(_name(path))
    upward = [f"line {line}: {module}" for line, module in _imports(path)
              if FLOOR[_package(module)] > FLOOR[here]]
    assert not upward, f"{_name(path)} ({here}, floor {FLOOR[here]}) imports from above: {upward}"


def test_the_library_never_imports_the_harness():
    core = [f"{_name(p)} line {line}: {m}" for p in sorted(SRC.rglob("*.py")) for line, m in _imports(p)
            if m.startswith("hotswap_harness")]
    assert not core, core


def test_the_walker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from hotswap.cli import app\n    import hotswap.serve.app\n"
                      "    from hotswap_harness.report import build_report\n")
    assert [m for _, m in _imports(module)] == ["hotswap.cli", "hotswap.serve.app", "hotswap_harness.report"]
    assert FLOOR[_package("hotswap_harness.report")] > FLOOR[_package("hotswap.cli")]
