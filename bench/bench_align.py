"""How alignment fitting time grows with the number of benign prompts.

Fits each map on random low-rank-plus-noise data shaped like Gemma-3-270M (ds=640) → MiniLM
(dt=384) at several row counts, prints the best-of-``repeats`` wall time per fit and the fitted
log-log slope (time ∝ n^slope) per map. Run: ``python bench/bench_align.py [--rows 250 500 ...]``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

import torch

from xsteer.align import make_map

VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "ridge": ("ridge", {}),                      # 15 alphas, 5-fold CV
    "ridge-loo": ("ridge", {"cv": None}),        # 15 alphas, closed-form leave-one-out
    "procrustes": ("procrustes", {}),
    "cca": ("cca", {"n_components": 64}),
}


def make_data(n: int, ds: int, dt: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-rank shared signal plus noise, with uneven scales (like LM states), float32."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 64, generator=g)
    X = latent @ torch.randn(64, ds, generator=g) * torch.linspace(0.1, 10.0, ds) + 50.0
    Y = latent @ torch.randn(64, dt, generator=g) + 0.5 * torch.randn(n, dt, generator=g)
    return X + torch.randn(n, ds, generator=g), Y


def time_fit(variant: str, X: torch.Tensor, Y: torch.Tensor, repeats: int) -> float:
    name, params = VARIANTS[variant]
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        make_map(name, **params).fit(X, Y)
        best = min(best, time.perf_counter() - t0)
    return best


def loglog_slope(ns: Sequence[int], ts: Sequence[float]) -> float:
    """Least-squares slope of log(time) on log(n)."""
    lx = [math.log(n) for n in ns]
    ly = [math.log(t) for t in ts]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--ds", type=int, default=640)
    p.add_argument("--dt", type=int, default=384)
    p.add_argument("--maps", nargs="+", default=["ridge", "ridge-loo", "procrustes"],
                   choices=list(VARIANTS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"alignment fit time (best of {args.repeats}), ds={args.ds}, dt={args.dt}, "
          f"torch threads={torch.get_num_threads()}")
    print(f"{'rows':>6} " + " ".join(f"{m:>12}" for m in args.maps))
    results: dict[str, dict[str, float]] = {m: {} for m in args.maps}
    Xw, Yw = make_data(20, 8, 4)
    for m in args.maps:  # warm-up: lazy imports (scipy) and first-call allocations are not fit cost
        time_fit(m, Xw, Yw, 1)
    for n in args.rows:
        X, Y = make_data(n, args.ds, args.dt)
        for m in args.maps:
            results[m][str(n)] = time_fit(m, X, Y, args.repeats)
        print(f"{n:>6} " + " ".join(f"{results[m][str(n)]:>11.3f}s" for m in args.maps))
    print("log-log scaling exponent (time ∝ rows^k):")
    for m in args.maps:
        k = loglog_slope(args.rows, [results[m][str(n)] for n in args.rows])
        results[m]["exponent"] = k
        print(f"  {m:<12} k = {k:.2f}")
    return results


if __name__ == "__main__":
    main()
