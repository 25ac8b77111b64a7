"""``SimplexClassifier``: the fixed d-Simplex classifier that keeps every model's feature space stationary.

Biondi, Pernici, Ricci, Del Bimbo (CVPR 2024, "Stationary Representations: Optimally Approximating
Compatibility and Implications for Improved Model Replacements", Sec. 4; code: miccunifi/iamcl2r, commit
18495ac7, ``models/__init__.py: dsimplex`` and ``create_model``) preallocate ``K`` classes (``K = 1024``) and
freeze the last layer at the ``K`` vertices of a regular simplex in ``d = K - 1`` dimensions:

    T = [ I_d ; a * 1^T ]  in R^{K x d},   a = (1 - sqrt(1 + d)) / d       (the ``K``-th vertex is a * 1)
    T <- T - mean_rows(T)                                                  (subtract each column's mean)
    W_k = T_k / (||T_k||_2 + 1e-8)                                          (each row to unit norm)

so that ``||W_k|| = 1`` and ``<W_j, W_k> = -1 / d`` for ``j != k`` (up to the ``1e-8``: norms are
``1 - ~1e-8``, invisible in float32) and the rows sum to the zero vector. In float32 this reproduces the
code's ``dsimplex`` bit for bit (checked for K in {2, 3, 10, 64, 1024}).
``logits = z @ W^T``: no bias, and the feature ``z`` is **not** normalised before the fixed layer (the code
applies ``fc2`` to the raw output of the trainable 512 -> 1023 bias-free ``fc1``; ``l2_norm`` is used only for
the HOC loss and for retrieval features). Class ``y`` is trained on vertex ``K - 1 - y`` (the code's
``target_transform``: "local classes are written from the bottom of the shared interface"), so class 0 sits on
the special vertex ``a * 1``.

Here the weights are a buffer, not a frozen parameter (the code keeps ``fc2.weight`` with ``requires_grad =
False``): the module has no parameters at all, so no optimiser, weight decay or ``requires_grad_()`` call can
move it. The buffer is not saved in ``state_dict`` (``persistent=False``): it is a deterministic function of
``K`` and is rebuilt on construction, as the code does when it deletes ``fc2.weight`` from pretrained
checkpoints and re-copies the simplex.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def simplex_vertices(num_classes: int, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """The ``K x (K - 1)`` fixed d-Simplex weights, ``K = num_classes`` (row ``k`` = vertex ``k``).

    Same arithmetic and order as the authors' ``dsimplex``: identity rows plus the row ``a * 1`` with
    ``a = (1 - sqrt(1 + d)) / d``, minus the column means, each row divided by its L2 norm plus ``1e-8``.
    Computed in ``dtype`` (float32, the code's, by default; in float64 the cosines are -1/d to ~1e-15 and the
    norms ``1 - ~1e-8`` because of the epsilon).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2 (a simplex needs two vertices); got {num_classes!r}")
    d = num_classes - 1
    t = torch.zeros(num_classes, d, dtype=dtype, device=device)
    t[:d] = torch.eye(d, dtype=dtype, device=device)
    t[d] = (1.0 - torch.sqrt(torch.tensor(1.0 + d, dtype=dtype, device=device))) / d
    t = t - t.mean(dim=0, keepdim=True)
    return t / (t.norm(p=2, dim=1, keepdim=True) + 1e-8)


class SimplexClassifier(nn.Module):
    """``forward(z [..., K - 1]) -> logits [..., K]`` with the fixed simplex; ``target(y) = K - 1 - y``.

    ``num_classes`` is the preallocated ``K`` (the paper uses 1024); ``dim = K - 1`` is the feature size the
    model must emit. ``weight`` is a ``[K, K - 1]`` buffer; the module has no parameters.
    """

    weight: torch.Tensor

    def __init__(self, num_classes: int = 1024) -> None:
        super().__init__()
        self.register_buffer("weight", simplex_vertices(num_classes), persistent=False)
        self.num_classes = int(num_classes)
        self.dim = self.num_classes - 1

    @property
    def cosine(self) -> float:
        """The cosine between any two distinct vertices, ``-1 / (K - 1)``."""
        return -1.0 / self.dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.dim:
            raise ValueError(f"features must have K - 1 = {self.dim} dims; got shape {tuple(z.shape)}")
        # Raw z, as in the code (no normalisation before the fixed layer); the buffer follows z's dtype so
        # that float64 / half inputs work without casting the module.
        return F.linear(z, self.weight.to(dtype=z.dtype))

    def target(self, labels: torch.Tensor) -> torch.Tensor:
        """Class ``y`` -> the index of its vertex, ``K - 1 - y`` (labels must lie in ``[0, K)``)."""
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}); got range "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return self.num_classes - 1 - labels

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, cosine={self.cosine:.3g}"

