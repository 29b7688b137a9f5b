"""Alignment: benign-only maps from a source model's space to a target's, transport and calibration.

What lives here: every alignment map behind one registry (``MAPS``, `make_map`: ridge,
Procrustes, CCA, MLP, whitened ridge, direction-aware ridge, relative, anchor kNN, and the
reference paper's SVD alignment as reduced-rank ridge regression, ``svd``), the
`Alignment` artifact whose ``transport`` carries a direction into the target space, magnitude
calibration from benign statistics, and the layer/site criteria (`xsteer.align.layers`).
What does not: estimating directions (`xsteer.directions`), reading models (`xsteer.encoders`),
steering (`xsteer.steer`).

>>> import torch
>>> from xsteer.align import make_map
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(50, 5, generator=g); W = torch.randn(5, 3, generator=g)
>>> m = make_map("ridge", alphas=[1e-8]).fit(X, X @ W)
>>> bool(torch.allclose(m.transport(torch.ones(5)), torch.ones(5) @ W, atol=1e-4))
True
"""

from xsteer.align.alignment import Alignment, learned_summary
from xsteer.align.anchors import AnchorMap, transport_pairs
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
from xsteer.align.ridge_variants import DirectionAwareMap, RelativeMap, WhitenRidgeMap
from xsteer.align.svd import SVDMap

__all__ = [
    "CALIBRATIONS",
    "MAPS",
    "Alignment",
    "AlignmentConfigError",
    "AlignmentMap",
    "AnchorMap",
    "CCAMap",
    "DirectionAwareMap",
    "LinearMap",
    "MLPMap",
    "NotFittedError",
    "ProcrustesMap",
    "RelativeMap",
    "RidgeMap",
    "SVDMap",
    "UnknownMapError",
    "WhitenRidgeMap",
    "benign_spread",
    "benign_stats",
    "calibrate",
    "calibrate_direction",
    "get_map_class",
    "learned_summary",
    "make_map",
    "score_predictions",
    "transport_pairs",
]
