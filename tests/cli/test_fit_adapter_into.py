"""``hotswap fit-adapter --into COLLECTION NAME`` registers the adapter for the collection's clients to name."""

import pytest

from hotswap.cli import app
from hotswap.serve.adapter_registry import folder, registered
from tests.cli.helpers import ok as _ok, runner

pytestmark = pytest.mark.realmodel


def test_fit_adapter_into_a_collection(tmp_path):
    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.serve import Collection

    index, col = tmp_path / "old", tmp_path / "col"
    _ok(["encode", "--model", "static", "--index", str(index), "--max-docs", "150", "--dataset", "debian"])
    Collection.create(col, "static", load_encoder("static"), load_dataset("debian", max_docs=150).corpus)
    out = _ok(["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", "procrustes", "--into", str(col),
               "minilm-p", "--fit-docs", "50", "--max-train-queries", "60", "--dataset", "debian"])
    assert "registered as 'minilm-p'" in out and registered(col) == ["minilm-p"]
    assert (folder(col, "minilm-p") / "adapter.json").is_file()  # checksums verified
    res = runner.invoke(app, ["fit-adapter", "--index", str(index), "--new", "minilm", "--into", str(col),
                              "minilm-p"])
    assert res.exit_code != 0 and "already registered" in res.output
    res = runner.invoke(app, ["fit-adapter", "--index", str(index), "--new", "minilm", "--into", str(col), "../x"])
    assert res.exit_code != 0 and "not a path" in str(res.exception) + res.output
