"""The sources matrix end to end on a planted world (no models): every cell, the ensembles and
the page come out, and a source that is a linear image of the target's latent transports well."""

from __future__ import annotations

import hashlib

import pytest
import torch

from experiments import sources_matrix as sm
from experiments import transport_experiment as ex

LATENT = 8


def _latent(text: str, unsafe: bool) -> torch.Tensor:
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    z = torch.randn(LATENT, generator=torch.Generator().manual_seed(seed))
    if unsafe:
        z[0] += 3.0  # the planted harm axis
    return z


def _feats(t: ex.Texts, lists: dict[str, list[str]], B: torch.Tensor, noise: float,
           name: str) -> ex.Feats:
    g = torch.Generator().manual_seed(len(name))
    out = {}
    for lst, texts in lists.items():
        Z = torch.stack([_latent(x, lst in ("unsafe", "ho_unsafe")) for x in texts])
        out[lst] = Z @ B + noise * torch.randn(len(texts), B.shape[1], generator=g)
    return ex.Feats(name, "layer:1/mean", out)  # a site string a Direction can read


@pytest.fixture
def planted(monkeypatch):
    g = torch.Generator().manual_seed(0)
    maps = {"good": torch.randn(LATENT, 10, generator=g),
            "weak": torch.randn(LATENT, 10, generator=g)}
    noise = {"good": 0.05, "weak": 3.0}
    targets = {"tgt": torch.randn(LATENT, 12, generator=g)}

    def encode_source(name, t, log):
        lists = {k: t.lists[k] for k in sm.SOURCE_LISTS}
        return {1: _feats(t, lists, maps[name], noise[name], name)}

    def encode_target(name, t):
        from xsteer.data.heldout import load_heldout

        h = load_heldout()
        lists = {**t.lists, "ho_unsafe": h.unsafe_texts(), "ho_safe": h.safe_texts()}
        return _feats(t, lists, targets[name], 0.05, name)

    monkeypatch.setattr(sm, "encode_source", encode_source)
    monkeypatch.setattr(sm, "encode_target", encode_target)
    monkeypatch.setattr(sm, "SOURCES", ("good", "weak"))
    monkeypatch.setattr(sm, "LLMS", ("good", "weak"))
    monkeypatch.setattr(sm, "ENCODE_ORDER", ("good", "weak", "tgt"))
    monkeypatch.setattr(sm, "TARGETS", {"tgt": 1})
    monkeypatch.setattr(sm, "LAYERS", {"good": (1,), "weak": (1,)})
    monkeypatch.setattr(sm, "SEEDS", (0, 1))
    monkeypatch.setattr(sm, "N_GENERIC", 200)
    monkeypatch.setattr(sm, "MAPS", {"svd": sm.SVDMap, "ridge": sm.RidgeMap})


@pytest.mark.slow
def test_matrix_cells_ensembles_and_page(planted, tmp_path):
    res = sm.run(log=lambda _m: None)
    cells = res["cells"]["tgt"]
    assert set(cells) == {"good", "weak"} and res["n_generic"] == 200
    for m in ("svd", "ridge"):
        good = [r["in-distribution"]["cos_native"] for r in cells["good"]["runs"][m]]
        weak = [r["in-distribution"]["cos_native"] for r in cells["weak"]["runs"][m]]
        assert min(good) > 0.95 and len(good) == 2
        assert max(weak) < min(good)
        for r in cells["good"]["runs"][m]:
            assert r["written apart"]["auroc"] > 0.95 and r["written apart"]["n"] == 140
    groups = ("all sources", "LLM sources", "LLM sources, joint map")
    assert set(res["ensembles"]) == {f"tgt|{g}|{m}" for g in groups for m in ("svd", "ridge")}
    # one map over both sources side by side finds the good source's signal through the noisy
    # partner: the joint direction is as close to native as the good source alone, and closer
    # than the mean of the two (which the noisy member drags down)
    for m in ("svd", "ridge"):
        joint = [r["in-distribution"]["cos_native"]
                 for r in res["ensembles"][f"tgt|LLM sources, joint map|{m}"]["runs"]]
        mean = [r["in-distribution"]["cos_native"]
                for r in res["ensembles"][f"tgt|LLM sources|{m}"]["runs"]]
        assert min(joint) > 0.95 and min(joint) > max(mean)
    res.update(date="today", machine="test", load=0.0)
    page = sm.page(res)
    assert "| good | svd | 1 (" in page and "## Ensembles of sources" in page
    assert "| tgt | good, weak (joint map) | ridge |" in page
    # the latent is 8-dim: the cross-validated rank keeps all of it and drops noise dimensions
    r = cells["good"]["svd_rank"]
    assert r["max"] == 10 and LATENT <= r["rank"] < 10
    assert f"; rank {r['rank']}/10 |" in page


def test_joint_feats_scales_each_block_by_its_generic_anchors():
    g = torch.Generator().manual_seed(3)
    a = {"generic": 10 * torch.randn(50, 4, generator=g), "unsafe": torch.ones(3, 4)}
    b = {"generic": 0.1 * torch.randn(50, 6, generator=g) + 7, "unsafe": torch.zeros(3, 6),
         "only_b": torch.zeros(2, 6)}
    j = sm.joint_feats({"a": ex.Feats("A", "layer:1/mean", a),
                        "b": ex.Feats("B", "layer:2/mean", b)})
    assert j.model_id == "A+B" and set(j.by_list) == {"generic", "unsafe"}  # lists both have
    gen = j.by_list["generic"]
    assert gen.shape == (50, 10)
    for block in (gen[:, :4], gen[:, 4:]):  # each block's RMS centred norm is 1
        rms = (block - block.mean(0)).pow(2).sum(1).mean().sqrt()
        assert torch.isclose(rms, torch.tensor(1.0), atol=1e-5)
    scale_a = (a["generic"] - a["generic"].mean(0)).pow(2).sum(1).mean().sqrt()
    assert torch.allclose(j.by_list["unsafe"][:, :4], 1 / scale_a * torch.ones(3, 4))


def test_joint_feats_refuses_a_block_with_no_spread():
    flat = {"generic": torch.ones(5, 3)}
    with pytest.raises(ValueError, match="no spread"):
        sm.joint_feats({"a": ex.Feats("A", "layer:1/mean", flat),
                        "b": ex.Feats("B", "layer:1/mean", {"generic": torch.randn(5, 2)})})
