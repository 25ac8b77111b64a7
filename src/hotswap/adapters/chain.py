"""``chain``: adapters composed along an upgrade chain, so queries of model v3 reach an index of model v1.

A store stays on v1 while the model moves v1 -> v2 -> v3. With ``A_{2→1}`` (v2 -> v1) and ``A_{3→2}``
(v3 -> v2) fitted at each upgrade, v3 queries reach the v1 index through the composition

    A_{3→1} = A_{2→1} ∘ A_{3→2},    i.e.  A_{3→1}(q) = A_{2→1}(A_{3→2}(q)),

applied in order by ``ComposedAdapter([a_32, a_21]).transform(q)``. Errors compound: with ``y_k`` the
v_k embedding of an item, ``A_{3→1}(x) - y_1 = [A_{2→1}(A_{3→2}(x)) - A_{2→1}(y_2)] + [A_{2→1}(y_2) - y_1]``,
so the v3 -> v2 error passes through the second link (scaled by at most its Lipschitz constant ``||W||_2``:
1 for a semi-orthogonal ``procrustes`` map, any size for ``affine``) and adds to the v2 -> v1 error;
each link also keeps at most the information of the narrowest space on the way. A direct v3 -> v1 adapter
avoids that but needs v3 and v1 embeddings of the same texts (``benchmarks/upgrade_chain.py`` compares both).

Construction checks every link: adapter ``i``'s target model id and dimension must equal adapter ``i+1``'s
source model id and dimension, or the chain is refused with an error naming both model ids.

On disk (``save``), each link is saved whole in its own sub-folder (``0-mpnet-to-minilm/``, ...; loadable
alone with ``load_adapter``), then ``adapter.json`` + ``adapter.safetensors`` of the composition itself,
written by ``Adapter.save``: ``fitted.chain_`` lists the model ids v3, v2, v1 and ``fitted.links_`` each
link's folder and ``adapter.json``; the safetensors file holds every link's arrays (``link{i}__{name}``), so
the generic loader (``load_adapter``, found by the registry name ``chain``) rebuilds the chain in one pass.
The top-level ``adapter.json`` is written last (atomically), so it is the commit point of a save.
The name ``chain`` is registered when this module is imported (``hotswap.adapters`` does not import it), so
``load_adapter`` reads a saved chain in a process that has imported ``hotswap.adapters.chain``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_arrays

from hotswap.adapters.base import CONFIG_FILE, WEIGHTS_FILE, Adapter
from hotswap.adapters.registry import get_adapter_class, register_adapter
from hotswap.errors import DimensionMismatchError, ModelMismatchError, NotFittedError

_PREFIX = re.compile(r"^link(\d+)__(.+)$")


def _short(model_id: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(model_id).split("@")[0])


def check_links(adapters: Sequence[Adapter]) -> None:
    """Refuse unless adapter ``i`` maps into the model and dimension that adapter ``i+1`` maps from."""
    for i, a in enumerate(adapters):
        if not isinstance(a, Adapter):
            raise TypeError(f"link {i} of a ComposedAdapter must be a fitted Adapter; got {type(a).__name__}")
        if not a.is_fitted:
            raise NotFittedError(f"link {i} ({type(a).__name__}) is not fitted; fit every link before composing")
        if a.new_model_id_ is None or a.old_model_id_ is None:
            raise ModelMismatchError(f"link {i} ({a.name}, {a.new_model_id_!r} -> {a.old_model_id_!r}) does not "
                                     "record both model ids, so the chain cannot be checked; fit it with "
                                     "new_model_id= and old_model_id=")
    for i, (a, b) in enumerate(zip(adapters, adapters[1:])):
        if a.old_model_id_ != b.new_model_id_:
            raise ModelMismatchError(f"broken chain at link {i} -> {i + 1}: adapter {i} ({a.new_model_id_} -> "
                                     f"{a.old_model_id_}) maps into model {a.old_model_id_!r} but adapter {i + 1} "
                                     f"({b.new_model_id_} -> {b.old_model_id_}) maps from model {b.new_model_id_!r}; "
                                     "each adapter must map into the model the next one maps from")
        if a.dim_out_ != b.dim_in_:
            raise DimensionMismatchError(f"broken chain at link {i} -> {i + 1}: adapter {i} outputs {a.dim_out_} "
                                         f"dims (model {a.old_model_id_!r}) but adapter {i + 1} takes {b.dim_in_} "
                                         f"(model {b.new_model_id_!r})")


@register_adapter("chain")
class ComposedAdapter(Adapter):
    """``A_{n→1} = A_{2→1} ∘ ... ∘ A_{n→n-1}``: fitted adapters applied in order (first = newest model's).

    >>> a31 = ComposedAdapter([a32, a21])        # a32: mpnet -> minilm, a21: minilm -> static
    >>> a31.source_model_id, a31.target_model_id, a31.model_chain
    ('mpnet@…', 'static@…', ['mpnet@…', 'minilm@…', 'static@…'])

    Nested ``ComposedAdapter`` links are flattened. ``fit`` is refused: fit each link, then compose.
    ``ComposedAdapter()`` with no links is the empty shell that ``load_adapter`` fills.
    """

    def __init__(self, adapters: Sequence[Adapter] | None = None) -> None:
        super().__init__()
        self.adapters: tuple[Adapter, ...] = ()
        if adapters is not None:
            self._adopt(adapters)

    def _adopt(self, adapters: Sequence[Adapter]) -> None:
        flat = [m for a in adapters for m in (a.adapters if isinstance(a, ComposedAdapter) else (a,))]
        if not flat:
            raise ValueError("a ComposedAdapter needs at least one fitted adapter")
        check_links(flat)
        first, last = flat[0], flat[-1]
        self.adapters = tuple(flat)
        self.chain_ = [first.new_model_id_, *(a.old_model_id_ for a in flat)]
        self.new_model_id_, self.old_model_id_ = first.new_model_id_, last.old_model_id_
        self.n_fit_pairs_ = min(int(a.n_fit_pairs_) for a in flat)  # the least-supported link
        self.dim_in_, self.dim_out_ = first.dim_in_, last.dim_out_

    @property
    def source_model_id(self) -> str | None:
        """The model whose queries go in: the first link's source (v3)."""
        return getattr(self, "new_model_id_", None)

    @property
    def target_model_id(self) -> str | None:
        """The model of the index the output searches: the last link's target (v1)."""
        return getattr(self, "old_model_id_", None)

    @property
    def model_chain(self) -> list[str]:
        """Model ids from source to target, e.g. ``[v3, v2, v1]``."""
        return list(getattr(self, "chain_", []))

    def __repr__(self) -> str:
        return f"ComposedAdapter({' -> '.join(map(str, self.model_chain)) or 'empty'})"

    def fit(self, X_new: Any, X_old: Any, *, new_model_id: str | None = None,
            old_model_id: str | None = None) -> Adapter:
        raise NotImplementedError("a ComposedAdapter is built from fitted adapters: fit each link (e.g. v3 -> v2 "
                                  "and v2 -> v1) and pass them to ComposedAdapter([a_32, a_21])")

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:  # pragma: no cover - fit is refused above
        raise NotImplementedError

    def _transform(self, X: np.ndarray) -> np.ndarray:
        for adapter in self.adapters:  # input checked once by ``transform``; each link is checked at construction
            X = np.ascontiguousarray(adapter._transform(X), dtype=np.float32)
        return X

    def link_folders(self) -> list[str]:
        """Sub-folder of each link in a saved chain: ``{i}-{source}-to-{target}``."""
        return [f"{i}-{_short(a.new_model_id_)}-to-{_short(a.old_model_id_)}" for i, a in enumerate(self.adapters)]

    def save(self, path: str | Path) -> Path:
        """Save each link in its sub-folder, then the composition's own files (``adapter.json`` last)."""
        if not self.is_fitted:
            raise NotFittedError("cannot save an empty ComposedAdapter; build it from fitted adapters")
        folder, links = Path(path), []
        try:
            for i, (sub, adapter) in enumerate(zip(self.link_folders(), self.adapters)):
                adapter.save(folder / sub)
                links.append({**json.loads((folder / sub / CONFIG_FILE).read_text()), "folder": sub})
                for key, value in load_arrays((folder / sub / WEIGHTS_FILE).read_bytes()).items():
                    setattr(self, f"link{i}__{key}", value)
            self.links_ = links
            return super().save(folder)
        finally:  # the serialised form is transient; the live links stay in ``self.adapters``
            self._drop_serialised()

    def _prepare(self) -> None:
        """After ``Adapter.load`` has set ``links_`` and the ``link{i}__*`` arrays: rebuild and check the links."""
        links = getattr(self, "links_", None)
        if links is None:
            return
        arrays: dict[int, dict[str, np.ndarray]] = {}
        for key, value in vars(self).items():
            if m := _PREFIX.match(key):
                arrays.setdefault(int(m.group(1)), {})[m.group(2)] = value
        members = []
        for i, meta in enumerate(links):
            klass = get_adapter_class(meta["name"])
            if meta["config_version"] > klass.config_class.config_version:
                raise ValueError(f"link {i} of this chain has {klass.__name__} config version "
                                 f"{meta['config_version']}; this hotswap reads up to "
                                 f"{klass.config_class.config_version}: upgrade hotswap")
            member = klass(**meta["params"])
            for key, value in {**meta["fitted"], **arrays.get(i, {})}.items():
                setattr(member, key, value)
            member._prepare()
            members.append(member)
        self._drop_serialised()
        saved_chain = list(getattr(self, "chain_", []))
        self._adopt(members)
        if saved_chain and saved_chain != self.chain_:
            raise ModelMismatchError(f"the saved chain {saved_chain} does not match its links {self.chain_}")

    def _drop_serialised(self) -> None:
        for key in [k for k in vars(self) if k == "links_" or _PREFIX.match(k)]:
            delattr(self, key)
