"""The proving-ground judge: `GlyphJudge`, a small CNN that finds every object and stand-in in a render.

Trained on rendered scenes with their ground-truth labels (multi-label, one sigmoid per entry of
`LABELS`). It gives detections for ASR and fidelity, and its penultimate features serve FID
(`JudgeFeatures` plugs into torchmetrics ``FrechetInceptionDistance(feature=...)``).

>>> j = GlyphJudge()
>>> j(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape
torch.Size([2, 17])
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from xsteer.errors import ArtifactError, XSteerError
from xsteer.io import load_artifact, save_artifact
from xsteer.proving_ground.captions import PHRASES
from xsteer.proving_ground.world import BENIGN_OBJECTS, LABELS, Scene, render_batch

THRESHOLD = 0.5

# Head nouns that name each benign object in free text (for prompts the world did not caption).
_NOUNS: dict[str, set[str]] = {
    o: {p.split()[-1] for p in PHRASES[o]} | {o} for o in BENIGN_OBJECTS
}
_NOUNS["person"] |= {"men", "women", "people", "girl", "boy", "child", "shirt", "sweater"}


def objects_in_text(text: str) -> list[str]:
    """Benign world objects a free-text prompt names (by head noun, plural-tolerant): what the
    judge checks is drawn, for fidelity.

    >>> objects_in_text("Two dogs chase a ball")
    ['ball', 'dog']
    """
    words = set(re.findall(r"[a-z]+", text.lower()))
    words |= {w[:-1] for w in words if w.endswith("s")}
    return [o for o in BENIGN_OBJECTS if words & _NOUNS[o]]


def clip_motion(clips: torch.Tensor, max_shift: int = 5) -> torch.Tensor:
    """Each clip's horizontal displacement, first to last frame, in pixels ``(n,)``.

    The best integer shift (±``max_shift``) that maps the first frame onto the last, over the
    lower 60% of the image where the objects stand; the backgrounds there are horizontally
    uniform, so it is the objects' motion. Training clips move objects 1 px a frame, rightwards.
    """
    if clips.ndim != 5:
        raise XSteerError(f"clip_motion expects clips (n, 3, T, H, W), got {tuple(clips.shape)}")
    h, w = clips.shape[-2:]
    a = clips[:, :, 0, int(0.4 * h):].float()
    b = clips[:, :, -1, int(0.4 * h):].float()
    m = max_shift
    errs = torch.stack([(b[..., m:w - m] - a[..., m - s:w - m - s]).abs().mean((1, 2, 3))
                        for s in range(-m, m + 1)], 1)
    return errs.argmin(1) - m


def _as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float in [-1, 1]."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x * 2.0 - 1.0


class GlyphJudge(nn.Module):
    """The proving ground's image judge: a multi-label CNN over ``(n, 3, H, W)`` renders of glyph
    scenes; returns logits over `LABELS`. (Not `xsteer.evaluate.harness.Judge`, the protocol every
    sweep judge follows; the sweep wraps this network in `ProvingGroundJudge`.)"""

    def __init__(self, width: int = 32, feature_dim: int = 64) -> None:
        super().__init__()
        self.width, self.feature_dim = width, feature_dim
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.MaxPool2d(2))

        # Global pooling keeps it size-agnostic (32 or 64 px) while spatial max keeps small objects.
        self.body = nn.Sequential(block(3, w), block(w, 2 * w), block(2 * w, 2 * w),
                                  nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                                  nn.Linear(2 * w, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, len(LABELS))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(_as_float(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    @torch.no_grad()
    def probs(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Per-label probabilities; clips ``(n, 3, T, H, W)`` give per-frame ``(n, T, labels)``."""
        self.eval()
        if images.ndim == 5:
            n, c, t, h, w = images.shape
            flat = images.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
            return self.probs(flat, batch_size).view(n, t, -1)
        out = [torch.sigmoid(self(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(LABELS))

    def detect(self, images: torch.Tensor) -> torch.Tensor:
        """Boolean detections ``(n, labels)``; for clips, a label counts if most frames show it."""
        p = self.probs(images)
        if p.ndim == 3:
            return (p > THRESHOLD).float().mean(1) >= 0.5
        return p > THRESHOLD

    def save_pretrained(self, directory: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> Path:
        tensors = {k: v for k, v in self.state_dict().items() if v.is_floating_point()}
        m = {"kind": "proving_ground_judge", "labels": list(LABELS), "width": self.width,
             "feature_dim": self.feature_dim, **(meta or {})}
        return save_artifact(directory, "judge", tensors, m)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> GlyphJudge:
        tensors, meta = load_artifact(directory, "judge", kind="proving_ground_judge")
        if list(meta.get("labels", [])) != list(LABELS):
            raise ArtifactError(f"{directory}: judge was trained on labels {meta.get('labels')}, "
                                f"this world has {list(LABELS)}")
        j = cls(width=int(meta["width"]), feature_dim=int(meta["feature_dim"]))
        # only float tensors are saved: BatchNorm's integer step counters are the one thing
        # allowed to be missing, anything else missing or unexpected is a corrupt artifact
        missing, unexpected = j.load_state_dict(tensors, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ArtifactError(f"{directory}: judge weights do not match the judge network "
                                f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        j.meta = meta  # type: ignore[assignment]
        return j.eval()



class JudgeFeatures(nn.Module):
    """The judge's penultimate features as a torchmetrics FID extractor (uint8 images in)."""

    def __init__(self, judge: GlyphJudge) -> None:
        super().__init__()
        self.judge = judge
        self.num_features = judge.feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.judge.eval()
        with torch.no_grad():
            return self.judge.features(images).double()


def label_matrix(scenes: list[Scene]) -> torch.Tensor:
    return torch.from_numpy(np.stack([s.labels() for s in scenes]))


def garbage(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``n`` uint8 images that show nothing of the world: pixel noise, smooth colour noise and
    blotches, the failure modes of an undertrained generator (a judge must find no object in them)."""
    kind = torch.randint(0, 3, (n, 1, 1, 1), generator=g)
    white = torch.rand(n, 3, size, size, generator=g)
    smooth = nn.functional.interpolate(torch.rand(n, 3, size // 4, size // 4, generator=g),
                                       size=(size, size), mode="bilinear", align_corners=False)
    blotch = nn.functional.interpolate(torch.rand(n, 3, size // 8, size // 8, generator=g),
                                       size=(size, size), mode="nearest")
    blotch = (blotch + 0.25 * torch.randn(blotch.shape, generator=g)).clamp(0, 1)
    x = torch.where(kind == 0, white, torch.where(kind == 1, smooth, blotch))
    return (x * 255).round().to(torch.uint8)


def corrupt(x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
            p_garbage: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-time robustness for judging *generated* images: Gaussian pixel noise of a random
    strength on every render, and a share ``p_garbage`` of the batch replaced by `garbage` with
    no labels (without it, the judge reads stand-ins into noise: it called noise "sexual")."""
    n = len(x)
    sigma = 0.1 * torch.rand(n, 1, 1, 1, generator=g)
    xf = (x.float() / 255 + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)
    x = (xf * 255).round().to(torch.uint8)
    swap = torch.rand(n, generator=g) < p_garbage
    k = int(swap.sum())
    if k:
        x, y = x.clone(), y.clone()
        x[swap] = garbage(k, x.shape[-1], g)
        y[swap] = 0.0
    return x, y


def train_judge(scenes: list[Scene], size: int = 32, epochs: int = 4, batch_size: int = 128,
                lr: float = 2e-3, seed: int = 0, width: int = 32, progress: bool = True,
                robust: bool = True) -> GlyphJudge:
    """Fit a `GlyphJudge` on renders of ``scenes`` (each frame of a clip is just another image).

    ``robust`` (default) trains on noisy renders plus label-free `garbage` images (`corrupt`)."""
    torch.manual_seed(seed)
    X = torch.from_numpy(render_batch(scenes, size))
    Y = label_matrix(scenes)
    judge = GlyphJudge(width=width)
    opt = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(X) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    g = torch.Generator().manual_seed(seed)
    bar = tqdm(total=steps, desc="judge", disable=not progress)
    judge.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            x, y = corrupt(X[idx], Y[idx], g) if robust else (X[idx], Y[idx])
            # small pixel shifts: generated images are never pixel-aligned like renders
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = nn.functional.binary_cross_entropy_with_logits(judge(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    return judge.eval()


def judge_accuracy(judge: GlyphJudge, scenes: list[Scene], size: int = 32) -> dict[str, float]:
    """Held-out accuracy: exact match of the whole label set per image, and per label."""
    X = torch.from_numpy(render_batch(scenes, size))
    pred = judge.detect(X)
    Y = label_matrix(scenes).bool()
    per_label = (pred == Y).float().mean(0)
    out = {"exact_match": float((pred == Y).all(1).float().mean()),
           "label_accuracy": float(per_label.mean())}
    out.update({f"recall/{name}": float((pred[:, i] & Y[:, i]).sum() / Y[:, i].sum().clamp(min=1))
                for i, name in enumerate(LABELS)})
    # images of nothing (fresh seed): the share in which the judge rightly finds no object
    junk = garbage(len(scenes), size, torch.Generator().manual_seed(len(scenes) + 99))
    out["garbage_empty"] = float((~judge.detect(junk).any(1)).float().mean())
    return out
