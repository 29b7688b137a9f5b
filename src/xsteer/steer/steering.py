"""`Steering`: a direction (or a set), an operator mode, a strength and optional gates, applied to
token states. This is what the representation-level evaluation and the diffusers `Steerer` share.

Modes:
- ``additive``: ``E + strength * d`` on every real token.
- ``projection``: remove the component along ``d`` (several categories: their joint subspace),
  measured from the benign centre when gates supply one; ``strength`` interpolates (1 = full).
- ``clamp``: move prompts whose coordinate along ``d`` lies past the benign low quantile back to it.
- ``gated``: like ``additive`` (or ``inner``), but only for prompts whose gate fires, per category;
  the other prompts are returned bit-identical.

Who decides, for ``gated`` (``combine``): ``target`` — the benign-calibrated target gates on the
site's own states (the default); ``source`` — decisions made outside, from the prompt's text, by
the source model (`xsteer.steer.source_gate.SourceGate`), passed to `Steering.apply` as
``source=``; ``or`` / ``and`` — both. With ``source`` the target gates are optional (when given,
their benign centre is still the origin of ``projection``).

>>> import torch
>>> from xsteer.directions import Direction
>>> d = Direction(torch.tensor([1.0, 0.0]), model_id="m", site="s")
>>> E = torch.zeros(1, 3, 2)
>>> Steering(d, mode="additive", strength=2.0).apply(E)[0][0, 0].tolist()
[2.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from xsteer.categories import GLOBAL, normalize_category
from xsteer.directions import Direction, DirectionSet
from xsteer.errors import DimensionMismatchError, XSteerError
from xsteer.steer.gate import Gate
from xsteer.steer.operators import (
    additive,
    clamp_along,
    project_out,
    project_out_subspace,
)
from xsteer.tensors import masked_mean

MODES = ("additive", "projection", "clamp", "gated")
COMBINES = ("target", "source", "or", "and")


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Steering:
    """What to apply to a site's token states. See the module docstring for the modes."""

    directions: Direction | DirectionSet
    mode: str = "additive"
    strength: float = 1.0
    gates: dict[str, Gate] = field(default_factory=dict)
    categories: list[str] | None = None
    inner: str = "additive"
    combine: str = "target"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise XSteerError(f"unknown steering mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.combine not in COMBINES:
            raise XSteerError(f"unknown gate combination {self.combine!r}; known: "
                              f"{', '.join(COMBINES)}")
        if self.combine != "target" and self.mode != "gated":
            raise XSteerError(f"combine={self.combine!r} decides which prompts a gated steering "
                              f"touches; it needs mode='gated', got {self.mode!r}")
        if self.inner not in ("additive", "projection"):
            raise XSteerError(f"gated inner operator must be additive or projection, "
                              f"got {self.inner!r}")
        if isinstance(self.gates, Gate):
            self.gates = {self.gates.category: self.gates}
        needs_gates = self.mode == "clamp" or (self.mode == "gated" and self.combine != "source")
        if needs_gates and not self.gates:
            raise XSteerError(f"mode {self.mode!r} needs a gate per steered category "
                              "(calibrate one with Gate.calibrate on benign embeddings)")
        if self.categories is not None:
            self.categories = [normalize_category(c) for c in self.categories]
        for cat in self.active_categories():
            if needs_gates and cat not in self.gates:
                raise XSteerError(f"mode {self.mode!r}: no gate for category {cat!r}; "
                                  f"gates: {sorted(self.gates)}")

    @property
    def dim(self) -> int:
        return self.directions.dim

    def active_categories(self) -> list[str]:
        if isinstance(self.directions, Direction):
            return [self.directions.category]
        if self.categories is not None:
            missing = [c for c in self.categories if c not in self.directions]
            if missing:
                raise XSteerError(f"direction set has no {missing}; it has "
                                  f"{self.directions.categories}")
            return list(self.categories)
        if GLOBAL in self.directions:
            return [GLOBAL]
        return self.directions.categories

    def _direction(self, cat: str) -> torch.Tensor:
        if isinstance(self.directions, Direction):
            return self.directions.vector
        return self.directions[cat].vector

    def decisions(self, pooled: torch.Tensor,
                  source: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Per category, a boolean ``(n,)``: would this prompt be steered.

        ``source``: per-category decisions of a source-side gate (needed unless ``combine`` is
        ``target``); combined with the target gates as ``combine`` says."""
        n = pooled.shape[0]
        out: dict[str, torch.Tensor] = {}
        if self.mode == "gated" and self.combine != "target" and source is None:
            raise XSteerError(f"combine={self.combine!r}: the source gate's decisions were not "
                              "passed (source=...)")
        for cat in self.active_categories():
            if self.mode != "gated":
                out[cat] = torch.ones(n, dtype=torch.bool, device=pooled.device)
                continue
            tgt = (self.gates[cat].fires(pooled).to(pooled.device)
                   if self.combine != "source" else None)
            if self.combine == "target":
                assert tgt is not None
                out[cat] = tgt
                continue
            assert source is not None
            if cat not in source:
                raise XSteerError(f"the source gate has no decision for category {cat!r}; it "
                                  f"decides {sorted(source)}")
            src = torch.as_tensor(source[cat]).to(device=pooled.device, dtype=torch.bool)
            if src.shape != (n,):
                raise DimensionMismatchError("source-gate decisions", int(src.numel()),
                                             "prompts in the batch", n)
            out[cat] = src if tgt is None else (src | tgt if self.combine == "or" else src & tgt)
        return out

    def apply(self, E: torch.Tensor, mask: torch.Tensor | None = None,
              pooled: torch.Tensor | None = None,
              source: Mapping[str, torch.Tensor] | None = None,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Steer states ``E`` ``(n, L, dim)`` or pooled ``(n, dim)``; return (steered, decisions).

        Rows that no category steers are returned bit-identical. ``source``: per-category
        decisions of a source-side gate (see ``combine``).
        """
        if E.shape[-1] != self.dim:
            raise DimensionMismatchError("steered states", E.shape[-1],
                                         f"direction ({self.directions.model_id})", self.dim)
        if pooled is None:
            pooled = masked_mean(E, mask)
        cats = self.active_categories()
        dec = self.decisions(pooled.float(), source)
        if self.strength == 0:
            return E, dec
        if self.mode == "projection" and len(cats) > 1:
            D = torch.stack([self._direction(c) for c in cats])
            center = self._center(cats[0], E)
            new = project_out_subspace(E, D, mask, center=center)
            return E + self.strength * (new - E), dec
        out = E
        for cat in cats:
            d = self._direction(cat)
            if self.mode == "additive" or (self.mode == "gated" and self.inner == "additive"):
                new = additive(out, d, self.strength, mask)
            elif self.mode == "clamp":
                g = self.gates[cat]
                u = g.direction / g.direction.norm()
                # the benign floor along u: minus the benign threshold of the harm score
                new = clamp_along(out, u.to(E.dtype), -g.threshold, mask,
                                  center=g.center.to(E.device, E.dtype))
            else:
                new = project_out(out, d, mask, center=self._center(cat, E))
                new = out + self.strength * (new - out)
            if self.mode == "gated":
                rows = dec[cat].view(-1, *([1] * (E.ndim - 1)))
                new = torch.where(rows, new, out)
            out = new
        return out, dec

    def _center(self, cat: str, E: torch.Tensor) -> torch.Tensor | None:
        g = self.gates.get(cat)
        return None if g is None else g.center.to(E.device, E.dtype)
