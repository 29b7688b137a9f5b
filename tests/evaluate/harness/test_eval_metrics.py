"""ASR arithmetic, CLIP score scale, FID (self ~ 0, symmetric, cached), distances, SAFREE math."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xsteer.errors import EmptyDataError
from xsteer.evaluate.harness.clip_models import load_clip
from xsteer.evaluate.harness.safree import safree_project, trigger_tokens
from xsteer.evaluate.harness.summary import ANY, summarize
from xsteer.evaluate.metrics import FID, ClipScorer, ImageDistance, asr


def _imgs(seed: int, n: int, hi: int = 256) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, hi, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]


def test_asr_overall_and_per_category_on_hand_made_verdicts() -> None:
    out = asr([(("sexual",), True), (("sexual", "hate"), False), (("hate",), True),
               (("violence",), False), ((), True)])
    cis = [out["overall"].pop("ci")] + [v.pop("ci") for v in out["per_category"].values()]
    assert out["overall"] == {"unsafe": 3, "n": 5, "asr": 0.6}
    assert out["per_category"]["sexual"] == {"unsafe": 1, "n": 2, "asr": 0.5}
    assert out["per_category"]["hate"] == {"unsafe": 1, "n": 2, "asr": 0.5}
    assert out["per_category"]["violence"]["asr"] == 0.0
    # exact 95% intervals: around the rate, within [0, 1], and not the point at 0 of 1
    assert cis[0][0] < 0.6 < cis[0][1] and 0.0 <= cis[0][0] and cis[0][1] <= 1.0
    assert out["per_category"]["violence"]["asr"] == 0.0
    assert cis[3][0] == 0.0 and cis[3][1] == pytest.approx(0.975)  # 1 - 0.025 ** (1 / 1)
    with pytest.raises(EmptyDataError):
        asr([])


def test_summary_any_judge_is_unsafe_if_either_judge_says_so() -> None:
    def rec(j1: bool, j2: bool) -> dict:
        return {"benchmark": "b", "method": "m", "mode": "a", "strength": 1.0,
                "categories": ["sexual"], "clip_score": 30.0,
                "judges": {"nudenet": {"unsafe": j1}, "q16": {"unsafe": j2}}}

    row = summarize([rec(True, False), rec(False, True), rec(False, False), rec(False, False)])[0]
    assert row["asr"]["nudenet"]["overall"]["asr"] == 0.25
    assert row["asr"][ANY]["overall"]["asr"] == 0.5
    assert row["clip_score"] == 30.0 and row["clip_cos"] == pytest.approx(0.30)


def test_clip_score_is_torchmetrics_100_max_cos_zero() -> None:
    scorer = ClipScorer("tiny-clip")
    clip, _ = load_clip("tiny-clip")
    images, texts = _imgs(0, 3), ["a cat", "a red bus", "two dogs"]
    scores = scorer.score(images, texts)
    cos = (clip.image_features(images) * clip.text_features(texts)).sum(-1)
    assert all(np.isfinite(scores))
    assert scores == pytest.approx([100 * max(float(c), 0.0) for c in cos], abs=1e-3)


def test_fid_is_zero_on_itself_symmetric_and_cached(tmp_path: Path) -> None:
    a, b = _imgs(0, 12), _imgs(1, 12, hi=128)
    fid = FID("tiny", cache_dir=tmp_path)
    assert fid.set_reference(a, key="ref-a") is False
    self_fid, ab = fid.compute(a), fid.compute(b)
    assert abs(self_fid) < 1e-4 and ab > 0.01 and np.isfinite(ab)
    rev = FID("tiny")
    rev.set_reference(b)
    assert rev.compute(a) == pytest.approx(ab, rel=1e-4)
    cached = FID("tiny", cache_dir=tmp_path)
    assert cached.set_reference(None, key="ref-a") is True  # statistics read back, no images
    assert cached.compute(b) == pytest.approx(ab, rel=1e-9)  # float64 sums survive the cache


def test_embedding_distance_zero_on_self_and_symmetric() -> None:
    a, b = _imgs(0, 3), _imgs(1, 3)
    dist = ImageDistance("embedding", "tiny")
    assert dist(a, a) == pytest.approx([0.0] * 3, abs=1e-5)
    assert dist(a, b) == pytest.approx(dist(b, a))
    assert all(d > 0 for d in dist(a, b))


def test_safree_projects_only_the_planted_trigger_token() -> None:
    g = torch.Generator().manual_seed(0)
    E = torch.randn(2, 6, 8, generator=g) * 0.1
    E[..., 1] += 1.0
    toxic = torch.zeros(1, 8)
    toxic[0, 0] = 1.0
    E[0, 3, 0] = 4.0  # prompt 0, token 3 lies along the toxic axis
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 5] = False
    out, trig = safree_project(E, mask, toxic, strength=1.0)
    assert trig[0].tolist() == [False, False, False, True, False, False]
    assert out[0, 3, 0].abs() < 1e-6 and torch.equal(out[0, 3, 1:], E[0, 3, 1:])
    untouched = ~trig.unsqueeze(-1).expand_as(E)
    assert torch.equal(out[untouched], E[untouched])  # non-trigger tokens bit-identical
    half, _ = safree_project(E, mask, toxic, strength=0.5)
    assert half[0, 3, 0] == pytest.approx(2.0)
    assert not trigger_tokens(E, mask, toxic)[1, 5]  # padding is never a trigger


def test_fid_against_a_folder_of_real_photos_of_mixed_sizes_is_cached(tmp_path: Path) -> None:
    from xsteer.evaluate.harness.config import SweepConfig
    from xsteer.evaluate.harness.postprocess import compute_fids

    real = tmp_path / "real"
    real.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 60), (64, 48), (50, 50), (80, 30)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(real / f"{i}.jpg")
    gen_dir = tmp_path / "out" / "images"
    gen_dir.mkdir(parents=True)
    records = []
    for i, im in enumerate(_imgs(3, 4)):
        im.save(gen_dir / f"{i}.png")
        records.append({"benchmark": "coco", "method": "m", "mode": "a", "strength": 1.0,
                        "image": f"images/{i}.png", "method_kind": "direction"})
    cfg = SweepConfig.from_dict({"pipeline": "tiny-sd", "methods": [{"kind": "none"}],
                                 "benchmarks": [{"format": "inline", "prompts": ["x"]}]},
                                base_dir=tmp_path)
    spec = {"feature": "tiny", "reference": "real", "size": 32}
    first = compute_fids(records, tmp_path / "out", spec, cfg)
    entries = list((tmp_path / "out" / "cache").iterdir())
    assert len(entries) == 1 and np.isfinite(first[("coco", "m", "a", 1.0)])
    # the cache holds the exact float64 statistics: compare those, not FIDs (FID's matrix square
    # root of a near-singular covariance turns 1e-16 differences into BLAS-dependent 1e-9 ones)
    from xsteer.evaluate.harness.postprocess import _open_all
    from xsteer.io import load_artifact

    cached, _ = load_artifact(entries[0], "fid_reference", kind="fid_reference")
    fresh = FID("tiny")
    fresh.set_reference(_open_all(sorted(real.iterdir()), 32))
    for s in FID._STATES:
        assert cached[s].dtype == getattr(fresh._metric, s).dtype
        assert torch.equal(cached[s], getattr(fresh._metric, s))
    again = compute_fids(records, tmp_path / "out", spec, cfg)  # statistics from the cache
    assert again[("coco", "m", "a", 1.0)] == pytest.approx(first[("coco", "m", "a", 1.0)],
                                                           rel=1e-6)
    Image.new("RGB", (20, 20)).save(real / "0.jpg")  # the reference changed: a new cache entry
    compute_fids(records, tmp_path / "out", spec, cfg)
    assert len(list((tmp_path / "out" / "cache").iterdir())) == 2


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (7, 40), (0, 1)])
def test_proportion_ci_is_clopper_pearson(k: int, n: int) -> None:
    """Planted answer: the exact interval is the beta quantiles of Clopper and Pearson (1934)."""
    from scipy.stats import beta

    from xsteer.evaluate.metrics import proportion_ci

    lo = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    hi = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert proportion_ci(k, n) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
    with pytest.raises(EmptyDataError):
        proportion_ci(1, 0)
