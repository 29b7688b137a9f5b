"""What thread-safe steering costs: throughput of steered encodes on one shared pipeline.

On the tiny in-code Stable Diffusion of ``xsteer/pipelines/tiny.py``, ``--requests`` steered
``Steerer.encode`` calls (the ``prompt_embeds`` path a server uses) are run

1. sequentially in one thread;
2. on ``--threads`` threads as shipped: each encode holds `xsteer.pipelines.encode_lock`, because
   the pipeline's tokenizer rewrites shared padding state on every call;
3. on ``--threads`` threads with that lock replaced by a no-op: what the lock costs, and how many
   outputs then differ from their sequential reference (the race the lock prevents).

Variants are interleaved over ``--rounds`` so load drifts hit each alike; the median round is
reported as requests per second and as ratios. Run ``python bench/bench_threads.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    from xsteer.directions import Direction
    from xsteer.pipelines import Steerer, hooks, steerer, tiny

    pipe = tiny.build("sd")
    direction = Direction(torch.randn(32, generator=torch.Generator().manual_seed(3)), "bench",
                          "text_encoder")
    st = Steerer(direction, strength=2.0)
    prompts = [f"a {c} {o}" for c in ("red", "blue", "calm", "wild") for o in ("cat", "boat")]

    def request(i: int) -> torch.Tensor:
        embeds, _, _ = st.encode(pipe, prompts[i % len(prompts)])
        return embeds["prompt_embeds"]

    reference = [request(i) for i in range(args.requests)]
    real_lock = steerer.encode_lock

    def run(variant: str) -> tuple[float, int]:
        steerer.encode_lock = (  # type: ignore[assignment]
            real_lock if variant != "threads, no lock" else lambda _p: contextlib.nullcontext())
        t0 = time.perf_counter()
        try:
            if variant == "sequential":
                got = [request(i) for i in range(args.requests)]
            else:
                with ThreadPoolExecutor(args.threads) as pool:
                    got = list(pool.map(request, range(args.requests)))
        finally:
            steerer.encode_lock = real_lock  # type: ignore[assignment]
        dt = time.perf_counter() - t0
        bad = sum(g.shape != r.shape or not torch.equal(g, r) for g, r in zip(got, reference, strict=True))
        return dt, bad

    variants = ["sequential", "threads, locked", "threads, no lock"]
    times: dict[str, list[float]] = {v: [] for v in variants}
    wrong: dict[str, list[int]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            dt, bad = run(v)
            times[v].append(dt)
            wrong[v].append(bad)
    assert not pipe.text_encoder._forward_hooks and hooks.encode_lock(pipe) is not None
    out: dict[str, Any] = {}
    print(f"{args.requests} steered encodes, {args.threads} threads, median of {args.rounds} "
          "rounds, torch 1 thread")
    for v in variants:
        med = statistics.median(times[v])
        out[v] = {"req_per_s": args.requests / med, "wrong_outputs": wrong[v]}
        print(f"  {v:18s} {args.requests / med:8.1f} req/s   outputs differing from the "
              f"sequential reference per round: {wrong[v]}")
    locked, free = out["threads, locked"]["req_per_s"], out["threads, no lock"]["req_per_s"]
    seq = out["sequential"]["req_per_s"]
    print(f"  locked / no lock throughput: {locked / free:.3f}; locked / sequential: "
          f"{locked / seq:.3f}")
    return out


if __name__ == "__main__":
    main()
