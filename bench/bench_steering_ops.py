"""Steering-operator cost as a share of the text-encoder forward it follows (target: <= 1%).

Measured side by side in one process on MiniLM (the packaged real model): a forward pass of a
batch of prompts to token states, then each steering mode applied to those states.
Run: ``python bench/bench_steering_ops.py``.
"""

from __future__ import annotations

import statistics
import time

import torch


def _median_time(fn, repeats: int = 15) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from xsteer.data import load_benign
    from xsteer.directions import Direction
    from xsteer.encoders import get_encoder
    from xsteer.steer import Gate, Steering

    torch.manual_seed(0)
    enc = get_encoder("all-minilm-l6-v2", cache=False)
    prompts = load_benign(kind="captions")[:32]
    states, mask = enc.encode_tokens(prompts, max_length=77)
    d = Direction(torch.randn(enc.dim), enc.model_id, enc.site())
    gate = Gate.calibrate(states.mean(1), d.vector, quantile=0.9)
    t_fwd = _median_time(lambda: enc.encode_tokens(prompts, max_length=77), repeats=7)
    print(f"text-encoder forward (MiniLM, batch {len(prompts)}, 77 tokens): "
          f"{t_fwd * 1e3:.1f} ms")
    for mode in ("additive", "projection", "gated"):
        s = Steering(d, mode=mode, strength=0.5, gates={"global": gate})
        t = _median_time(lambda s=s: s.apply(states, mask))
        print(f"  {mode:<10} {t * 1e3:7.3f} ms  = {100 * t / t_fwd:.3f}% of the forward "
              f"(target <= 1%)")


if __name__ == "__main__":
    main()
