"""``hotswap serve`` refuses a collection it cannot serve with exit code 2 and a message naming the problem."""

from __future__ import annotations

from tests.cli.helpers import runner
from hotswap.cli import app
from tests.serve.toy import create


def test_corrupt_state_file_is_a_clear_startup_error(tmp_path):
    create(tmp_path / "col", 20)
    (tmp_path / "col" / "serving.json").write_text('{"format_version": 1, "vers')
    res = runner.invoke(app, ["serve", "--store", str(tmp_path / "col")])
    assert res.exit_code == 2 and "serving.json" in res.output and "cannot serve" in res.output


def test_missing_collection_and_wrong_scheme(tmp_path):
    res = runner.invoke(app, ["serve", "--store", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "serving.json is missing" in res.output
    res = runner.invoke(app, ["serve", "--store", f"redis://{tmp_path}"])
    assert res.exit_code == 2 and "redis" in res.output
    create(tmp_path / "col", 20)  # a faiss collection served as qdrant://
    res = runner.invoke(app, ["serve", "--store", f"qdrant://{tmp_path / 'col'}"])
    assert res.exit_code == 2 and "faiss collection" in res.output
