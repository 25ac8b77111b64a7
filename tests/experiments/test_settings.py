"""Several settings of one protocol in one results file."""

import pytest

from hotswap_harness.experiments.settings import merge_setting, rows_of


def _run(setting, methods, value):
    return {"setting": setting, "tasks": [setting], "forgetting": [value],
            "rows": [{"method": m, "score": value} for m in methods]}


def test_a_legacy_file_keeps_its_rows_and_fields_and_the_headline_owns_the_top_level():
    legacy = {"tasks": ["a", "b"], "wall_s": 3.0, "rows": [{"method": "FT", "score": 0.5}]}
    merged = merge_setting(legacy, _run("new", ["FT", "QDC"], 0.7), headline="new", legacy="old")
    assert [(r["method"], r["setting"]) for r in merged["rows"]] == [("FT", "old"), ("FT", "new"), ("QDC", "new")]
    assert merged["tasks"] == ["new"] and merged["forgetting"] == [0.7]
    assert merged["settings"]["old"]["tasks"] == ["a", "b"] and merged["settings"]["old"]["wall_s"] == 3.0
    assert [r["score"] for r in rows_of(merged, "old")] == [0.5]


def test_rerunning_a_setting_replaces_only_its_rows_and_a_non_headline_run_leaves_the_top_level():
    merged = merge_setting(None, _run("new", ["FT"], 0.7), headline="new", legacy="old")
    merged = merge_setting(merged, _run("other", ["FT"], 0.1), headline="new", legacy="old")
    merged = merge_setting(merged, _run("other", ["FT", "KD"], 0.2), headline="new", legacy="old")
    assert [(r["setting"], r["score"]) for r in merged["rows"]] == [("new", 0.7), ("other", 0.2), ("other", 0.2)]
    assert merged["tasks"] == ["new"] and sorted(merged["settings"]) == ["new", "other"]


def test_a_run_without_a_setting_is_refused():
    with pytest.raises(ValueError, match="setting"):
        merge_setting(None, {"rows": []}, headline="x", legacy="y")
