"""`Alignment`: a fitted source→target map with provenance, benign statistics and held-out fidelity.

It is the artifact that carries a safety direction from the model it was estimated in (source)
into a generator's text-conditioning space (target). It is fitted on benign prompts only and
refuses target-side unsafe data at fit and at transport.

>>> import torch
>>> from xsteer.provenance import DataRecord
>>> from xsteer.directions import Direction
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(100, 8, generator=g); Y = X @ torch.randn(8, 4, generator=g)
>>> rec = DataRecord.from_texts("benign", ["a cat"] * 100, side="target", unsafe=False)
>>> al = Alignment.fit(X, Y, "ridge", source=("src", "pooled"), target=("tgt", "pooled"), data=[rec])
>>> d = al.transport(Direction(torch.ones(8), model_id="src", site="pooled"))
>>> d.origin, d.model_id, d.dim
('transported', 'tgt', 4)
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import torch

from xsteer import __version__
from xsteer.align.base import AlignmentMap, NotFittedError, check_xy
from xsteer.align.calibration import CALIBRATIONS, check_stats
from xsteer.align.calibration import benign_stats as compute_benign_stats
from xsteer.align.calibration import calibrate as calibrate_vector
from xsteer.align.registry import get_map_class, make_map
from xsteer.directions.direction import Direction, DirectionSet
from xsteer.errors import (
    ArtifactError,
    DimensionMismatchError,
    ProvenanceError,
    XSteerError,
    malformed,
)
from xsteer.formatting import finite_or_none as _finite_or_none
from xsteer.hub import HubMixin
from xsteer.io import load_artifact, save_artifact
from xsteer.provenance import DataRecord, Provenance, require_benign


def learned_summary(m: AlignmentMap) -> dict[str, float | int | None]:
    """The map's scalar learned attributes (``alpha_``, ``rank_``, ``epochs_``, ...) for the JSON."""
    out: dict[str, float | int | None] = {}
    for k, v in vars(m).items():
        if k.endswith("_") and not k.startswith("_") and isinstance(v, (int, float)):
            out[k] = v if isinstance(v, int) else _finite_or_none(float(v))
    return out


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Alignment(HubMixin):
    """A fitted map between two models' spaces, with everything needed to trust and reuse it.

    Attributes:
        map: the fitted `AlignmentMap`.
        source_model, source_site, source_dim: the space directions come from.
        target_model, target_site, target_dim: the space they are carried into.
        provenance: data records of the benign prompts it was fitted on (never target-side unsafe).
        benign_stats: `benign_stats` of the target features (for magnitude calibration).
        fit_stats: held-out R² / retrieval top-1, row counts, timings, the map's learned scalars.
        target_encoder: what identifies the target encoder (model id, revision, architecture
            digest, and for a pipeline site its class, site and weight probe); every direction
            transported through the alignment carries it as ``meta["encoder"]``, and
            `xsteer.pipelines.Steerer` compares it with the pipeline it binds to.
        source_encoder: the same for the source encoder (its dtype among it); `transport` warns
            when a direction was estimated with the source in another dtype.
    """

    map: AlignmentMap
    source_model: str
    source_site: str
    source_dim: int
    target_model: str
    target_site: str
    target_dim: int
    provenance: Provenance = field(default_factory=Provenance)
    benign_stats: dict[str, torch.Tensor] = field(default_factory=dict)
    fit_stats: dict[str, Any] = field(default_factory=dict)
    target_encoder: dict[str, Any] = field(default_factory=dict)
    source_encoder: dict[str, Any] = field(default_factory=dict)

    _artifact_name = "alignment"

    def __repr__(self) -> str:
        return (f"Alignment({self.map!r}: {self.source_model}:{self.source_site} ({self.source_dim})"
                f" -> {self.target_model}:{self.target_site} ({self.target_dim}), "
                f"heldout_r2={self.fit_stats.get('heldout_r2')}, "
                f"heldout_top1={self.fit_stats.get('heldout_top1')})")

    def __post_init__(self) -> None:
        if not self.map.is_fitted:
            raise NotFittedError(f"Alignment needs a fitted map, got an unfitted {self.map!r}")
        if self.map.in_dim != self.source_dim:
            raise DimensionMismatchError("map input", self.map.in_dim, "source space",
                                         self.source_dim)
        if self.map.out_dim != self.target_dim:
            raise DimensionMismatchError("map output", self.map.out_dim, "target space",
                                         self.target_dim)
        if self.benign_stats:
            check_stats(self.benign_stats, self.target_dim)
        require_benign("alignment", self.provenance)

    # -- fitting -----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, X_src: Any, Y_tgt: Any, method: str | AlignmentMap = "ridge", *,
            source: tuple[str, str], target: tuple[str, str], data: Sequence[DataRecord],
            holdout: float = 0.2, seed: int = 0, target_encoder: dict[str, Any] | None = None,
            source_encoder: dict[str, Any] | None = None, **map_params: Any) -> Alignment:
        """Fit a map on benign features ``X_src`` ``(n, ds)`` → ``Y_tgt`` ``(n, dt)``.

        ``source``/``target`` are ``(model_id, site)``; ``data`` are the records of the benign
        prompts (at least one; target-side unsafe records raise `UnsafeDataError`). A seeded
        ``holdout`` share of rows is set aside to measure held-out R² and retrieval top-1 with a
        clone of the map; the returned map is then refitted on all rows. A map instance passed as
        ``method`` is used as a template (cloned), never mutated.
        """
        records = list(data)
        if not records:
            raise ProvenanceError(
                "Alignment.fit needs the DataRecords of the benign prompts it is fitted on "
                "(e.g. DataRecord.from_texts('benign', texts, side='target', unsafe=False))")
        require_benign("alignment", *records)
        X, Y = check_xy(X_src, Y_tgt)
        if isinstance(method, AlignmentMap):
            if map_params:
                raise XSteerError(f"map parameters {sorted(map_params)} given with a map instance")
            template = method.clone()
        else:
            template = make_map(method, **map_params)
        if not 0.0 <= holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {holdout}")
        n = X.shape[0]
        if n < X.shape[1]:
            warnings.warn(f"fitting the alignment on {n} benign prompts, fewer than the source "
                          f"dimension {X.shape[1]}: the map is underdetermined and will not "
                          "carry a direction reliably (use more anchors, e.g. the shipped set)",
                          stacklevel=2)
        n_hold = round(holdout * n)
        stats: dict[str, Any] = {"n_fit": n, "n_holdout": 0, "heldout_r2": None,
                                 "heldout_top1": None, "holdout_seed": seed}
        if n_hold >= 2 and n - n_hold >= 2:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            te, tr = perm[:n_hold], perm[n_hold:]
            t0 = time.perf_counter()
            probe = template.clone().fit(X[tr], Y[tr])
            stats["holdout_fit_seconds"] = time.perf_counter() - t0
            sc = probe.score(X[te], Y[te])
            stats.update(n_holdout=n_hold, heldout_r2=_finite_or_none(sc["r2"]),
                         heldout_top1=sc["top1"])
        t0 = time.perf_counter()
        fitted = template.clone().fit(X, Y)
        stats["fit_seconds"] = time.perf_counter() - t0
        stats["train"] = {k: _finite_or_none(v) for k, v in fitted.score(X, Y).items()}
        stats["learned"] = learned_summary(fitted)
        return cls(map=fitted, source_model=source[0], source_site=source[1],
                   source_dim=X.shape[1], target_model=target[0], target_site=target[1],
                   target_dim=Y.shape[1], provenance=Provenance(records),
                   benign_stats=compute_benign_stats(Y), fit_stats=stats,
                   target_encoder=dict(target_encoder or {}),
                   source_encoder=dict(source_encoder or {}))

    # -- use -------------------------------------------------------------------------------------
    def transform(self, X: Any) -> torch.Tensor:
        """Predicted target features for source features ``(n, ds)``."""
        return self.map.transform(X)

    def score(self, X: Any, Y: Any) -> dict[str, float]:
        """R² and retrieval top-1 on other benign rows (see `AlignmentMap.score`)."""
        return self.map.score(X, Y)

    @overload
    def transport(self, direction: Direction, calibrate: str = ..., *,
                  strict: bool = ...) -> Direction: ...

    @overload
    def transport(self, direction: DirectionSet, calibrate: str = ..., *,
                  strict: bool = ...) -> DirectionSet: ...

    def transport(self, direction: Direction | DirectionSet, calibrate: str = "benign-norm", *,
                  strict: bool = True) -> Direction | DirectionSet:
        """Carry a source direction (or every member of a set) into the target space.

        Checks that the direction lives in this alignment's source space: a dim mismatch raises
        `DimensionMismatchError`; another model or site raises `ProvenanceError` (a warning with
        ``strict=False``). Then maps it (`AlignmentMap.transport`) and rescales it from benign
        target statistics (``calibrate``: ``benign-norm``, ``spread`` or ``none``).
        """
        if isinstance(direction, DirectionSet):
            return direction.map(lambda d: self.transport(d, calibrate, strict=strict))
        if not isinstance(direction, Direction):
            raise TypeError(f"transport takes a Direction or DirectionSet, got {type(direction).__name__}")
        if calibrate not in CALIBRATIONS:
            raise ValueError(f"unknown calibration {calibrate!r}; known: {', '.join(CALIBRATIONS)}")
        if direction.dim != self.source_dim:
            raise DimensionMismatchError("direction", direction.dim, "alignment input",
                                         self.source_dim,
                                         hint=f"direction from {direction.model_id}:{direction.site}")
        if (direction.model_id, direction.site) != (self.source_model, self.source_site):
            msg = (f"direction is from {direction.model_id}:{direction.site} but the alignment "
                   f"maps from {self.source_model}:{self.source_site}")
            if strict:
                raise ProvenanceError(msg + "; fit the alignment at the direction's site "
                                      "(xsteer align --like DIRECTION)")
            warnings.warn(msg, stacklevel=2)
        d_dtype, a_dtype = direction.meta.get("dtype"), self.source_encoder.get("dtype")
        if d_dtype and a_dtype and d_dtype != a_dtype:
            warnings.warn(f"the direction was estimated with {direction.model_id} in {d_dtype} "
                          f"but the alignment read it in {a_dtype}: the two differ by rounding; "
                          "use one dtype for both (estimate --dtype, align --source-dtype)",
                          stacklevel=2)
        provenance = direction.provenance.merged(self.provenance)
        require_benign("transport", provenance)
        raw = self.map.transport(direction.vector)
        if calibrate != "none" and not self.benign_stats:
            raise ArtifactError("this alignment has no benign statistics: use calibrate='none'")
        vec = calibrate_vector(raw, self.benign_stats, calibrate) if calibrate != "none" else raw
        meta = {
            "source_direction": {"model_id": direction.model_id, "site": str(direction.site),
                                 "origin": direction.origin, "method": direction.method,
                                 "category": direction.category, "dim": direction.dim,
                                 "norm": direction.norm},
            "map": self.map.name, "map_params": self.map.params_(),
            "calibration": calibrate, "norm_before_calibration": float(raw.norm()),
            "alignment_fit": {k: self.fit_stats.get(k) for k in ("heldout_r2", "heldout_top1", "n_fit")},
        }
        if self.target_encoder:
            meta["encoder"] = dict(self.target_encoder)
        return Direction(vector=vec, model_id=self.target_model, site=self.target_site,
                         category=direction.category, origin="transported",
                         method=f"transported:{self.map.name}", provenance=provenance, meta=meta)

    # -- save / load -------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        tensors = {f"map.{k}": v for k, v in self.map.state_dict_().items()}
        tensors.update({f"stats.{k}": v for k, v in self.benign_stats.items()})
        meta = {
            "kind": "alignment", "map": self.map.name, "map_params": self.map.params_(),
            "source": {"model_id": self.source_model, "site": self.source_site,
                       "dim": self.source_dim, "encoder": self.source_encoder},
            "target": {"model_id": self.target_model, "site": self.target_site,
                       "dim": self.target_dim, "encoder": self.target_encoder},
            "data": self.provenance.to_list(), "saw_unsafe": self.provenance.summary(),
            "fit_stats": self.fit_stats,
        }
        return save_artifact(directory, "alignment", tensors, meta)

    save = save_pretrained

    @classmethod
    def _load_dir(cls, directory: Path) -> Alignment:
        tensors, meta = load_artifact(directory, "alignment", kind="alignment")
        where = str(directory)
        saved_by = meta.get("xsteer_version")
        if saved_by != __version__:
            warnings.warn(f"{where}: alignment saved by xsteer {saved_by}, loading with "
                          f"{__version__}; refit it if results look off", stacklevel=3)
        try:
            src, tgt = meta["source"], meta["target"]
            source = (str(src["model_id"]), str(src["site"]), int(src["dim"]))
            target = (str(tgt["model_id"]), str(tgt["site"]), int(tgt["dim"]))
            name, params = str(meta["map"]), dict(meta.get("map_params") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{where}: alignment metadata is incomplete: {exc!r}") from exc
        try:
            map_cls = get_map_class(name)
        except LookupError as exc:
            raise ArtifactError(f"{where}: {exc}") from exc
        # a sealed but hand-edited JSON can hold any value: every stray error names the file
        with malformed(f"{where}/alignment.json", "alignment metadata"):
            m = map_cls.from_state(params, _strip(tensors, "map."))
            if m.in_dim != source[2]:
                raise ArtifactError(f"{where}: JSON says source dim {source[2]} but the map tensors "
                                    f"take dim {m.in_dim}")
            if m.out_dim != target[2]:
                raise ArtifactError(f"{where}: JSON says target dim {target[2]} but the map tensors "
                                    f"give dim {m.out_dim}")
            stats = _strip(tensors, "stats.")
            if stats:
                try:
                    check_stats(stats, target[2])
                except (DimensionMismatchError, ArtifactError) as exc:
                    raise ArtifactError(f"{where}: {exc}") from exc
            return cls(map=m, source_model=source[0], source_site=source[1], source_dim=source[2],
                       target_model=target[0], target_site=target[1], target_dim=target[2],
                       provenance=Provenance.from_list(meta.get("data")), benign_stats=stats,
                       fit_stats=dict(meta.get("fit_stats") or {}),
                       target_encoder=dict(tgt.get("encoder") or {}),
                       source_encoder=dict(src.get("encoder") or {}))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Alignment:
        return cls._load_dir(Path(directory))


def _strip(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
