import json

import pytest
import torch

from tests.artifacts import edit_json
from xsteer.directions import Direction, DirectionSet, load_directions
from xsteer.errors import (
    ArtifactError,
    DimensionMismatchError,
    NonFiniteError,
    ProvenanceError,
    UnknownCategoryError,
)
from xsteer.provenance import DataRecord, Provenance


def make(v, model="m", site="s", cat="global"):
    return Direction(torch.as_tensor(v, dtype=torch.float32), model_id=model, site=site, category=cat)


def test_arithmetic():
    a, b = make([1.0, 2.0]), make([3.0, -1.0])
    assert (a + b).vector.tolist() == [4.0, 1.0]
    assert (a - b).vector.tolist() == [-2.0, 3.0]
    assert (2 * a).vector.tolist() == [2.0, 4.0] == (a * 2).vector.tolist()
    assert (-a).vector.tolist() == [-1.0, -2.0]
    assert abs(a.normalized().norm - 1.0) < 1e-6
    assert a.vector.tolist() == [1.0, 2.0]  # operations never mutate


def test_combining_spaces_warns_and_wrong_dim_raises():
    with pytest.warns(UserWarning, match="different spaces"):
        _ = make([1.0, 2.0]) + make([1.0, 0.0], model="other")
    with pytest.raises(DimensionMismatchError, match="dim 3"):
        _ = make([1.0, 2.0]) + make([1.0, 0.0, 0.0])


def test_bad_vectors_are_refused():
    with pytest.raises(NonFiniteError):
        make([1.0, float("nan")])
    with pytest.raises(DimensionMismatchError):
        make([[1.0, 2.0]])
    with pytest.raises(UnknownCategoryError, match="'gore'"):
        make([1.0], cat="gore")
    with pytest.raises(NonFiniteError):
        make([0.0, 0.0]).normalized()


def test_save_load_round_trip_with_provenance(tmp_path):
    rec = DataRecord.from_texts("pairs", ["u1", "s1"], side="source", unsafe=True)
    d = Direction(torch.randn(7), "google/gemma-3-270m", "layer:6/mean", category="sexual",
                  provenance=Provenance([rec]), meta={"layer": 6})
    d.save_pretrained(tmp_path)
    e = Direction.from_pretrained(tmp_path)
    assert torch.equal(e.vector, d.vector)
    assert (e.model_id, e.site, e.category, e.meta) == (d.model_id, d.site, "sexual", {"layer": 6})
    assert e.provenance.data == [rec]
    meta = json.loads((tmp_path / "direction.json").read_text())
    assert meta["saw_unsafe"] == {"source": True, "target": False}
    assert meta["convention"] == "unsafe_to_safe"


def test_load_rejects_dim_edit(tmp_path):
    make([1.0, 2.0, 3.0]).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "direction.json").read_text())
    meta["dim"] = 4
    (tmp_path / "direction.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="SHA-256"):  # a hand edit fails the checksum
        Direction.load(tmp_path)
    edit_json(tmp_path / "direction.json", lambda m: m.__setitem__("dim", 4))
    with pytest.raises(ArtifactError, match="dim 4 but tensor has 3"):
        Direction.load(tmp_path)


def test_from_pretrained_missing_local_dir_is_clear(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        Direction.from_pretrained(str(tmp_path / "missing"))


def test_direction_set(tmp_path):
    s = DirectionSet({"global": make([1.0, 0.0]), "violence": make([0.0, 2.0], cat="violence")})
    assert s.categories == ["global", "violence"]
    assert s.matrix().shape == (2, 2)
    s.save_pretrained(tmp_path)
    t = load_directions(tmp_path)
    assert isinstance(t, DirectionSet)
    assert torch.equal(t["violence"].vector, s["violence"].vector)
    with pytest.raises(ArtifactError, match="not found"):
        load_directions(tmp_path / "x")
    with pytest.raises(ProvenanceError, match="share a space"):
        DirectionSet({"global": make([1.0, 0.0]), "hate": make([1.0, 0.0], model="other")})
    with pytest.raises(DimensionMismatchError):
        DirectionSet({"global": make([1.0, 0.0]), "hate": make([1.0, 0.0, 1.0])})
    with pytest.raises(UnknownCategoryError):
        DirectionSet({"weapons": make([1.0, 0.0])})


def test_equality_is_identity_for_objects_holding_tensors(tmp_path):
    from xsteer.steer import Gate, Steering

    a, b = make([1.0, 2.0]), make([1.0, 2.0])
    assert a == a and a != b  # used to raise: a tensor field has no single truth value
    s = DirectionSet({"global": a})
    assert s == s and s != DirectionSet({"global": b})
    g = Gate.calibrate(torch.randn(50, 2, generator=torch.Generator().manual_seed(0)), a.vector)
    assert g == g and g != Gate.calibrate(torch.randn(50, 2), a.vector)
    assert Steering(a) != Steering(a) and len({a, b, s, g}) == 4
