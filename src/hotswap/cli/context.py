"""What a verb needs from the index it is pointed at, resolved once and checked before anything is encoded.

``open_target(index, upgrade)`` opens a store built by ``hotswap encode`` (or any store URI), or an upgrade in
progress (``--upgrade``, or an ``--index`` that turns out to be an upgrade folder). The store's provenance
(``hotswap.store.provenance``) says which dataset it indexes and where each model's folder is, so later verbs
need neither ``--dataset`` nor to run from the folder that holds a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotswap.errors import HotswapError


@dataclass
class Target:
    """An index, or an upgrade in progress, with what it remembers about where it came from."""

    location: str
    store: Any  # the old (serving) store
    upgrade: Any = None  # an Upgrade, when the target is one
    provenance: dict = field(default_factory=dict)
    collection: str | None = None  # the served collection whose current version ``store`` is

    @property
    def old_model_id(self) -> str:
        return self.store.model_id

    @property
    def new_model_id(self) -> str | None:
        return self.upgrade.new_model_id if self.upgrade is not None else None

    def model_location(self, model_id: str) -> str | None:
        return (self.provenance.get("models", {}).get(model_id) or {}).get("location")

    def close(self) -> None:
        (self.upgrade or self.store).close()


def is_upgrade_folder(path: str | Path | None) -> bool:
    from hotswap.upgrade.base import UPGRADE_NAME

    return path is not None and "://" not in str(path) and (Path(path) / UPGRADE_NAME).is_file()


def is_collection(path: str | Path | None) -> bool:
    return path is not None and "://" not in str(path) and (Path(path) / "serving.json").is_file()


def serving_index(collection: str | Path) -> str:
    """The index a served collection answers from (its current version), read-only: a server may be running."""
    from hotswap.serve.collection import Collection

    return str(Collection(collection).index_path)


def open_target(index: str | None, upgrade: str | Path | None, *, writing: bool = False) -> Target:
    """The store at ``index`` or the upgrade at ``upgrade`` (exactly one), with their merged provenance. A served
    collection as ``index`` reads its current version (refused when ``writing``)."""
    from hotswap.store import open_store
    from hotswap.store.provenance import read_provenance
    from hotswap.upgrade import open_upgrade

    if (index is None) == (upgrade is None):
        raise HotswapError("give --index (an index) or --upgrade (an upgrade in progress), not both")
    if index is not None and is_upgrade_folder(index):
        index, upgrade = None, index  # an upgrade folder given as --index
    if upgrade is not None:
        if not is_upgrade_folder(upgrade):
            raise HotswapError(f"{upgrade} is not an upgrade folder (no upgrade.json); start one with "
                               "'hotswap backfill --index INDEX --upgrade FOLDER --new MODEL'")
        up = open_upgrade(upgrade)
        prov = _merged(read_provenance(up.old), read_provenance(up.new))
        return Target(str(upgrade), up.old, up, prov)
    assert index is not None  # exactly one of index / upgrade (checked above), and it is not the upgrade
    collection = None
    if is_collection(index):
        if writing:
            raise HotswapError(f"{index} is a served collection: upgrade it through its server (POST /upgrade), "
                               "or point --upgrade at its upgrade-* folder")
        collection, index = str(index), serving_index(index)
    if "://" not in str(index) and not Path(index).exists():
        raise HotswapError(f"no index at {index}; build one with 'hotswap encode --model MODEL --index {index} "
                           "--dataset DATASET'")
    store = open_store(index)
    return Target(collection or str(index), store, None, read_provenance(store), collection)


def _merged(old: dict, new: dict) -> dict:
    return {**old, **{k: v for k, v in new.items() if k != "models"},
            "dataset": old.get("dataset") or new.get("dataset"),
            "models": {**old.get("models", {}), **new.get("models", {})}}


def encoder_for(target: Target, model_id: str, spec: str | None, flag: str) -> Any:
    """The encoder of ``model_id``: the one ``spec`` (a bundled name or a folder, from ``flag``) loads, checked
    against ``model_id``; else the one the provenance or the model registry locates."""
    from hotswap.encoders import as_model_id, encoder_for_model_id, load_encoder
    from hotswap.errors import ModelMismatchError

    if spec is None:
        return encoder_for_model_id(model_id, location=target.model_location(model_id))
    loaded = load_encoder(spec)
    encoder = as_model_id(loaded, model_id)
    if encoder is None:
        raise ModelMismatchError(f"{flag} {spec} is model {loaded.id}, but {target.location} needs {model_id}; "
                                 f"pass the model that built it as {flag}")
    return encoder


def old_encoder(target: Target, spec: str | None = None) -> Any:
    """The model that built the index (``--old``, else found from its id)."""
    return encoder_for(target, target.old_model_id, spec, "--old")


def new_encoder(target: Target, spec: str | None) -> Any:
    """The new model: ``--new`` / ``--model``, else (an upgrade) the upgrade's own new model."""
    from hotswap.encoders import load_encoder

    if target.upgrade is not None:
        return encoder_for(target, target.upgrade.new_model_id, spec, "--model")
    if spec is None:
        raise HotswapError("this needs the new model: pass --model NAME_OR_FOLDER")
    return load_encoder(spec)


def dataset_of(target: Target, name: str | None) -> Any:
    """The dataset the index was built from: ``--dataset``, else its provenance; never a silent default."""
    from hotswap.data import load_dataset

    if name is None:
        name = (target.provenance.get("dataset") or {}).get("name")
        if name is None:
            raise HotswapError(f"{target.location} does not record its dataset (built by an older hotswap); pass "
                               "--dataset (the bundled name or BEIR folder it was built from)")
    return load_dataset(name)


def check_covers(ds: Any, ids: list[str]) -> None:
    """Refuse a dataset that lacks some of the indexed ``ids`` (the wrong --dataset)."""
    missing = [i for i in ids if i not in ds.corpus]
    if missing:
        raise HotswapError(f"{len(missing):,} of the {len(ids):,} indexed documents are not in dataset {ds.name!r} "
                           f"(e.g. {missing[:3]}); pass --dataset (the one the index was built from)")


def restricted(ds: Any, ids: list[str], **caps: Any) -> Any:
    """``ds`` cut to the indexed ``ids``, refusing a dataset that lacks some of them (the wrong --dataset)."""
    import numpy as np

    check_covers(ds, ids)
    return ds.restrict(ids, rng=np.random.default_rng(caps.pop("seed", 0)), **caps)


def texts_of(target: Target, dataset: str | None) -> tuple[Any, Any]:
    """``(dataset or None, fetch)`` with ``fetch(ids) -> texts`` of indexed documents: ``--dataset store`` reads
    the index's own text column (an adopted table), a served collection its own texts, else the dataset (given,
    or the one the index records), checked to cover every indexed id."""
    if dataset == "store":
        from hotswap.store.adopt import text_fetch

        return None, text_fetch(target.store)
    if target.collection is not None and dataset is None:
        from hotswap.serve.collection import Collection

        docs = Collection(target.collection).texts()
        if docs is not None:
            return None, lambda ids: [docs.get_many(list(ids)).get(i, "") for i in ids]
    ds = dataset_of(target, dataset)
    check_covers(ds, target.store.ids)
    return ds, lambda ids: [ds.corpus[i] for i in ids]


def fit_calibration(store: Any, ds: Any, old_enc: Any, new_enc: Any, n_docs: int, seed: int) -> Any:
    """Mode ``calibrated``'s score map, fitted on up to 1,000 train queries and ``n_docs`` random indexed documents
    encoded by both models (cached)."""
    import numpy as np

    from hotswap.encoders.cache import encode_cached
    from hotswap.search import ScoreCalibration

    if ds is None or not ds.train_queries:
        raise HotswapError("mode 'calibrated' fits its score map on train queries: the dataset has none "
                           "(qrels/train.tsv); use merged")
    rng = np.random.default_rng(seed)
    ids = [store.ids[i] for i in rng.choice(len(store), min(n_docs, len(store)), replace=False)]
    queries = list(ds.train_queries.values())[:1000]
    return ScoreCalibration().fit_paired(encode_cached(new_enc, queries)[0],
                                         encode_cached(new_enc, [ds.corpus[i] for i in ids])[0],
                                         encode_cached(old_enc, queries)[0], store.get(ids))
