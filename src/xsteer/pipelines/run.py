"""Steered generation from artifact folders, the way ``xsteer generate`` runs it: one call.

`generate_steered` builds the `Steerer` from a direction (with its gates, a source-side gate,
a step window, target points) or from a packed adapter, checks what a pipeline folder's JSON
already says, loads the pipeline and writes one folder per prompt (`generate_samples`). A
source-side gate's model loads, and its identity is checked, before any pipeline weights.

>>> run = generate_steered("tiny-sd", ["a cat"], "runs/gen", direction="runs/dirs")  # doctest: +SKIP
>>> run.manifests[0]["steered"]                                                       # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError

PathLike = str | os.PathLike[str]


@dataclass
class GenerateRun:
    """What `generate_steered` wrote: one manifest per prompt, the steerer and the branch."""

    manifests: list[dict[str, Any]]
    steerer: Any
    branch: str

    @property
    def n_steered(self) -> int:
        return sum(any(m["steered"].values()) for m in self.manifests)


def generate_steered(pipeline: str, texts: Sequence[str], out: PathLike, *,
                     direction: PathLike | None = None, adapter: str | None = None,
                     strength: float | None = None, mode: str | None = None,
                     window: str | None = None, targets: PathLike | None = None,
                     inner: str = "additive", site: str | None = None, force: bool = False,
                     gate: Sequence[PathLike] = (), combine: str | None = None,
                     source_device: str = "cpu", source_dtype: str = "float32",
                     category: Sequence[str] | None = None, branch: str | None = None,
                     seed: int = 0, steps: int | None = None, compare: bool = False,
                     fps: int = 8, dtype: str = "float32", device: str = "cpu",
                     cpu_offload: bool = False,
                     call_kwargs: dict[str, Any] | None = None) -> GenerateRun:
    """Generate ``texts`` with ``pipeline`` steered by ``direction`` (a folder; with ``gate``
    folders: target gates or one source-side gate) or by ``adapter`` (a folder or Hub id; then
    ``mode``, ``strength``, ``combine`` and ``branch`` override its operator when given).
    Prompt ``i`` uses seed ``seed + i``; ``call_kwargs`` go to the pipeline call (checked)."""
    from xsteer.directions import load_directions
    from xsteer.pipelines.generate import check_call_kwargs, generate_samples, load_pipeline
    from xsteer.pipelines.preflight import check_pipeline_folder
    from xsteer.pipelines.steerer import Steerer
    from xsteer.steer import load_gates

    if (direction is None) == (adapter is None):
        raise XSteerError("give exactly one of --direction or --adapter")
    if adapter is not None:
        from xsteer.pipelines.adapter import load_adapter

        if gate or category or site:
            raise XSteerError("--gate, --category and --site come from the adapter; drop them")
        ad = load_adapter(adapter)
        over = {k: v for k, v in (("mode", mode), ("strength", strength), ("combine", combine))
                if v is not None}
        # the source model (a source-side gate's) loads before any pipeline weights
        steerer = ad.steerer(force=force, source_device=source_device,
                             source_dtype=source_dtype, **over)
        pipe = load_pipeline(pipeline, dtype=dtype, device=device, cpu_offload=cpu_offload)
        ad.check(pipe, force)
        branch = branch or ad.operator["branch"]
    else:
        from xsteer.pipelines.window import parse_window
        from xsteer.steer.source_gate import SourceGate, is_source_gate_dir
        from xsteer.steer.targets import load_targets

        assert direction is not None
        dirs = load_directions(direction)
        probes = [p for p in gate if is_source_gate_dir(p)]
        if len(probes) > 1:
            raise XSteerError(f"give one source-side gate, got {len(probes)}: {probes}")
        gates = {c: g for p in gate if p not in probes for c, g in load_gates(p).items()}
        source_side = [c for c, g in gates.items() if g.meta.get("side") == "source"]
        if source_side:
            raise XSteerError(f"gate(s) {source_side} are projection gates read in the source "
                              "model, which steering cannot use: fit the source-side probe "
                              "with xsteer gate calibrate --source MODEL")
        # the source model loads (and its identity is checked) before any pipeline weights
        source_gate = (SourceGate.from_pretrained(probes[0], device=source_device,
                                                  dtype=source_dtype) if probes else None)
        steerer = Steerer({site: dirs} if site else dirs, mode=mode or "additive",
                          strength=1.0 if strength is None else strength, gates=gates or None,
                          categories=list(category) if category else None, force=force,
                          inner=inner, source_gate=source_gate, combine=combine,
                          window=parse_window(window) if window else None,
                          targets=load_targets(targets) if targets else None)
        # what a pipeline folder's JSON already says, before any denoiser weights load
        check_pipeline_folder(pipeline, dirs, site, gates, force=force)
        pipe = load_pipeline(pipeline, dtype=dtype, device=device, cpu_offload=cpu_offload)
    branch = branch or "conditional"
    kwargs = dict(call_kwargs or {})
    check_call_kwargs(pipe, kwargs)
    manifests = generate_samples(pipe, steerer, list(texts), Path(out), seed=seed, steps=steps,
                                 compare=compare, branch=branch, call_kwargs=kwargs,
                                 pipeline_id=pipeline, fps=fps)
    return GenerateRun(manifests, steerer, branch)
