"""``hotswap experiment qdc`` and ``qdc-recipe`` as registered protocols: the options they always had, bad options
refused in one line before any work, the options turned into the run's QDCConfig, and the results files written
as before (each run merged by setting into qdc.json; five sources also alone). The runs themselves are replaced by
canned results here; tests/experiments/test_qdc.py trains the real thing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main

from hotswap.cli import app
from hotswap_harness.experiments.protocols.qdc import PAPER, lines, section
from hotswap_harness.experiments.protocols.qdc_recipe import lines as recipe_lines
from hotswap_harness.experiments.protocols.qdc_recipe import recipe_pairs
from hotswap_harness.experiments.protocols.qdc_recipe import table as recipe_table
from hotswap_harness.report.sections import Source
from tests.cli.helpers import ok, runner


def _params(name: str) -> list[tuple[str, object, str | None]]:
    command = typer.main.get_command(app).commands["experiment"].commands[name]  # type: ignore[attr-defined]
    return [(p.opts[0], p.default, p.help) for p in command.params]


def test_qdc_lists_the_options_it_always_had():
    assert _params("qdc") == [
        ("--scale", "default", "tiny, default, paper (paper: the paper's sizes, for a GPU)"),
        ("--workdir", Path("runs/qdc"), "where the trained models go (resumable)"),
        ("--out", Path("results"), "folder for qdc.json and qdc.png"),
        ("--sequence", "sections", "sections: five Debian-Section tasks (qdc.json); sources: Debian, FOLDOC, Jargon, "
                                   "GCIDE, Python docs (qdc_five_sources.json)"),
        ("--lr", 2e-5, "learning rate per task (choose it with 'hotswap experiment qdc-recipe')"),
        ("--epochs", 1, "passes over each task's pairs (likewise)"),
        ("--seed", 0, None),
    ]
    res = runner.invoke(app, ["experiment", "qdc", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for option, kind in (("scale", "str"), ("workdir", "path"), ("out", "path"), ("sequence", "str"),
                         ("lr", "float"), ("epochs", "int"), ("seed", "int")):
        assert re.search(rf"^│ --{option} +<{kind}> ", res.output, re.M), (option, res.output)
    assert "Example: hotswap experiment qdc --scale default" in res.output


def test_qdc_recipe_lists_the_options_it_always_had():
    assert _params("qdc-recipe") == [
        ("--scale", "default", "tiny, default, paper"),
        ("--sequence", "sources", "sources (five real text sources) or sections (Debian Sections)"),
        ("--recipes", "1:2e-5,1:1e-4,4:1e-4", "candidate EPOCHS:LR pairs, comma-separated"),
        ("--workdir", Path("runs/qdc_recipe"), "where the trained models go (resumable)"),
        ("--out", Path("results/qdc_recipe.json"), None),
        ("--seed", 0, None),
    ]


def test_recipes_are_epochs_lr_pairs():
    assert recipe_pairs(("1:2e-5", " 4:1e-4")) == [(1, 2e-5), (4, 1e-4)]
    for bad in (("1:2e-5", "four:1e-4"), ("1",), ("1:2:3",), ()):
        with pytest.raises(ValueError, match="--recipes wants EPOCHS:LR pairs"):
            recipe_pairs(bad)


def _flat(res) -> str:
    return " ".join(res.output.replace("│", " ").split())


@pytest.mark.parametrize("recipes", ["1:2e-5,four:1e-4", "1e-4", ","])
def test_a_bad_recipes_value_exits_2_before_any_work(tmp_path, recipes):
    out = tmp_path / "qdc_recipe.json"
    res = runner.invoke(app, ["experiment", "qdc-recipe", "--recipes", recipes, "--workdir", str(tmp_path / "runs"),
                              "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "--recipes wants EPOCHS:LR pairs like 1:2e-5,4:1e-4; got" in _flat(res)
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_a_bad_recipes_value_is_a_one_line_error():
    res = runner.invoke(app, ["experiment", "qdc-recipe", "--recipes", "1:2e-5,four:1e-4"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        "error: Invalid value: --recipes wants EPOCHS:LR pairs like 1:2e-5,4:1e-4; got '1:2e-5,four:1e-4'"]


@pytest.mark.parametrize("args, message", [(["--scale", "huge"], "unknown scale 'huge'"),
                                           (["--sequence", "books"], "unknown task sequence 'books'")])
def test_an_unknown_scale_or_sequence_exits_2_before_any_work(tmp_path, args, message):
    for verb in ("qdc", "qdc-recipe"):
        res = runner.invoke(app, ["experiment", verb, *args, "--workdir", str(tmp_path / "runs"),
                                  "--out", str(tmp_path / "out")])
        assert res.exit_code == 2 and message in _flat(res)
        assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def _result(setting: str, tasks: tuple[str, ...] = ("a", "b")) -> dict:
    rows = [{"method": m, "matrix": [[0.5, 0.25], [0.4, 0.3]] if m != "joint" else [[0.6, 0.5]],
             "avg_ndcg@10": 0.35 if m != "joint" else 0.55, "paper_avg_ndcg@10": PAPER.numbers["avg_ndcg@10"].get(m),
             "setting": setting} for m in ("FT", "FT+QDC", "joint")]
    return {"tasks": list(tasks), "model": "minilm@test", "rows": rows, "setting": setting, "forgetting": [0.0, 0.1],
            "drift_norms": [0.5, 0.25], "drift_norms_kd": [0.125], "wall_s": 12.0, "training_wall_s": 30.0,
            "timings_s": {"evaluate": 2.0}, "config": {"scale": "tiny", "sequence": "sections", "workdir": "runs/qdc"}}


def test_the_command_runs_on_the_options_config_and_merges_every_run_into_qdc_json(tmp_path, monkeypatch):
    import hotswap_harness.experiments.qdc as heavy

    seen = []

    def fake(cfg, progress=True):
        seen.append(cfg)
        return _result("five-sources" if cfg.sequence == "sources" else "debian-sections")

    monkeypatch.setattr(heavy, "run_qdc_experiment", fake)
    out = tmp_path / "results"
    text = ok(["experiment", "qdc", "--scale", "tiny", "--sequence", "sources", "--lr", "1e-4", "--epochs", "2",
               "--seed", "3", "--workdir", str(tmp_path / "runs"), "--out", str(out)])
    assert seen == [heavy.QDCConfig(scale="tiny", sequence="sources", lr=1e-4, epochs=2, seed=3,
                                    workdir=str(tmp_path / "runs"))]
    assert "drift norms |delta_t| (FT): 0.5000, 0.2500" in text and "after each task: 0.000, 0.100" in text
    assert json.loads((out / "qdc_five_sources.json").read_text()) == _result("five-sources")
    assert (out / "qdc_five_sources.png").stat().st_size > 0 and not (out / "qdc.png").exists()
    ok(["experiment", "qdc", "--scale", "tiny", "--workdir", str(tmp_path / "runs"), "--out", str(out)])
    assert seen[-1] == heavy.QDCConfig(scale="tiny", workdir=str(tmp_path / "runs"))  # lr 2e-5, 1 epoch, seed 0
    merged = json.loads((out / "qdc.json").read_text())
    assert set(merged["settings"]) == {"five-sources", "debian-sections"}
    assert merged["setting"] == "five-sources"  # the headline setting's fields stay on top
    assert [r["setting"] for r in merged["rows"]] == ["five-sources"] * 3 + ["debian-sections"] * 3
    assert (out / "qdc.png").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["qdc.json", "qdc.png", "qdc_five_sources.json",
                                                     "qdc_five_sources.png"]


def test_qdc_lines_name_the_drift_forgetting_and_time():
    text = "\n".join(lines(_result("debian-sections")))
    assert "0.5000, 0.2500" in text and "0.000, 0.100" in text and "in 12 s" in text and "30 s" in text


def test_the_section_reads_paper_numbers_from_the_json_else_from_the_protocol(tmp_path):
    data = _result("debian-sections")
    data["rows"][0]["paper_avg_ndcg@10"] = 12.3  # the JSON's own number wins
    del data["rows"][1]["paper_avg_ndcg@10"]  # absent: the protocol's
    cells = section(data, Source(tmp_path / "qdc.json", "qdc.json", "results")).tables[0].rows
    assert [row[2] for row in cells] == ["12.3", f"{PAPER.numbers['avg_ndcg@10']['FT+QDC']:.1f}",
                                         f"{PAPER.numbers['avg_ndcg@10']['joint']:.1f}"]


def test_the_report_uses_the_protocols_section():
    from hotswap_harness.report.build import all_builders

    assert all_builders()["qdc"] is section


def test_recipe_command_runs_every_pair_and_writes_its_file(tmp_path, monkeypatch):
    import hotswap_harness.experiments.qdc_recipe as heavy

    seen = []
    cand = {"epochs": 2, "lr": 1e-4, "steps_per_task": 6, "forgetting": [0.0, 0.04], "wall_s": 5.0}
    result = {"tasks": ["a", "b"], "gate": 0.03, "candidates": [cand],
              "chosen": {"epochs": 2, "lr": 1e-4, "meets_gate": True}}

    def fake(cfg, recipes, progress=True):
        seen.append((cfg, recipes))
        return result

    monkeypatch.setattr(heavy, "run_recipe_search", fake)
    out = tmp_path / "r.json"
    text = ok(["experiment", "qdc-recipe", "--scale", "tiny", "--recipes", "1:2e-5, 2:1e-4", "--seed", "4",
               "--workdir", str(tmp_path / "runs"), "--out", str(out)])
    assert seen == [(heavy.QDCConfig(scale="tiny", sequence="sources", workdir=str(tmp_path / "runs"), seed=4),
                     [(1, 2e-5), (2, 1e-4)])]
    assert json.loads(out.read_text()) == result
    assert "chosen: {'epochs': 2, 'lr': 0.0001, 'meets_gate': True}" in text and "+0.040" in text
    assert recipe_table(result).row_count == 1 and recipe_lines(result) == [f"chosen: {result['chosen']}"]
