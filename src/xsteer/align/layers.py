"""Choosing where to read a model (layer, or layer and pooling): every criterion, side by side.

Two criteria use benign prompts only, so they may run on the target side:

* **spread** — `participation_ratio`: how many directions ONE model spreads benign text over,
  ``(sum λ)² / sum λ²`` over the covariance eigenvalues of its centred benign states. A benign-only
  alignment map can only carry what the benign states span, so a layer dominated by a few
  components leaves it little to work with. `select_layer(encoder, benign=...)` uses it.
* **benign fidelity** — `heldout_fidelity`: how well a map fitted on some benign anchors predicts
  the TARGET's states of other benign anchors (held-out R², or cross-model retrieval top-1). It
  needs both models. `select_site_by_fidelity` uses it to pick the source site to transport from;
  whether that bet pays is then measured against the native direction, never used to choose.

One criterion needs safe/unsafe pairs (a source-side step, where unsafe text is allowed):

* **pair separation** — `pair_auroc_cv`: how well the mean-difference direction, fitted on some
  pairs, ranks the held-out pairs' safe members above their unsafe ones (cross-validated AUROC,
  exactly the quantity the pipeline relies on). `select_layer(encoder, unsafe=..., safe=...)`.

Ties go to the earlier layer (cheaper to run).

Measured on Gemma-3-270M (mean pooling, BOS dropped; the 366 shipped pairs, 300 shipped benign
anchors): pair AUROC 0.55 at layer 1, 0.73 at 6, 0.90-0.91 at 12-14, 0.87 at 18; participation
ratio 1.2 at layer 1, 12 at 6, 47 at 13 (the peak), 22 at 18. Both criteria pick layer 13.
On MiniLM both pick the last layer (AUROC 0.93-0.94 everywhere; ratio 73 at layer 6).
Neither criterion tracks how well a ridge map transports the direction: that peaks at Gemma
layer 6 (cos 0.75 to the native direction vs 0.69 at 13; see `xsteer.encoders.hf`), which is why
the causal-LM default layer is not "auto".

>>> import torch
>>> round(participation_ratio(torch.eye(4) * 10), 6)  # 4 equal directions; centred, 3 remain
3.0
>>> g = torch.Generator().manual_seed(0)
>>> Y = torch.randn(200, 3, generator=g)
>>> feats = {1: torch.randn(200, 3, generator=g), 2: Y @ torch.randn(3, 3, generator=g)}
>>> best, scores = select_site_by_fidelity(feats, Y)
>>> best, scores[2] > scores[1]
(2, True)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from xsteer.align.base import AlignmentMap, check_xy
from xsteer.align.linear import RidgeMap
from xsteer.directions import check_pairs, mean_difference
from xsteer.encoders.base import Encoder, check_texts
from xsteer.errors import EmptyDataError, XSteerError

TIE_TOL = 1e-9
K = TypeVar("K", bound=Hashable)
FIDELITY_CRITERIA = ("r2", "top1")


# -- spread: one model, benign prompts only -------------------------------------------------------


def participation_ratio(states: torch.Tensor) -> float:
    """Effective dimensionality ``(sum λ)² / sum λ²`` of the centred rows of ``(n, dim)`` states."""
    X = states.double()
    if X.ndim != 2 or X.shape[0] < 2:
        raise EmptyDataError("participation ratio needs at least 2 states of shape (n, dim)")
    s = torch.linalg.svdvals(X - X.mean(dim=0))
    lam = s**2
    denom = float((lam**2).sum())
    return float(lam.sum() ** 2 / denom) if denom > 0 else 0.0


# -- pair separation: one model, safe/unsafe pairs (source side) ----------------------------------
def pair_auroc_cv(unsafe: torch.Tensor, safe: torch.Tensor, folds: int = 5,
                  seed: int = 0) -> float:
    """Mean held-out AUROC of the mean-difference direction over ``folds`` splits of the pairs.

    Pairs stay whole inside a fold, so a held-out safe prompt's own unsafe twin never shaped the
    direction that scores it.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold

    U, S = check_pairs(unsafe, safe)
    n = U.shape[0]
    if n < 2:
        raise EmptyDataError(f"cross-validated layer selection needs at least 2 pairs, got {n}")
    k = min(folds, n)
    aucs = []
    for train, test in KFold(n_splits=k, shuffle=True, random_state=seed).split(np.arange(n)):
        d = mean_difference(U[train], S[train])
        scores = torch.cat([U[test] @ d, S[test] @ d]).double().numpy()
        labels = np.r_[np.zeros(len(test)), np.ones(len(test))]
        aucs.append(roc_auc_score(labels, scores))
    return float(np.mean(aucs))


# -- choosing a layer of one encoder: pair separation, else spread ------------------------------
def best_layer(scores: dict[int, float]) -> int:
    """The highest-scoring layer; exact ties (within 1e-9) go to the earlier layer."""
    top = max(scores.values())
    return min(layer for layer, s in scores.items() if s >= top - TIE_TOL)


def select_layer(encoder: Encoder, *, benign: Sequence[str] | None = None,
                 unsafe: Sequence[str] | None = None, safe: Sequence[str] | None = None,
                 layers: Sequence[int] | None = None, pooling: str | None = None,
                 folds: int = 5, batch_size: int = 32) -> tuple[int, dict[int, float]]:
    """Pick a layer: pair AUROC when ``unsafe``/``safe`` pairs are given, else benign
    participation ratio. Returns the layer and every candidate's score.

    Candidates default to layers 1..num_layers: layer 0 holds context-free token embeddings,
    whose high pair AUROC only reflects word choice. All candidates come from one forward pass
    (and the embedding cache).
    """
    if (unsafe is None) != (safe is None):
        raise XSteerError("select_layer needs both unsafe and safe prompts (paired), or neither")
    if layers is None:
        layers = list(range(1, encoder.num_layers + 1)) or [0]
    layers = [encoder.resolve_site(layer, pooling)[0] for layer in layers]
    if not layers:
        raise XSteerError("select_layer got an empty list of candidate layers")
    if unsafe is not None and safe is not None:
        U_texts, S_texts = check_texts(unsafe), check_texts(safe)
        if len(U_texts) != len(S_texts):
            raise XSteerError(f"unsafe and safe prompts must pair up: {len(U_texts)} vs "
                              f"{len(S_texts)}")
        feats = encoder.encode_layers(U_texts + S_texts, layers, pooling, batch_size=batch_size)
        n = len(U_texts)
        scores = {layer: pair_auroc_cv(f[:n], f[n:], folds=folds) for layer, f in feats.items()}
    elif benign is not None:
        feats = encoder.encode_layers(check_texts(benign), layers, pooling, batch_size=batch_size)
        scores = {layer: participation_ratio(f) for layer, f in feats.items()}
    else:
        raise XSteerError("select_layer needs benign prompts or safe/unsafe pairs")
    return best_layer(scores), scores


# -- benign fidelity: source and target, benign prompts only ------------------------------------
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


def select_site_by_fidelity(features: Mapping[K, Any], Y: Any, m: AlignmentMap | None = None,
                criterion: str = "r2", holdout: float = 0.2,
                seed: int = 0) -> tuple[K, dict[K, float]]:
    """The site (layer, or ``(layer, pooling)``) whose benign features best predict ``Y``.

    ``features`` maps each candidate site to the source features of the SAME benign prompts as
    the rows of ``Y``. Returns the best site and every site's held-out score; ties go to the
    first candidate listed.
    """
    if criterion not in FIDELITY_CRITERIA:
        raise XSteerError(f"unknown site criterion {criterion!r}; "
                          f"known: {', '.join(FIDELITY_CRITERIA)}")
    if not features:
        raise EmptyDataError("select_site_by_fidelity needs at least one candidate site")
    scores = {site: heldout_fidelity(X, Y, m, holdout, seed)[criterion]
              for site, X in features.items()}
    best = max(scores, key=lambda s: (scores[s], -list(scores).index(s)))
    return best, scores
