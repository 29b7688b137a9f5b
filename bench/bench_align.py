"""How alignment fitting time grows with the number of benign prompts (and, with ``--real``, how
the maps compare on real models).

Default: fits each map on random low-rank-plus-noise data shaped like Gemma-3-270M (ds=640) →
MiniLM (dt=384) at several row counts, prints the best-of-``repeats`` wall time per fit and the
fitted log-log slope (time ∝ n^slope) per map. Run: ``python bench/bench_align.py [--rows ...]``.

``--real``: Gemma-3-270M (given layers, mean-pooled) → MiniLM on the shipped benign anchors; per
map: held-out R² / retrieval top-1 on anchors (20% holdout), the same on the held-out real
captions, fit time, and the cosine between the transported pair direction and MiniLM's native one
(a yardstick read with target-side unsafe pairs; it never feeds the alignment).
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
    "procrustes-w": ("procrustes", {"whiten": True}),
    "procrustes-128": ("procrustes", {"rank": 128}),
    "cca": ("cca", {"n_components": 64}),
    "mlp": ("mlp", {}),
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


def real_comparison(layers: Sequence[int], maps: Sequence[str]) -> dict[str, dict[str, float]]:
    """Compare maps on real packaged models (needs the offline-models extra; minutes on 2 cores)."""
    from xsteer.align import Alignment
    from xsteer.data import data_record, load_benign, load_pairs, pair_texts
    from xsteer.directions import Direction, mean_difference
    from xsteer.encoders import get_encoder

    src, tgt = get_encoder("gemma-3-270m"), get_encoder("all-minilm-l6-v2")
    anchors, captions = load_benign(kind="anchors"), load_benign(kind="captions")
    unsafe, safe = pair_texts(load_pairs())
    Y, Y_cap = tgt.encode(anchors, progress=False), tgt.encode(captions, progress=False)
    native = mean_difference(tgt.encode(unsafe, progress=False),
                             tgt.encode(safe, progress=False))
    records = [data_record("anchors", anchors, side=side, unsafe=False)
               for side in ("source", "target")]
    print(f"real: gemma-3-270m → all-minilm-l6-v2, {len(anchors)} anchors, {len(captions)} "
          f"captions, {len(unsafe)} pairs (native yardstick only)")
    print(f"{'layer':>5} {'map':<16} {'anchor r2':>9} {'top1':>6} {'caption r2':>10} {'top1':>6} "
          f"{'cos native':>10} {'fit s':>7}")
    out: dict[str, dict[str, float]] = {}
    by_layer = src.encode_layers(anchors + captions + unsafe + safe, list(layers), progress=False)
    for layer in layers:
        feats = by_layer[layer]
        na, nc, npairs = len(anchors), len(captions), len(unsafe)
        X, X_cap = feats[:na], feats[na:na + nc]
        d_src = mean_difference(feats[na + nc:na + nc + npairs], feats[na + nc + npairs:])
        site = src.site(layer)
        for m in maps:
            name, params = VARIANTS[m]
            t0 = time.perf_counter()
            al = Alignment.fit(X, Y, name, source=(src.model_id, site),
                               target=(tgt.model_id, tgt.site()), data=records, **params)
            fit_s = time.perf_counter() - t0
            cap = al.score(X_cap, Y_cap)
            moved = al.transport(Direction(d_src, model_id=src.model_id, site=site), "none")
            cos = float(torch.nn.functional.cosine_similarity(moved.vector, native, dim=0))
            row = {"anchor_r2": al.fit_stats["heldout_r2"], "anchor_top1": al.fit_stats["heldout_top1"],
                   "caption_r2": cap["r2"], "caption_top1": cap["top1"], "cos_native": cos,
                   "fit_seconds": fit_s}
            out[f"layer{layer}/{m}"] = row
            print(f"{layer:>5} {m:<16} {row['anchor_r2']:>9.3f} {row['anchor_top1']:>6.3f} "
                  f"{row['caption_r2']:>10.3f} {row['caption_top1']:>6.3f} {cos:>10.3f} {fit_s:>7.1f}")
    return out


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
    p.add_argument("--real", action="store_true",
                   help="compare maps on Gemma-3-270M → MiniLM instead of timing random data")
    p.add_argument("--layers", type=int, nargs="+", default=[6, 18], help="Gemma layers (--real)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.real:
        return real_comparison(args.layers, args.maps)

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
