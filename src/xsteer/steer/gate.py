"""Gates: steer only prompts whose harm score passes a threshold calibrated on benign data alone.

The threshold is the ``quantile`` (e.g. 0.99) of benign harm scores, so about ``1 - quantile`` of
benign prompts trigger it; prompts under it keep their embeddings bit-identical.

>>> import torch
>>> g = Gate.calibrate(torch.randn(500, 4), torch.tensor([0.0, 0, 0, 1.0]), quantile=0.9)
>>> round(float(g.fires(torch.randn(2000, 4)).float().mean()), 1)
0.1
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xsteer.errors import ArtifactError, DimensionMismatchError, EmptyDataError, NonFiniteError
from xsteer.hub import HubMixin
from xsteer.io import load_artifact, save_artifact
from xsteer.provenance import DataRecord, Provenance, require_benign
from xsteer.steer.operators import harm_score


def empirical_quantile(scores: torch.Tensor, quantile: float) -> float:
    """THE threshold rule: the plain empirical ``quantile`` of benign scores (linear
    interpolation). One function, so a finite-sample (conformal) rule can replace it."""
    return float(torch.quantile(torch.as_tensor(scores).double(), quantile))


ThresholdFn = Callable[[torch.Tensor, float], float]


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Gate(HubMixin):
    """A benign-calibrated threshold on the harm score along one direction.

    Attributes:
        direction: vector ``(dim,)`` (unsafe→safe) whose negative projection is the harm score.
        center: the benign mean the score is measured from.
        threshold: fire when ``harm_score > threshold``.
        quantile: the benign quantile the threshold was set at.
        category: what the gate guards.
        provenance: the benign data that calibrated it (never target-side unsafe data).
    """

    direction: torch.Tensor
    center: torch.Tensor
    threshold: float
    quantile: float
    category: str = "global"
    provenance: Provenance = field(default_factory=Provenance)
    meta: dict[str, Any] = field(default_factory=dict)

    _artifact_name = "gate"

    @classmethod
    def calibrate(cls, benign: torch.Tensor, direction: torch.Tensor, quantile: float = 0.99,
                  center: torch.Tensor | None = None, category: str = "global",
                  data: DataRecord | None = None,
                  threshold_fn: ThresholdFn = empirical_quantile) -> Gate:
        """Fit the threshold on benign pooled embeddings ``(n, dim)`` only
        (``threshold_fn(scores, quantile)``, by default `empirical_quantile`)."""
        if data is not None:
            require_benign("gate calibration", data)
        B = torch.as_tensor(benign).detach().float()
        if B.ndim != 2 or B.shape[0] == 0:
            raise EmptyDataError("gate calibration needs a non-empty (n, dim) benign matrix")
        if not torch.isfinite(B).all():
            raise NonFiniteError("benign embeddings for gate calibration hold NaN or inf")
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"gate quantile must be in (0, 1), got {quantile}")
        d = torch.as_tensor(direction).float()
        if d.shape[-1] != B.shape[1]:
            raise DimensionMismatchError("gate direction", d.shape[-1], "benign embeddings",
                                         B.shape[1])
        c = B.mean(0) if center is None else torch.as_tensor(center).float()
        scores = harm_score(B, d, c)
        tau = float(threshold_fn(scores, quantile))
        prov = Provenance([data] if data is not None else [])
        return cls(direction=d, center=c, threshold=tau, quantile=quantile, category=category,
                   provenance=prov, meta={"benign_n": int(B.shape[0]),
                                          "benign_score_std": float(scores.std()),
                                          "threshold_rule": getattr(threshold_fn, "__name__",
                                                                    str(threshold_fn))})

    def scores(self, pooled: torch.Tensor) -> torch.Tensor:
        return harm_score(torch.as_tensor(pooled).float(), self.direction, self.center)

    def fires(self, pooled: torch.Tensor) -> torch.Tensor:
        """Boolean per row of ``pooled`` ``(n, dim)``: does the gate fire."""
        return self.scores(pooled) > self.threshold

    def to_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON metadata) of this gate: what its artifact holds, also embedded whole in
        other artifacts (an adapter)."""
        meta = {"kind": "gate", "threshold": self.threshold, "quantile": self.quantile,
                "category": self.category, "dim": int(self.direction.numel()),
                "data": self.provenance.to_list(), "meta": self.meta}
        return {"direction": self.direction, "center": self.center}, meta

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], m: dict[str, Any],
                   where: str = "gate") -> Gate:
        """The inverse of `to_state`; refuses a gate whose calibration saw target-side unsafe
        data."""
        try:
            g = cls(direction=tensors["direction"], center=tensors["center"],
                    threshold=float(m["threshold"]), quantile=float(m["quantile"]),
                    category=str(m.get("category", "global")),
                    provenance=Provenance.from_list(m.get("data")), meta=dict(m.get("meta") or {}))
        except KeyError as exc:
            raise ArtifactError(f"{where}: gate artifact lacks {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{where}: gate threshold and quantile must be numbers "
                                f"({' '.join(str(exc).split())})") from exc
        if not math.isfinite(g.threshold):  # NaN never fires, -inf always does
            raise ArtifactError(f"{where}: gate threshold is {g.threshold}, not a finite "
                                "number; calibrate the gate again")
        if not 0.0 < g.quantile < 1.0:
            raise ArtifactError(f"{where}: gate quantile {g.quantile} is not in (0, 1)")
        if g.direction.shape != g.center.shape or g.direction.ndim != 1:
            raise ArtifactError(f"{where}: gate direction {tuple(g.direction.shape)} and "
                                f"center {tuple(g.center.shape)} must be vectors of one size")
        require_benign("gate calibration", g.provenance)
        return g

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        tensors, meta = self.to_state()
        return save_artifact(directory, "gate", tensors, meta)

    @classmethod
    def _load_dir(cls, directory: Path) -> Gate:
        t, m = load_artifact(directory, "gate", kind="gate")
        return cls.from_state(t, m, str(directory))


def load_gates(path: str | os.PathLike[str]) -> dict[str, Gate]:
    """``{category: Gate}`` from one gate folder or a folder of per-category gate folders
    (what ``xsteer gate calibrate --per-category`` writes)."""
    p = Path(path).expanduser()
    if (p / "gate.json").is_file():
        g = Gate.from_pretrained(str(p))
        return {g.category: g}
    subs = sorted(q for q in p.iterdir() if (q / "gate.json").is_file()) if p.is_dir() else []
    if not subs:
        raise ArtifactError(f"{p}: neither a gate folder (gate.json) nor a folder of gate folders")
    gates = [Gate.from_pretrained(str(q)) for q in subs]
    return {g.category: g for g in gates}
