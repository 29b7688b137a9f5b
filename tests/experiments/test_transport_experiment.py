"""The results experiment's honesty plumbing: disjoint splits, benign-only anchors, ratios with
known answers, and a transported direction whose provenance is free of target-side unsafe data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments import transport_experiment as ex


@pytest.fixture(scope="module")
def texts():
    return ex.Texts.build()


def test_splits_are_disjoint_and_anchors_are_benign_only(texts):
    assert not set(texts.train) & set(texts.test)
    assert len(texts.train) + len(texts.test) == len(texts.lists["unsafe"])
    assert not set(texts.nm_fit) & set(texts.nm_held)
    anchors = set(texts.anchor_texts("both"))
    from xsteer.data import load_benign

    assert texts.anchor_texts("generic") == load_benign(kind="generic")
    assert len(ex.Texts.build(n_generic=50).anchor_texts("generic")) == 50
    held = set(texts.lists["captions"]) | {texts.lists["nearmiss"][i] for i in texts.nm_held}
    assert not anchors & held
    assert not anchors & (set(texts.lists["unsafe"]) | set(texts.lists["safe"]))


def test_reduction_ratios_known_answers():
    native = {"asr_before": 1.0, "asr_after": 0.2, "pair_fidelity_after": 0.5,
              "asr_linear_before": 1.0, "asr_linear_after": 0.0}
    curve = [{"asr_after": 0.8, "asr_linear_after": 0.5, "pair_fidelity_after": 0.6},
             {"asr_after": 0.6, "asr_linear_after": 0.5, "pair_fidelity_after": 0.5},
             # wins only by wrecking the prompt: does not count at equal fidelity
             {"asr_after": 0.1, "asr_linear_after": 0.0, "pair_fidelity_after": 0.3}]
    res = {"asr_before": 1.0, "asr_after": 0.6, "asr_linear_before": 1.0,
           "asr_linear_after": 0.5, "asr_vs_strength": curve}
    r = ex.reduction_ratios(res, native)
    assert r["knn_equal_strength"] == pytest.approx(0.5)
    assert r["knn_equal_fidelity"] == pytest.approx(0.5)
    assert r["linear_equal_strength"] == pytest.approx(0.5)
    assert r["linear_equal_fidelity"] == pytest.approx(0.5)
    assert ex.reduction_ratios(res, {**native, "asr_after": 1.0})["knn_equal_strength"] is None




def test_transport_asserts_provenance_and_calibrates(texts):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 4, generator=g)
    src = ex.Feats("src", "layer:1/mean", {})
    tgt = ex.Feats("tgt", "layer:1/mean", {})
    axis = torch.randn(6, generator=g)
    for name, lst in texts.lists.items():
        x = torch.randn(len(lst), 6, generator=torch.Generator().manual_seed(len(lst) + 7))
        if name == "unsafe":
            x = x - 2.0 * axis
        src.by_list[name] = x
        tgt.by_list[name] = x @ W
    setup = ex.make_setup(src, tgt, texts)
    d, info = ex.transport(setup, "ridge", ex.methods(setup.d_src.vector)["ridge"])
    assert not d.provenance.saw_unsafe("target") and d.provenance.saw_unsafe("source")
    assert setup.native.provenance.saw_unsafe("target")
    assert d.cosine(setup.native) > 0.95  # an exactly linear world: transport finds the native
    assert float(d.norm) == pytest.approx(float(setup.native.norm), rel=1e-4)
    assert info["n_anchors"] == len(texts.anchor_texts("both"))
    pairs_d, _ = ex.transport(setup, "anchor kNN pairs (k=10)",
                              ex.methods(setup.d_src.vector)["anchor kNN pairs (k=10)"])
    assert not pairs_d.provenance.saw_unsafe("target")
    assert np.isfinite(pairs_d.cosine(setup.native))


def test_evaluate_many_equals_evaluate_direction():
    from xsteer.directions import Direction
    from xsteer.evaluate import EvalData, evaluate_direction

    g = torch.Generator().manual_seed(0)
    axis = torch.randn(6, generator=g)
    cats = ["violence", "sexual"] * 20
    S = torch.randn(40, 6, generator=g)
    U = S - axis + 0.3 * torch.randn(40, 6, generator=g)
    data = EvalData(unsafe=U, safe=S, categories=cats, benign=torch.randn(30, 6, generator=g),
                    calibration=torch.randn(200, 6, generator=g))
    native = Direction(axis, "t", "s", origin="native")
    setup = ex.Setup(t=None, src=None, tgt=None, d_src=native, native=native, data=data,  # type: ignore[arg-type]
                     nm_held=torch.randn(10, 6, generator=g))
    dirs = {"a": native, "b": Direction(torch.randn(6, generator=g), "t", "s")}
    many = ex.evaluate_many(setup, dirs, strengths=[0.25, 1.0])
    for label, d in dirs.items():
        ref = evaluate_direction(d, data, strength=ex.STRENGTH, quantile=ex.QUANTILE,
                                 strengths=[0.25, 1.0]).to_dict()
        got = many[label]
        for k in ("asr_before", "asr_after", "asr_linear_before", "asr_linear_after",
                  "pair_fidelity_before", "pair_fidelity_after", "self_cosine",
                  "benign_cosine", "false_trigger_rate", "unsafe_trigger_rate", "auroc"):
            assert got[k] == pytest.approx(ref[k]), (label, k)
        for p in ref["asr_vs_strength"]:
            q = next(x for x in got["asr_vs_strength"] if x["strength"] == p["strength"])
            for k in ("asr_after", "asr_linear_after", "pair_fidelity_after"):
                assert q[k] == pytest.approx(p[k]), (label, p["strength"], k)


def test_split_seed_changes_splits_but_not_the_text_lists(texts):
    other = ex.Texts.build(split_seed=1)
    assert other.lists == texts.lists
    assert set(other.test) != set(texts.test)
    assert not set(other.train) & set(other.test)
    assert not set(other.nm_fit) & set(other.nm_held)
