"""Timestep-windowed steering: steered conditioning for only part of the denoising steps.

Early denoising steps lay out what the image shows; late ones draw its details. Steering only a
window of steps (``window=(start, end)``, fractions of the steps) can remove the unsafe concept
where it is decided and let the rest of the prompt be drawn by its own conditioning.

It goes through diffusers' official extension point: the call starts with the steered (or, for a
window that opens later, the unsteered) ``prompt_embeds``, and ``callback_on_step_end`` swaps
them at the window's edges. The swap finds the rows of the pipeline's own ``prompt_embeds``
tensor (which may hold the negative prompt's rows too, for classifier-free guidance) that equal
the steered (or unsteered) rows and replaces exactly those, so the negative branch is never
touched. The pipeline must list ``prompt_embeds`` in ``_callback_tensor_inputs`` (Stable
Diffusion 1/2/XL/3, FLUX, Wan, the proving ground do). Pooled embeddings, where a pipeline has
them, keep the value they start with.

>>> window_steps(20, (0.0, 0.5))
(0, 10)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from xsteer.errors import XSteerError

Window = tuple[float, float]


def check_window(window: Any) -> Window:
    """``(start, end)`` with ``0 <= start < end <= 1``, or a one-line error."""
    try:
        a, b = (float(x) for x in window)
    except (TypeError, ValueError) as exc:
        raise XSteerError(f"window must be two fractions (start, end), got {window!r}") from exc
    if not 0.0 <= a < b <= 1.0:
        raise XSteerError(f"window ({a}, {b}): need 0 <= start < end <= 1")
    return a, b


def parse_window(text: str) -> Window:
    """``"0:0.5"`` -> ``(0.0, 0.5)`` (the CLI's ``--window``)."""
    parts = text.split(":")
    if len(parts) != 2:
        raise XSteerError(f"--window takes START:END fractions (e.g. 0:0.5), got {text!r}")
    try:
        return check_window(parts)
    except XSteerError:
        raise XSteerError(f"--window takes START:END fractions in [0, 1], got {text!r}") from None


def window_steps(steps: int, window: Window) -> tuple[int, int]:
    """The steps ``[first, stop)`` steered out of ``steps`` (at least one)."""
    a, b = check_window(window)
    first = min(round(a * steps), steps - 1)
    return first, max(first + 1, round(b * steps))


def swap_rows(current: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``current`` with every row equal to a row ``old[k]`` (that differs from ``new[k]``)
    replaced by ``new[k]``; a `XSteerError` when none of the changed rows is found."""
    old = old.to(current.device, current.dtype)
    new = new.to(current.device, current.dtype)
    changed = [k for k in range(len(old)) if not torch.equal(old[k], new[k])]
    if not changed:
        return current
    out = current.clone()
    hits = 0
    for j in range(len(current)):
        for k in changed:
            if torch.equal(current[j], old[k]):
                out[j] = new[k]
                hits += 1
                break
    if hits == 0:
        raise XSteerError("windowed steering found none of the steered prompt_embeds rows in "
                          "the pipeline's callback tensors (the pipeline changed them); "
                          "steer every step instead")
    return out


def _steps_of(pipe: Any, call_kwargs: Mapping[str, Any]) -> int:
    steps = call_kwargs.get("num_inference_steps")
    if steps is None:
        default = inspect.signature(pipe.__call__).parameters.get("num_inference_steps")
        steps = None if default is None else default.default
    if not isinstance(steps, int) or steps < 1:
        raise XSteerError(f"{type(pipe).__name__}: windowed steering needs num_inference_steps")
    return steps


def windowed_kwargs(pipe: Any, steered: Mapping[str, Any], unsteered: Mapping[str, Any],
                    window: Window, call_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pipeline kwargs that steer ``prompt_embeds`` only during ``window``: the starting
    embeddings (the other keys of ``steered``/``unsteered`` as at the first step) plus
    ``callback_on_step_end`` and its tensor inputs."""
    kw = dict(call_kwargs or {})
    if "callback_on_step_end" in kw:
        raise XSteerError("windowed steering uses callback_on_step_end itself; the call already "
                          "has one")
    inputs = list(getattr(pipe, "_callback_tensor_inputs", []) or [])
    if "prompt_embeds" not in inputs:
        raise XSteerError(f"{type(pipe).__name__} does not pass prompt_embeds to "
                          "callback_on_step_end, so its conditioning cannot change between "
                          "steps: steer every step instead (no window)")
    if "prompt_embeds" not in steered or "prompt_embeds" not in unsteered:
        raise XSteerError("windowed steering needs prompt_embeds (the conditional branch)")
    steps = _steps_of(pipe, kw)
    first, stop = window_steps(steps, window)
    on, off = steered["prompt_embeds"], unsteered["prompt_embeds"]
    start = dict(steered if first == 0 else unsteered)

    def callback(pipeline: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        nxt = i + 1  # the step the returned tensors condition
        if nxt == first and first > 0:
            return {"prompt_embeds": swap_rows(tensors["prompt_embeds"], off, on)}
        if nxt == stop and stop < steps:
            return {"prompt_embeds": swap_rows(tensors["prompt_embeds"], on, off)}
        return {}

    cb: Callable[..., dict[str, Any]] = callback
    return {**start, "callback_on_step_end": cb,
            "callback_on_step_end_tensor_inputs": ["prompt_embeds"]}
