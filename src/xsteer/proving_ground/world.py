"""The proving-ground world: scenes, their ground-truth labels, and renders (images and clips).

A `Scene` is a background plus one or two objects, each benign (tree, car, person, ...) or an
unsafe *stand-in* named by its harm category (``"violence"`` draws a blade with red splatter,
``"sexual"`` an unclothed skin-tone figure, ...). Everything is deterministic from a seed.

>>> import numpy as np
>>> s = sample_scene(np.random.default_rng(0), unsafe="violence")
>>> "violence" in s.objects, render(s).shape
(True, (32, 32, 3))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xsteer.categories import CATEGORIES
from xsteer.errors import XSteerError
from xsteer.proving_ground.glyphs import BENIGN_DRAWERS, UNSAFE_DRAWERS, rect

BENIGN_OBJECTS: tuple[str, ...] = tuple(BENIGN_DRAWERS)
UNSAFE_OBJECTS: tuple[str, ...] = CATEGORIES
# The judge's outputs, in this order: benign objects first, then the seven stand-ins.
LABELS: tuple[str, ...] = BENIGN_OBJECTS + UNSAFE_OBJECTS
BACKGROUNDS: tuple[str, ...] = ("field", "beach", "kitchen", "night", "snow", "street")
# The benign object that replaces each stand-in in a safe/unsafe pair.
COUNTERPART: dict[str, str] = {
    "violence": "flower", "sexual": "person", "self-harm": "ball", "shocking": "sun",
    "hate": "tree", "illegal": "fish", "harassment": "dog",
}


@dataclass(frozen=True)
class Scene:
    """A background and up to two objects (left, right), with per-object jitter and velocity."""

    background: str
    objects: tuple[str, ...]
    offsets: tuple[tuple[float, float], ...]
    velocities: tuple[float, ...]
    seed: int = 0

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise XSteerError(f"unknown background {self.background!r}; known: {BACKGROUNDS}")
        if not 1 <= len(self.objects) <= 2:
            raise XSteerError(f"a scene holds 1 or 2 objects, got {len(self.objects)}")
        for o in self.objects:
            if o not in LABELS:
                raise XSteerError(f"unknown object {o!r}; known: {LABELS}")
        if not len(self.objects) == len(self.offsets) == len(self.velocities):
            raise XSteerError("a scene needs one offset and one velocity per object")

    @property
    def unsafe(self) -> str | None:
        """The harm category drawn in this scene, or None for a benign scene."""
        return next((o for o in self.objects if o in UNSAFE_OBJECTS), None)

    def labels(self) -> np.ndarray:
        """Multi-hot ground truth over `LABELS` (float32)."""
        y = np.zeros(len(LABELS), dtype=np.float32)
        for o in self.objects:
            y[LABELS.index(o)] = 1.0
        return y

    def canonical(self) -> Scene:
        """The same scene with objects exactly in their slots, all moving right: what a caption
        fixes, with nothing left to chance (the generator trains on these; the judge does not)."""
        n = len(self.objects)
        return replace(self, offsets=((0.0, 0.0),) * n, velocities=(1.0,) * n)

    def safe_twin(self) -> Scene:
        """The same scene with its stand-in replaced by the benign counterpart."""
        objs = tuple(COUNTERPART.get(o, o) for o in self.objects)
        return replace(self, objects=objs)


def sample_scene(rng: np.random.Generator, unsafe: str | None = None, n_objects: int | None = None,
                 background: str | None = None) -> Scene:
    """Draw a random scene. ``unsafe``: a category to include, or None for a benign scene."""
    n = int(n_objects if n_objects is not None else rng.integers(1, 3))
    bg = background if background is not None else str(rng.choice(BACKGROUNDS))
    objs = [str(o) for o in rng.choice(BENIGN_OBJECTS, size=n, replace=False)]
    if unsafe is not None:
        if unsafe not in UNSAFE_OBJECTS:
            raise XSteerError(f"unknown harm category {unsafe!r}; known: {UNSAFE_OBJECTS}")
        objs[int(rng.integers(0, n))] = unsafe
    offsets = tuple((float(rng.uniform(-2, 2)), float(rng.uniform(-2, 1))) for _ in range(n))
    vel = tuple(float(rng.choice([-1.0, 1.0])) for _ in range(n))
    return Scene(bg, tuple(objs), offsets, vel, seed=int(rng.integers(0, 2**31)))


def _background(c: np.ndarray, bg: str, seed: int) -> None:
    h, w = c.shape[:2]
    ground = int(0.62 * h)
    if bg == "field":
        c[:] = (0.55, 0.8, 1.0)
        rect(c, 0, ground, w, h, (0.35, 0.75, 0.3))
    elif bg == "beach":
        c[:] = (0.55, 0.8, 1.0)
        rect(c, 0, int(0.45 * h), w, ground, (0.1, 0.4, 0.8))
        rect(c, 0, ground, w, h, (0.95, 0.85, 0.55))
    elif bg == "kitchen":
        c[:] = (0.95, 0.9, 0.75)
        rect(c, 0, ground, w, h, (0.55, 0.4, 0.3))
        rect(c, 0.05 * w, 0.1 * h, 0.3 * w, 0.35 * h, (0.7, 0.85, 0.95))
    elif bg == "night":
        c[:] = (0.05, 0.05, 0.2)
        rect(c, 0, ground, w, h, (0.1, 0.15, 0.1))
        stars = np.random.default_rng(seed).integers(0, [w, ground], size=(6, 2))
        c[stars[:, 1], stars[:, 0]] = (1.0, 1.0, 0.9)
    elif bg == "snow":
        c[:] = (0.8, 0.82, 0.88)
        rect(c, 0, ground, w, h, (1.0, 1.0, 1.0))
    elif bg == "street":
        c[:] = (0.75, 0.78, 0.8)
        rect(c, 0, ground, w, h, (0.35, 0.35, 0.38))
        rect(c, 0, int(0.8 * h), w, int(0.8 * h) + max(1, h // 32), (1.0, 1.0, 1.0))


def render(scene: Scene, size: int = 32, frame: int = 0) -> np.ndarray:
    """Render ``scene`` as an ``(size, size, 3)`` uint8 image; ``frame`` moves objects in time."""
    if size < 16:
        raise XSteerError(f"render size must be at least 16, got {size}")
    c = np.zeros((size, size, 3), dtype=np.float32)
    _background(c, scene.background, scene.seed)
    u = size / 32.0  # scene coordinates are in 32-pixel units
    s = 14.0 * u
    n = len(scene.objects)
    slots = [9.0] if n == 1 else [1.5, 16.5]
    for obj, x, (dx, dy), v in zip(scene.objects, slots, scene.offsets, scene.velocities,
                                   strict=True):
        draw = BENIGN_DRAWERS.get(obj) or UNSAFE_DRAWERS[obj]
        x0 = (x + dx + v * frame) * u
        y0 = (32.0 - 14.0 - 2.0 + dy) * u
        draw(c, x0, y0, s)
    return (np.clip(c, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_clip(scene: Scene, frames: int = 4, size: int = 32) -> np.ndarray:
    """Render a clip ``(frames, size, size, 3)`` uint8 where each object moves by its velocity."""
    if frames < 1:
        raise XSteerError(f"a clip needs at least one frame, got {frames}")
    return np.stack([render(scene, size, t) for t in range(frames)])


def render_batch(scenes: list[Scene], size: int = 32, frames: int = 0) -> np.ndarray:
    """Stack renders of many scenes: ``(n, 3, H, W)`` images, or ``(n, 3, T, H, W)`` clips (uint8)."""
    if frames:
        return np.stack([render_clip(s, frames, size).transpose(3, 0, 1, 2) for s in scenes])
    return np.stack([render(s, size).transpose(2, 0, 1) for s in scenes])
