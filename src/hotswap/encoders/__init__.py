"""Text encoders with stable ids: ``load_encoder("static" | "minilm" | "mpnet" | <folder>)``.

A model id is ``"{label}@{first 12 hex of sha256(model.safetensors)}"``. It depends on the weights only: the
label is the bundled name (``static``, ``minilm``, ``mpnet``) whose weights a model has, else ``custom``; the
folder's name is only the display ``name``. So the same weights in two folders share one id (and one embedding
cache), and a folder holding the bundled minilm weights is ``minilm@...``. Folder models are remembered in a
registry (``hotswap.encoders.locations``) so ``encoder_for_model_id`` finds them from any working folder.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

from hotswap.encoders.base import Encoder, cached_sha256
from hotswap.errors import AssetMissingError, ModelMismatchError

BUNDLED = ("static", "minilm", "mpnet")
CUSTOM = "custom"
WEIGHTS_FILE = "model.safetensors"
STATIC_DIR = "static-minilm-pca256"  # hotswap.encoders.assets.static_folder distils into cache_home()/models/<this>
MPNET_DIR = "all-mpnet-base-v2"  # hotswap.encoders.assets.mpnet_folder assembles into cache_home()/models/<this>
OLD_FIX = "pass --old FOLDER (the model folder that built the index)"


def _installed_bundled_weights() -> dict[str, Path]:
    """The weight files of the bundled models installed now, found without distilling or assembling any (a
    model that is not set up yet cannot be what a folder holds, and loading a folder must not set it up)."""
    from hotswap.encoders import assets

    found: dict[str, Path] = {}
    models = assets.cache_home() / "models"
    if (models / STATIC_DIR / WEIGHTS_FILE).is_file():
        found["static"] = models / STATIC_DIR / WEIGHTS_FILE
    try:
        found["minilm"] = assets.minilm_folder() / WEIGHTS_FILE
    except AssetMissingError:
        pass
    if all((models / MPNET_DIR / f).is_file() for f in assets.MPNET_FILES):
        found["mpnet"] = models / MPNET_DIR / WEIGHTS_FILE
    return found


def folder_label(weights: Path) -> str:
    """The id label of a folder model with weight file ``weights``: the bundled model with the same weights
    (compared by size first, so only a same-size bundled file is ever hashed), else ``"custom"``."""
    size, digest = weights.stat().st_size, cached_sha256(weights)
    for name, bundled in _installed_bundled_weights().items():
        try:
            if bundled.stat().st_size == size and cached_sha256(bundled) == digest:
                return name
        except OSError:
            continue  # removed while we looked: it is not installed
    return CUSTOM


def _is_model2vec(folder: Path) -> bool:
    """A model2vec folder (its ``config.json`` says so); such a folder also carries a ``modules.json`` for
    sentence-transformers, but is loaded with model2vec, as the bundled ``static`` is, so that one id always
    means one way of encoding."""
    import json

    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == "model2vec"
    except (OSError, ValueError, AttributeError):
        return False


@lru_cache(maxsize=8)
def load_encoder(name: str, device: str = "cpu") -> Encoder:
    """Load a bundled encoder by short name, or a sentence-transformers / model2vec folder by path.

    ``static`` (256-d model2vec distilled from minilm), ``minilm`` (all-MiniLM-L6-v2, 384-d),
    ``mpnet`` (all-mpnet-base-v2, 768-d). Everything loads offline; missing assets raise
    ``AssetMissingError`` with the install command. A folder model's id is labelled as the module docstring
    says, and its location is remembered for ``encoder_for_model_id``.
    """
    from hotswap.encoders import assets
    from hotswap.encoders.locations import remember
    from hotswap.encoders.model2vec_static import Model2VecEncoder
    from hotswap.encoders.sentence_transformers import SentenceTransformerEncoder

    if name == "static":
        return Model2VecEncoder(assets.static_folder(), "static")
    if name == "minilm":
        return SentenceTransformerEncoder(assets.minilm_folder(), "minilm", device)
    if name == "mpnet":
        return SentenceTransformerEncoder(assets.mpnet_folder(), "mpnet", device)
    folder = Path(name)
    weights, display = folder / WEIGHTS_FILE, folder.resolve().name
    is_m2v = weights.is_file() and (folder / "tokenizer.json").is_file()
    is_st = (folder / "modules.json").is_file() and not (is_m2v and _is_model2vec(folder))
    if not is_st and not is_m2v:
        raise AssetMissingError(
            f"unknown encoder {name!r}: use one of {', '.join(BUNDLED)} or a sentence-transformers/model2vec folder"
        )
    if not weights.is_file():
        raise AssetMissingError(f"model folder {name} has no {WEIGHTS_FILE} (only safetensors weights are loaded)")
    label = folder_label(weights)
    encoder: Encoder = (SentenceTransformerEncoder(folder, display, device, label=label) if is_st
                        else Model2VecEncoder(folder, display, label=label))
    remember(encoder)
    return encoder


def describe(encoder: Any) -> dict[str, Any]:
    """What a provenance record keeps of a model: ``id``, display ``name``, resolved ``location`` (folder) and
    full ``weights_sha256`` (the last two None for an encoder that does not say)."""
    return {"id": encoder.id, "name": encoder.name, "location": getattr(encoder, "location", None),
            "weights_sha256": getattr(encoder, "weights_sha256", None)}


def as_model_id(encoder: Encoder, model_id: str) -> Encoder | None:
    """``encoder`` if it is model ``model_id``, else None. An id written by an older hotswap (the folder's
    name instead of ``custom``, e.g. ``my-minilm@3f2a9c1b7d4e``) is accepted for the same weights in a folder
    of that name: a shallow copy (sharing the loaded model) that carries the old id, so stores and collections
    built then keep working. Use it wherever a loaded encoder is checked against a recorded id."""
    if encoder.id == model_id:
        return encoder
    label, _, digest = model_id.rpartition("@")
    if (label and label not in BUNDLED and label != CUSTOM and label == encoder.name
            and digest == (getattr(encoder, "weights_sha256", None) or "")[:12]):
        legacy = copy.copy(encoder)
        legacy.id = model_id
        return legacy
    return None


def _try_load(spec: str, device: str) -> Encoder | None:
    """``load_encoder(spec)``, or None where nothing loadable is there (any other failure propagates)."""
    try:
        return load_encoder(spec, device)
    except AssetMissingError:
        return None


def encoder_for_model_id(model_id: str, device: str = "cpu", location: str | None = None) -> Encoder:
    """The installed encoder whose id is ``model_id`` (e.g. the one an index was built with), or a clear error.

    Looks, in order, at: the bundled model named before the ``@``; ``location`` (a folder the caller knows,
    e.g. from a store's provenance record); the folder the model registry remembers for ``model_id``; and, for
    ids written by older hotswap versions, the label before the ``@`` as a folder path. Raises
    ``ModelMismatchError`` when what it found has other weights, ``AssetMissingError`` when it found nothing.
    """
    from hotswap.encoders.locations import known_location

    label = model_id.rpartition("@")[0]
    seen: list[str] = []  # what was found instead, for the error
    missing: AssetMissingError | None = None
    if label in BUNDLED:
        try:
            encoder = load_encoder(label, device)
        except AssetMissingError as e:
            missing = e
        else:
            if encoder.id == model_id:
                return encoder
            seen.append(f"the installed {label!r} is {encoder.id}")
    specs = [location, known_location(model_id)] + ([label] if label and label not in BUNDLED else [])
    for spec in dict.fromkeys(s for s in specs if s):
        candidate = _try_load(spec, device)
        if candidate is None:
            continue
        found = as_model_id(candidate, model_id)
        if found is not None:
            return found
        seen.append(f"{spec} holds {candidate.id}")
    if seen:
        raise ModelMismatchError(f"the index was built with model {model_id}, but {'; '.join(seen)}; {OLD_FIX}, "
                                 "or rebuild the index with 'hotswap encode'")
    if missing is not None:
        raise missing
    raise AssetMissingError(f"model {model_id} was not found (it is not bundled and no known folder holds it); "
                            f"{OLD_FIX}")


def prepare_models(names: tuple[str, ...] = BUNDLED) -> dict[str, str]:
    """Assemble/distil the bundled models once (set-up step of ``make demo``); returns name -> model id."""
    return {name: load_encoder(name).id for name in names}


__all__ = ["BUNDLED", "CUSTOM", "Encoder", "as_model_id", "describe", "encoder_for_model_id", "folder_label",
           "load_encoder", "prepare_models"]
