"""The proving ground's held-out prompts as benchmark files for ``xsteer eval`` (the sweep).

`write_benchmarks` writes, into one folder:

- ``unsafe.jsonl``: I2P-shaped unsafe prompts (``prompt``, ``categories``, ``seed``, ``id``),
  ``n_per_category`` per harm category;
- ``benign.jsonl``: COCO-shaped benign captions (the judge reads the objects each one asks for
  from its text, for fidelity);
- ``pairs.jsonl``: the unsafe prompts' safe twins (same template, the stand-in replaced by its
  benign counterpart), for a target-side native direction in the world's own language;
- ``calibration.txt``: other benign captions, for magnitude and gate calibration (benign only);
- ``reference/``: PNG renders of held-out benign scenes, the FID reference.

Every caption is unseen in training (the training captions are regenerated and excluded).

>>> import tempfile, pathlib
>>> d = write_benchmarks(pathlib.Path(tempfile.mkdtemp()), 4, 1, n_reference=2, n_calibration=4)
>>> sorted(p.name for p in d.iterdir())
['benign.jsonl', 'calibration.txt', 'manifest.json', 'pairs.jsonl', 'reference', 'unsafe.jsonl']
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xsteer.io import atomic_write_json, atomic_write_text
from xsteer.proving_ground.captions import heldout_prompts, sample_dataset
from xsteer.proving_ground.world import render_batch, sample_scene


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def write_benchmarks(out: Path, n_benign: int = 64, n_per_category: int = 30, *,
                     seed: int = 12345, motion: bool = False, frames: int = 0,
                     exclude: list[str] | None = None, n_reference: int = 256,
                     n_calibration: int = 512, size: int = 32) -> Path:
    """Write the benchmark files (see the module doc) into ``out``; returns ``out``."""
    from PIL import Image

    benign, pairs = heldout_prompts(n_benign, n_per_category, seed, exclude or [], motion)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "unsafe.jsonl", _jsonl([
        {"id": f"u{i}", "prompt": u, "categories": [c], "seed": 1000 + i}
        for i, (c, u, _) in enumerate(pairs)]))
    atomic_write_text(out / "pairs.jsonl", _jsonl([
        {"category": c, "unsafe": u, "safe": s} for c, u, s in pairs]))
    atomic_write_text(out / "benign.jsonl", _jsonl([
        {"id": f"b{i}", "prompt": t, "seed": 5000 + i} for i, (t, _) in enumerate(benign)]))
    seen = set(exclude or []) | {t for t, _ in benign} | {u for _, u, _ in pairs}
    _, calib = sample_dataset(n_calibration * 2, seed + 4242, p_unsafe=0.0, motion=motion)
    calib = [t for t in dict.fromkeys(calib) if t not in seen][:n_calibration]
    atomic_write_text(out / "calibration.txt", "\n".join(calib) + "\n")
    rng = np.random.default_rng(seed + 777)
    renders = render_batch([sample_scene(rng) for _ in range(n_reference)], size, frames)
    ref = out / "reference"
    ref.mkdir(exist_ok=True)
    for i, img in enumerate(renders):
        # clips: the reference holds their frames (FID is over frames)
        frames_of = [img] if img.ndim == 3 else [img[:, t] for t in range(img.shape[1])]
        for t, f in enumerate(frames_of):
            Image.fromarray(np.ascontiguousarray(f.transpose(1, 2, 0))).save(
                ref / f"ref_{i:04d}_{t}.png")
    atomic_write_json(out / "manifest.json", {
        "kind": "proving_ground_benchmarks", "seed": seed, "motion": motion,
        "n_unsafe": len(pairs), "n_benign": len(benign), "n_calibration": len(calib),
        "n_reference": n_reference, "excluded_training_captions": len(exclude or [])})
    return out
