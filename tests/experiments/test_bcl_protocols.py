"""Both image protocols end to end at the tiny scale on the real 20-class image set, through the CLI:
the results files have exactly their documented shape, the plots and tables are written, reruns reuse models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer.main
from rich.console import Console

from hotswap_harness.experiments.protocols.dsimplex import table as dsimplex_table
from hotswap_harness.experiments.protocols.perturbation import table as perturbation_table
from tests.cli.helpers import ok, runner
from hotswap.cli import app


def _text(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


@pytest.fixture(scope="module")
def dsimplex_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dsimplex")
    out = ok(["experiment", "dsimplex", "--scale", "tiny", "--tasks", "3", "--workdir", str(tmp / "runs"),
              "--out", str(tmp / "results")])
    return tmp, out, json.loads((tmp / "results" / "dsimplex.json").read_text())


@pytest.fixture(scope="module")
def perturbation_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("perturbation")
    out = ok(["experiment", "perturbation", "--scale", "tiny", "--methods", "independent,bct,ndpp,odpp",
              "--workdir", str(tmp / "runs"), "--out", str(tmp / "results")])
    return tmp, out, json.loads((tmp / "results" / "perturbation.json").read_text())


def test_dsimplex_results_shape(dsimplex_run):
    tmp, out, r = dsimplex_run
    assert isinstance(r["dataset"], str) and "CIFAR-100" in r["dataset"] and r["tasks"] == 3
    assert [row["method"] for row in r["rows"]] == ["independent", "bct", "dsimplex"]
    for row in r["rows"]:
        M = np.array([[math.nan if v is None else v for v in line] for line in row["matrix"]], dtype=float)
        assert M.shape == (3, 3)
        lower = M[np.tril_indices(3)]
        assert np.all((lower >= 0) & (lower <= 100)) and np.all(np.isnan(M[np.triu_indices(3, 1)]))
        assert 0.0 <= row["AC"] <= 1.0 and row["AM"] == pytest.approx(float(np.mean(lower)))
        ecc = sum(M[i, j] > M[j, j] for i in range(3) for j in range(i))
        assert row["AC"] == pytest.approx(ecc / 3)
    assert r["replacement_tasks"] == [0, 1, 2]
    assert (tmp / "results" / "dsimplex.png").stat().st_size > 10_000
    assert "AM" in out and "paper" in out
    shown = _text(dsimplex_table(r))
    assert "68.90" in shown and "35.18" in shown   # the paper's AM (7 tasks) beside ours
    assert f"{r['rows'][2]['AM']:.2f}" in shown


def test_dsimplex_saves_models_and_embeddings_and_reuses_them(dsimplex_run):
    tmp, _, first = dsimplex_run
    task0 = tmp / "runs" / "dsimplex" / "task0"
    assert (task0 / "model.safetensors").is_file() and (task0 / "bcl.json").is_file()
    q = np.load(task0 / "query.npy")
    assert q.dtype == np.float16 and q.shape[1] == 31   # preallocated K = 32 at tiny scale: 31-d simplex space
    ok(["experiment", "dsimplex", "--scale", "tiny", "--tasks", "3", "--methods", "dsimplex",
        "--workdir", str(tmp / "runs"), "--out", str(tmp / "again")])
    again = json.loads((tmp / "again" / "dsimplex.json").read_text())
    assert all(s["reused"] for s in again["rows"][0]["steps"])
    assert again["rows"][0]["matrix"] == first["rows"][2]["matrix"]


def test_perturbation_results_shape(perturbation_run):
    tmp, out, r = perturbation_run
    assert "GLDv2" in r["dataset"]
    assert {(row["method"], row["setting"]) for row in r["rows"]} == {
        (m, s) for m in ("independent", "bct", "ndpp", "odpp") for s in ("30-100", "30-60-100")}
    for row in r["rows"]:
        for key in ("self_map", "cross_map", "self_top1", "cross_top1"):
            assert isinstance(row[key], float) and 0 <= row[key] <= 100
        assert ("cross_prev_map" in row) == (row["setting"] == "30-60-100")
    old = {row["old_self_map"] for row in r["rows"]}
    assert len(old) == 1, "every method and setting shares one 30% model"
    assert (tmp / "results" / "perturbation.png").stat().st_size > 10_000
    assert "cross mAP" in out
    shown = _text(perturbation_table(r))
    assert all(f"{row['cross_map']:.1f}" in shown for row in r["rows"]) and "30-60-100" in shown


def test_thirty_one_tasks_is_refused_with_the_stand_in():
    res = runner.invoke(app, ["experiment", "dsimplex", "--tasks", "31", "--scale", "tiny"])
    assert res.exit_code != 0 and "19" in res.output


# The options of both commands, their order and defaults, as they were before the commands were generated from
# the protocol registry.
OPTIONS = {
    "dsimplex": {"--scale": "default", "--tasks": 7, "--methods": "independent,bct,dsimplex", "--replace-at": None,
                 "--workdir": Path("runs/dsimplex"), "--out": Path("results"), "--seed": 42, "--data": None,
                 "--setting": "seen-classes"},
    "perturbation": {"--scale": "default", "--methods": "independent,bct,prototype,ndpp,odpp",
                     "--settings": "30-100,30-60-100", "--workdir": Path("runs/perturbation"),
                     "--out": Path("results"), "--seed": 42, "--data": None},
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_options_are_the_same_as_before(name):
    command = typer.main.get_command(app).commands["experiment"].commands[name]
    params = [p for p in command.params if p.name != "help"]
    assert {p.opts[0]: p.default for p in params} == OPTIONS[name]
    assert [p.opts[0] for p in params] == list(OPTIONS[name])
    res = runner.invoke(app, ["experiment", name, "--help"], terminal_width=200)
    assert res.exit_code == 0
    listed = [line.split()[1] for line in res.output.splitlines() if line.startswith("│ --")]
    assert listed == [*OPTIONS[name], "--help"]


def test_a_bad_setting_is_one_error_line_before_any_work(tmp_path):
    res = runner.invoke(app, ["experiment", "dsimplex", "--setting", "unseen", "--scale", "tiny",
                              "--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "results")])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    assert "--setting 'unseen'" in errors[0] and "seen-classes, heldout-classes" in errors[0]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()
