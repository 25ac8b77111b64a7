"""Text encoders with stable ids: ``load_encoder("static" | "minilm" | "mpnet" | <folder>)``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from hotswap.encoders.base import Encoder
from hotswap.errors import AssetMissingError

BUNDLED = ("static", "minilm", "mpnet")


@lru_cache(maxsize=8)
def load_encoder(name: str, device: str = "cpu") -> Encoder:
    """Load a bundled encoder by short name, or a sentence-transformers / model2vec folder by path.

    ``static`` (256-d model2vec distilled from minilm), ``minilm`` (all-MiniLM-L6-v2, 384-d),
    ``mpnet`` (all-mpnet-base-v2, 768-d). Everything loads offline; missing assets raise
    ``AssetMissingError`` with the install command.
    """
    from hotswap.encoders import assets
    from hotswap.encoders.model2vec_static import Model2VecEncoder
    from hotswap.encoders.sentence_transformers import SentenceTransformerEncoder

    if name == "static":
        return Model2VecEncoder(assets.static_folder(), "static")
    if name == "minilm":
        return SentenceTransformerEncoder(assets.minilm_folder(), "minilm", device)
    if name == "mpnet":
        return SentenceTransformerEncoder(assets.mpnet_folder(), "mpnet", device)
    folder = Path(name)
    if (folder / "modules.json").is_file():
        return SentenceTransformerEncoder(folder, folder.name, device)
    if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
        return Model2VecEncoder(folder, folder.name)
    raise AssetMissingError(
        f"unknown encoder {name!r}: use one of {', '.join(BUNDLED)} or a sentence-transformers/model2vec folder"
    )


def encoder_for_model_id(model_id: str, device: str = "cpu") -> Encoder:
    """The installed encoder whose id is ``model_id`` (e.g. the one an index was built with), or a clear error."""
    from hotswap.errors import ModelMismatchError

    encoder = load_encoder(model_id.rsplit("@", 1)[0], device)
    if encoder.id != model_id:
        raise ModelMismatchError(
            f"the index was built with model {model_id}, but the installed {encoder.name!r} is {encoder.id}; "
            "install the same weights or rebuild the index with 'hotswap encode'"
        )
    return encoder


def prepare_models(names: tuple[str, ...] = BUNDLED) -> dict[str, str]:
    """Assemble/distil the bundled models once (set-up step of ``make demo``); returns name -> model id."""
    return {name: load_encoder(name).id for name in names}


__all__ = ["BUNDLED", "Encoder", "encoder_for_model_id", "load_encoder", "prepare_models"]
