"""The proving-ground experiment: transported vs native vs random vs no direction, global vs
per-category steering, judged on generated images.

All directions are rescaled to the norm of the *native* direction of the same category, so a
strength of 1 moves a prompt's pooled state by one native unsafe→safe gap whichever direction is
used: the comparison is between directions, not between their calibrated lengths.
"""

from __future__ import annotations

from typing import Any

from xsteer.categories import CATEGORIES, GLOBAL
from xsteer.directions import Direction, DirectionSet
from xsteer.proving_ground.evaluate import Evaluator
from xsteer.proving_ground.runner import random_like
from xsteer.steer import Steering


def _rescaled(d: Direction, norm: float) -> Direction:
    return d.normalized() * norm


def direction_label(d: Direction) -> str:
    """What a direction is, read from its own metadata (origin, model id, method, data seen).

    >>> import torch
    >>> direction_label(Direction(torch.ones(2), "all-minilm-l6-v2", "tokens/mean", origin="native"))
    'native (all-minilm-l6-v2, mean-diff)'
    """
    if d.origin == "transported":
        src = d.meta.get("source_direction", {}).get("model_id", "?")
        data = "target unsafe data" if d.provenance.saw_unsafe("target") else "benign-only"
        return f"transported ({src} -> {d.model_id}, {data} {d.method.removeprefix('transported:')})"
    unsafe = d.provenance.saw_unsafe("source") or d.provenance.saw_unsafe("target")
    return f"{d.origin} ({d.model_id}, {d.method}{', unsafe pairs' if unsafe else ''})"


def row_labels(native: DirectionSet, transported: DirectionSet) -> tuple[str, str]:
    """The global rows' labels for the two sets; the role is added when metadata cannot tell
    them apart."""
    a, b = direction_label(native[GLOBAL]), direction_label(transported[GLOBAL])
    return (f"{a} [native]", f"{b} [transported]") if a == b else (a, b)


def run_experiment(ev: Evaluator, native: DirectionSet, transported: DirectionSet,
                   strengths: list[float], category_strength: float = 1.0,
                   progress: bool = True, mode: str = "additive") -> dict[str, Any]:
    """Rows for the global table and the per-category (selectivity) table.

    ``mode`` is the `Steering` operator: ``additive`` (strength = native gaps added to every
    token) or ``projection`` (strength = share of each token's component along the direction
    that is removed; the norm is then irrelevant)."""
    from tqdm.auto import tqdm

    ref = native[GLOBAL].norm
    native_label, transported_label = row_labels(native, transported)
    globals_: dict[str, Direction] = {
        native_label: native[GLOBAL],
        transported_label: _rescaled(transported[GLOBAL], ref),
        "random": random_like(native[GLOBAL], seed=0),
    }
    jobs: list[tuple[str, str, float, Steering | None]] = [("none", GLOBAL, 0.0, None)]
    for name, d in globals_.items():
        for s in strengths:
            jobs.append((name, GLOBAL, s, Steering(d, mode=mode, strength=s)))
    for name, dset in (("native", native), ("transported", transported), ("random", None)):
        for i, cat in enumerate(CATEGORIES):
            if cat not in native or (dset is not None and cat not in dset):
                continue
            # the control: a random direction per category, at that category's native norm
            d = (random_like(native[cat], seed=1 + i) if dset is None
                 else _rescaled(dset[cat], native[cat].norm))
            jobs.append((f"{name} per-category", cat, category_strength,
                         Steering(d, mode=mode, strength=category_strength)))
    rows: list[dict[str, Any]] = []
    for name, cat, s, steering in tqdm(jobs, desc="experiment", disable=not progress):
        judged, _, _ = ev.run(steering)
        rows.append({"direction": name, "steered_category": cat, "strength": s,
                     **judged.to_dict()})
    cos = {c: native[c].cosine(transported[c]) for c in [GLOBAL, *CATEGORIES]
           if c in native and c in transported}
    return {"rows": rows, "cosine_native_transported": cos, "native_global_norm": ref,
            "mode": mode}


def markdown_tables(result: dict[str, Any]) -> str:
    """The two tables of docs/proving_ground.md from `run_experiment`'s result."""
    rows = result["rows"]
    clips = any("asr_per_frame" in r for r in rows)  # T2V: per-frame rates beside per-clip ones
    frame_head = " ASR per frame | fidelity per frame |" if clips else ""
    out = ["| direction | strength | ASR | fidelity | FID |" + frame_head + " " +
           " | ".join(CATEGORIES) + " |",
           "|---|---|---|---|---|" + ("---|---|" if clips else "") + "---|" * len(CATEGORIES)]
    for r in rows:
        if r["steered_category"] != GLOBAL:
            continue
        per = " | ".join(f"{r['per_category_asr'].get(c, float('nan')):.2f}" for c in CATEGORIES)
        frames = (f" {r['asr_per_frame']:.3f} | {r['fidelity_per_frame']:.3f} |" if clips else "")
        out.append(f"| {r['direction']} | {r['strength']:g} | {r['asr']:.3f} | "
                   f"{r['fidelity']:.3f} | {r['fid']:.1f} |{frames} {per} |")
    out += ["", "Per-category steering (one category's direction at a time): ASR on each "
            "category's prompts, and benign fidelity.", "",
            "| direction | steered | " + " | ".join(CATEGORIES) + " | fidelity |",
            "|---|---|" + "---|" * len(CATEGORIES) + "---|"]
    for r in rows:
        if r["steered_category"] == GLOBAL:
            continue
        per = " | ".join(
            (f"**{r['per_category_asr'].get(c, float('nan')):.2f}**" if c == r["steered_category"]
             else f"{r['per_category_asr'].get(c, float('nan')):.2f}") for c in CATEGORIES)
        out.append(f"| {r['direction']} | {r['steered_category']} | {per} | {r['fidelity']:.3f} |")
    return "\n".join(out) + "\n"
