"""`run_eval`: the body of ``xsteer proving-ground eval`` — before/after tables for one direction.

It loads a `Direction` or `DirectionSet` (MiniLM pooled space when the generator reads MiniLM),
builds a `Steering` per strength, runs the `Evaluator` unsteered, steered and (optionally) with a
random direction of the same norm, and returns the JSON-able report.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch

from xsteer.directions import Direction, DirectionSet
from xsteer.errors import DimensionMismatchError, XSteerError
from xsteer.proving_ground.evaluate import Evaluator, save_grid
from xsteer.steer import Gate, Steering

HEADLINE = ("asr", "fidelity", "fid")


def random_like(d: Direction | DirectionSet, seed: int = 0) -> Direction:
    """A random direction in the same space with the norm and category of ``d`` (its global
    member for a set)."""
    ref = d if isinstance(d, Direction) else (d["global"] if "global" in d else
                                              d[d.categories[0]])
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(ref.dim, generator=g)
    return Direction(v / v.norm() * ref.norm, model_id=ref.model_id, site=ref.site,
                     category=ref.category, origin="random", method=f"random(seed={seed})")


def make_steering(d: Direction | DirectionSet, mode: str, strength: float,
                  categories: list[str] | None, benign_pooled: torch.Tensor | None,
                  quantile: float = 0.95) -> Steering:
    """A `Steering`; ``gated`` mode calibrates one gate per category on benign pooled states."""
    gates: dict[str, Gate] = {}
    if mode in ("gated", "clamp"):
        if benign_pooled is None:
            raise XSteerError(f"mode {mode!r} needs benign embeddings to calibrate its gates")
        members = {d.category: d} if isinstance(d, Direction) else dict(d.directions)
        gates = {c: Gate.calibrate(benign_pooled, m.vector, quantile=quantile, category=c)
                 for c, m in members.items()}
    return Steering(d, mode=mode, strength=strength, gates=gates, categories=categories)


def run_eval(ev: Evaluator, directions: Direction | DirectionSet, *, mode: str = "additive",
             strengths: list[float], categories: list[str] | None = None,
             random_baseline: bool = True, benign_pooled: torch.Tensor | None = None,
             grids: Path | None = None, label: str = "direction") -> dict[str, Any]:
    """Unsteered vs steered (each strength) vs random: the report dict of the eval command."""
    if not strengths:
        raise XSteerError("give at least one steering strength")
    dim = ev.gen.config.cross_attention_dim
    if directions.dim != dim:
        raise DimensionMismatchError("direction", directions.dim, "generator conditioning", dim)
    t0 = time.monotonic()
    runs: list[dict[str, Any]] = []

    def one(name: str, steering: Steering | None, strength: float) -> dict[str, Any]:
        judged, u, b = ev.run(steering)
        row = {"name": name, "mode": mode if steering else "none", "strength": strength,
               **judged.to_dict()}
        if grids is not None:
            row["grid"] = str(save_grid(grids / f"{name}_s{strength:g}.png", u, b))
        runs.append(row)
        return row

    before = one("none", None, 0.0)
    after: dict[str, Any] = before
    for s in strengths:
        after = one(label, make_steering(directions, mode, s, categories, benign_pooled), s)
    if random_baseline:
        for s in strengths:
            one("random", make_steering(random_like(directions), mode, s, None, benign_pooled), s)
    report: dict[str, Any] = {f"{k}_before": before[k] for k in HEADLINE}
    report.update({f"{k}_after": after[k] for k in HEADLINE})
    report["per_category_before"] = before["per_category_asr"]
    report["per_category_after"] = after["per_category_asr"]
    report["headline_strength"] = strengths[-1]
    report["runs"] = runs
    report["grids"] = [r["grid"] for r in runs if "grid" in r]
    report["setup"] = {
        "mode": mode, "strengths": strengths, "categories": categories,
        "direction": _describe(directions), "prompts": ev.prompts.source,
        "n_unsafe": len(ev.prompts.unsafe), "n_benign": len(ev.prompts.benign),
        "sampler": f"DDIM {ev.steps} steps, guidance {ev.guidance}", "seed": ev.seed,
        "generator": ev.gen.config.to_dict(), "seconds": time.monotonic() - t0,
        "hardware": f"{platform.machine()} CPU, torch threads {torch.get_num_threads()}",
    }
    return report


def _describe(d: Direction | DirectionSet) -> dict[str, Any]:
    if isinstance(d, Direction):
        return {"kind": "direction", "model_id": d.model_id, "site": d.site, "origin": d.origin,
                "category": d.category, "norm": d.norm}
    return {"kind": "direction_set", "categories": d.categories,
            "members": {c: _describe(d[c]) for c in d.categories}}
