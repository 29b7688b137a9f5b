"""Source-side gating: read the prompt with the SOURCE model at inference and gate by its own
direction, optionally combined with the target-side gate.

The source direction is estimated where unsafe pairs are allowed (the source), and its threshold is
calibrated on benign source features only, so the decision never needs target-side unsafe data.
It costs one source forward pass per prompt (measured by `SourceGate.timed_fires`) and fires
on near-miss safe prompts more often than a target gate (see docs/results.md). It is measured by
the transport study only: it is not wired into `xsteer.pipelines.Steerer` or the CLI.

>>> import torch
>>> from xsteer.steer import Steering
>>> from xsteer.directions import Direction
>>> g = Gate.calibrate(torch.randn(400, 3, generator=torch.Generator().manual_seed(0)),
...                    torch.tensor([1.0, 0, 0]), quantile=0.99)
>>> sg = SourceGate(encode=lambda texts: torch.tensor([[-9.0, 0, 0] if "x" in t else [0.0, 0, 0]
...                                                    for t in texts]), gate=g)
>>> sg.fires(["a x", "a b"]).tolist()
[True, False]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from xsteer.errors import DimensionMismatchError, XSteerError
from xsteer.provenance import DataRecord
from xsteer.steer import Steering
from xsteer.steer.gate import Gate
from xsteer.tensors import masked_mean

COMBINES = ("source", "target", "or", "and")
Encode = Callable[[Sequence[str]], torch.Tensor]


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class SourceGate:
    """A benign-calibrated `Gate` on the source model's pooled features of the prompt itself.

    Attributes:
        encode: texts → pooled source features ``(n, ds)`` at the site the gate was calibrated on
            (e.g. ``lambda t: encoder.encode(t, layer)``).
        gate: the source-side `Gate` (direction unsafe→safe, benign threshold).
    """

    encode: Encode
    gate: Gate

    @classmethod
    def calibrate(cls, encode: Encode, direction: torch.Tensor, benign: Sequence[str],
                  quantile: float = 0.99, benign_name: str = "benign") -> SourceGate:
        """Threshold at the ``quantile`` of benign source harm scores (benign texts only)."""
        rec = DataRecord.from_texts(benign_name, list(benign), side="source", unsafe=False)
        feats = encode(list(benign))
        return cls(encode=encode, gate=Gate.calibrate(feats, direction, quantile=quantile,
                                                      data=rec))

    def scores(self, texts: Sequence[str]) -> torch.Tensor:
        return self.gate.scores(self.encode(list(texts)))

    def fires(self, texts: Sequence[str]) -> torch.Tensor:
        """Boolean ``(n,)``: does the source model read each prompt as unsafe."""
        return self.gate.fires(self.encode(list(texts)))

    def timed_fires(self, texts: Sequence[str]) -> tuple[torch.Tensor, float]:
        """`fires` plus its wall-clock cost in milliseconds per prompt (encoding included)."""
        t0 = time.perf_counter()
        out = self.fires(texts)
        return out, 1000.0 * (time.perf_counter() - t0) / max(len(texts), 1)

    def decisions(self, texts: Sequence[str], steering: Steering, pooled: torch.Tensor,
                  combine: str = "source") -> torch.Tensor:
        """Which prompts to steer: the source gate, the target gate(s), or their ``or``/``and``."""
        if combine not in COMBINES:
            raise XSteerError(f"unknown gate combination {combine!r}; known: {', '.join(COMBINES)}")
        if len(texts) != pooled.shape[0]:
            raise DimensionMismatchError("prompts", len(texts), "target states rows",
                                         pooled.shape[0])
        src = self.fires(texts).to(pooled.device) if combine != "target" else None
        tgt = None
        if combine != "source":
            if steering.mode != "gated":
                raise XSteerError(f"combine={combine!r} needs a gated Steering with target gates")
            tgt = torch.stack(list(steering.decisions(pooled.float()).values())).any(0)
        if src is None:
            assert tgt is not None
            return tgt
        if tgt is None:
            return src
        return src | tgt if combine == "or" else src & tgt

    def apply(self, texts: Sequence[str], steering: Steering, E: torch.Tensor,
              mask: torch.Tensor | None = None, pooled: torch.Tensor | None = None,
              combine: str = "source") -> tuple[torch.Tensor, torch.Tensor]:
        """Steer target states ``E`` of ``texts`` only where the combined gate fires.

        The steering's own operator (``inner`` for a gated spec) is applied to the chosen rows;
        every other row is returned bit-identical. Returns (states, decisions).
        """
        if pooled is None:
            pooled = masked_mean(E, mask)
        fire = self.decisions(texts, steering, pooled, combine)
        mode = steering.inner if steering.mode == "gated" else steering.mode
        ungated = Steering(steering.directions, mode=mode, strength=steering.strength,
                           gates=steering.gates, categories=steering.categories)
        new, _ = ungated.apply(E, mask, pooled)
        rows = fire.view(-1, *([1] * (E.ndim - 1)))
        return torch.where(rows, new, E), fire
