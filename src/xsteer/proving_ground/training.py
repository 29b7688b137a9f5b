"""Training the proving-ground generator: cached renders + token states, resumable checkpoints.

`build_dataset` renders scenes and encodes their captions once (cached on disk by content hash);
`train` runs the denoising loss with AdamW, an EMA of the weights (what gets saved and sampled),
classifier-free-guidance caption dropout, a tqdm bar, and a checkpoint every ``save_every`` steps
from which a rerun resumes. Everything is safetensors + JSON.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xsteer.errors import XSteerError
from xsteer.io import atomic_path, atomic_write_json, hash_texts
from xsteer.proving_ground.captions import sample_dataset
from xsteer.proving_ground.text import TokenEncoder, encode
from xsteer.proving_ground.world import render_batch


@dataclass(frozen=True)
class DataSpec:
    """What the training renders and token states are made at (part of the data cache key)."""

    max_length: int = 32
    size: int = 32
    frames: int = 0  # 0: images; >= 1: clips of this many frames
    encoder_layer: int | None = None

    @property
    def video(self) -> bool:
        return self.frames > 0


@dataclass
class Dataset:
    """Training tensors: images ``(n,3,H,W)`` or clips ``(n,3,T,H,W)`` uint8, states, masks."""

    images: torch.Tensor
    states: torch.Tensor
    mask: torch.Tensor
    texts: list[str]
    null_states: torch.Tensor
    null_mask: torch.Tensor


def build_dataset(encoder: TokenEncoder, n: int, seed: int, cfg: DataSpec,
                  cache: Path | None = None, progress: bool = True,
                  canonical: bool = True) -> Dataset:
    """Render ``n`` scenes and encode their captions (reading/writing ``cache`` if given).

    ``canonical`` renders every object exactly in its slot (`Scene.canonical`): the captions do
    not say where an object sits to the pixel or which way it moves, and a small generator
    trained on such unstated jitter learns blurred averages of it (seen on the earliest UNet generator).
    """
    from safetensors.torch import load_file, save_file

    scenes, texts = sample_dataset(n, seed, motion=cfg.video)
    if canonical:
        scenes = [s.canonical() for s in scenes]
    key = hash_texts([encoder.model_id, str(cfg.encoder_layer), str(cfg.max_length),
                      str(cfg.size), str(cfg.frames), "canonical" if canonical else "jitter",
                      *texts])[:16]
    path = cache / f"data-{key}.safetensors" if cache is not None else None
    if path is not None and path.is_file():
        t = load_file(str(path))
        return Dataset(t["images"], t["states"], t["mask"].bool(), texts, t["null_states"],
                       t["null_mask"].bool())
    images = torch.from_numpy(render_batch(scenes, cfg.size, cfg.frames)).contiguous()
    states, mask = encode(encoder, texts, cfg.max_length, cfg.encoder_layer, progress)
    ns, nm = encode(encoder, [""], cfg.max_length, cfg.encoder_layer)
    ds = Dataset(images, states.half().contiguous(), mask, texts, ns.contiguous(), nm)
    if path is not None:
        with atomic_path(path) as tmp:
            save_file({"images": images, "states": ds.states, "mask": mask.to(torch.uint8),
                       "null_states": ns, "null_mask": nm.to(torch.uint8)}, str(tmp))
    return ds


def _ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
            else:
                ema[k].copy_(v)


def denoiser_of(gen: Any) -> torch.nn.Module:
    """The trained network: a `ProvingGroundPipeline`'s transformer, else its UNet."""
    net = getattr(gen, "transformer", None)
    return net if isinstance(net, torch.nn.Module) else gen.unet


def _save_checkpoint(ckpt: Path, gen: Any, ema: dict[str, torch.Tensor],
                     opt: torch.optim.Optimizer, step: int, losses: list[float],
                     seconds: float) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.contiguous() for k, v in denoiser_of(gen).state_dict().items()}
    tensors.update({f"ema.{k}": v.contiguous() for k, v in ema.items()})
    for i, st in enumerate(opt.state_dict()["state"].values()):
        for name in ("exp_avg", "exp_avg_sq", "step"):
            if name in st:
                tensors[f"opt.{i}.{name}"] = torch.as_tensor(st[name]).float().contiguous()
    ckpt.mkdir(parents=True, exist_ok=True)
    with atomic_path(ckpt / "checkpoint.safetensors") as tmp:
        save_file(tensors, str(tmp))
    atomic_write_json(ckpt / "checkpoint.json", {"step": step, "losses": losses[-2000:],
                                               "seconds": seconds})


def _load_checkpoint(ckpt: Path, gen: Any, ema: dict[str, torch.Tensor],
                     opt: torch.optim.Optimizer) -> tuple[int, list[float], float]:
    from safetensors.torch import load_file

    if not (ckpt / "checkpoint.json").is_file():
        return 0, [], 0.0
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    t = load_file(str(ckpt / "checkpoint.safetensors"))
    denoiser_of(gen).load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    for k in ema:
        ema[k].copy_(t[f"ema.{k}"])
    sd = opt.state_dict()
    params = sd["param_groups"][0]["params"]
    sd["state"] = {}
    for i, p in enumerate(params):
        if f"opt.{i}.exp_avg" in t:
            sd["state"][p] = {"step": t[f"opt.{i}.step"].reshape(()),
                              "exp_avg": t[f"opt.{i}.exp_avg"], "exp_avg_sq": t[f"opt.{i}.exp_avg_sq"]}
    opt.load_state_dict(sd)
    return (int(meta["step"]), [float(v) for v in meta["losses"]],
            float(meta.get("seconds", 0.0)))


def train(gen: Any, data: Dataset, steps: int, batch_size: int = 32, lr: float = 1e-3,
          seed: int = 0, ema_decay: float = 0.995, p_uncond: float = 0.1,
          checkpoint_dir: Path | None = None, save_every: int = 100,
          max_minutes: float | None = None, progress: bool = True,
          schedule: str = "constant", frames_per_sample: int | None = None) -> dict[str, Any]:
    """Train ``gen`` (a `ProvingGroundPipeline`, or anything with ``loss`` and a UNet or
    transformer) on ``data`` for ``steps`` (or until ``max_minutes``); return stats.

    ``schedule``: ``constant``, or ``cosine`` (`lr_factor`: a linear warm-up over the first 2%
    of ``steps``, then a cosine down to 10% of ``lr``; a function of the step, so a resumed run
    continues it). ``frames_per_sample``: on clip data, train on a random window of this many
    consecutive frames of each clip (1: the clips' frames as single images, as Wan trains on
    images and videos jointly).
    The EMA weights are loaded into the denoiser at the end. With ``checkpoint_dir`` an
    interrupted run resumes from its last checkpoint.
    """
    if len(data.images) == 0:
        raise XSteerError("training needs a non-empty data set")
    unet = denoiser_of(gen)
    unet.train()
    # frozen parameters (e.g. the image layers of an inflated T2V UNet) are left out
    params = [p for p in unet.parameters() if p.requires_grad]
    if not params:
        raise XSteerError("every parameter of the denoiser is frozen: nothing to train")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    start, losses, before = (_load_checkpoint(checkpoint_dir, gen, ema, opt)
                             if checkpoint_dir is not None else (0, [], 0.0))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s + start, steps, schedule))
    g = torch.Generator().manual_seed(seed + start)
    t0 = time.monotonic()
    bar = tqdm(total=steps, initial=start, desc="train generator", disable=not progress)
    step = start
    ns = data.null_states.to(data.states.dtype)
    while step < steps:
        idx = torch.randint(0, len(data.images), (batch_size,), generator=g)
        x = data.images[idx]
        if frames_per_sample is not None and x.ndim == 5:
            first = torch.randint(0, x.shape[2] - frames_per_sample + 1, (len(x),), generator=g)
            x = torch.stack([c[:, int(t):int(t) + frames_per_sample]
                             for c, t in zip(x, first, strict=True)])
        x = x.float() / 127.5 - 1.0
        E, M = data.states[idx].clone(), data.mask[idx].clone()
        drop = torch.rand(batch_size, generator=g) < p_uncond
        E[drop], M[drop] = ns[0], data.null_mask[0]
        loss = gen.loss(x, E.float(), M, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        # warm the EMA up: early on, averaging in random weights would only hurt
        _ema_update(ema, unet, min(ema_decay, (1 + step) / (10 + step)))
        step += 1
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        cut = max_minutes is not None and time.monotonic() - t0 > 60 * max_minutes
        done = step >= steps or cut
        if checkpoint_dir is not None and (step % save_every == 0 or done):
            _save_checkpoint(checkpoint_dir, gen, ema, opt, step, losses,
                             before + time.monotonic() - t0)
        if done:
            break
    bar.close()
    unet.load_state_dict(ema)
    unet.eval()
    # a run stopped by the wall-time cap is a different model than the one asked for: the
    # record says so, and the CLI warns
    return {"steps": step, "steps_planned": steps, "cut_by_minutes": step < steps,
            "max_minutes": max_minutes, "batch_size": batch_size, "lr": lr, "seconds": before + time.monotonic() - t0,
            "loss_first50": _mean(losses[:50]), "loss_last50": _mean(losses[-50:]),
            "n_train": len(data.images)}


SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, total: int, schedule: str = "constant") -> float:
    """The learning-rate multiplier at ``step`` of ``total``.

    >>> lr_factor(0, 100, "constant"), round(lr_factor(100, 100, "cosine"), 3)
    (1.0, 0.1)
    """
    if schedule not in SCHEDULES:
        raise XSteerError(f"unknown lr schedule {schedule!r}; known: {SCHEDULES}")
    if schedule == "constant":
        return 1.0
    warm = max(1, total // 50)
    if step < warm:
        return (step + 1) / warm
    frac = min(1.0, (step - warm) / max(1, total - warm))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else float("nan")


TRAIN_RECORD = "proving_ground_training.json"


def check_training_args(*, steps: int, schedule: str, lr: float, batch_size: int | None,
                        n_train: int | None, image_steps: int = 0,
                        minutes: float | None = None) -> None:
    """Refuse training arguments that cannot work, before a checkpoint or model is touched."""
    if steps < 1:
        raise XSteerError(f"--steps must be at least 1, got {steps}")
    if image_steps < 0:
        raise XSteerError(f"--image-steps must be 0 or more, got {image_steps}")
    if schedule not in SCHEDULES:
        raise XSteerError(f"unknown lr schedule {schedule!r}; known: {SCHEDULES}")
    if not (math.isfinite(lr) and lr > 0):
        raise XSteerError(f"--lr must be a positive number, got {lr}")
    for name, v in (("--batch-size", batch_size), ("--n-train", n_train)):
        if v is not None and v < 1:
            raise XSteerError(f"{name} must be at least 1, got {v}")
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise XSteerError(f"--minutes must be a positive number, got {minutes}")


@contextlib.contextmanager
def fresh_checkpoint(ckpt: Path, fresh: bool) -> Iterator[Path]:
    """The checkpoint folder a run trains in. Resuming: ``ckpt`` itself. ``fresh``: a new
    folder beside it, swapped in only when training ends, so a run that fails or is stopped
    leaves the old checkpoint whole (and the next ``--fresh`` clears its leftovers)."""
    if not fresh:
        yield ckpt
        return
    new = ckpt.parent / (ckpt.name + ".fresh")
    if new.exists():
        shutil.rmtree(new)
    yield new
    new.mkdir(parents=True, exist_ok=True)
    from xsteer.io import staged_folder

    with staged_folder(ckpt) as tmp:
        tmp.rmdir()
        os.rename(new, tmp)


def train_pipeline(arch: str, encoder: str, out: Path | None, *, steps: int,
                   minutes: float | None, n_train: int | None, batch_size: int | None,
                   lr: float, frames: int, hidden: int, heads: int, double_layers: int,
                   single_layers: int, schedule: str, seed: int, threads: int,
                   fresh: bool, image_steps: int = 0) -> tuple[Path, dict[str, Any]]:
    """Build (or resume) a `ProvingGroundPipeline` with an ``arch`` denoiser over the real
    ``encoder``, train it on canonical renders, save it to ``out``; returns (folder, stats).

    ``image_steps`` (clips only): first train that many steps on single frames of the clips
    (batch 32), then ``steps`` on whole clips.

    The folder is a diffusers pipeline folder (``model_index.json``, safetensors); the training
    record goes beside it in ``proving_ground_training.json``. Every argument is checked before
    anything on disk changes; the folder and (``fresh``) the checkpoint are swapped in whole.
    """
    from xsteer.proving_ground.denoisers import DenoiserConfig
    from xsteer.proving_ground.text import proving_ground_dir

    dcfg = DenoiserConfig(arch=arch, hidden=hidden, heads=heads, double_layers=double_layers,
                          single_layers=single_layers, num_frames=frames)
    check_training_args(steps=steps, schedule=schedule, lr=lr, batch_size=batch_size,
                        n_train=n_train, image_steps=image_steps, minutes=minutes)
    if image_steps and not frames:
        raise XSteerError("--image-steps is for clip denoisers (wan): an image one trains "
                          "on images already")
    root = proving_ground_dir()
    short = "gemma" if "gemma" in encoder.lower() else "minilm"
    target = out or root / f"{arch}-{short}"
    with fresh_checkpoint(target.parent / (target.name + ".checkpoint"), fresh) as ckpt:
        stats = _train_pipeline(dcfg, encoder, target, ckpt, root, steps=steps, minutes=minutes,
                                n_train=n_train, batch_size=batch_size, lr=lr,
                                schedule=schedule, seed=seed, threads=threads,
                                image_steps=image_steps)
    return target, stats


def cut_warnings(stats: dict[str, Any], minutes: float | None) -> list[str]:
    """One line per stage of a `train_pipeline` run (the image stage, then the clips) that
    ``minutes`` stopped before its planned steps: such a model is not the one the full run gives."""
    return [f"WARNING: --minutes {minutes:g} stopped training after {stage['steps']} of "
            f"{stage['steps_planned']} steps; this is not the model a "
            f"{stage['steps_planned']}-step run gives (recorded as cut_by_minutes in the "
            "training record)"
            for stage in (stats, stats.get("image_stage") or {}) if stage.get("cut_by_minutes")]


def _train_pipeline(dcfg: Any, encoder: str, target: Path, ckpt: Path, root: Path, *,
                    steps: int, minutes: float | None, n_train: int | None,
                    batch_size: int | None, lr: float, schedule: str, seed: int, threads: int,
                    image_steps: int) -> dict[str, Any]:
    from xsteer.io import atomic_write_json, staged_folder
    from xsteer.proving_ground.denoisers import load_text_encoder, make_pipeline
    from xsteer.proving_ground.text import PipelineTokens

    frames = dcfg.num_frames
    tokenizer, text_encoder, model_id = load_text_encoder(encoder)
    pipe = make_pipeline(tokenizer, text_encoder, dcfg, seed=seed)
    gcfg = DataSpec(max_length=dcfg.max_length, size=dcfg.sample_size, frames=frames)
    n = n_train or (4000 if frames else 6000)
    data = build_dataset(PipelineTokens(pipe, model_id), n, seed, gcfg, cache=root / "cache")
    image_stage: dict[str, Any] | None = None
    if image_steps:
        # Wan's recipe: images (one-frame clips) and videos train the same transformer. The
        # single frames are 4x cheaper than 4-frame clips and teach what each object looks like
        # before the clips teach how it moves.
        image_stage = train(pipe, data, image_steps, batch_size=32, lr=lr, seed=seed,
                            checkpoint_dir=ckpt / "images", max_minutes=minutes,
                            schedule=schedule, frames_per_sample=1)
        ckpt = ckpt / "clips"
    stats = train(pipe, data, steps, batch_size=batch_size or (16 if frames else 32), lr=lr,
                  seed=seed, checkpoint_dir=ckpt, max_minutes=minutes, schedule=schedule)
    if image_stage is not None:
        stats = {**stats, "image_stage": image_stage,
                 "seconds": stats["seconds"] + image_stage["seconds"]}
    with staged_folder(target) as tmp:  # the old pipeline stays whole until the new is written
        pipe.save_pretrained(tmp, safe_serialization=True)
        atomic_write_json(tmp / TRAIN_RECORD, {
            "denoiser": dcfg.to_dict(), "encoder": encoder, "encoder_model_id": model_id,
            "parameters": sum(p.numel() for p in denoiser_of(pipe).parameters()),
            "objective": "flow matching (logit-normal sigma, velocity target)",
            "layout": "canonical", "seed": seed, "threads": threads, "n_train": n,
            "schedule": schedule, **stats})
    return stats
