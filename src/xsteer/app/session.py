"""What the page does for one request, without the page: unsteered and steered outputs from one
seed, the difference, and each category's gate score and decision.

Every request builds its own `Steerer` from the adapter with that request's strength and operator
and goes through `Adapter.generate` (the ``prompt_embeds`` path: the encode holds the pipeline's
encode lock and the hooks are scoped to the request's thread), so concurrent users never see each
other's settings. The unsteered output takes the same path at strength 0, so the two differ by the
steering alone.

>>> s = AppSession.default()                                    # doctest: +SKIP
>>> r = s.run("a calm lake at dawn", seed=0)                    # doctest: +SKIP
>>> r.fired, r.rows[0]                                          # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsteer.errors import XSteerError
from xsteer.pipelines.adapter import Adapter
from xsteer.pipelines.media import to_uint8

DISPLAY = 256  # outputs are upscaled (nearest) to at least this many pixels for the page
PG_NAME = "mmdit-minilm"


@dataclass
class Result:
    """One request's outputs: uint8 images (a clip: its frames), decisions and timing."""

    unsteered: np.ndarray
    steered: np.ndarray
    difference: np.ndarray
    rows: list[list[Any]]
    fired: bool
    max_abs_diff: float
    seconds: float
    video: bool = False
    decisions: dict[str, bool] = field(default_factory=dict)


def _first(output: Any) -> tuple[np.ndarray, bool]:
    if hasattr(output, "frames"):
        return np.asarray(output.frames[0], dtype=np.float32), True
    return np.asarray(output.images[0], dtype=np.float32), False


def upscale(img: np.ndarray, at_least: int = DISPLAY) -> np.ndarray:
    """Nearest-neighbour upscale of ``(..., H, W, C)`` uint8 so the short side is >= ``at_least``
    (the proving ground draws 32-pixel images; pixels stay visible as pixels)."""
    k = max(1, -(-at_least // min(img.shape[-3], img.shape[-2])))
    return img.repeat(k, axis=-3).repeat(k, axis=-2)


def difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """``|a - b|`` scaled so its largest value is white (black: identical), and that largest
    value in [0, 1] units."""
    d = np.abs(a.astype(np.float32) - b.astype(np.float32))
    top = float(d.max())
    return (d / top if top > 0 else d), top


class AppSession:
    """A pipeline and an adapter, and how to serve one request with them.

    Attributes:
        pipe, adapter: what runs.
        describe: a line for the page saying which pipeline and adapter these are.
        steps: denoising steps per image.
    """

    def __init__(self, pipe: Any, adapter: Adapter, describe: str = "", steps: int = 8,
                 force: bool = False) -> None:
        adapter.check(pipe, force)
        self.pipe, self.adapter, self.describe = pipe, adapter, describe
        self.steps, self.force = int(steps), bool(force)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        self.op = adapter.operator

    @classmethod
    def default(cls, steps: int = 8) -> AppSession:
        """The proving-ground MMDiT from the cache with its packed adapter when they are there,
        else the tiny seeded MMDiT with a native demo adapter (the description says which)."""
        from xsteer.adapter.native import NATIVE_NOTE, native_adapter
        from xsteer.pipelines.adapter import load_adapter
        from xsteer.proving_ground.text import proving_ground_dir

        root = proving_ground_dir()
        folder, packed = root / PG_NAME, root / f"adapter-{PG_NAME}"
        if (folder / "model_index.json").is_file():
            from xsteer.pipelines.generate import load_pipeline

            pipe = load_pipeline(str(folder))
            what = f"the proving-ground MMDiT ({folder})"
        else:
            from xsteer.proving_ground.denoisers import tiny_pipeline

            pipe = tiny_pipeline("mmdit")
            what = (f"a tiny seeded MMDiT with random weights (no trained proving-ground "
                    f"pipeline at {folder}: `make pg-mmdit` trains it); its images are noise")
        if (packed / "adapter.json").is_file() and (folder / "model_index.json").is_file():
            adapter = load_adapter(packed)
            how = f"adapter {adapter.name!r} from {packed}"
        else:
            adapter = native_adapter(pipe, pipeline_id=str(folder) if folder.is_dir() else None)
            how = f"{NATIVE_NOTE} (no packed adapter at {packed}: `make pg-adapter` makes one)"
        return cls(pipe, adapter, f"Pipeline: {what}. Adapter: {how}.", steps=steps)

    @classmethod
    def load(cls, pipeline: str, adapter: str | Path | None, *, steps: int = 8,
             force: bool = False, dtype: str = "float32", device: str = "cpu") -> AppSession:
        """A pipeline by alias, Hub id or folder and an adapter folder or Hub id (None: a native
        demo adapter for that pipeline)."""
        from xsteer.pipelines.adapter import load_adapter
        from xsteer.pipelines.generate import load_pipeline

        pipe = load_pipeline(pipeline, dtype=dtype, device=device, safety_checker=False)
        if adapter is None:
            from xsteer.adapter.native import NATIVE_NOTE, native_adapter

            ad, how = native_adapter(pipe), NATIVE_NOTE
        else:
            ad = load_adapter(adapter)
            how = f"adapter {ad.name!r} from {adapter}"
        return cls(pipe, ad, f"Pipeline: {pipeline}. Adapter: {how}.", steps=steps, force=force)

    # -- one request ------------------------------------------------------------------------------
    def _generate(self, prompt: str, seed: int, over: dict[str, Any]) -> Any:
        return self.adapter.generate(self.pipe, prompt, force=self.force, steering=over,
                                     num_inference_steps=self.steps, output_type="np",
                                     generator=torch.Generator("cpu").manual_seed(int(seed)))

    def run(self, prompt: str, seed: int = 0, strength: float | None = None,
            mode: str | None = None, inner: str | None = None) -> Result:
        """Unsteered and steered outputs of ``prompt`` from ``seed``, the gate table, timing."""
        if not prompt or not prompt.strip():
            raise XSteerError("type a prompt")
        t0 = time.perf_counter()
        over: dict[str, Any] = {}
        for key, val in (("strength", strength), ("mode", mode), ("inner", inner)):
            if val is not None:
                over[key] = float(val) if key == "strength" else str(val)
        plain = self._generate(prompt, seed, {**over, "strength": 0.0})
        res = self._generate(prompt, seed, over)
        a, video = _first(plain.output)
        b, _ = _first(res.output)
        diff, top = difference(a, b)
        decided = {c: bool(v[0]) for site in res.decisions().values() for c, v in site.items()}
        scores = self.adapter.scores(self.pipe, [prompt], steering=over)[0]["categories"]
        rows = [[c, _num(s["score"]), _num(s["threshold"]), _num(s["source_score"]),
                 "steered" if decided.get(c) else "not steered"] for c, s in scores.items()]
        return Result(unsteered=upscale(to_uint8(a)), steered=upscale(to_uint8(b)),
                      difference=upscale(to_uint8(diff)), rows=rows, fired=any(decided.values()),
                      max_abs_diff=top, seconds=time.perf_counter() - t0, video=video,
                      decisions=decided)


def _num(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
