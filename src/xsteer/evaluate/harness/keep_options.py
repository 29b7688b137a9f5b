"""The steer-don't-erase options of a sweep's direction methods (config keys, resolved here).

``window: [start, end]`` (fractions of the denoising steps to steer, `xsteer.pipelines.window`),
``targets: FOLDER`` (per-category target points for ``mode: target``, `xsteer.steer.targets`) and
``token_quantile: q`` (the benign per-token threshold for ``mode: tokens``, calibrated at setup
on the method's ``benign`` captions: the ``q`` quantile of their tokens' harm scores).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError


def pop_keep_options(spec: dict[str, Any], base: Path | Callable[[str], Path],
                     name: str) -> dict[str, Any]:
    """Take ``window``, ``targets`` and ``token_quantile`` out of a method's config entry;
    ``base`` is the config's folder or the sweep's path resolver."""
    out: dict[str, Any] = {}
    if spec.get("window") is not None:
        from xsteer.pipelines.window import check_window

        out["window"] = check_window(spec.pop("window"))
    spec.pop("window", None)
    if spec.get("targets") is not None:
        from xsteer.steer.targets import load_targets

        raw = str(spec.pop("targets"))
        path = base(raw) if callable(base) else Path(base) / raw
        out["targets"] = load_targets(path)
        out["targets_path"] = str(path)
    spec.pop("targets", None)
    if spec.get("token_quantile") is not None:
        q = spec.pop("token_quantile")
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
            raise XSteerError(f"method {name!r}: token_quantile must be in (0, 1), got {q!r}")
        out["token_quantile"] = float(q)
    spec.pop("token_quantile", None)
    return out


def describe_keep(keep: Mapping[str, Any]) -> dict[str, Any]:
    """What the summary records of these options (no tensors)."""
    return {k: (list(v) if k == "window" else v) for k, v in keep.items() if k != "targets"}


def token_gates(gen: Any, gates: Any, quantile: float, benign: str | None,
                name: str) -> dict[str, Any]:
    """Copies of ``gates`` with ``meta["token_threshold"]``: the ``quantile`` of the per-token
    harm scores of the benign captions' real tokens at the steered site."""
    from xsteer.data import load_benign
    from xsteer.data.screen import screen
    from xsteer.pipelines.tokens import site_token_states
    from xsteer.steer.selective import token_threshold

    if not gates or benign is None:
        raise XSteerError(f"method {name!r}: token_quantile needs gates and benign captions "
                          "('benign:')")
    texts = load_benign(benign)
    screen(texts, str(benign), "token threshold calibration", hint="use a benign file")
    states, mask = site_token_states(gen.pipe, texts, **gen.call_kwargs)
    out = {}
    for cat, g in dict(gates).items():
        tau = token_threshold(states, g.direction, g.center, quantile, mask)
        out[cat] = replace(g, meta={**g.meta, "token_threshold": tau,
                                    "token_quantile": quantile})
    return out
