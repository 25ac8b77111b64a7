"""The paper protocols are one registry: ``hotswap experiment NAME`` and the report's sections come from it."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotswap.cli import app
from hotswap.errors import HotswapError
from hotswap_harness.experiments.registry import PROTOCOLS, Experiment, experiment, experiments
from hotswap_harness.report.build import all_builders

ROOT = Path(__file__).resolve().parents[2]


def test_every_registered_protocol_is_a_complete_spec():
    specs = experiments()
    assert [s.name for s in specs] == list(PROTOCOLS)
    for spec in specs:
        assert isinstance(spec, Experiment) and spec.help and spec.example.startswith(f"hotswap experiment {spec.name}")
        for f in dataclasses.fields(spec.options):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, (spec.name, f)
        assert callable(spec.call("run")) and callable(spec.call("save"))
        assert all(key.endswith(".json") for key in spec.sections)


def test_an_unknown_protocol_names_the_known_ones():
    with pytest.raises(HotswapError, match="online-backfill"):
        experiment("no-such-protocol")


def test_the_report_builds_every_protocols_sections():
    builders = all_builders()
    for spec in experiments():
        for key, builder in spec.sections.items():
            assert builders[Path(key).stem] is builder


def test_the_commands_are_generated_from_the_specs():
    runner = CliRunner()
    listing = runner.invoke(app, ["experiment", "--help"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    for spec in experiments():
        assert spec.name in listing.output
        res = runner.invoke(app, ["experiment", spec.name, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        for f in dataclasses.fields(spec.options):
            assert "--" + f.name.replace("_", "-") in res.output, (spec.name, f.name)


def test_bad_options_are_refused_in_one_line_before_any_work(tmp_path):
    res = CliRunner().invoke(app, ["experiment", "plan", "--pairs", "foldoc:static", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "DATASET:OLD:NEW" in res.output
    res = CliRunner().invoke(app, ["experiment", "online-backfill", "--orders", "random,backwards",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 2 and "backwards" in res.output
    assert not list(tmp_path.iterdir())


def test_the_specs_load_no_torch():
    code = ("import sys\nfrom hotswap_harness.experiments.registry import experiments\nexperiments()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
