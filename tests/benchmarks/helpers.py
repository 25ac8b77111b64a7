"""Plain helpers of the benchmark tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"


def derive_static(to: Path, dim: int, seed: int) -> Path:
    """A model2vec folder: the bundled static model's token table times a seeded random orthonormal map to
    ``dim`` columns, plus noise (so it is another model, not a rotation of the same one)."""
    from safetensors.numpy import load_file, save_file

    from hotswap.encoders import assets

    src = assets.static_folder()
    shutil.copytree(src, to)
    E = load_file(src / "model.safetensors")["embeddings"].astype(np.float32)
    rng = np.random.default_rng(seed)
    R = np.linalg.qr(rng.standard_normal((E.shape[1], E.shape[1])))[0][:, :dim]
    V = E @ R + 0.5 * E.std() * rng.standard_normal((E.shape[0], dim))
    save_file({"embeddings": V.astype(np.float16)}, str(to / "model.safetensors"))
    config = json.loads((to / "config.json").read_text())
    config.update(hidden_dim=dim, apply_pca=dim)
    (to / "config.json").write_text(json.dumps(config, indent=2))
    return to


def ok(res: subprocess.CompletedProcess) -> str:
    """``res``'s stdout, after asserting it exited with 0 (else the tail of its output is the message)."""
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def committed(name: str) -> dict:
    """The committed ``results/<name>``."""
    return json.loads((RESULTS / name).read_text())


def committed_keys(name: str) -> set[str]:
    """The top-level keys of the committed ``results/<name>``."""
    return set(committed(name))


def table_lines(stdout: str) -> list[list[str]]:
    """The body rows of the rich tables in ``stdout``, each a list of its cells (stripped)."""
    lines = [line for line in stdout.splitlines() if line.startswith("│")]
    return [[c.strip() for c in line.strip("│").split("│")] for line in lines]


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The body rows of the rich tables in ``stdout``: first cell -> the other cells."""
    return {cells[0]: cells[1:] for cells in table_lines(stdout)}


def number(cell: str) -> float:
    """A table cell as a number (``"1,234 s"`` -> 1234.0, ``"0.93x"`` -> 0.93)."""
    m = re.search(r"-?[\d,]*\.?\d+(?:e[+-]?\d+)?", cell)
    assert m, cell
    return float(m.group().replace(",", ""))
