"""``hotswap fit-adapter``: every refusal comes before any encoding, encodings are cached, ``--json`` and ``--old``.

Indexes are built here through the library (static model, a few hundred Debian docs), with or without a
provenance record, so these tests do not depend on ``hotswap encode``'s own options.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotswap.cli import app
from tests.cli.helpers import runner


def _index(folder: Path, dataset: str = "debian", max_docs: int | None = 300, provenance: bool = True) -> Path:
    """A static-model index of ``dataset`` (seeded subset of ``max_docs``), recording its dataset if asked."""
    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.encoders.cache import encode_cached
    from hotswap.store import create_store
    from hotswap.store.provenance import dataset_spec, record_provenance

    enc, ds = load_encoder("static"), load_dataset(dataset, max_docs=max_docs, seed=0)
    ids = list(ds.corpus)
    X = encode_cached(enc, [ds.corpus[d] for d in ids])[0]
    with create_store(folder, model_id=enc.id, dim=enc.dim, metric="ip") as store:
        store.add(ids, X, model_id=enc.id)
        if provenance:
            record_provenance(store, dataset=dataset_spec(dataset, max_docs, 0))
    return folder


def _fail(args: list[str]) -> str:
    """Invoke ``hotswap ARGS``; it must refuse with one ``error:`` line and exit 2; returns that line."""
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output + repr(res.exception)
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    return errors[0]


def _forbid_encoding(monkeypatch) -> None:
    """From now on, fail the test if anything is encoded (the checks must all come first)."""
    import hotswap.encoders.cache as cache

    def boom(*args, **kwargs):
        raise AssertionError("encoded before the checks")

    monkeypatch.setattr(cache, "encode_cached", boom)


def test_unknown_kind_and_non_empty_out_are_refused_first(tmp_path):
    line = _fail(["fit-adapter", "--index", str(tmp_path / "nothing"), "--new", "minilm", "--kind", "lowrank",
                  "--out", str(tmp_path / "a")])
    assert "unknown adapter kind 'lowrank'" in line and "low_rank" in line and "--kind" in line
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    line = _fail(["fit-adapter", "--index", str(tmp_path / "nothing"), "--new", "minilm", "--out",
                  str(tmp_path / "full")])
    assert "already exists and is not empty" in line and "--out" in line
    assert "no index at" in _fail(["fit-adapter", "--index", str(tmp_path / "nothing"), "--new", "minilm",
                                   "--out", str(tmp_path / "a")])
    line = _fail(["fit-adapter", "--index", str(tmp_path / "nothing"), "--new", "minilm", "--kind", "auto",
                  "--docs-only", "--out", str(tmp_path / "a")])
    assert "--docs-only" in line and "auto" in line


@pytest.mark.realmodel
def test_refusals_before_any_encoding(tmp_path, monkeypatch):
    index = _index(tmp_path / "old", provenance=False)
    _forbid_encoding(monkeypatch)
    out = ["--out", str(tmp_path / "a")]
    line = _fail(["fit-adapter", "--index", str(index), "--new", "minilm", *out])
    assert "--dataset" in line and "debian" not in line  # never a silent default
    line = _fail(["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", "drift", "--dataset", "debian",
                  *out])
    assert "384" in line and "256" in line and "procrustes" in line and "drift" in line
    line = _fail(["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", "low_rank", "--dataset",
                  "debian", "--fit-docs", "20", "--max-train-queries", "10", *out])
    assert "at least 65 aligned pairs" in line and "30" in line and "--fit-docs" in line
    line = _fail(["fit-adapter", "--index", str(index), "--new", "minilm", "--old", "minilm", "--dataset", "debian",
                  *out])
    assert "--old minilm is model minilm@" in line and "static@" in line
    line = _fail(["fit-adapter", "--index", str(index), "--new", "minilm", "--dataset", "foldoc", *out])
    assert "not in dataset 'foldoc'" in line and "--dataset" in line
    assert not (tmp_path / "a").exists()


def _beir_without_train(folder: Path, n_docs: int = 120) -> Path:
    """A BEIR folder (Debian docs and test queries) that has no qrels/train.tsv."""
    from hotswap.data import load_dataset

    ds = load_dataset("debian", max_docs=n_docs, seed=0)
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for d, text in ds.corpus.items():
            f.write(json.dumps({"_id": d, "title": "", "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for q, text in ds.queries.items():
            f.write(json.dumps({"_id": q, "text": text}) + "\n")
    rows = [f"{q}\t{d}\t{g}" for q, rel in ds.qrels.items() for d, g in rel.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


@pytest.mark.realmodel
def test_no_train_queries_is_said_and_docs_only_is_explicit(tmp_path):
    beir = _beir_without_train(tmp_path / "beir")
    index = _index(tmp_path / "old", dataset=str(beir), max_docs=None)
    for kind in ("procrustes", "auto"):
        line = _fail(["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", kind, "--out",
                      str(tmp_path / kind)])
        assert "has no train queries (qrels/train.tsv)" in line and "--docs-only" in line
    res = runner.invoke(app, ["fit-adapter", "--index", str(index), "--new", "minilm", "--docs-only", "--out",
                              str(tmp_path / "docs"), "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    summary = json.loads(res.stdout)
    assert summary["train_queries"] == 0 and summary["pairs"] == summary["documents"] == 120
    assert (tmp_path / "docs" / "adapter.json").is_file()


@pytest.mark.realmodel
def test_second_kind_encodes_nothing_and_json_is_only_json(tmp_path, monkeypatch):
    from hotswap.encoders import load_encoder

    index = _index(tmp_path / "old")
    calls = []
    for name in ("static", "minilm"):
        enc = load_encoder(name)
        real = enc.encode
        monkeypatch.setattr(enc, "encode", lambda texts, *a, _real=real, **k: calls.append(len(texts)) or
                            _real(texts, *a, **k))
    args = ["fit-adapter", "--index", str(index), "--new", "minilm", "--fit-docs", "80", "--max-train-queries", "60",
            "--json"]
    first = runner.invoke(app, [*args, "--kind", "procrustes", "--out", str(tmp_path / "p")])
    assert first.exit_code == 0, first.output + repr(first.exception)
    calls.clear()
    second = runner.invoke(app, [*args, "--kind", "affine", "--out", str(tmp_path / "a")])
    assert second.exit_code == 0, second.output + repr(second.exception)
    assert calls == []  # everything came from the embedding cache
    summary = json.loads(second.stdout)  # stdout holds exactly one JSON document
    assert summary["cached"] is True and summary["kind"] == summary["adapter"] == "affine"
    assert summary["dataset"] == "debian" and summary["pairs"] == 60 + 80 == summary["train_queries"] + 80
    assert set(summary["timings_s"]) >= {"encode", "fit", "total"} and summary["saved"] == [str(tmp_path / "a")]
    assert "encoded 60 train queries" in second.output and "all cached" in second.output  # the note, on stderr
    assert json.loads((tmp_path / "a" / "adapter.json").read_text())["name"] == "affine"


@pytest.mark.realmodel
def test_auto_chooses_what_the_demo_chooses(tmp_path):
    """Same data slice, seed and caps: ``hotswap demo``'s auto row and ``fit-adapter --kind auto`` make the same
    validated choice with the same blend weights (one shared ``validated_choice``). The user's case: a corpus
    smaller than the document sample, so both fit on every document; they used to order them differently (the
    demo in sample order, fit-adapter sorted), which changed the MLP adapters and so their blend weights.
    (With a sample smaller than the corpus, the demo's document vectors come from encoding the whole corpus and
    fit-adapter's from encoding the sample; batches differ, so the vectors may differ in their last bits.)"""
    from hotswap_harness.experiments.upgrade_demo import DemoConfig, run_upgrade_demo

    cfg = DemoConfig(max_docs=300, max_train_queries=150, max_test_queries=40, fit_docs=300)
    demo = run_upgrade_demo(cfg)
    index = _index(tmp_path / "old", max_docs=300)
    res = runner.invoke(app, ["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", "auto", "--out",
                              str(tmp_path / "auto"), "--fit-docs", "300", "--max-train-queries", "150", "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    fit = json.loads(res.stdout)["validation"]
    assert fit["choice"] == demo["selection"]["choice"]
    weights = {r["adapter"].removesuffix("+blend"): r["blend_weight"] for r in demo["rows"] if "blend_weight" in r}
    assert fit["blend_weights"] == weights
    assert fit["scores"] == pytest.approx(demo["selection"]["scores"], abs=1e-6)
