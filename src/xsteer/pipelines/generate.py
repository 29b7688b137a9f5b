"""Load a diffusers pipeline and write steered samples with a JSON manifest each (`xsteer generate`).

Per prompt ``i`` (seed ``seed + i``) the folder ``<out>/<i:04d>/`` gets ``steered.png`` (or
``steered.gif`` + ``steered_frames/`` [+ ``.mp4``] for video), ``manifest.json`` and, with
``compare=True``, the unsteered output from the same seed and a side-by-side ``compare`` grid
(unsteered left, steered right).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsteer.errors import UnknownModelError, XSteerError, require
from xsteer.io import atomic_write_json, now_iso
from xsteer.pipelines.builtin import pipeline_class
from xsteer.pipelines.media import save_media, save_png, side_by_side
from xsteer.pipelines.steerer import DEFAULT_BRANCH, Steerer

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MANIFEST_VERSION = 1


BUILTIN_PIPELINES = ("tiny-sd", "tiny-t2v")


def load_pipeline(spec: str, *, dtype: str = "float32", device: str = "cpu",
                  cpu_offload: bool = False, revision: str | None = None,
                  safety_checker: bool = True, **from_pretrained: Any) -> Any:
    """A diffusers pipeline from a built-in alias (``tiny-sd``, ``tiny-t2v``: seeded, offline,
    random weights, `xsteer.pipelines.tiny`) or ``DiffusionPipeline.from_pretrained`` by Hub id or
    local folder, then placed on ``device``.

    ``cpu_offload`` calls ``enable_model_cpu_offload(device=device)`` (components move to the
    accelerator one at a time) instead of ``.to(device)``; it needs accelerate.
    ``safety_checker=False`` drops diffusers' post-hoc filter (it blacks images out): the sweep
    measures the generator, not the filter. Other keywords go to ``from_pretrained``.
    """
    if dtype not in DTYPES:
        raise XSteerError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    if spec in BUILTIN_PIPELINES:
        from xsteer.pipelines import tiny

        pipe = tiny.tiny_sd_pipeline() if spec == "tiny-sd" else tiny.tiny_t2v_pipeline()
    else:
        diffusers = require("diffusers", "diffusers")
        # diffusers renamed torch_dtype to dtype (0.4x); use whichever this install expects
        dtype_key = "dtype" if hasattr(diffusers.utils.deprecation_utils,
                                       "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"
        try:
            pipe = pipeline_class(spec).from_pretrained(
                spec, revision=revision, **{dtype_key: DTYPES[dtype]}, **from_pretrained)
        except Exception as exc:  # hub, offline-mode and missing-file errors have no common base
            why = " ".join(str(exc).split())  # one line: hub errors span several
            raise UnknownModelError(f"could not load a diffusers pipeline from {spec!r}: {why}; "
                                    f"built-in aliases: {', '.join(BUILTIN_PIPELINES)}") from exc
    if not safety_checker and getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None
    if cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a ``.txt`` file (one a line, ``#`` comments) or ``.jsonl`` (key ``prompt``)."""
    p = Path(path)
    if not p.is_file():
        raise XSteerError(f"prompt file not found: {p}")
    lines = p.read_text(encoding="utf-8").splitlines()
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        out = []
        for n, line in enumerate(lines, 1):
            if line.strip():
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
                    raise XSteerError(f"{p}, line {n}: expected an object with a 'prompt' string")
                out.append(obj["prompt"])
    else:
        out = [s for line in lines if (s := line.strip()) and not s.startswith("#")]
    if not out:
        raise XSteerError(f"{p}: no prompts")
    return out


def _first(output: Any) -> tuple[np.ndarray, bool]:
    """The first sample of a pipeline output as a numpy array, and whether it is a video."""
    if hasattr(output, "frames"):
        arr, video = output.frames, True
    elif hasattr(output, "images"):
        arr, video = output.images, False
    else:
        raise XSteerError(f"pipeline output {type(output).__name__} has neither images nor frames")
    if isinstance(arr, torch.Tensor):
        arr = arr.float().cpu().numpy()
    sample = np.asarray(arr[0])
    if video and sample.ndim == 4 and sample.shape[1] in (1, 3) and sample.shape[-1] not in (1, 3):
        sample = sample.transpose(0, 2, 3, 1)  # (F, C, H, W) -> (F, H, W, C)
    return sample, video


def _jsonable(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if isinstance(v, (str, int, float, bool, type(None)))}


def generate_samples(pipe: Any, steerer: Steerer, prompts: Sequence[str], out_dir: str | Path, *,
                     seed: int = 0, steps: int | None = None, compare: bool = False,
                     branch: str = DEFAULT_BRANCH, call_kwargs: dict[str, Any] | None = None,
                     pipeline_id: str = "", fps: int = 8) -> list[dict[str, Any]]:
    """Generate one steered sample per prompt (and its unsteered twin with ``compare``)."""
    from xsteer import __version__

    out = Path(out_dir)
    kw = dict(call_kwargs or {})
    kw["output_type"] = "np"
    if steps is not None:
        kw["num_inference_steps"] = steps
    bound = steerer.binding(pipe)
    fam = steerer.family(pipe)
    manifests = []
    for i, prompt in enumerate(prompts):
        folder = out / f"{i:04d}"
        s = seed + i
        t0 = time.perf_counter()
        res = steerer.generate(pipe, prompt, branch=branch,
                               generator=torch.Generator("cpu").manual_seed(s), **kw)
        timings = {"steered_s": time.perf_counter() - t0}
        steered, video = _first(res.output)
        files = {"steered": save_media(folder, "steered", steered, fps)}
        if compare:
            t0 = time.perf_counter()
            plain = pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(s), **kw)
            timings["unsteered_s"] = time.perf_counter() - t0
            unsteered, _ = _first(plain)
            files["unsteered"] = save_media(folder, "unsteered", unsteered, fps)
            grid = side_by_side(unsteered, steered)
            files["compare"] = save_media(folder, "compare", grid, fps)
            if video:  # a still to glance at: the middle frame, unsteered | steered
                files["compare"]["png"] = str(save_png(folder / "compare.png",
                                                       grid[len(grid) // 2]))
        gate = {site: {cat: bool(v[0]) for cat, v in cats.items()}
                for site, cats in res.decisions().items()}
        manifest = {
            "format_version": MANIFEST_VERSION, "xsteer_version": __version__,
            "created_at": now_iso(), "pipeline": pipeline_id,
            "pipeline_class": type(pipe).__name__, "family": fam.name, "video": video,
            "prompt": prompt, "seed": s, "steps": steps, "branch": branch,
            "mode": steerer.mode, "strength": steerer.strength,
            "sites": {b.site.name: {"component": b.site.component, "output": b.site.output,
                                    "kind": b.site.kind, "mode": b.steering.mode,
                                    "strength": b.steering.strength,
                                    "categories": b.steering.active_categories(), **b.check}
                      for b in bound},
            "gate": gate, "steered": {site: any(c.values()) for site, c in gate.items()},
            "decided_by": steerer.combine if steerer.mode == "gated" else None,
            "source_gate": None if steerer.source_gate is None else {
                "model_id": steerer.source_gate.encoder.model_id,
                "layers": list(steerer.source_gate.probe.layers),
                "threshold": steerer.source_gate.probe.threshold_},
            "call_kwargs": _jsonable(kw), "timings": timings, "files": files,
        }
        atomic_write_json(folder / "manifest.json", manifest)
        manifests.append(manifest)
    return manifests
