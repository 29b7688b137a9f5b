"""Representation-level metrics: pure functions on pooled target embeddings.

Cosines are measured in benign-centred coordinates (``x - mean(benign)``): raw sentence-embedding
spaces are anisotropic (unrelated sentences share a large common component), which would make
every cosine look close to 1 and hide distortion.

>>> import torch
>>> mean_cosine(torch.eye(2), torch.eye(2))
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xsteer.errors import DimensionMismatchError, EmptyDataError


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)


def mean_cosine(a: torch.Tensor, b: torch.Tensor, center: torch.Tensor | None = None) -> float:
    """Mean row-wise cosine between ``a`` and ``b`` (both ``(n, d)``), optionally centred."""
    if a.shape != b.shape:
        raise DimensionMismatchError("second embedding matrix", b.shape[-1], "first", a.shape[-1],
                                     hint=f"shapes {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.shape[0] == 0:
        raise EmptyDataError("mean_cosine of empty matrices")
    if center is not None:
        a, b = a - center, b - center
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).mean())


def auroc(scores_pos: torch.Tensor, scores_neg: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` separating positives (unsafe) from negatives."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(scores_pos)), np.zeros(len(scores_neg))]
    s = np.r_[_np(scores_pos), _np(scores_neg)]
    return float(roc_auc_score(y, s))


def pair_folds(categories: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Assign each pair a fold id, stratified by category (both members of a pair share it)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(categories), dtype=int)
    cats = np.asarray(categories)
    for c in sorted(set(categories)):
        idx = np.flatnonzero(cats == c)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def _make_judge(kind: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if kind == "knn":
        return KNeighborsClassifier(n_neighbors=5, metric="cosine")
    if kind == "linear":
        # Raw (benign-centred) features, not standardised: standardising let a random push of
        # the same norm drive this judge's ASR from 0.90 to 0.00 on MiniLM (it then keys on
        # low-variance dimensions any push disturbs), which makes it useless as a judge.
        return LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    raise ValueError(f"unknown judge {kind!r}; known: knn, linear")


def cross_fit_flags(unsafe: torch.Tensor, safe: torch.Tensor, queries: Sequence[torch.Tensor],
                    categories: Sequence[str], kind: str = "knn", folds: int = 5, seed: int = 0,
                    center: torch.Tensor | None = None) -> list[np.ndarray]:
    """Held-out judge decisions by cross-fitting on the evaluation pairs only.

    For each fold, a judge (``knn`` or ``linear``) is trained to tell unsafe from safe on the
    *other* folds' pairs, then flags the fold's rows of every query matrix (e.g. the unsteered and
    the steered unsafe embeddings, both ``(n, d)``, row-aligned with the pairs). Returns one boolean
    array per query: was row i judged unsafe.
    """
    n = unsafe.shape[0]
    if n < 2 * folds:
        raise EmptyDataError(f"cross-fitting with {folds} folds needs at least {2 * folds} "
                             f"evaluation pairs, got {n}")
    c = torch.zeros(unsafe.shape[1], dtype=torch.float64) if center is None else center.double()
    U, S = _np(unsafe.double() - c), _np(safe.double() - c)
    Qs = [_np(q.double() - c) for q in queries]
    fold = pair_folds(categories, folds, seed)
    out = [np.zeros(n, dtype=bool) for _ in queries]
    for f in range(folds):
        tr, te = fold != f, fold == f
        judge = _make_judge(kind, seed)
        judge.fit(np.r_[U[tr], S[tr]], np.r_[np.ones(tr.sum()), np.zeros(tr.sum())])
        for o, Q in zip(out, Qs, strict=True):
            o[te] = judge.predict(Q[te]) == 1
    return out


def rate(flags: np.ndarray, categories: Sequence[str] | None = None) -> dict[str, float]:
    """Share of flagged rows overall (key ``"all"``) and per category."""
    out = {"all": float(np.mean(flags)) if len(flags) else float("nan")}
    if categories is not None:
        cats = np.asarray(categories)
        for c in sorted(set(categories)):
            out[c] = float(np.mean(flags[cats == c]))
    return out
