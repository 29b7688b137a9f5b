"""The world: deterministic renders, labels that match what is drawn, captions that name it."""

from __future__ import annotations

import numpy as np
import pytest

from xsteer.categories import CATEGORIES
from xsteer.errors import XSteerError
from xsteer.proving_ground.captions import (
    PHRASES,
    caption,
    caption_pair,
    heldout_prompts,
    sample_dataset,
)
from xsteer.proving_ground.world import (
    BACKGROUNDS,
    COUNTERPART,
    LABELS,
    Scene,
    render,
    render_clip,
    sample_scene,
)


def _scene(objs, bg="field"):
    return Scene(bg, tuple(objs), tuple((0.0, 0.0) for _ in objs), tuple(1.0 for _ in objs))


def test_same_seed_same_pixels_and_captions():
    a_scenes, a_texts = sample_dataset(30, seed=7)
    b_scenes, b_texts = sample_dataset(30, seed=7)
    assert a_texts == b_texts
    for s, t in zip(a_scenes, b_scenes, strict=True):
        assert np.array_equal(render(s), render(t))
    c_scenes, _ = sample_dataset(30, seed=8)
    assert not all(np.array_equal(render(s), render(t))
                   for s, t in zip(a_scenes, c_scenes, strict=True))


def test_labels_mark_exactly_the_drawn_objects():
    s = _scene(["tree", "violence"])
    y = s.labels()
    assert y.sum() == 2 and y[LABELS.index("tree")] == 1 and y[LABELS.index("violence")] == 1
    assert s.unsafe == "violence" and s.safe_twin().unsafe is None


@pytest.mark.parametrize("bg", BACKGROUNDS)
def test_each_object_changes_the_pixels_it_owns(bg):
    empty_ref = render(_scene(["sun"], bg))
    for obj in LABELS:
        img = render(_scene([obj], bg))
        assert (img != empty_ref).any(axis=-1).sum() > 8 or obj == "sun"


def _count(img, rgb, tol=12):
    return int((np.abs(img.astype(int) - np.array(rgb)).max(-1) <= tol).sum())


def test_stand_in_signatures():
    red = (217, 13, 13)
    blue_shirt = (38, 89, 242)
    assert _count(render(_scene(["violence"])), red) > 10
    assert _count(render(_scene(["flower"])), red) == 0
    nude, clothed = render(_scene(["sexual"])), render(_scene(["person"]))
    assert _count(nude, blue_shirt) == 0 and _count(clothed, blue_shirt) > 10
    skin = (237, 184, 148)
    assert _count(nude, skin) > 2 * _count(clothed, skin)


def test_every_category_renders_differently():
    imgs = {c: render(_scene([c])) for c in CATEGORIES}
    for a in CATEGORIES:
        for b in CATEGORIES:
            if a < b:
                assert (imgs[a] != imgs[b]).any(axis=-1).sum() > 10, (a, b)


def test_clip_objects_move():
    s = _scene(["car"])
    clip = render_clip(s, frames=4)
    assert clip.shape == (4, 32, 32, 3)
    assert not np.array_equal(clip[0], clip[3])
    assert np.array_equal(clip[0], render(s))


def test_render_64_and_bad_inputs():
    assert render(_scene(["dog"]), size=64).shape == (64, 64, 3)
    with pytest.raises(XSteerError):
        _scene(["unicorn"])
    with pytest.raises(XSteerError):
        render(_scene(["dog"]), size=8)


def test_captions_name_the_objects_and_place():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = sample_scene(rng)
        t = caption(s, rng)
        for o in s.objects:
            assert any(p in t for p in PHRASES[o]), (t, o)


def test_pairs_differ_only_in_the_stand_in():
    rng = np.random.default_rng(3)
    for cat in CATEGORIES:
        u, v = caption_pair(sample_scene(rng, unsafe=cat), rng)
        assert any(p in u for p in PHRASES[cat])
        assert not any(p in v for c in CATEGORIES for p in PHRASES[c])
        # same template, place and other object: swapping the phrase turns one into the other
        assert any(u.replace(a, b) == v for a in PHRASES[cat] if a in u
                   for b in PHRASES[COUNTERPART[cat]]), (u, v)


def test_heldout_prompts_exclude_training_captions():
    _, train = sample_dataset(300, seed=0)
    benign, pairs = heldout_prompts(40, 2, seed=1, exclude=train)
    assert not ({t for t, _ in benign} | {u for _, u, _ in pairs}) & set(train)
    assert sorted({c for c, _, _ in pairs}) == sorted(CATEGORIES)


def test_canonical_scenes_put_objects_exactly_in_their_slots():
    import numpy as np

    rng = np.random.default_rng(5)
    scenes = [sample_scene(rng, n_objects=2) for _ in range(20)]
    canon = [s.canonical() for s in scenes]
    assert all(c.objects == s.objects and c.background == s.background
               for c, s in zip(canon, scenes, strict=True))
    assert all(c.offsets == ((0.0, 0.0), (0.0, 0.0)) and c.velocities == (1.0, 1.0) for c in canon)
    # one image per scene description, whatever the jitter drew
    from dataclasses import replace

    for s in scenes:
        moved = replace(s, offsets=((2.0, -1.0), (-2.0, 1.0)), velocities=(-1.0, -1.0))
        assert np.array_equal(render(moved.canonical(), frame=2), render(s.canonical(), frame=2))
    assert any(not np.array_equal(render(s), render(c)) for s, c in zip(scenes, canon, strict=True))
