"""Steering: pure operators on token states, benign-calibrated gates, and the `Steering` spec."""

from xsteer.steer.gate import Gate
from xsteer.steer.operators import (
    additive,
    clamp_along,
    harm_score,
    project_out,
    project_out_subspace,
)
from xsteer.steer.steering import MODES, Steering, masked_mean

__all__ = [
    "MODES",
    "Gate",
    "Steering",
    "additive",
    "clamp_along",
    "harm_score",
    "masked_mean",
    "project_out",
    "project_out_subspace",
]
