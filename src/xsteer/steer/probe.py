"""A source-side probe: per-category logistic regression on pooled states from several source layers.

The source model may see unsafe data, so the source side can afford a real classifier instead of
one projection: for each harm category a logistic regression separates that category's unsafe
prompts from every negative (the pairs' safe sides and benign anchors), plus a global one for any
category. Features are the source model's mean-pooled states at several layers, concatenated and
standardised. The gate score is the largest logit over the probes; `SourceProbe.calibrate` sets
ONE threshold on held-apart benign scores of that maximum with `conformal_threshold`, so the
false-trigger rate on benign prompts like those is at most ``q`` with probability ``1 - delta``.
Each category fires when its own logit passes that threshold (`SourceProbe.decide`), so the
prompt fires when any category does and the per-category decisions keep the same guarantee
as a whole. A second threshold at ``(q/2, delta/2)`` is stored for the OR with a target gate
(each side at half, so the union keeps ``q``). It runs on the source model only and never
touches the target side; `xsteer.steer.source_gate.SourceGate` holds it with its source model.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(400, 8, generator=g)
>>> unsafe = X[:, 0] > 1.0
>>> probe = SourceProbe().fit(X, unsafe.tolist(), ["violence"] * 400)
>>> probe = probe.calibrate(torch.randn(400, 8, generator=g) - torch.tensor([3.0] + [0.0] * 7),
...                         q=0.05, delta=0.1)
>>> bool(probe.fires(torch.tensor([[4.0] + [0.0] * 7]))[0])
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsteer.categories import GLOBAL, normalize_category
from xsteer.errors import ArtifactError, DimensionMismatchError, EmptyDataError, XSteerError
from xsteer.hub import HubMixin
from xsteer.io import load_artifact, save_artifact
from xsteer.provenance import DataRecord, Provenance, require_benign
from xsteer.steer.conformal import conformal_threshold


def stack_layers(by_layer: Mapping[int, torch.Tensor], layers: Sequence[int]) -> torch.Tensor:
    """Concatenate pooled features ``{layer: (n, d)}`` in the order of ``layers`` → ``(n, d·L)``."""
    missing = [k for k in layers if k not in by_layer]
    if missing:
        raise XSteerError(f"no features for layers {missing}; have {sorted(by_layer)}")
    return torch.cat([torch.as_tensor(by_layer[k]).float() for k in layers], dim=1)


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class SourceProbe(HubMixin):
    """Per-category logistic probes on source features (sklearn shape: fit → learned ``_`` state).

    Attributes:
        C: inverse L2 strength of each logistic regression.
        model_id, layers, pooling: what the features are (recorded in the artifact).
        source: the source model's identity (id, revision, config digest, weight probe, width),
            checked by `SourceGate` before it scores anything.
        mean_, scale_: standardisation of the features ``(D,)``.
        coef_, intercept_: one row per name in ``names_`` (categories, then ``global``).
        threshold_: fire when the largest logit is above it (None until `calibrate`).
        half_threshold_: the same at ``(q/2, delta/2)``, for an OR with a target gate.
        meta: what the fit recorded (sha256 of every file used, held-out false-trigger rates).
    """

    C: float = 0.1
    model_id: str = ""
    pooling: str = "mean"
    layers: tuple[int, ...] = ()
    mean_: torch.Tensor | None = None
    scale_: torch.Tensor | None = None
    coef_: torch.Tensor | None = None
    intercept_: torch.Tensor | None = None
    names_: tuple[str, ...] = ()
    threshold_: float | None = None
    half_threshold_: float | None = None
    calibration_: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    source: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    _artifact_name = "probe"

    def fit(self, features: torch.Tensor, unsafe: Sequence[bool], categories: Sequence[str],
            data: Sequence[DataRecord] = ()) -> SourceProbe:
        """Fit on ``features`` ``(n, D)``; ``unsafe[i]`` labels row ``i``, ``categories[i]`` names
        its harm category (ignored for negatives). Returns ``self``."""
        from sklearn.linear_model import LogisticRegression

        X = torch.as_tensor(features).detach().double().numpy()
        y = np.asarray(unsafe, dtype=bool)
        if X.ndim != 2 or X.shape[0] != y.size or len(categories) != y.size:
            raise DimensionMismatchError("probe features rows", X.shape[0], "labels", y.size)
        if not y.any() or y.all():
            raise EmptyDataError("a probe needs both unsafe and non-unsafe rows")
        cats = np.array([normalize_category(c) if u else "" for c, u in zip(categories, y, strict=True)])
        self.mean_ = torch.as_tensor(X.mean(0))
        self.scale_ = torch.as_tensor(X.std(0) + 1e-8)
        Z = (X - self.mean_.numpy()) / self.scale_.numpy()
        names = [c for c in dict.fromkeys(cats[y].tolist()) if c != GLOBAL] + [GLOBAL]
        W, b = [], []
        for name in names:
            pos = y if name == GLOBAL else (cats == name)
            keep = pos | ~y  # this category's unsafe rows against every negative
            clf = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced")
            clf.fit(Z[keep], pos[keep])
            W.append(clf.coef_[0])
            b.append(clf.intercept_[0])
        self.coef_ = torch.as_tensor(np.stack(W)).float()
        self.intercept_ = torch.as_tensor(np.array(b)).float()
        self.mean_, self.scale_ = self.mean_.float(), self.scale_.float()
        self.names_ = tuple(names)
        self.threshold_ = None
        self.provenance = Provenance(list(data))
        return self

    def _need_fit(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.coef_ is None or self.intercept_ is None or self.mean_ is None \
                or self.scale_ is None:
            raise XSteerError("this SourceProbe is not fitted yet: call fit() first")
        return self.mean_, self.scale_, self.coef_, self.intercept_

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(n, len(names_))`` logits, one column per probe."""
        mean, scale, W, b = self._need_fit()
        X = torch.as_tensor(features).float()
        if X.ndim != 2 or X.shape[1] != W.shape[1]:
            raise DimensionMismatchError("probe input width", X.shape[-1], "fitted width",
                                         W.shape[1])
        return ((X - mean) / scale) @ W.T + b

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """``(n,)`` gate score: the largest logit over the category and global probes."""
        return self.logits(features).max(dim=1).values

    def calibrate(self, benign: torch.Tensor, q: float = 0.01, delta: float = 0.05,
                  data: DataRecord | None = None) -> SourceProbe:
        """Set the threshold by `conformal_threshold` on benign features the probe was NOT fitted
        on (exchangeability needs held-apart texts). Returns ``self``."""
        if data is not None:
            require_benign("probe calibration", data, side="source")
            self.provenance = self.provenance.merged(Provenance([data]))
        s = self.scores(benign)
        self.threshold_ = conformal_threshold(s, q=q, delta=delta)
        try:
            self.half_threshold_ = conformal_threshold(s, q=q / 2, delta=delta / 2)
        except EmptyDataError:  # too few scores for the half guarantee: no OR with this probe
            self.half_threshold_ = None
        self.calibration_ = {"q": q, "delta": delta, "benign_n": int(benign.shape[0])}
        return self

    def _tau(self, half: bool) -> float:
        tau = self.half_threshold_ if half else self.threshold_
        if tau is None:
            if half and self.threshold_ is not None:
                raise XSteerError("this SourceProbe has no (q/2, delta/2) threshold for an OR "
                                  "with a target gate: calibrate it on more benign texts")
            raise XSteerError("this SourceProbe has no threshold yet: call calibrate() first")
        return tau

    def decide(self, features: torch.Tensor, half: bool = False) -> dict[str, torch.Tensor]:
        """Per probe name (each category and ``global``), a boolean ``(n,)``: does that logit
        pass the threshold (the ``(q/2, delta/2)`` one with ``half``). ``global`` is the prompt's
        own decision: any probe fires."""
        return self.decide_logits(self.logits(features), half)

    def decide_logits(self, logits: torch.Tensor, half: bool = False) -> dict[str, torch.Tensor]:
        """`decide` on logits already computed ``(n, len(names_))``."""
        tau = self._tau(half)
        out = {name: logits[:, j] > tau for j, name in enumerate(self.names_)}
        out[GLOBAL] = (logits > tau).any(dim=1)
        return out

    def fires(self, features: torch.Tensor) -> torch.Tensor:
        """Boolean ``(n,)``: is each prompt unsafe by any probe."""
        return self.scores(features) > self._tau(False)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        mean, scale, W, b = self._need_fit()
        meta = {"kind": "source-probe", "C": self.C, "model_id": self.model_id,
                "layers": list(self.layers), "pooling": self.pooling, "names": list(self.names_),
                "threshold": self.threshold_, "half_threshold": self.half_threshold_,
                "calibration": self.calibration_, "dim": int(W.shape[1]),
                "source": self.source, "meta": self.meta, "data": self.provenance.to_list()}
        return save_artifact(directory, "probe", {"mean": mean, "scale": scale, "coef": W,
                                                  "intercept": b}, meta)

    @classmethod
    def _load_dir(cls, directory: Path) -> SourceProbe:
        t, m = load_artifact(directory, "probe", kind="source-probe")
        try:
            probe = cls(C=float(m["C"]), model_id=str(m["model_id"]),
                        layers=tuple(int(k) for k in m["layers"]), mean_=t["mean"],
                        scale_=t["scale"], coef_=t["coef"], intercept_=t["intercept"],
                        pooling=str(m.get("pooling", "mean")), names_=tuple(m["names"]),
                        threshold_=_finite_or_none(directory, "threshold", m["threshold"]),
                        half_threshold_=_finite_or_none(directory, "half_threshold",
                                                        m.get("half_threshold")),
                        calibration_=dict(m.get("calibration") or {}),
                        provenance=Provenance.from_list(m.get("data")),
                        source=dict(m.get("source") or {}), meta=dict(m.get("meta") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}: probe artifact lacks or garbles {exc}") from exc
        W = probe.coef_
        assert W is not None
        if W.shape != (len(probe.names_), int(m["dim"])):
            raise ArtifactError(f"{directory}: probe coef shape {tuple(W.shape)} does not match "
                                f"{len(probe.names_)} probes × dim {m['dim']}")
        return probe


def _finite_or_none(directory: Path, key: str, value: Any) -> float | None:
    """A recorded threshold: None, or a finite float (NaN or inf would fire always or never)."""
    if value is None:
        return None
    x = float(value)
    if not math.isfinite(x):
        raise ArtifactError(f"{directory}: probe {key} is {x}, not a finite number")
    return x
