"""A model folder whose modules.json names a class outside sentence-transformers is refused, its code never run
(sentence-transformers >= 6.0 requires trust_remote_code for that, local folders included; hotswap never sets it)."""

import json

import pytest

from hotswap.encoders import load_encoder


def test_a_model_folder_with_custom_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path / "home"))  # loading hashes the weights into a cache
    marker = tmp_path / "ran"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "custom_mod.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                                          "class Boom:\n    pass\n")
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "custom_mod.Boom"}]))
    (folder / "config_sentence_transformers.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"{}")  # weights are there: the refusal is about the code
    with pytest.raises(Exception, match="trust_remote_code"):
        load_encoder(str(folder))
    assert not marker.exists()
