"""Evaluation, at two levels, sharing one metrics module.

- `xsteer.evaluate.representation` (names re-exported here): representation level, on CPU with
  real encoders — does a direction make unsafe prompts look safe to a held-out judge, at what
  cost to benign and paired-safe content.
- `xsteer.evaluate.harness`: sweeps on real generators (``xsteer sweep``, ``xsteer report``):
  benchmarks, image judges, steering methods, records and reports.
- `xsteer.evaluate.metrics`: the metrics both use (cosines, AUROC, cross-fitted judges, ASR,
  CLIP score, FID, image distances).

What does not live here: steering itself (`xsteer.steer`, `xsteer.pipelines`) and the proving
ground's own evaluation (`xsteer.proving_ground`).
"""

from xsteer.evaluate.metrics import auroc, cross_fit_flags, mean_cosine, pair_folds, rate
from xsteer.evaluate.representation import (
    DirectionEvaluation,
    EvalData,
    calibrate_gates,
    direction_cosines,
    evaluate_direction,
)

__all__ = [
    "DirectionEvaluation",
    "EvalData",
    "auroc",
    "calibrate_gates",
    "cross_fit_flags",
    "direction_cosines",
    "evaluate_direction",
    "mean_cosine",
    "pair_folds",
    "rate",
]
