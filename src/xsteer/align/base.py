"""The `AlignmentMap` contract shared by every source→target map, and its held-out score.

A map is fitted on row-aligned features of the same BENIGN prompts read by two models: ``X``
``(n, ds)`` from the source, ``Y`` ``(n, dt)`` from the target. Maps follow scikit-learn's shape:
``__init__`` stores hyperparameters only, ``fit`` returns ``self``, learned state ends in ``_``.
Every map centres both sides by their benign means (``mu_x_``, ``mu_y_``) before fitting, because
raw LM states are dominated by a large common offset: mean-pooled Gemma-3-270M states of unrelated
sentences have cosine ~0.99, norms ~3.4k at layer 6 and ~11k at layer 12, and the top principal
component holds 23-28% of the variance.

Two things a map offers beyond prediction:

* ``transform(X)``: predicted target features (uncentred), used to score the fit.
* ``transport(v)``: carries a source *direction* (a difference of features, not a point) into
  the target space; for a linear map this is the linear part ``W v`` (the offsets cancel).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch

from xsteer.errors import (
    ArtifactError,
    DimensionMismatchError,
    EmptyDataError,
    NonFiniteError,
    XSteerError,
)

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - python 3.10
    from typing_extensions import Self

M = TypeVar("M", bound="AlignmentMap")


class NotFittedError(XSteerError, RuntimeError):
    """A map was used before ``fit`` (or loaded without its learned state)."""


class AlignmentConfigError(XSteerError, ValueError):
    """A map's hyperparameters are invalid or do not fit the data (e.g. rank above what n allows)."""


def as_matrix(X: Any, what: str) -> torch.Tensor:
    """Validate a feature matrix: 2-D, non-empty, finite. Returns a float64 CPU copy.

    Maps fit in float64 because benign LM states can have norms in the thousands (Gemma) and the
    normal equations lose float32 precision there; learned state is stored as float32.
    """
    t = torch.as_tensor(X).detach().to("cpu", torch.float64)
    if t.ndim != 2:
        raise DimensionMismatchError(f"{what} rank", t.ndim, "a feature matrix (n, dim)", 2,
                                     hint=f"shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise EmptyDataError(f"{what}: empty feature matrix of shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise NonFiniteError(f"{what} hold NaN or inf values")
    return t


def check_xy(X: Any, Y: Any, min_rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate row-aligned source/target features (same n, at least ``min_rows`` rows)."""
    Xt = as_matrix(X, "source features")
    Yt = as_matrix(Y, "target features")
    if Xt.shape[0] != Yt.shape[0]:
        raise DimensionMismatchError("target row count", Yt.shape[0], "source row count",
                                     Xt.shape[0], hint="X and Y must be the same prompts, row by row")
    if Xt.shape[0] < min_rows:
        raise EmptyDataError(f"an alignment needs at least {min_rows} benign prompts, got {Xt.shape[0]}")
    return Xt, Yt


def score_predictions(Y_pred: torch.Tensor, Y: torch.Tensor, mu_y: torch.Tensor) -> dict[str, float]:
    """Held-out fidelity of predicted target features.

    ``r2``: variance-weighted R² (``1 - SSE / SST``, SST about the held-out mean; 0 for predicting
    the mean, 1 for a perfect map). ``top1``: cross-model retrieval, the share of rows whose
    prediction is closest (cosine, after removing the benign mean ``mu_y``) to its own target row
    among all target rows. ``n``: the number of rows scored.
    """
    P = Y_pred.to(torch.float64)
    T = Y.to(torch.float64)
    sse = float(((T - P) ** 2).sum())
    sst = float(((T - T.mean(dim=0)) ** 2).sum())
    r2 = 1.0 - sse / sst if sst > 0 else float("nan")
    mu = mu_y.to(torch.float64)
    Pc = torch.nn.functional.normalize(P - mu, dim=1)
    Tc = torch.nn.functional.normalize(T - mu, dim=1)
    sims = Pc @ Tc.T
    top1 = float((sims.argmax(dim=1) == torch.arange(len(T))).to(torch.float64).mean())
    return {"r2": r2, "top1": top1, "n": float(len(T))}


class AlignmentMap(ABC):
    """A map from source features to target features, fitted on benign prompts only."""

    name: ClassVar[str]
    mu_x_: torch.Tensor
    mu_y_: torch.Tensor

    # -- the estimator protocol ---------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> Self:
        """Fit on row-aligned benign features ``X`` ``(n, ds)`` and ``Y`` ``(n, dt)``; returns self."""
        Xt, Yt = check_xy(X, Y)
        mu_x, mu_y = Xt.mean(dim=0), Yt.mean(dim=0)
        self._fit_centered(Xt - mu_x, Yt - mu_y, mu_x, mu_y)
        self.mu_x_ = mu_x.to(torch.float32)
        self.mu_y_ = mu_y.to(torch.float32)
        return self

    @abstractmethod
    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        """Learn from benign-centred float64 features (means given for maps that need them)."""

    @abstractmethod
    def _predict(self, X: torch.Tensor) -> torch.Tensor:
        """Predict uncentred target features from validated float32 source features."""

    @abstractmethod
    def _transport(self, v: torch.Tensor) -> torch.Tensor:
        """Carry one validated float32 source direction ``(ds,)`` to the target ``(dt,)``."""

    def transform(self, X: Any) -> torch.Tensor:
        """Predicted target features ``(n, dt)`` for source features ``(n, ds)`` (or one ``(ds,)``)."""
        self._check_fitted()
        t = torch.as_tensor(X).detach().to("cpu", torch.float32)
        single = t.ndim == 1
        Xt = as_matrix(t.unsqueeze(0) if single else t, "source features").to(torch.float32)
        self._check_in_dim(Xt.shape[1], "source features")
        out = self._predict(Xt)
        return out[0] if single else out

    def transport(self, v: Any) -> torch.Tensor:
        """Map a source direction ``(ds,)`` (a difference of features) to a target direction ``(dt,)``."""
        self._check_fitted()
        t = torch.as_tensor(v).detach().to("cpu", torch.float32)
        if t.ndim != 1:
            raise DimensionMismatchError("direction rank", t.ndim, "transport (one vector)", 1)
        if not torch.isfinite(t).all():
            raise NonFiniteError("direction holds NaN or inf values")
        self._check_in_dim(t.numel(), "direction")
        return self._transport(t)

    def score(self, X: Any, Y: Any) -> dict[str, float]:
        """Held-out R² and retrieval top-1 of this map on row-aligned ``X``, ``Y`` (see `score_predictions`)."""
        self._check_fitted()
        Xt, Yt = check_xy(X, Y)
        if Yt.shape[1] != self.out_dim:
            raise DimensionMismatchError("target features", Yt.shape[1], "alignment output",
                                         self.out_dim)
        return score_predictions(self.transform(Xt.to(torch.float32)), Yt, self.mu_y_)

    # -- dims and checks ------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "mu_x_") and hasattr(self, "mu_y_")

    @property
    def in_dim(self) -> int:
        self._check_fitted()
        return int(self.mu_x_.numel())

    @property
    def out_dim(self) -> int:
        self._check_fitted()
        return int(self.mu_y_.numel())

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(X, Y) first")

    def _check_in_dim(self, got: int, what: str) -> None:
        if got != self.in_dim:
            raise DimensionMismatchError(what, got, "alignment input", self.in_dim)

    # -- persistence ------------------------------------------------------------------------------
    @abstractmethod
    def params_(self) -> dict[str, Any]:
        """JSON-able hyperparameters: ``type(self)(**m.params_())`` is an unfitted clone."""

    def state_dict_(self) -> dict[str, torch.Tensor]:
        """Learned tensors (float32, CPU). Subclasses add theirs to the benign means."""
        self._check_fitted()
        return {"mu_x": self.mu_x_, "mu_y": self.mu_y_}

    def _load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.mu_x_ = _need(tensors, "mu_x", type(self).name).to(torch.float32)
        self.mu_y_ = _need(tensors, "mu_y", type(self).name).to(torch.float32)
        if self.mu_x_.ndim != 1 or self.mu_y_.ndim != 1:
            raise ArtifactError(f"{type(self).name} map: benign means must be vectors")

    @classmethod
    def from_state(cls, params: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Self:
        """Rebuild a fitted map from `params_` and `state_dict_` (raises `ArtifactError` if inconsistent)."""
        try:
            m = cls(**dict(params))
        except TypeError as exc:
            raise ArtifactError(f"{cls.name} map: bad hyperparameters {dict(params)!r}: {exc}") from exc
        m._load_state(tensors)
        return m

    def clone(self) -> Self:
        """An unfitted copy with the same hyperparameters."""
        return type(self)(**self.params_())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params_().items())
        return f"{type(self).__name__}({args})"


def _need(tensors: Mapping[str, torch.Tensor], key: str, who: str) -> torch.Tensor:
    if key not in tensors:
        raise ArtifactError(f"{who} map state lacks tensor '{key}' (have {sorted(tensors)})")
    return tensors[key]


def need_shape(tensors: Mapping[str, torch.Tensor], key: str, who: str,
               shape: tuple[int, ...]) -> torch.Tensor:
    """Fetch ``tensors[key]`` and check its shape, naming both shapes on a mismatch."""
    t = _need(tensors, key, who)
    if tuple(t.shape) != shape:
        raise ArtifactError(f"{who} map state: tensor '{key}' has shape {tuple(t.shape)}, "
                            f"expected {shape}")
    return t.to(torch.float32)
