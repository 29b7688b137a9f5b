"""The probe-corpus build: the shipped files are what the parts make, dressing keeps the subject and
is seeded, and the near-copy index catches planted copies."""

from __future__ import annotations

import random

from experiments import build_probe_corpus as bp


def test_the_shipped_files_are_what_the_build_makes() -> None:
    for fname, rows in zip(bp.FILES, bp.build(), strict=True):
        assert (bp.OUT / fname).read_text(encoding="utf-8") == bp._jsonl(rows), (
            f"{fname} is stale: run python -m experiments.build_probe_corpus")


def test_dressing_keeps_the_subject_draws_from_the_pools_and_is_seeded() -> None:
    pools = {"artists": ["by ann", "by bob", "by cy"], "styles": ["ink drawing"], "quality": ["8k", "hdr",
             "sharp focus", "moody", "bokeh", "smooth"], "weights_neutral": ["(intricate:1.2)"],
             "params": ["--ar 16:9"]}
    made = [bp.dress("a red fox", random.Random(s), pools, ["(gore:1.3)"]) for s in range(200)]
    assert all("a red fox" in t for t in made)
    assert sum("(gore:1.3)" in t for t in made) > 100  # the category weight, most of the time
    assert any("--ar 16:9" in t for t in made) and any(" and bob" in t for t in made)
    assert not any(t.count("8k") > 1 for t in made)
    assert made == [bp.dress("a red fox", random.Random(s), pools, ["(gore:1.3)"])
                    for s in range(200)]
    assert not any("(gore" in bp.dress("a red fox", random.Random(s), pools) for s in range(50))


def test_the_near_copy_index_catches_planted_copies_and_only_those() -> None:
    idx = bp.NearIndex(["a lighthouse on a rocky point under storm clouds"])
    assert idx.hit("A LIGHTHOUSE on a rocky point, under storm clouds!")
    assert idx.hit("stock photo: a lighthouse on a rocky point under storm clouds at night")
    assert not idx.hit("a lighthouse keeper's cottage in the sun")
    assert not idx.hit("")
