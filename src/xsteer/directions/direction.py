"""`Direction` (one vector + provenance) and `DirectionSet` (global + one per harm category).

Convention: a direction points from **unsafe to safe** (``mean(safe) - mean(unsafe)``), so additive
steering adds it with a positive strength, and a prompt's *harm score* is its negative projection.

>>> import torch
>>> d = Direction(torch.tensor([3.0, 4.0]), model_id="m", site="pooled")
>>> (2 * d).vector.tolist(), d.normalized().norm
([6.0, 8.0], 1.0)
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xsteer.categories import GLOBAL, normalize_category
from xsteer.errors import (
    ArtifactError,
    DimensionMismatchError,
    NonFiniteError,
    ProvenanceError,
    malformed,
)
from xsteer.hub import HubMixin
from xsteer.io import load_artifact, save_artifact
from xsteer.provenance import Provenance
from xsteer.site import Site, SiteError

CONVENTION = "unsafe_to_safe"
ORIGINS = ("source", "native", "transported", "random", "combined")


def _as_vector(v: Any, what: str = "direction") -> torch.Tensor:
    t = torch.as_tensor(v).detach().to("cpu", torch.float32)
    if t.ndim != 1:
        raise DimensionMismatchError(f"{what} tensor rank", t.ndim, "a direction vector", 1,
                                     hint=f"shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise DimensionMismatchError(what, 0, "a direction", 1, hint="empty vector")
    if not torch.isfinite(t).all():
        raise NonFiniteError(f"{what} holds NaN or inf values")
    return t.contiguous()


# holds tensors: == compares identity instead of raising; __init__ by hand so that ``site`` takes
# a string too while the attribute is always a `Site`
@dataclass(eq=False, init=False)
class Direction(HubMixin):
    """A steering direction in one model's representation space.

    Attributes:
        vector: shape ``(dim,)``, float32, pointing from unsafe to safe.
        model_id: the model whose space it lives in (alias, HF id or path).
        site: where in that model, a `xsteer.site.Site` (a site string such as
            ``"layer:6/mean"``, ``"text_encoder_2.pooled"`` or ``"tokens/mean"`` is parsed on
            construction; artifacts store ``str(site)``, and the site equals that string).
        category: a harm category or ``"global"``.
        origin: ``source`` (estimated on the model itself from pairs), ``native`` (estimated on a
            target with unsafe pairs: the yardstick), ``transported``, ``random`` or ``combined``.
        method: the estimator or transport that made it.
        provenance: which data sets touched it, and on which side.
        meta: free-form JSON-able metadata (revision, pooling, layer, fit statistics, ...).
    """

    vector: torch.Tensor
    model_id: str
    site: Site
    category: str = GLOBAL
    origin: str = "source"
    method: str = "mean-diff"
    provenance: Provenance = field(default_factory=Provenance)
    meta: dict[str, Any] = field(default_factory=dict)

    _artifact_name = "direction"

    def __init__(self, vector: Any, model_id: str, site: Site | str, category: str = GLOBAL,
                 origin: str = "source", method: str = "mean-diff",
                 provenance: Provenance | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.vector = _as_vector(vector)
        self.model_id = model_id
        self.site = Site.parse(site)
        self.category = normalize_category(category)
        self.origin = origin
        self.method = method
        self.provenance = Provenance() if provenance is None else provenance
        self.meta = {} if meta is None else meta
        if self.origin not in ORIGINS:
            raise ArtifactError(f"direction origin must be one of {ORIGINS}, got {self.origin!r}")

    # -- basic properties -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.vector.numel())

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def normalized(self) -> Direction:
        n = self.vector.norm()
        if float(n) == 0.0:
            raise NonFiniteError("cannot normalise a zero direction")
        return self._with(self.vector / n)

    def cosine(self, other: Direction | torch.Tensor) -> float:
        o = other.vector if isinstance(other, Direction) else _as_vector(other, "other")
        if o.numel() != self.dim:
            raise DimensionMismatchError("other direction", o.numel(), "this direction", self.dim)
        return float(torch.nn.functional.cosine_similarity(self.vector, o, dim=0))

    def _with(self, vector: torch.Tensor, **changes: Any) -> Direction:
        new = copy.copy(self)
        new.meta = dict(self.meta)
        new.provenance = Provenance(list(self.provenance.data))
        new.vector = _as_vector(vector)
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    # -- arithmetic (repeng-style) ------------------------------------------------------------
    def _check_compatible(self, other: Direction) -> None:
        if other.dim != self.dim:
            raise DimensionMismatchError(
                f"direction from {other.model_id}:{other.site}", other.dim,
                f"direction from {self.model_id}:{self.site}", self.dim)
        if (other.model_id, other.site) != (self.model_id, self.site):
            warnings.warn(
                f"combining directions from different spaces: {self.model_id}:{self.site} and "
                f"{other.model_id}:{other.site}", stacklevel=3)

    def __add__(self, other: Direction) -> Direction:
        if not isinstance(other, Direction):
            return NotImplemented
        self._check_compatible(other)
        cat = self.category if self.category == other.category else GLOBAL
        return self._with(self.vector + other.vector, category=cat, origin="combined",
                          method=f"({self.method})+({other.method})",
                          provenance=self.provenance.merged(other.provenance))

    def __sub__(self, other: Direction) -> Direction:
        if not isinstance(other, Direction):
            return NotImplemented
        return self + (-other)

    def __mul__(self, scalar: float) -> Direction:
        if isinstance(scalar, Direction) or not isinstance(scalar, (int, float)):
            return NotImplemented
        return self._with(self.vector * float(scalar))

    __rmul__ = __mul__

    def __truediv__(self, scalar: float) -> Direction:
        return self * (1.0 / float(scalar))

    def __neg__(self) -> Direction:
        return self * -1.0

    # -- save / load ----------------------------------------------------------------------------
    def to_metadata(self) -> dict[str, Any]:
        m = {
            "model_id": self.model_id, "site": str(self.site), "category": self.category,
            "origin": self.origin, "method": self.method, "dim": self.dim,
            "convention": CONVENTION, "data": self.provenance.to_list(),
            "saw_unsafe": self.provenance.summary(), "meta": self.meta,
        }
        # Additive and informative only: loading reads "site", so artifacts without it still load.
        m["site_spec"] = Site.parse(self.site, model_id=self.model_id).to_dict()
        return m

    @classmethod
    def from_metadata(cls, vector: torch.Tensor, m: Mapping[str, Any], where: str = "") -> Direction:
        if not vector.is_floating_point():
            raise ArtifactError(f"{where}: direction tensor is {vector.dtype}, not float32")
        if m.get("convention", CONVENTION) != CONVENTION:
            raise ArtifactError(f"{where}: unknown direction convention {m.get('convention')!r}")
        try:
            d = cls(vector=vector, model_id=str(m["model_id"]), site=str(m["site"]),
                    category=str(m.get("category", GLOBAL)), origin=str(m.get("origin", "source")),
                    method=str(m.get("method", "")), provenance=Provenance.from_list(m.get("data")),
                    meta=dict(m.get("meta") or {}))
        except KeyError as exc:
            raise ArtifactError(f"{where}: direction metadata lacks {exc}") from exc
        except SiteError as exc:  # a saved site string that none of the site forms reads
            raise ArtifactError(f"{where}: {exc}") from exc
        if "dim" in m and int(m["dim"]) != d.dim:
            raise ArtifactError(f"{where}: metadata says dim {m['dim']} but tensor has {d.dim}")
        return d

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        meta = {"kind": "direction", **self.to_metadata()}
        return save_artifact(directory, "direction", {"vector": self.vector}, meta)

    save = save_pretrained

    @classmethod
    def _load_dir(cls, directory: Path) -> Direction:
        tensors, meta = load_artifact(directory, "direction", kind="direction")
        if "vector" not in tensors:
            raise ArtifactError(f"{directory}: direction tensors lack 'vector'")
        with malformed(f"{directory}/direction.json", "direction metadata"):
            return cls.from_metadata(tensors["vector"], meta, where=str(directory))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Direction:
        return cls._load_dir(Path(directory))


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class DirectionSet(HubMixin):
    """Directions keyed by category (``"global"`` plus any of the seven harm categories).

    All members must live in the same space (same model, site and dim).
    """

    directions: dict[str, Direction]

    _artifact_name = "direction_set"

    def __post_init__(self) -> None:
        if not self.directions:
            raise ArtifactError("a DirectionSet needs at least one direction")
        fixed: dict[str, Direction] = {}
        first = next(iter(self.directions.values()))
        for key, d in self.directions.items():
            cat = normalize_category(key)
            if d.dim != first.dim:
                raise DimensionMismatchError(f"direction '{cat}'", d.dim,
                                             f"direction '{first.category}'", first.dim)
            if (d.model_id, d.site) != (first.model_id, first.site):
                raise ProvenanceError(
                    f"DirectionSet members must share a space: '{cat}' is from "
                    f"{d.model_id}:{d.site}, '{first.category}' from {first.model_id}:{first.site}")
            if d.category != cat:
                d = d._with(d.vector, category=cat)
            fixed[cat] = d
        self.directions = fixed

    # mapping-like access
    def __getitem__(self, category: str) -> Direction:
        cat = normalize_category(category)
        if cat not in self.directions:
            raise KeyError(f"no direction for category {cat!r}; have {sorted(self.directions)}")
        return self.directions[cat]

    def __contains__(self, category: object) -> bool:
        return isinstance(category, str) and normalize_category(category) in self.directions

    def __iter__(self) -> Iterator[str]:
        return iter(self.directions)

    def __len__(self) -> int:
        return len(self.directions)

    def items(self) -> Iterator[tuple[str, Direction]]:
        return iter(self.directions.items())

    @property
    def categories(self) -> list[str]:
        return list(self.directions)

    @property
    def dim(self) -> int:
        return next(iter(self.directions.values())).dim

    @property
    def model_id(self) -> str:
        return next(iter(self.directions.values())).model_id

    @property
    def site(self) -> Site:
        return next(iter(self.directions.values())).site

    @property
    def provenance(self) -> Provenance:
        ds = list(self.directions.values())
        return ds[0].provenance.merged(*(d.provenance for d in ds[1:]))

    def map(self, fn: Any) -> DirectionSet:
        """Apply ``fn(Direction) -> Direction`` to every member."""
        return DirectionSet({k: fn(d) for k, d in self.directions.items()})

    def matrix(self, categories: list[str] | None = None) -> torch.Tensor:
        """Stack member vectors into ``(k, dim)`` (rows in ``categories`` order)."""
        cats = categories or self.categories
        return torch.stack([self[c].vector for c in cats])

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        members = {k: d.to_metadata() for k, d in self.directions.items()}
        meta = {"kind": "direction_set", "categories": list(self.directions), "members": members,
                "dim": self.dim, "model_id": self.model_id, "site": str(self.site),
                "saw_unsafe": self.provenance.summary()}
        return save_artifact(directory, "direction_set",
                             {k: d.vector for k, d in self.directions.items()}, meta)

    save = save_pretrained

    @classmethod
    def _load_dir(cls, directory: Path) -> DirectionSet:
        tensors, meta = load_artifact(directory, "direction_set", kind="direction_set")
        with malformed(f"{directory}/direction_set.json", "direction-set metadata"):
            members = meta.get("members") or {}
            if set(members) != set(tensors):
                raise ArtifactError(f"{directory}: categories in JSON {sorted(members)} do not match "
                                    f"tensors {sorted(tensors)}")
            order = meta.get("categories", list(members))
            if not isinstance(order, list) or set(map(str, order)) != set(members):
                raise ArtifactError(f"{directory}: 'categories' {order!r} do not match the members "
                                    f"{sorted(members)}")
            return cls({k: Direction.from_metadata(tensors[k], members[k],
                                                   where=f"{directory}[{k}]") for k in order})

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> DirectionSet:
        return cls._load_dir(Path(directory))


def load_directions(path: str | os.PathLike[str]) -> Direction | DirectionSet:
    """Load whatever direction artifact a directory holds (a `Direction` or a `DirectionSet`)."""
    p = Path(path)
    if (p / "direction_set.json").is_file():
        return DirectionSet.load(p)
    if (p / "direction.json").is_file():
        return Direction.load(p)
    if p.is_dir():
        raise ArtifactError(f"{p} holds no direction.json or direction_set.json")
    try:
        return DirectionSet.from_pretrained(str(path))
    except ArtifactError:
        return Direction.from_pretrained(str(path))
