"""Per-category target points in the benign region, for the ``target`` steering mode.

A target is a point in the steered site's space that a flagged prompt moves toward (by default
only along its category's direction): e.g. the mean state of the category's safe twins. On the
target side that mean may be taken from SAFE texts only; the recommended estimate is the
*transported* mean of the source model's safe-twin features (`transported_targets`), so the target
model sees no pair data at all.

>>> import torch
>>> t = mean_targets(torch.eye(3) * 3, ["a", "a", "b"])
>>> t["a"].tolist(), t["global"].tolist()
([1.5, 1.5, 0.0], [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from xsteer.categories import GLOBAL
from xsteer.errors import ArtifactError, EmptyDataError
from xsteer.io import load_artifact, save_artifact


def mean_targets(features: torch.Tensor, categories: Sequence[str]) -> dict[str, torch.Tensor]:
    """The mean of ``features`` ``(n, dim)`` per category, plus ``global`` (all rows)."""
    F = torch.as_tensor(features).float()
    if F.ndim != 2 or F.shape[0] == 0 or F.shape[0] != len(categories):
        raise EmptyDataError(f"targets need one feature row per category label, got "
                             f"{tuple(F.shape)} rows for {len(categories)} labels")
    out = {c: F[[i for i, x in enumerate(categories) if x == c]].mean(0)
           for c in dict.fromkeys(categories)}
    out[GLOBAL] = F.mean(0)
    return out


def transported_targets(alignment: Any, source_features: torch.Tensor,
                        categories: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per category, the source model's safe-twin features mapped into the target space by a
    fitted `xsteer.align.Alignment` (``transform``), then averaged."""
    return mean_targets(alignment.transform(source_features), categories)


def save_targets(directory: str | os.PathLike[str], targets: dict[str, torch.Tensor],
                 meta: dict[str, Any] | None = None) -> Path:
    """``targets.safetensors`` + ``targets.json`` (kind ``targets``; ``meta`` says how they were
    made and which data touched them)."""
    dims = {int(v.numel()) for v in targets.values()}
    if len(dims) != 1:
        raise ArtifactError(f"targets of different sizes: {sorted(dims)}")
    return save_artifact(directory, "targets", {k: v.float().contiguous()
                                                for k, v in targets.items()},
                         {"kind": "targets", "dim": dims.pop(), "categories": sorted(targets),
                          **(meta or {})})


def load_targets(directory: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    tensors, _ = load_artifact(Path(directory), "targets", kind="targets")
    return dict(tensors)
