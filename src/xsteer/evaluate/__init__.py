"""Evaluation, at two levels, sharing one metrics module.

- `xsteer.evaluate.representation` (names re-exported here): representation level, on CPU with
  real encoders — does a direction make unsafe prompts look safe to a held-out judge, at what
  cost to benign and paired-safe content.
- `xsteer.evaluate.harness`: sweeps on real generators (``xsteer sweep``, ``xsteer report``):
  benchmarks, image judges, steering methods, records and reports.
- `xsteer.evaluate.metrics`: the metrics both use (cosines, AUROC, cross-fitted judges, ASR,
  CLIP score, FID, image distances).

What does not live here: steering itself (`xsteer.steer`, `xsteer.pipelines`) and the proving
ground's world and judge (`xsteer.proving_ground`; the harness drives its judge like any other).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xsteer.evaluate.metrics import auroc, cross_fit_flags, mean_cosine, pair_folds, rate
    from xsteer.evaluate.representation import (
        DirectionEvaluation,
        EvalData,
        calibrate_gates,
        direction_cosines,
        evaluate_direction,
    )

# Imported on first use, so that ``xsteer sweep --help`` (which imports the harness package
# below this one) does not import torch.
_EXPORTS = {
    "auroc": "metrics", "cross_fit_flags": "metrics", "mean_cosine": "metrics",
    "pair_folds": "metrics", "rate": "metrics",
    "DirectionEvaluation": "representation", "EvalData": "representation",
    "calibrate_gates": "representation", "direction_cosines": "representation",
    "evaluate_direction": "representation",
}
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
