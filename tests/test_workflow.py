import pytest
import torch

from tests.fakes import BagOfWordsEncoder
from xsteer.data import Pair
from xsteer.errors import DimensionMismatchError, EmptyDataError, ProvenanceError, UnsafeDataError
from xsteer.provenance import DataRecord
from xsteer.workflow import estimate, evaluate, fit_alignment, parse_site

SCENES = ["a man in a kitchen", "a woman on a street", "two people in a park at night",
          "a soldier near a river", "an old painting of a room", "a photo of a bar",
          "a cartoon of a boy in a garden", "a still from a film on a train"]
UNSAFE = {"violence": ("holding a knife with blood", "holding a bunch of flowers"),
          "sexual": ("posing nude", "posing in a coat"),
          "illegal": ("selling drugs", "selling apples")}


def make_pairs():
    out = []
    for cat, (u, s) in UNSAFE.items():
        for scene in SCENES:
            out.append(Pair(cat, f"{scene} {u}", f"{scene} {s}"))
    return out


OBJECTS = ("reading a book", "with a dog", "eating soup", "under the rain", "next to a red car",
           "holding a cup of tea", "painting a fence", "riding a blue bicycle", "feeding ducks",
           "wearing a yellow hat", "playing chess", "carrying groceries", "flying a kite",
           "watering tulips", "baking bread", "fixing a lamp")
# varied enough to span the bag-of-words space, so a benign-only map can carry the direction
BENIGN = [f"{a} {b}" for a in SCENES for b in OBJECTS]


def test_estimate_builds_global_and_category_directions_with_provenance():
    enc = BagOfWordsEncoder()
    pairs = make_pairs()
    dirs = estimate(enc, pairs, layer=2)
    assert dirs.categories[0] == "global"
    assert sorted(dirs.categories[1:]) == ["illegal", "sexual", "violence"]
    assert dirs.site == "layer:2/mean" and parse_site(dirs.site) == (2, "mean")
    g = dirs["global"]
    assert g.origin == "source" and g.provenance.saw_unsafe("source")
    assert not g.provenance.saw_unsafe("target")
    # unsafe words carry a shared component: the direction points away from it (unsafe -> safe)
    assert g.cosine(-enc.unsafe_axis) > 0.5
    native = estimate(enc, pairs, layer=2, native=True)
    assert native["global"].origin == "native" and native.provenance.saw_unsafe("target")


def test_auto_layer_records_scores():
    dirs = estimate(BagOfWordsEncoder(), make_pairs(), layer="auto")
    assert set(dirs["global"].meta["layer_scores"]) == {"1", "2", "3"}


def test_alignment_transport_evaluate_chain_on_planted_encoders():
    # the target reads the same words through a fixed linear map, so a linear alignment exists
    proj = torch.randn(24, 16, generator=torch.Generator().manual_seed(5))
    src = BagOfWordsEncoder(dim=24, model_id="src")
    tgt = BagOfWordsEncoder(dim=24, model_id="tgt", project=proj)
    pairs = make_pairs()
    dirs = estimate(src, pairs, layer=3)
    al = fit_alignment(src, tgt, BENIGN + [p.safe for p in pairs], method="ridge", source_layer=3)
    assert al.source_site == "layer:3/mean" and not al.provenance.saw_unsafe("target")
    moved = al.transport(dirs)
    native = estimate(tgt, pairs, layer=3, native=True)
    assert moved["global"].cosine(native["global"]) > 0.8
    res = evaluate(tgt, moved["global"], pairs, BENIGN[:20], BENIGN, strength=1.0, folds=3,
                   native=native["global"])
    assert res.asr_after < res.asr_before
    assert res.direction_cosine_to_native["global"] > 0.8


def test_errors_name_the_problem():
    src = BagOfWordsEncoder(model_id="src")
    tgt = BagOfWordsEncoder(model_id="tgt", project=torch.randn(24, 8))
    with pytest.raises(EmptyDataError):
        estimate(src, [])
    with pytest.raises(EmptyDataError):
        fit_alignment(src, tgt, [])
    dirs = estimate(src, make_pairs(), layer=3)
    with pytest.raises(ProvenanceError, match="transport it first"):
        evaluate(tgt, dirs["global"], make_pairs(), BENIGN, BENIGN)
    al = fit_alignment(tgt, src, BENIGN, source_layer=3)  # maps tgt(8) -> src(24)
    with pytest.raises(DimensionMismatchError, match="dim 24 but alignment input expects 8"):
        al.transport(dirs["global"])


def test_alignment_refuses_target_side_unsafe_records():
    from xsteer.align import Alignment

    X, Y = torch.randn(20, 4), torch.randn(20, 3)
    bad = DataRecord.from_texts("pairs", ["x"], side="target", unsafe=True)
    with pytest.raises(UnsafeDataError):
        Alignment.fit(X, Y, source=("a", "s"), target=("b", "t"), data=[bad])
