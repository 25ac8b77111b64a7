"""``hotswap report``: built from a copy of the real ``results/`` folder; numbers are read from the JSONs here."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hotswap_harness.cli.report import report
from hotswap_harness.report import EXPECTED, ChromiumError, ReportError, build_report, screenshot

RESULTS = Path(__file__).resolve().parents[2] / "results"
TITLES = {  # file -> the start of its section's title
    "demo.json": "Upgrade demo: static → minilm", "backfill.json": "Online backfill: nDCG@10",
    "qdc.json": "Query Drift Compensation", "dsimplex.json": "Stationary representations (d-Simplex), 7 tasks",
    "dsimplex_19tasks/dsimplex.json": "Stationary representations (d-Simplex), 19 tasks",
    "perturbation.json": "Prototype perturbation", "online_backfill.json": "Online backfill with metric-compatible",
    "online_backfill_text.json": "Online backfill on the text pair",
    "cascade.json": "Cascade search", "cascade_cost.json": "Cascade cost",
}
PRESENT = [k for k in TITLES if (RESULTS / k).is_file()]

pytestmark = pytest.mark.skipif(not PRESENT, reason="no results/ JSONs in this checkout")


def _copy_results(dest: Path) -> Path:
    shutil.copytree(RESULTS, dest, ignore=shutil.ignore_patterns("report"))
    return dest


def _read(key: str) -> dict:
    return json.loads((RESULTS / key).read_text())


def _expected_numbers(key: str) -> list[str]:
    """A few numbers of each file, formatted as the report formats them, computed from the JSON itself."""
    d = _read(key)
    stem = Path(key).stem
    if stem == "demo":
        return [f"{r['ndcg@10']:.3f}" for r in d["rows"][:3]] + [f"{d['rows'][-1]['recall@10']:.3f}"]
    if stem == "backfill":
        return [f"{c['auc_ndcg@10']:.3f}" for c in d["curves"][:3]]
    if stem == "qdc":
        return ([f"{100 * r['avg_ndcg@10']:.1f}" for r in d["rows"]]
                + [f"{r['paper_avg_ndcg@10']:.1f}" for r in d["rows"] if r.get("paper_avg_ndcg@10") is not None])
    if stem == "dsimplex":
        return [f"{r['AM']:.2f}" for r in d["rows"]] + [f"{r['AC']:.2f}" for r in d["rows"]] + [
            f"{r['paper_AM']:.2f}" for r in d["rows"] if r.get("paper_AM") is not None]
    if stem == "perturbation":
        return [f"{r['cross_map']:.1f}" for r in d["rows"]] + [f"{r['self_map']:.1f}" for r in d["rows"][:2]]
    if stem == "online_backfill":
        return [f"{r['auc_map']:.1f}" for r in d["rows"]] + [f"{d['old_model_map']:.1f}"]
    if stem == "online_backfill_text":
        return [f"{100 * r['auc_ndcg@10']:.1f}" for r in d["rows"]]
    if stem == "cascade":
        return [f"{r['ndcg@10']:.3f}" for r in d["rows"]] + [f"{c['auc_ndcg@10']:.3f}" for c in d["curves"]]
    if stem == "cascade_cost":
        return [f"{s['points'][-1]['ndcg@10']:.3f}" for s in d["streams"]]
    raise AssertionError(key)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("report")
    results = _copy_results(root / "results")
    out = root / "out"
    result = build_report(results, out)
    result["html_text"] = result["html"].read_text(encoding="utf-8")
    result["md_text"] = result["markdown"].read_text(encoding="utf-8")
    result["out"] = out
    return result


def test_every_results_file_has_its_section_with_its_numbers(built):
    included = {item["file"]: item["title"] for item in built["included"]}
    for key in PRESENT:
        title = included[key]
        assert title.startswith(TITLES[key]), (key, title)
        assert html.escape(title) in built["html_text"], title
        assert f"## {title}" in built["md_text"], title
        for number in _expected_numbers(key):
            assert number in built["html_text"], (key, number)
            assert number in built["md_text"], (key, number)
    assert built["warnings"] == []


def test_paper_numbers_sit_beside_ours(built):
    if "dsimplex.json" not in PRESENT:
        pytest.skip("no dsimplex.json")
    md = built["md_text"]
    ours = next(r for r in _read("dsimplex.json")["rows"] if r["method"] == "dsimplex")
    cells = [f"{ours['AC']:.2f}", f"{ours['paper_AC']:.2f}", f"{ours['AM']:.2f}", f"{ours['paper_AM']:.2f}"]
    assert "| d-Simplex-HOC | " + " | ".join(cells) + " |" in md
    assert 'class="paper"' in built["html_text"] or "class=paper" in built["html_text"]


def test_missing_expected_files_are_listed_as_skipped(tmp_path):
    results = _copy_results(tmp_path / "results")
    (results / "faults.json").unlink(missing_ok=True)
    out = build_report(results, tmp_path / "out")
    skipped = {s["file"]: s["reason"] for s in out["skipped"]}
    for key in EXPECTED:
        if not (results / key).is_file():
            assert skipped[key] == "not written yet"
    assert skipped["faults.json"] == "not written yet"
    assert "Not included" in out["html"].read_text() and "## Not included" in out["markdown"].read_text()


def test_service_results_get_their_own_sections(tmp_path):
    results = _copy_results(tmp_path / "results")
    load = {"rows": [{"backend": "qdrant", "clients": 8, "backfill_running": True, "state": "running",
                      "mode": "merged", "requests": 300, "errors": 0, "p50_ms": 306.4, "p95_ms": 500.0,
                      "p99_ms": 673.2, "qps": 25.0}], "p99_ratio_backfill_vs_idle": {"qdrant/8": 10.04}}
    faults = {"kills": 5, "recovered": 5, "items_lost": 0, "items_duplicated": 0, "bad_requests": 40,
              "responses_5xx": 0, "checksum_equal": True, "stored_at_kill": [96, 192], "total": 400}
    (results / "load.json").write_text(json.dumps(load))
    (results / "faults.json").write_text(json.dumps(faults))
    out = build_report(results, tmp_path / "out")
    titles = {i["file"]: i["title"] for i in out["included"]}
    assert titles["load.json"] == "Load test of hotswap serve" and titles["faults.json"].startswith("Fault injection")
    assert not out["warnings"]
    for text in (out["html"].read_text(), out["markdown"].read_text()):
        assert "673" in text and "qdrant/8 10.0×" in text and "[96, 192] of 400" in text


def test_a_removed_file_drops_its_section(tmp_path):
    key = PRESENT[-1]
    results = _copy_results(tmp_path / "results")
    (results / key).unlink()
    out = build_report(results, tmp_path / "out")
    assert key not in [i["file"] for i in out["included"]]
    assert {"file": key, "reason": "not written yet"} in out["skipped"]
    assert TITLES[key] not in out["html"].read_text() and TITLES[key] not in out["markdown"].read_text()


def test_unknown_json_gets_a_generic_section(tmp_path):
    results = _copy_results(tmp_path / "results")
    (results / "extra").mkdir()
    (results / "extra" / "bench.json").write_text(json.dumps(
        {"name": "q/s bench", "qps": 1234.5, "n": 12000, "ok": True, "rows": [{"a": 1}], "config": {"k": 10}}))
    (results / "load.json").write_text(json.dumps({"p99_ms": 12.25, "requests": 5000}))
    out = build_report(results, tmp_path / "out")
    included = {i["file"]: i["title"] for i in out["included"]}
    assert included["extra/bench.json"] == "Other results: extra/bench.json"
    assert included["load.json"] == "Load test"
    assert "load.json" not in [s["file"] for s in out["skipped"]]
    for text in (out["html"].read_text(), out["markdown"].read_text()):
        assert "q/s bench" in text and "1,234.5" in text and "12,000" in text and "12.25" in text
        assert "rows (list of 1)" in text and "config (dict of 1)" in text


def test_corrupt_json_is_skipped_with_the_reason_or_raises_when_strict(tmp_path):
    key = PRESENT[0]
    results = _copy_results(tmp_path / "results")
    (results / key).write_text('{"rows": [1, 2,')
    out = build_report(results, tmp_path / "out")
    reason = {s["file"]: s["reason"] for s in out["skipped"]}[key]
    assert key in reason and "not valid JSON" in reason and "line 1" in reason
    assert key not in [i["file"] for i in out["included"]]
    assert "not valid JSON" in out["html"].read_text() and "not valid JSON" in out["markdown"].read_text()
    with pytest.raises(ReportError, match=re.escape(key)):
        build_report(results, tmp_path / "out2", strict=True)


def test_a_known_file_of_another_shape_falls_back_to_the_generic_section(tmp_path):
    results = _copy_results(tmp_path / "results")
    (results / "qdc.json").write_text(json.dumps({"wall_s": 3.5, "note": "old format"}))
    out = build_report(results, tmp_path / "out")
    assert any("qdc.json does not have the shape" in w for w in out["warnings"])
    assert "old format" in out["markdown"].read_text()


def test_missing_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no such results folder"):
        build_report(tmp_path / "nope", tmp_path / "out")


def test_html_is_self_contained(built):
    page = built["html_text"]
    assert 'src="results/' not in page and "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    pngs = [k for k in PRESENT if (RESULTS / k).with_suffix(".png").is_file()]
    assert len(sources) >= len(pngs) > 0
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_links_images_relative_to_its_folder(built):
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", built["md_text"])
    assert links
    for link in links:
        assert not Path(link).is_absolute() and not link.startswith("http")
        assert (built["out"] / link).resolve().is_file(), link


def test_outputs_are_written_atomically(built):
    assert sorted(p.name for p in built["out"].iterdir()) == ["report.html", "report.md"]


def test_cli_prints_a_summary(tmp_path):
    results = _copy_results(tmp_path / "results")
    app = typer.Typer()
    app.command()(report)
    res = CliRunner().invoke(app, ["--results", str(results), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and (tmp_path / "out" / "report.html").is_file()
    res = CliRunner().invoke(app, ["--results", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "no such results folder" in " ".join(res.output.split())


def test_missing_chromium_says_how_to_install_it(built, tmp_path):
    with pytest.raises(ChromiumError, match="apt-get install chromium"):
        screenshot(built["html"], tmp_path / "shot.png", chromium=tmp_path / "no-chromium")


@pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="Debian chromium is not installed")
def test_screenshot_renders_the_page(built, tmp_path):
    import numpy as np
    from PIL import Image

    png = screenshot(built["html"], tmp_path / "shot.png", width=900, height=700)
    with Image.open(png) as im:
        assert im.size == (900, 700)
        assert np.asarray(im.convert("L")).std() > 5  # text and tables, not a blank page


def test_full_page_crop_keeps_the_page_and_drops_the_blank_window_below():
    from io import BytesIO

    import numpy as np
    from PIL import Image

    from hotswap_harness.report.screenshot import crop_blank_bottom

    pixels = np.full((400, 50, 3), 255, dtype=np.uint8)
    pixels[10:100, 5:45] = 0  # the page's content ends at row 99
    buf = BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    with Image.open(BytesIO(crop_blank_bottom(buf.getvalue(), margin=8))) as im:
        assert im.size == (50, 108)
