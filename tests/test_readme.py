"""The README's quick start runs as written (real models, small slice)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def _run_block(heading: str, tmp_path, monkeypatch, capsys) -> str:
    """Run the python block under ``heading`` in ``tmp_path``; return what it printed."""
    code = re.search(re.escape(heading) + r"\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README {heading}", "exec"), {})
    return capsys.readouterr().out


@pytest.mark.realmodel
def test_quick_start_runs(tmp_path, monkeypatch, capsys):
    out = _run_block("## Quick start (Python)", tmp_path, monkeypatch, capsys)
    assert "ndcg@10" in out and (tmp_path / "indexes" / "old" / "manifest.json").is_file()
    assert (tmp_path / "adapters" / "procrustes" / "adapter.json").is_file()


@pytest.mark.realmodel
def test_backfill_quick_start_runs(tmp_path, monkeypatch, capsys):
    out = _run_block("### Quick start: online backfill", tmp_path, monkeypatch, capsys)
    assert "{'old': 150, 'new': 150}" in out and "state='paused'" in out
    assert (tmp_path / "indexes" / "upgrade" / "upgrade.json").is_file()


@pytest.mark.realmodel
def test_cascade_quick_start_runs(tmp_path, monkeypatch, capsys):
    out = _run_block("### Quick start: cascade search", tmp_path, monkeypatch, capsys)
    assert "{'old': 250, 'new': 50}" in out
    assert len(list((tmp_path / "indexes" / "upgrade" / "new").glob("seg-*.ids.json"))) == 1  # one atomic batch


@pytest.mark.realmodel
def test_service_quick_start_runs(tmp_path, monkeypatch, capsys):
    out = _run_block("### Quick start: the search service", tmp_path, monkeypatch, capsys)
    assert "complete minilm@" in out and "'mode': 'old'" in out
    assert (tmp_path / "collections" / "debian" / "serving.json").is_file()


def test_image_quick_start_runs(tmp_path, monkeypatch, capsys):
    out = _run_block("### Quick start: a backward-compatible image model", tmp_path, monkeypatch, capsys)
    cross, old_alone = (float(out.split(tag)[1].split()[0].rstrip(",)")) for tag in ("cross-test top-1 ", "alone "))
    assert 0.0 <= cross <= 1.0 and old_alone > 0.3
    assert (tmp_path / "indexes" / "images" / "manifest.json").is_file()
