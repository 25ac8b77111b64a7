"""Residual-MLP adapter (Drift-Adapter, EMNLP 2025, arXiv 2509.23471). torch is imported only to fit."""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass
from typing import cast

import numpy as np

from hotswap.adapters.base import Adapter, AdapterConfig
from hotswap.adapters.registry import register_adapter
from hotswap.encoders.progress import progress_bar
from hotswap.linalg import check_alpha, ridge_fit

_GELU_C = float(np.sqrt(2.0 / np.pi))
PROGRESS_THRESHOLD = 500_000  # training pairs x max_epochs above which a progress bar is shown


@dataclass
class ResidualMLPConfig(AdapterConfig):
    hidden: int = 512
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10  # epochs without a better validation loss before stopping
    val_fraction: float = 0.1  # held out from the fit pairs for early stopping
    cosine_weight: float = 1.0
    contrastive_weight: float = 0.0  # weight of the in-batch InfoNCE term (0 = the plain regression loss)
    temperature: float = 0.05  # InfoNCE temperature
    init: str = "ridge"  # linear path starts at the "ridge" (affine) or "procrustes" (orthogonal) fit
    alpha: float | str = "auto"  # ridge penalty of the linear path's initialisation
    seed: int = 0

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.init not in ("ridge", "procrustes"):
            raise ValueError(f"init must be 'ridge' or 'procrustes'; got {self.init!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction!r}")


@register_adapter("residual_mlp")
class ResidualMLP(Adapter):
    """``q_hat = q W + b + MLP(q)``, ``MLP = Linear(d_in, hidden) -> GELU -> Dropout -> Linear(hidden, d_out)``.

    Residual-MLP adapter of Drift-Adapter (EMNLP 2025, arXiv 2509.23471). ``W, b`` start at the closed-form
    ridge fit on the training split (``linalg.ridge_fit``; or, with ``init="procrustes"``, at the orthogonal
    Procrustes map with ``b = 0``) and the MLP's last layer at zero, so training starts exactly at that linear
    adapter. Loss per pair: ``||q_hat - y||^2 + cosine_weight * (1 - cos(q_hat, y))`` (squared error summed
    over dims, so both terms have the same scale for unit vectors), averaged over the batch, plus, when
    ``contrastive_weight > 0``, ``contrastive_weight * InfoNCE``: cross-entropy of
    ``cos(q_hat_i, y_j) / temperature`` over the batch's old targets ``j`` with target ``i``. The regression
    loss alone regresses towards the conditional mean and shrinks the old space's spread (hubness, Dinu et
    al. 2015), which costs ranking quality; the in-batch term asks for each mapped query to be closer to its
    own old embedding than to the others', which is what retrieval needs. AdamW (lr 1e-3, weight decay 1e-4),
    batch 256, up to 200 epochs, early stopping on a held-out ``val_fraction`` of the fit pairs (patience 10, epoch 0 =
    the affine start included), best weights restored. GELU is the tanh form so the numpy ``transform`` matches torch.
    Deterministic given ``seed`` (numpy Generator for the split and batches, forked torch RNG for init and dropout).
    Learned (float32): ``W_``, ``b_``, ``W1_``, ``b1_``, ``W2_``, ``b2_``; ``best_epoch_``, ``epochs_run_``.
    """

    config_class = ResidualMLPConfig
    config: ResidualMLPConfig

    def min_pairs(self, dim_in: int, dim_out: int) -> int:
        return max(10, int(np.ceil(2 / self.config.val_fraction)))

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:
        import torch
        from torch import nn
        from torch.nn import functional as F

        cfg, n = self.config, X_new.shape[0]
        rng = np.random.default_rng(cfg.seed)
        perm = rng.permutation(n)
        n_val = max(1, int(round(n * cfg.val_fraction)))
        val, tr = perm[:n_val], perm[n_val:]
        lin = ridge_fit(X_new[tr], X_old[tr], cfg.alpha)
        self.alpha_ = lin.alpha
        if cfg.init == "procrustes":
            U, _, Vt = np.linalg.svd(X_new[tr].T @ X_old[tr], full_matrices=False)
            lin = lin._replace(W=(U @ Vt).astype(np.float32), b=np.zeros(X_old.shape[1], np.float32))

        def loss_fn(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            mse = (pred - y).square().sum(dim=1).mean()
            loss = mse + cfg.cosine_weight * (1.0 - F.cosine_similarity(pred, y, dim=1)).mean()
            if cfg.contrastive_weight > 0:
                logits = F.normalize(pred, dim=1) @ F.normalize(y, dim=1).T / cfg.temperature
                target = torch.arange(len(pred))
                loss = loss + cfg.contrastive_weight * F.cross_entropy(logits, target)
            return loss

        bar = progress_bar() if len(tr) * cfg.max_epochs >= PROGRESS_THRESHOLD else None
        with torch.random.fork_rng(devices=[]), bar or nullcontext():
            torch.manual_seed(cfg.seed)
            task = bar.add_task("fit residual_mlp (epochs)", total=cfg.max_epochs, rate="") if bar else None
            linear = nn.Linear(X_new.shape[1], X_old.shape[1])
            mlp = nn.Sequential(nn.Linear(X_new.shape[1], cfg.hidden), nn.GELU(approximate="tanh"),
                                nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, X_old.shape[1]))
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(lin.W.T.copy()))
                linear.bias.copy_(torch.from_numpy(lin.b))
                head = cast(nn.Linear, mlp[3])
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
            net = nn.ModuleDict({"linear": linear, "mlp": mlp})
            fwd = lambda x: net["linear"](x) + net["mlp"](x)  # noqa: E731
            x_tr, y_tr, x_val, y_val = (torch.from_numpy(a.astype(np.float32)) for a in
                                        (X_new[tr], X_old[tr], X_new[val], X_old[val]))
            opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

            def val_loss() -> float:
                net.eval()
                with torch.no_grad():
                    return float(loss_fn(fwd(x_val), y_val))

            best, best_state, best_epoch, epoch = val_loss(), copy.deepcopy(net.state_dict()), 0, 0
            for epoch in range(1, cfg.max_epochs + 1):
                net.train()
                order = torch.from_numpy(rng.permutation(len(tr)))
                for start in range(0, len(tr), cfg.batch_size):
                    idx = order[start:start + cfg.batch_size]
                    loss = loss_fn(fwd(x_tr[idx]), y_tr[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                current = val_loss()
                if bar is not None and task is not None:
                    bar.update(task, advance=1, rate=f"val loss {current:.4g} (best epoch {best_epoch})")
                if current < best:
                    best, best_state, best_epoch = current, copy.deepcopy(net.state_dict()), epoch
                elif epoch - best_epoch >= cfg.patience:
                    break
            net.load_state_dict(best_state)
        state = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
        self.W_, self.b_ = np.ascontiguousarray(state["linear.weight"].T), state["linear.bias"]
        self.W1_, self.b1_ = np.ascontiguousarray(state["mlp.0.weight"].T), state["mlp.0.bias"]
        self.W2_, self.b2_ = np.ascontiguousarray(state["mlp.3.weight"].T), state["mlp.3.bias"]
        self.best_epoch_, self.epochs_run_, self.best_val_loss_ = best_epoch, epoch, best

    def _prepare(self) -> None:
        # one matmul for the linear path and the first MLP layer; both biases of the output folded together
        self._W_cat = np.ascontiguousarray(np.concatenate([self.W_, self.W1_], axis=1), dtype=np.float32)
        self._b_cat = np.concatenate([self.b_ + self.b2_, self.b1_]).astype(np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        H = X @ self._W_cat
        H += self._b_cat
        d_out = self.W_.shape[1]
        Y, h = H[:, :d_out], H[:, d_out:]
        g = h * h  # GELU (tanh form) in place: 0.5 h (1 + tanh(c (h + 0.044715 h^3)))
        g *= 0.044715 * _GELU_C
        g += _GELU_C
        g *= h
        np.tanh(g, out=g)
        g += 1.0
        g *= 0.5
        g *= h
        return Y + g @ self.W2_
