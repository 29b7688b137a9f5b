"""The anchors-at-scale page renders every count, source and map it measured, without models."""

from __future__ import annotations

from experiments import anchor_scale as sc


def test_render_lists_each_count_source_and_share() -> None:
    q = {"cos_native": 0.8, "auroc": 0.9}
    run = {"cos_native": 0.8, "eq_strength": 0.7, "eq_fidelity": None,
           "eq_strength_ci": (0.6, 0.8), "eq_fidelity_ci": None}
    res = {"manifest": {"build_version": 1, "seed": 0, "python": "3.11.7", "sha256": "ab" * 32,
                        "counts": {"shipped": 2455, "recombined": 10}},
           "curve": [{"n": n, **{m: q for m in sc.METHODS}} for n in (100, 20000)],
           "by_source": [{"source": "recombined", "n": 2465, "ridge": q,
                          "direction-aware (weight)": q}],
           "shares": {"shipped": {"written apart": run}}, "seconds": 1.0}
    page = "\n".join(sc.render_scale(res))
    assert "| 20000 | 0.80 / 0.90 | 0.80 / 0.90 | 0.80 / 0.90 | 0.80 / 0.90 |" in page
    assert "| recombined | 2465 | 0.80 / 0.90 | 0.80 / 0.90 |" in page
    assert "| shipped | written apart | 0.800 | 70% [60–80] | – |" in page
    assert "shipped 2455, recombined 10" in page
