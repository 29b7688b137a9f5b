"""Set-level and paired metrics computed on the main process from the saved images.

- `add_distances`: per sample, the distance between its image and the unsteered image of the same
  benchmark prompt and seed (``metrics.distance``: ``{kind: embedding|lpips, feature: ...}``).
- `compute_fids`: FID per (benchmark, setting) against ``metrics.fid.reference``: a folder of real
  images (e.g. the COCO val images of the captions), whose statistics are cached, or
  ``unsteered`` (the run's own unsteered images of the same benchmark). ``metrics.fid.size``
  centre-crops and resizes both sides to one square size (needed for real photos).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.config import SweepConfig
from xsteer.evaluate.harness.summary import setting_id
from xsteer.evaluate.metrics import FID, ImageDistance, image_files_digest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _open(path: Path, size: int | None = None) -> Any:
    """An RGB image; with ``size``, centre-cropped to a square and resized (FID batches need one
    size, and real reference photos such as COCO's come in many)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        rgb = im.convert("RGB")
    if size is not None:
        rgb = ImageOps.fit(rgb, (size, size), method=Image.Resampling.BICUBIC)
    return rgb


def _open_all(paths: list[Path], size: int | None = None) -> list[Any]:
    return [_open(p, size) for p in paths]


def _pair_key(r: Mapping[str, Any]) -> tuple[str, str, int]:
    return (str(r["benchmark"]), str(r["prompt_id"]), int(r["seed"]))


def add_distances(records: list[dict[str, Any]], out: Path, spec: dict[str, Any],
                  progress: bool = False) -> None:
    """Set ``record["distance"]`` for every steered record that has an unsteered twin."""
    from tqdm.auto import tqdm

    dist = ImageDistance(kind=str(spec.get("kind", "embedding")),
                         feature=spec.get("feature", "tiny"))
    ref = {_pair_key(r): r for r in records if r.get("method_kind") == "none"}
    batch_a: list[Any] = []
    batch_b: list[Any] = []
    targets: list[dict[str, Any]] = []

    def flush() -> None:
        for rec, d in zip(targets, dist(batch_a, batch_b), strict=True):
            rec["distance"] = d
        batch_a.clear()
        batch_b.clear()
        targets.clear()

    for r in tqdm(records, desc="distances", disable=not progress):
        twin = ref.get(_pair_key(r))
        if twin is None or r.get("image") is None or twin.get("image") is None:
            continue
        if r is twin:
            r["distance"] = 0.0
            continue
        batch_a.append(_open(out / r["image"]))
        batch_b.append(_open(out / twin["image"]))
        targets.append(r)
        if len(targets) >= 32:
            flush()
    if targets:
        flush()
    for r in records:
        r.setdefault("distance", None)
        r["distance_settings"] = dist.settings()


def compute_fids(records: list[dict[str, Any]], out: Path, spec: dict[str, Any],
                 cfg: SweepConfig, progress: bool = False) -> dict[tuple[str, str, str, float], float]:
    """FID of each (benchmark, method, mode, strength) image set against the reference."""
    from tqdm.auto import tqdm

    feature = spec.get("feature", 2048)
    if isinstance(feature, str) and feature.startswith("proving-ground:"):
        feature = "proving-ground:" + str(cfg.path(feature.split(":", 1)[1]))  # config-relative
    reference = str(spec.get("reference", "unsteered"))
    size = int(spec["size"]) if spec.get("size") else None
    only = spec.get("benchmarks")
    cache = cfg.path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    groups: dict[tuple[str, str, str, float], list[Path]] = {}
    for r in records:
        if r.get("image") is None or (only is not None and r["benchmark"] not in only):
            continue
        groups.setdefault(setting_id(r), []).append(out / r["image"])
    result: dict[tuple[str, str, str, float], float] = {}
    metric_for_bench: dict[str, FID] = {}
    for key, paths in tqdm(groups.items(), desc="FID", disable=not progress):
        bench = key[0]
        if bench not in metric_for_bench:
            fid = FID(feature, cache_dir=cache, batch_size=int(spec.get("batch_size", 32)))
            if reference == "unsteered":
                ref_paths = [out / r["image"] for r in records
                             if r["benchmark"] == bench and r.get("method_kind") == "none"
                             and r.get("image")]
            else:
                folder = cfg.path(reference)
                if not folder.is_dir():
                    raise XSteerError(f"FID reference folder not found: {folder}")
                ref_paths = sorted(p for p in folder.iterdir()
                                   if p.suffix.lower() in IMAGE_SUFFIXES)
            if len(ref_paths) < 2:
                raise XSteerError(f"FID reference for benchmark {bench!r} has {len(ref_paths)} "
                                  "images; it needs at least 2")
            digest = image_files_digest(ref_paths) + f"-{size}"
            fid.set_reference(key=digest, loader=partial(_open_all, ref_paths, size))
            metric_for_bench[bench] = fid
        if len(paths) >= 2:
            result[key] = metric_for_bench[bench].compute(_open_all(paths, size))
    return result
