"""Alignment: benign-only maps from a source model's space to a target's, transport and calibration.

>>> import torch
>>> from xsteer.align import make_map
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(50, 5, generator=g); W = torch.randn(5, 3, generator=g)
>>> m = make_map("ridge", alphas=[1e-8]).fit(X, X @ W)
>>> bool(torch.allclose(m.transport(torch.ones(5)), torch.ones(5) @ W, atol=1e-4))
True
"""

from xsteer.align.alignment import Alignment, learned_summary
from xsteer.align.base import (
    AlignmentConfigError,
    AlignmentMap,
    NotFittedError,
    score_predictions,
)
from xsteer.align.calibration import (
    CALIBRATIONS,
    benign_spread,
    benign_stats,
    calibrate,
    calibrate_direction,
)
from xsteer.align.cca import CCAMap
from xsteer.align.linear import LinearMap, ProcrustesMap, RidgeMap
from xsteer.align.mlp import MLPMap
from xsteer.align.registry import MAPS, UnknownMapError, get_map_class, make_map

__all__ = [
    "CALIBRATIONS",
    "MAPS",
    "Alignment",
    "AlignmentConfigError",
    "AlignmentMap",
    "CCAMap",
    "LinearMap",
    "MLPMap",
    "NotFittedError",
    "ProcrustesMap",
    "RidgeMap",
    "UnknownMapError",
    "benign_spread",
    "benign_stats",
    "calibrate",
    "calibrate_direction",
    "get_map_class",
    "learned_summary",
    "make_map",
    "score_predictions",
]
