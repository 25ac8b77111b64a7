"""``hotswap serve`` refuses a collection it cannot serve with exit code 2 and a message naming the problem."""

from __future__ import annotations

from tests.cli.helpers import runner
from hotswap.cli import app
from tests.serve.toy import create


def serve(store: str) -> tuple[int, str]:
    res = runner.invoke(app, ["serve", "--store", store])
    return res.exit_code, " ".join(res.output.split())  # rich wraps long lines


def test_corrupt_state_file_is_a_clear_startup_error(tmp_path):
    create(tmp_path / "col", 20)
    (tmp_path / "col" / "serving.json").write_text('{"format_version": 1, "vers')
    code, out = serve(str(tmp_path / "col"))
    assert code == 2 and "cannot serve" in out and "cannot be read as JSON" in out


def test_missing_collection_and_wrong_scheme(tmp_path):
    code, out = serve(str(tmp_path / "nowhere"))
    assert code == 2 and "has no collection state" in out and "--model NAME" in out
    code, out = serve(f"redis://{tmp_path}")
    assert code == 2 and "redis" in out
    create(tmp_path / "col", 20)  # a faiss collection served as qdrant://
    code, out = serve(f"qdrant://{tmp_path / 'col'}")
    assert code == 2 and "is a faiss collection, not qdrant" in out
