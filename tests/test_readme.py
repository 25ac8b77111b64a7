"""The README's quick start runs as written (real models, small slice)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


@pytest.mark.realmodel
def test_quick_start_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"## Quick start \(Python\)\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README quick start", "exec"), {})
    out = capsys.readouterr().out
    assert "ndcg@10" in out and (tmp_path / "indexes" / "old" / "manifest.json").is_file()
    assert (tmp_path / "adapters" / "procrustes" / "adapter.json").is_file()


@pytest.mark.realmodel
def test_backfill_quick_start_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"### Quick start: online backfill\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README backfill quick start", "exec"), {})
    out = capsys.readouterr().out
    assert "{'old': 150, 'new': 150}" in out and "state='paused'" in out
    assert (tmp_path / "indexes" / "upgrade" / "upgrade.json").is_file()
