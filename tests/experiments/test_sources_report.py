"""The sources page: cells are means and ranges over splits, paired differences are per split,
the ensemble is compared with its best member, and skipped sources are named — without models."""

from __future__ import annotations

from experiments import sources_report as rep


def _run(cos: float, fid: float | None, fid_apart: float | None = None) -> dict:
    one = {"cos_native": cos, "auroc": 0.9, "eq_strength": 0.5, "eq_fidelity": fid}
    return {"in-distribution": one,
            "written apart": {**one, "eq_fidelity": fid if fid_apart is None else fid_apart}}


def _result() -> dict:
    small = [_run(0.70, 0.40), _run(0.72, 0.50), _run(0.74, None)]
    big = [_run(0.80, 0.60), _run(0.70, 0.55), _run(0.84, 0.70)]
    cells = {"all-minilm-l6-v2": {
        "qwen2.5-coder-0.5b": {"layer": 8, "benign_r2": {8: 0.41}, "runs": {"svd": small}},
        "qwen2.5-coder-1.5b": {"layer": 12, "benign_r2": {12: 0.45}, "runs": {"svd": big}}}}
    ens = {"m|LLM|svd": {"target": "all-minilm-l6-v2", "group": "LLM sources", "map": "svd",
                         "members": ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"],
                         "runs": [_run(0.86, 0.9), _run(0.75, 0.5), _run(0.85, 0.8)]}}
    return {"cells": cells, "ensembles": ens, "target_layers": {"all-minilm-l6-v2": 6},
            "source_layers": {"qwen2.5-coder-0.5b": [8], "qwen2.5-coder-1.5b": [12],
                              "en-core-web-sm": [0]},
            "missing": {"en-core-web-sm": "optional dependency 'spacy' is not installed"},
            "timings": {"qwen2.5-coder-1.5b": {"seconds": 340.0, "texts": 3400,
                                               "date": "2026-12-06 12:00 UTC"}}}


def test_cells_are_means_with_ranges_and_count_missing_splits() -> None:
    page = "\n".join(rep.render(_result()))
    # 0.5B: cos mean 0.72 over [0.70, 0.74]; fidelity share only on 2 of 3 splits (mean 45%)
    assert ("| Qwen2.5-Coder-0.5B | svd | 8 (0.41) | 0.72 [0.70–0.74] | 0.90 [0.90–0.90] | "
            "0.90 [0.90–0.90] | 50% [50–50] | 50% [50–50] | 45% [40–50] (2/3) | 45% [40–50] (2/3) |"
            ) in page
    assert "340 s for 3400 texts (100 ms/text" in page
    assert "not run: optional dependency 'spacy' is not installed" in page


def test_scale_difference_is_paired_by_split() -> None:
    page = "\n".join(rep.render_scale(_result()))
    # cos: +0.10, -0.02, +0.10 -> mean +0.060, larger model ahead in 2 of 3 splits
    assert "| Qwen2.5-Coder-1.5B − Qwen2.5-Coder-0.5B | +0.060 [-0.020…+0.100], wins 2/3 |" in page
    # fidelity share only where both exist: +20, +5 pts
    assert "+12 pts [+5 pts…+20 pts], wins 2/2" in page


def test_ensemble_is_compared_with_its_best_member_and_goals_name_the_best_row() -> None:
    res = _result()
    page = "\n".join(rep.render_ensembles(res))
    # best member on cos is the 1.5B (mean 0.78); ensemble - 1.5B = +0.06, +0.05, +0.01
    assert "+0.040 [+0.010…+0.060], wins 3/3 (best: Qwen2.5-Coder-1.5B)" in page
    goals = "\n".join(rep.render_goals(res))
    assert "0.820 (ensemble (LLM sources) / svd): not met" in goals


def test_goals_pick_over_both_runs_and_the_second_run_shows_its_ensembles() -> None:
    res = _result()
    extra = {**_result(), "n_anchors": 2455, "n_generic": 2242}
    # the second run's 1.5B is better: cos 0.88 on every split, fidelity 95%
    extra["cells"]["all-minilm-l6-v2"]["qwen2.5-coder-1.5b"]["runs"]["svd"] = [
        _run(0.88, 0.95)] * 3
    goals = "\n".join(rep.render_goals(res, extra))
    assert "0.880 (Qwen2.5-Coder-1.5B / svd, 2455 anchors): met" in goals
    assert "95% (Qwen2.5-Coder-1.5B / svd, 2455 anchors): met" in goals
    # without the second run the first run's best row stands
    assert "0.820 (ensemble (LLM sources) / svd): not met" in "\n".join(rep.render_goals(res))
    page = "\n".join(rep.render(res, extra))
    assert "## The whole anchor set: 2455 anchors" in page
    heads = [x for x in page.splitlines() if x.endswith("Ensembles of sources")]
    assert heads == ["## Ensembles of sources", "### Ensembles of sources"]
