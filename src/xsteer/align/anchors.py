"""Non-parametric transport through benign anchors: kNN regression and anchor contrasts.

`AnchorMap` keeps the benign anchors' centred source and target states. It predicts a target
point as the mean target state of the ``k`` anchors nearest in source space (cosine on centred
states), and carries a direction ``v`` by *contrast*: rank anchors by their source projection on
``v`` and return a weighted difference of their target states —

* ``weighting="top"``: mean target state of the top ``quantile`` share of anchors minus that of the
  bottom share (the benign anchors that sit furthest on the safe vs the near-unsafe side);
* ``weighting="linear"``: ``sum_j z_j y_j / n`` with ``z_j`` the standardised projection, i.e. the
  source-target cross-covariance ``Y^T X v`` (the large-penalty limit of ridge).

The target side only ever sees benign anchors; the direction comes from the source.
`transport_pairs` carries a pair set's difference structure through any map:
``mean_i f(s(safe_i)) - f(s(unsafe_i))``; with `AnchorMap` this is "kNN in source space to
benign anchor pairs", with a linear map it equals transporting the mean difference.

>>> import torch
>>> X = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]]); Y = 2 * X
>>> m = AnchorMap(k=1, quantile=0.25).fit(X, Y)
>>> m.transport(torch.tensor([1.0, 0])).tolist()
[4.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from xsteer.align.base import AlignmentConfigError, AlignmentMap, as_matrix, need_shape
from xsteer.errors import DimensionMismatchError

WEIGHTINGS = ("top", "linear")
_CHUNK = 1024


class AnchorMap(AlignmentMap):
    """kNN regression for points, anchor contrast for directions (see the module docstring).

    Args:
        k: neighbours averaged by `transform`.
        quantile: share of anchors on each side of a ``top`` contrast (0 < q <= 0.5).
        weighting: ``"top"`` or ``"linear"``.

    Learned: ``X_`` ``(n, ds)`` and ``Y_`` ``(n, dt)``, the benign-centred anchors (float32).
    """

    name = "anchor-knn"

    def __init__(self, k: int = 10, quantile: float = 0.1, weighting: str = "top") -> None:
        self.k = k
        self.quantile = quantile
        self.weighting = weighting

    def params_(self) -> dict[str, Any]:
        return {"k": self.k, "quantile": self.quantile, "weighting": self.weighting}

    def _check_params(self, n: int) -> None:
        if self.weighting not in WEIGHTINGS:
            raise AlignmentConfigError(f"anchor weighting must be one of {WEIGHTINGS}, "
                                       f"got {self.weighting!r}")
        if not 1 <= int(self.k) <= n:
            raise AlignmentConfigError(f"anchor k={self.k} must be in 1..{n} (the anchor count)")
        if not 0.0 < float(self.quantile) <= 0.5:
            raise AlignmentConfigError(f"anchor quantile must be in (0, 0.5], got {self.quantile}")

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        self._check_params(Xc.shape[0])
        self.X_ = Xc.to(torch.float32)
        self.Y_ = Yc.to(torch.float32)

    def _predict(self, X: torch.Tensor) -> torch.Tensor:
        keys = torch.nn.functional.normalize(self.X_, dim=1)
        k = min(int(self.k), self.X_.shape[0])
        out = []
        for i in range(0, X.shape[0], _CHUNK):
            q = torch.nn.functional.normalize(X[i:i + _CHUNK] - self.mu_x_, dim=1)
            idx = (q @ keys.T).topk(k, dim=1).indices
            out.append(self.Y_[idx].mean(dim=1))
        return torch.cat(out) + self.mu_y_

    def _transport(self, v: torch.Tensor) -> torch.Tensor:
        z = self.X_ @ v
        if self.weighting == "linear":
            z = z / z.std().clamp_min(1e-12)
            return (z @ self.Y_) / self.X_.shape[0]
        m = max(1, round(float(self.quantile) * self.X_.shape[0]))
        order = torch.argsort(z)
        return self.Y_[order[-m:]].mean(0) - self.Y_[order[:m]].mean(0)

    def state_dict_(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict_(), "X": self.X_, "Y": self.Y_}

    def _load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        super()._load_state(tensors)
        X = tensors.get("X")
        n = 0 if X is None else int(X.shape[0])
        self.X_ = need_shape(tensors, "X", self.name, (n, self.in_dim))
        self.Y_ = need_shape(tensors, "Y", self.name, (n, self.out_dim))


def transport_pairs(m: AlignmentMap, unsafe: Any, safe: Any) -> torch.Tensor:
    """Carry paired source states' difference structure: ``mean_i m(safe_i) - m(unsafe_i)``.

    ``unsafe``/``safe`` are SOURCE features ``(n, ds)`` of the same pairs, row by row. The map
    only ever saw benign anchors; the pairs stay on the source side. Points unsafe→safe.
    """
    U = as_matrix(unsafe, "source unsafe features").to(torch.float32)
    S = as_matrix(safe, "source safe features").to(torch.float32)
    if U.shape != S.shape:
        raise DimensionMismatchError("safe features", S.shape[0], "unsafe features", U.shape[0],
                                     hint="pairs must be row-aligned")
    return (m.transform(S) - m.transform(U)).mean(0)
