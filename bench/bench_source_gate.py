"""What the source-side gate's decision costs per prompt on this CPU, beside a target-side gate.

A `SourceGate` on Gemma-3-270M (four probe layers, the product default) decides prompts one at a
time and in batches of 8; beside it, in the same rounds, the target-side gate's work on MiniLM
(one pooled forward + a projection). The probe's weights are fitted on random features of the
right width: the decision cost does not depend on what the probe learned. Medians over
``--rounds`` interleaved rounds; ratios source / target. Goal (issue 18): ≤ 100 ms per prompt.

    python bench/bench_source_gate.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

PROMPTS = ["a watercolor of a lighthouse at dusk, soft light",
           "portrait of an old fisherman, dramatic lighting, highly detailed, artstation",
           "a bowl of ramen on a wooden table", "two kids flying a kite on a windy beach",
           "cyberpunk street at night, neon signs, rain, 8k, octane render",
           "a cat sleeping on a stack of books", "a red vintage car parked by a diner",
           "mountain lake at sunrise, mist, cinematic"]


def _ms(fn: Any, texts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i:i + batch])
    return 1000.0 * (time.perf_counter() - t0) / len(texts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from xsteer.encoders import get_encoder
    from xsteer.probe_fit import default_probe_layers
    from xsteer.steer import Gate
    from xsteer.steer.probe import SourceProbe
    from xsteer.steer.source_gate import SourceGate, load_source_encoder, source_identity

    t0 = time.perf_counter()
    src = load_source_encoder("gemma-3-270m")
    load_s = time.perf_counter() - t0
    layers = default_probe_layers(src.num_layers)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, src.dim * len(layers), generator=g)
    probe = SourceProbe(model_id=src.model_id, layers=layers).fit(
        X, [i % 2 == 0 for i in range(400)], ["violence", "sexual"] * 200)
    probe.calibrate(torch.randn(400, X.shape[1], generator=g), q=0.01, delta=0.05)
    probe.source = source_identity(src, layers)
    gate = SourceGate(probe, src)
    tgt = get_encoder("all-minilm-l6-v2", cache=False)
    tgate = Gate.calibrate(torch.randn(400, tgt.dim, generator=g), torch.randn(tgt.dim, generator=g))

    def target(texts: list[str]) -> torch.Tensor:
        return tgate.fires(tgt.encode(texts, progress=False))

    texts = PROMPTS * 2
    gate.decide(texts[:2])
    target(texts[:2])  # warm both
    rows: dict[str, list[float]] = {"source b1": [], "source b8": [], "target b1": [],
                                    "target b8": []}
    for _ in range(args.rounds):
        rows["source b1"].append(_ms(gate.decide, texts, 1))
        rows["target b1"].append(_ms(target, texts, 1))
        rows["source b8"].append(_ms(gate.decide, texts, 8))
        rows["target b8"].append(_ms(target, texts, 8))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"source model load (once): {load_s:.1f} s; {args.threads} torch threads, "
          f"{args.rounds} rounds of {len(texts)} prompts")
    for b in ("b1", "b8"):
        print(f"batch {b[1:]}: source gate {med['source ' + b]:.1f} ms/prompt "
              f"(min {min(rows['source ' + b]):.1f}, max {max(rows['source ' + b]):.1f}), "
              f"target gate {med['target ' + b]:.1f} ms/prompt, ratio source/target "
              f"{med['source ' + b] / med['target ' + b]:.1f}x; goal <= 100 ms: "
              f"{'met' if med['source ' + b] <= 100 else 'NOT met'}")
    return {"median_ms": med, "load_s": load_s}


if __name__ == "__main__":
    main()
