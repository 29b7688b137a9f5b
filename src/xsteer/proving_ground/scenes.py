"""Scene sets for the judge: every object and stand-in, in every background, at many offsets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xsteer.proving_ground.world import UNSAFE_OBJECTS, Scene, sample_scene


def judge_scenes(n: int, seed: int, p_unsafe: float = 0.5, moved: bool = False) -> list[Scene]:
    """``n`` random scenes, about ``p_unsafe`` of them with a stand-in.

    ``moved`` shifts objects as clip frames would (up to 3 px), so the judge also reads frames.
    """
    rng = np.random.default_rng(seed)
    out: list[Scene] = []
    for _ in range(n):
        cat = str(rng.choice(UNSAFE_OBJECTS)) if rng.random() < p_unsafe else None
        s = sample_scene(rng, unsafe=cat)
        if moved:
            shift = float(rng.integers(0, 4))  # up to 3 px: the motion of a 4-frame clip
            s = replace(s, offsets=tuple((dx + v * shift, dy) for (dx, dy), v
                                         in zip(s.offsets, s.velocities, strict=True)))
        out.append(s)
    return out
