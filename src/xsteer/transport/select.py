"""Choosing the source layer (and pooling) for transport by a benign-only criterion.

No unsafe text and no target-side label is allowed here, so a site is scored by how well a map
fitted on some benign anchors predicts the target states of *other* benign anchors: held-out R²
(or cross-model retrieval top-1) of the given map. A site whose benign states the target can be
read from is the best bet for carrying a direction; whether that bet pays is then measured (and
reported) against the native direction, never used to choose.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> Y = torch.randn(200, 3, generator=g)
>>> feats = {1: torch.randn(200, 3, generator=g), 2: Y @ torch.randn(3, 3, generator=g)}
>>> best, scores = select_site(feats, Y)
>>> best, scores[2] > scores[1]
(2, True)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

import torch

from xsteer.align.base import AlignmentMap, check_xy
from xsteer.align.linear import RidgeMap
from xsteer.errors import EmptyDataError, XSteerError

K = TypeVar("K", bound=Hashable)
CRITERIA = ("r2", "top1")


def heldout_fidelity(X: Any, Y: Any, m: AlignmentMap | None = None, holdout: float = 0.2,
                     seed: int = 0) -> dict[str, float]:
    """Fit a clone of ``m`` (ridge by default) on a seeded share of benign rows; score the rest."""
    Xt, Yt = check_xy(X, Y, min_rows=5)
    n = Xt.shape[0]
    n_hold = max(2, round(holdout * n))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    te, tr = perm[:n_hold], perm[n_hold:]
    template = RidgeMap() if m is None else m
    return template.clone().fit(Xt[tr], Yt[tr]).score(Xt[te], Yt[te])


def select_site(features: Mapping[K, Any], Y: Any, m: AlignmentMap | None = None,
                criterion: str = "r2", holdout: float = 0.2,
                seed: int = 0) -> tuple[K, dict[K, float]]:
    """The site (layer, or ``(layer, pooling)``) whose benign features best predict ``Y``.

    ``features`` maps each candidate site to the source features of the SAME benign prompts as
    the rows of ``Y``. Returns the best site and every site's held-out score; ties go to the
    first candidate listed.
    """
    if criterion not in CRITERIA:
        raise XSteerError(f"unknown site criterion {criterion!r}; known: {', '.join(CRITERIA)}")
    if not features:
        raise EmptyDataError("select_site needs at least one candidate site")
    scores = {site: heldout_fidelity(X, Y, m, holdout, seed)[criterion]
              for site, X in features.items()}
    best = max(scores, key=lambda s: (scores[s], -list(scores).index(s)))
    return best, scores
