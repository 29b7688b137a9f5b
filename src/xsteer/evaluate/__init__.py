"""Representation-level evaluation (CPU, real models): does a direction make unsafe prompts look
safe to a held-out judge, at what cost to benign and paired-safe content."""

from xsteer.evaluate.metrics import auroc, cross_fit_flags, mean_cosine, pair_folds, rate
from xsteer.evaluate.representation import (
    EvalData,
    calibrate_gates,
    direction_cosines,
    evaluate_direction,
)

__all__ = [
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
