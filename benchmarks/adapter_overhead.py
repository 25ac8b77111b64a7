"""Microseconds per query that each adapter's ``transform`` adds, beside encoding the query with the new model.

    python benchmarks/adapter_overhead.py [--dim-new 384 --dim-old 256 --n-fit 5000] [--no-encoder]
        [--encoder minilm] [--out PATH]

Adapters are fitted on synthetic but realistic pairs (unit-norm rows of two models that share a latent space
through different, partly nonlinear maps); ``drift`` and ``compatible`` need equal dims: fitted dim_new -> dim_new.
The timed call is the public ``transform`` (input checks included), median of many repeats
(``time.perf_counter_ns``), at batch 1 and batch 256. Target: <= 5 us per query at batch 256. The encoder
column times ``--encoder`` (the real new model, all-MiniLM-L6-v2, by default). ``--out`` also writes the rows
as JSON (nothing is written by default).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hotswap.adapters import available_adapters, get_adapter_class, make_adapter
from hotswap.runinfo import hardware
from hotswap.io import atomic_write_json, json_safe

TARGET_US = 5.0


def _unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def make_pairs(n: int, d_new: int, d_old: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Aligned (new, old) embeddings of the same n items: a 96-d latent with a decaying spectrum, seen by each
    model through its own map (the new one partly nonlinear), plus noise; rows L2-normalised."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 96)) * np.linspace(1.0, 0.1, 96)
    old = z @ rng.standard_normal((96, d_old)) + 0.05 * rng.standard_normal((n, d_old))
    new = np.tanh(z @ rng.standard_normal((96, d_new))) + 0.05 * rng.standard_normal((n, d_new))
    return _unit(new), _unit(old)


def per_query_us(fn: Callable[[], object], batch: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e3 / batch


def encoder_times(repeats1: int, repeats256: int, model: str = "minilm") -> tuple[str, int, float, float]:
    from hotswap.encoders import load_encoder  # the real new model (all-MiniLM-L6-v2) by default

    enc = load_encoder(model)
    texts = [f"how do I fix the {w} error after upgrading package number {i}" for i, w in
             zip(range(256), ["dpkg", "apt", "grub", "network", "sound", "locale", "mirror", "kernel"] * 32)]
    t1 = per_query_us(lambda: enc.encode(texts[:1], batch_size=1), 1, repeats1)
    t256 = per_query_us(lambda: enc.encode(texts, batch_size=256), 256, repeats256)
    return enc.id, enc.dim, t1, t256


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim-new", type=int, default=384)
    ap.add_argument("--dim-old", type=int, default=256)
    ap.add_argument("--n-fit", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=2000, help="repeats at batch 1 (batch 256: a tenth)")
    ap.add_argument("--mlp-epochs", type=int, default=20, help="residual_mlp max_epochs (speed is unaffected)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-encoder", action="store_true", help="skip timing the real new model")
    ap.add_argument("--encoder", default="minilm", help="the model the encoder column times (static: fast)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    console = Console(width=140)

    enc_id, enc_dim, enc1, enc256 = "-", None, float("nan"), float("nan")
    if not args.no_encoder:
        try:
            enc_id, enc_dim, enc1, enc256 = encoder_times(max(10, args.repeats // 100), 3, args.encoder)
        except ImportError as exc:
            console.print(f"[yellow]encoder column skipped: {exc}[/yellow]")

    table = Table(title=f"adapter transform overhead, {args.dim_new} -> {args.dim_old}, n_fit={args.n_fit}")
    for col in ("adapter", "dims", "fit s", "us/query b=1", "us/query b=256", "ratio b=1", "ratio b=256",
                f"<= {TARGET_US:g} us @256"):
        table.add_column(col, justify="left" if col in ("adapter", "dims") else "right")
    rows = []
    for name in available_adapters():
        d_old = args.dim_new if get_adapter_class(name).equal_dims else args.dim_old  # drift, compatible
        X_new, X_old = make_pairs(args.n_fit + 256, args.dim_new, d_old, args.seed)
        params = {"max_epochs": args.mlp_epochs, "seed": args.seed} if name == "residual_mlp" else {}
        t0 = time.perf_counter()
        adapter = make_adapter(name, **params).fit(X_new[:args.n_fit], X_old[:args.n_fit])
        fit_s = time.perf_counter() - t0
        Q = X_new[args.n_fit:]
        q1 = np.ascontiguousarray(Q[:1])
        us1 = per_query_us(lambda: adapter.transform(q1), 1, args.repeats)
        us256 = per_query_us(lambda: adapter.transform(Q), 256, max(20, args.repeats // 10))
        table.add_row(name, f"{args.dim_new}->{d_old}", f"{fit_s:.2f}", f"{us1:.2f}", f"{us256:.3f}",
                      f"{us1 / enc1:.2e}", f"{us256 / enc256:.2e}", "yes" if us256 <= TARGET_US else "NO")
        rows.append({"adapter": name, "dim_new": args.dim_new, "dim_old": d_old, "fit_s": fit_s, "us_per_query_b1": us1,
                     "us_per_query_b256": us256, "ratio_b1": us1 / enc1, "ratio_b256": us256 / enc256,
                     "meets_target": us256 <= TARGET_US})
    if enc_id != "-":
        table.add_row("encoder " + enc_id, f"text->{enc_dim}", "", f"{enc1:.0f}", f"{enc256:.0f}", "1", "1", "")
    console.print(table)
    console.print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}; "
                  "ratio = adapter us / encoder us for the same batch size (median of repeats)")
    if args.out:
        encoder = None if enc_id == "-" else {"id": enc_id, "dim": enc_dim, "us_per_query_b1": enc1,
                                              "us_per_query_b256": enc256}
        atomic_write_json(args.out, json_safe({"rows": rows, "encoder": encoder, "target_us": TARGET_US,
                                               "config": {k: str(v) if isinstance(v, Path) else v
                                                          for k, v in vars(args).items()},
                                               "hardware": hardware()}))
        console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
