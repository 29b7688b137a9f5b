"""Steering: pure operators on token states, benign-calibrated gates, and the `Steering` spec.

Also here, imported by module (they pull in scipy / scikit-learn): `xsteer.steer.conformal` (gate
thresholds with a false-trigger guarantee) and `xsteer.steer.probe` (`SourceProbe`, the source-side
per-category classifier).

What does not live here: hooking a diffusers pipeline (`xsteer.pipelines.Steerer`), the
source-side gate that the transport study measures (``experiments/source_gate.py``), and
`masked_mean`, which is re-exported here from `xsteer.tensors`."""

from xsteer.steer.gate import Gate, empirical_quantile, load_gates
from xsteer.steer.operators import (
    additive,
    clamp_along,
    harm_score,
    project_out,
    project_out_subspace,
)
from xsteer.steer.steering import MODES, Steering
from xsteer.tensors import masked_mean

__all__ = [
    "MODES",
    "Gate",
    "Steering",
    "additive",
    "clamp_along",
    "empirical_quantile",
    "harm_score",
    "load_gates",
    "masked_mean",
    "project_out",
    "project_out_subspace",
]
