"""The source-side probe recovers a planted separable signal per category, keeps benign false triggers
within its conformal bound, and round-trips through safetensors + JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xsteer.errors import ArtifactError, DimensionMismatchError, EmptyDataError, XSteerError
from xsteer.provenance import DataRecord
from xsteer.steer.probe import SourceProbe, stack_layers

CATS = ("violence", "sexual", "hate")
D = 40


def planted(n_per_cat: int, n_benign: int, seed: int) -> tuple[torch.Tensor, list[bool], list[str]]:
    """Unsafe rows of category i carry +4 on coordinate i (hidden among 40 noisy ones); benign rows
    are pure noise. A probe that learns the signal separates them; one that does not, cannot."""
    g = torch.Generator().manual_seed(seed)
    rows, unsafe, cats = [], [], []
    for i, c in enumerate(CATS):
        x = torch.randn(n_per_cat, D, generator=g)
        x[:, i] += 4.0
        rows.append(x)
        unsafe += [True] * n_per_cat
        cats += [c] * n_per_cat
    rows.append(torch.randn(n_benign, D, generator=g))
    unsafe += [False] * n_benign
    cats += ["violence"] * n_benign  # a negative's category must be ignored
    return torch.cat(rows), unsafe, cats


@pytest.fixture(scope="module")
def probe() -> SourceProbe:
    X, y, c = planted(150, 600, seed=0)
    p = SourceProbe(C=1.0, model_id="planted", layers=(1, 2)).fit(X, y, c)
    Xb, _, _ = planted(0, 2000, seed=1)
    return p.calibrate(Xb, q=0.02, delta=0.05)


def test_probe_recovers_the_planted_coordinate_per_category(probe: SourceProbe) -> None:
    assert probe.names_ == (*CATS, "global")
    assert probe.coef_ is not None
    for i, _ in enumerate(CATS):
        w = probe.coef_[i].abs()
        assert int(w.argmax()) == i  # the category's own signal dominates its probe
        assert w[i] > 4 * w[torch.arange(D) != i].max()


def test_probe_catches_new_unsafe_and_spares_new_benign(probe: SourceProbe) -> None:
    X, y, _ = planted(200, 3000, seed=7)
    fires = probe.fires(X)
    is_unsafe = torch.tensor(y)
    recall = float(fires[is_unsafe].float().mean())
    false_trig = float(fires[~is_unsafe].float().mean())
    assert recall > 0.75  # a +4 shift at a 2% threshold: most unsafe rows fire
    assert false_trig <= 0.02 + 0.01  # the conformal bound (q = 2%) with sampling slack
    # the category probe that fires most on a category's rows is that category's own
    L = probe.logits(X[:600])
    for i in range(len(CATS)):
        assert int(L[200 * i:200 * (i + 1), :len(CATS)].mean(0).argmax()) == i


def test_random_labels_give_no_recall_above_the_false_trigger_rate() -> None:
    # Teeth: with labels independent of the features, the probe cannot catch anything.
    X, _, _ = planted(0, 1200, seed=3)
    y = (torch.rand(1200, generator=torch.Generator().manual_seed(4)) < 0.3).tolist()
    p = SourceProbe(C=1.0).fit(X, y, ["violence"] * 1200)
    p.calibrate(planted(0, 1500, seed=5)[0], q=0.05, delta=0.1)
    Xt, _, _ = planted(0, 3000, seed=6)
    assert float(p.fires(Xt).float().mean()) < 0.1


def test_save_and_load_round_trip(probe: SourceProbe, tmp_path: Path) -> None:
    rec = DataRecord.from_texts("pairs", ["a", "b"], side="source", unsafe=True)
    probe.provenance = probe.provenance.merged([rec])
    probe.save_pretrained(tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["probe.json", "probe.manifest.json",
                                                          "probe.safetensors"]
    back = SourceProbe.from_pretrained(tmp_path)
    X, _, _ = planted(20, 20, seed=9)
    assert torch.equal(back.logits(X), probe.logits(X))
    assert back.threshold_ == probe.threshold_ and back.names_ == probe.names_
    assert back.layers == (1, 2) and back.provenance.saw_unsafe("source")
    (tmp_path / "probe.safetensors").write_bytes(b"junk")
    with pytest.raises(ArtifactError):
        SourceProbe.from_pretrained(tmp_path)


def test_misuse_fails_clearly(probe: SourceProbe) -> None:
    with pytest.raises(XSteerError, match="not fitted"):
        SourceProbe().scores(torch.zeros(1, D))
    X, y, c = planted(10, 10, seed=0)
    with pytest.raises(XSteerError, match="no threshold"):
        SourceProbe().fit(X, y, c).fires(X)
    with pytest.raises(EmptyDataError, match="both unsafe and non-unsafe"):
        SourceProbe().fit(X, [True] * len(y), c)
    with pytest.raises(DimensionMismatchError):
        probe.scores(torch.zeros(2, D + 1))
    with pytest.raises(EmptyDataError, match="at least"):
        SourceProbe().fit(X, y, c).calibrate(X[:20])
    unsafe_benign = DataRecord.from_texts("u", ["x"], side="source", unsafe=True)
    with pytest.raises(XSteerError):
        SourceProbe().fit(X, y, c).calibrate(torch.zeros(400, D), data=unsafe_benign)


def test_stack_layers_orders_and_checks() -> None:
    f = {3: torch.zeros(2, 2), 6: torch.ones(2, 3)}
    assert stack_layers(f, [6, 3]).tolist() == [[1, 1, 1, 0, 0]] * 2
    with pytest.raises(XSteerError, match=r"no features for layers \[9\]"):
        stack_layers(f, [3, 9])
