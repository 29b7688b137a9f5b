"""Operators that remove a concept and keep the rest of the prompt: pure functions on token states.

A fixed push of every token by ``strength * d`` moves a flagged prompt by the same amount however
unsafe it is, and drags every word of it along; at the strengths that cut ASR it erases the image.
These operators change less:

- `token_selective`: only the tokens whose own coordinate along ``d`` passes a benign per-token
  threshold (the trigger tokens) are pushed or projected; every other token is bit-identical.
- `minimal_push`: per prompt, the additive strength that just brings its harm score back to the
  benign threshold (times ``strength``: 1 lands on it), instead of one fixed strength.
- `toward_target`: move each prompt toward a per-category point in the benign region (e.g. the
  transported mean of safe twins), optionally only along ``d``.

All take ``E`` of shape ``(..., L, dim)`` (token states) with an optional real-token ``mask``
``E.shape[:-1]``; the harm score of a state ``x`` is ``(center - x) . d / |d|`` (directions point
unsafe→safe, `xsteer.steer.operators.harm_score`).

>>> import torch
>>> E = torch.zeros(1, 2, 2); E[0, 1, 0] = -3.0     # token 1 sits 3 units on the unsafe side
>>> d = torch.tensor([1.0, 0.0]); c = torch.zeros(2)
>>> token_selective(E, d, 2.0, threshold=1.0, center=c)[0][0].tolist()
[[0.0, 0.0], [-1.0, 0.0]]
>>> minimal_push(E, d, torch.tensor([1.5]), threshold=0.5, strength=1.0)[0].tolist()
[[1.0, 0.0], [-2.0, 0.0]]
"""

from __future__ import annotations

import torch

from xsteer.errors import DimensionMismatchError
from xsteer.steer.operators import _unit, _vec


def _mask(E: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones(E.shape[:-1], dtype=torch.bool, device=E.device)
    m = torch.as_tensor(mask, device=E.device).bool()
    if tuple(m.shape) != tuple(E.shape[:-1]):
        raise DimensionMismatchError("mask rank/shape", m.ndim, "states without last axis",
                                     E.ndim - 1, hint=f"mask {tuple(m.shape)} vs E {tuple(E.shape)}")
    return m


def _rows(values: torch.Tensor, E: torch.Tensor, what: str) -> torch.Tensor:
    """Per-prompt values ``(n,)`` for token states ``(n, L, dim)`` (or pooled ``(n, dim)``)."""
    v = torch.as_tensor(values).to(device=E.device, dtype=E.dtype).reshape(-1)
    n = E.shape[0] if E.ndim >= 2 else 1
    if v.numel() != n:
        raise DimensionMismatchError(what, v.numel(), "prompts in the steered states", n)
    return v


def token_scores(E: torch.Tensor, d: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Each token's harm score ``(center - e) . u`` (shape ``E.shape[:-1]``)."""
    u = _unit(_vec(d, E))
    return (_vec(center, E, "center") - E) @ u


def token_threshold(states: torch.Tensor, d: torch.Tensor, center: torch.Tensor,
                    quantile: float = 0.99, mask: torch.Tensor | None = None) -> float:
    """The benign per-token threshold: the ``quantile`` of the harm scores of every real token
    of BENIGN prompts' states ``(n, L, dim)``. About ``1 - quantile`` of benign tokens pass it."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"token quantile must be in (0, 1), got {quantile}")
    s = token_scores(states.float(), d.float(), center.float())[_mask(states, mask)]
    return float(torch.quantile(s.double(), quantile))


def token_selective(E: torch.Tensor, d: torch.Tensor, strength: float, threshold: float,
                    center: torch.Tensor, mask: torch.Tensor | None = None,
                    inner: str = "additive", rows: torch.Tensor | None = None,
                    score_direction: torch.Tensor | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Steer only trigger tokens: those whose harm score along ``score_direction`` (default
    ``d``; a gate's own direction, so a random ``d`` steers the same tokens) exceeds
    ``threshold`` (and that are real tokens of a row in ``rows``, when given).
    ``inner="additive"`` pushes them by ``strength * d``; ``"projection"`` removes ``strength``
    of their component along ``d`` (measured from ``center``). Returns ``(steered, selected)``;
    unselected tokens are bit-identical."""
    if inner not in ("additive", "projection"):
        raise ValueError(f"token-selective inner operator must be additive or projection, "
                         f"got {inner!r}")
    dv = _vec(d, E)
    sd = dv if score_direction is None else _vec(score_direction, E, "score direction")
    sel = (token_scores(E, sd, center) > threshold) & _mask(E, mask)
    if rows is not None:
        sel = sel & torch.as_tensor(rows, device=E.device).bool().view(
            -1, *([1] * (sel.ndim - 1)))
    if inner == "additive":
        new = E + strength * dv
    else:
        u = _unit(dv)
        coef = ((E - _vec(center, E, "center")) @ u).unsqueeze(-1)
        new = E - strength * coef * u
    return torch.where(sel.unsqueeze(-1), new, E), sel


def minimal_push(E: torch.Tensor, d: torch.Tensor, scores: torch.Tensor, threshold: float,
                 strength: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per prompt, push every real token by ``alpha_i * d`` with
    ``alpha_i = strength * max(score_i - threshold, 0) / |d|``: ``strength=1`` brings the
    prompt's (masked-mean) harm score exactly to ``threshold``. Prompts at or under the
    threshold are bit-identical. ``scores`` ``(n,)`` are the prompts' harm scores."""
    dv = _vec(d, E)
    s = _rows(scores, E, "harm scores")
    alpha = strength * (s - threshold).clamp(min=0) / dv.norm()
    shape = (-1, *([1] * (E.ndim - 1)))
    moved = E + alpha.view(shape) * dv
    need = (alpha > 0).view(-1, *([1] * (E.ndim - 2))) & _mask(E, mask)
    return torch.where(need.unsqueeze(-1), moved, E)


def toward_target(E: torch.Tensor, target: torch.Tensor, pooled: torch.Tensor,
                  strength: float = 1.0, mask: torch.Tensor | None = None,
                  direction: torch.Tensor | None = None,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """Move each prompt's real tokens by ``strength * (target - pooled_i)``: with
    ``strength=1`` the masked-mean state lands on ``target``. With ``direction``, only the
    component of that move along it (the prompt's coordinate along ``d`` is set to the
    target's; everything orthogonal is kept). ``rows`` (bool ``(n,)``) limits it to some
    prompts; the others are bit-identical."""
    t = _vec(target, E, "target")
    P = torch.as_tensor(pooled).to(device=E.device, dtype=E.dtype)
    if P.shape != E.shape[:1] + E.shape[-1:]:
        raise DimensionMismatchError("pooled states", P.shape[-1], "steered states", E.shape[-1],
                                     hint=f"pooled {tuple(P.shape)} vs E {tuple(E.shape)}")
    delta = t - P
    if direction is not None:
        u = _unit(_vec(direction, E))
        delta = (delta @ u).unsqueeze(-1) * u
    shape = (E.shape[0], *([1] * (E.ndim - 2)), E.shape[-1])
    moved = E + strength * delta.view(shape)
    need = _mask(E, mask)
    if rows is not None:
        need = need & torch.as_tensor(rows, device=E.device).bool().view(
            -1, *([1] * (need.ndim - 1)))
    return torch.where(need.unsqueeze(-1), moved, E)
