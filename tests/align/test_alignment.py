"""The `Alignment` artifact: benign-only fitting, transport checks, save/load validation."""

import json
import warnings

import pytest
import torch

from tests.artifacts import edit_json
from xsteer.align import MAPS, Alignment, RidgeMap, calibrate
from xsteer.directions import Direction, DirectionSet
from xsteer.errors import (
    ArtifactError,
    DimensionMismatchError,
    ProvenanceError,
    UnsafeDataError,
)
from xsteer.provenance import DataRecord, Provenance

SRC, TGT = ("gemma", "layer:6/mean"), ("minilm", "pooled")
BENIGN_T = DataRecord.from_texts("benign", ["a cat", "a dog"], side="target", unsafe=False)
BENIGN_S = DataRecord.from_texts("benign", ["a cat", "a dog"], side="source", unsafe=False)
PAIRS_S = DataRecord.from_texts("pairs", ["unsafe text"], side="source", unsafe=True)
PAIRS_T = DataRecord.from_texts("pairs", ["unsafe text"], side="target", unsafe=True)
FAST = {"mlp": {"hidden": 16, "epochs": 10}, "direction-aware": {"direction": [1.0] * 8}}


def data(n=120, ds=8, dt=5, noise=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, ds, generator=g) * 3 + 1
    W = torch.randn(ds, dt, generator=g)
    return X, X @ W + noise * torch.randn(n, dt, generator=g), W


def fitted(method="ridge", **kw):
    X, Y, _ = data()
    return Alignment.fit(X, Y, method, source=SRC, target=TGT, data=[BENIGN_S, BENIGN_T],
                         **{**FAST.get(method if isinstance(method, str) else "", {}), **kw})


def src_direction(v=None, model=SRC[0], site=SRC[1], cat="global", prov=(PAIRS_S,)):
    v = torch.arange(1.0, 9.0) if v is None else v
    return Direction(v, model_id=model, site=site, category=cat, provenance=Provenance(list(prov)))


def test_fit_records_heldout_fidelity_stats_and_provenance():
    al = fitted(holdout=0.25)
    fs = al.fit_stats
    assert fs["n_fit"] == 120 and fs["n_holdout"] == 30
    assert fs["heldout_r2"] > 0.99 and fs["heldout_top1"] == 1.0
    assert fs["learned"]["alpha_"] in RidgeMap().alphas
    assert (al.source_dim, al.target_dim) == (8, 5)
    assert al.benign_stats["mean"].shape == (5,)
    assert al.provenance.summary() == {"source": False, "target": False}


def test_fit_with_noise_only_target_has_low_heldout_r2():
    X, _, _ = data()
    Y = torch.randn(120, 5, generator=torch.Generator().manual_seed(9))
    al = Alignment.fit(X, Y, source=SRC, target=TGT, data=[BENIGN_T])
    assert al.fit_stats["heldout_r2"] < 0.1


def test_fit_refuses_target_side_unsafe_data_and_missing_records():
    X, Y, _ = data()
    with pytest.raises(UnsafeDataError, match="pairs"):
        Alignment.fit(X, Y, source=SRC, target=TGT, data=[BENIGN_T, PAIRS_T])
    with pytest.raises(ProvenanceError, match="DataRecords"):
        Alignment.fit(X, Y, source=SRC, target=TGT, data=[])


def test_map_instance_is_a_template_and_not_mutated():
    template = RidgeMap(alphas=[0.5])
    al = fitted(template)
    assert not template.is_fitted
    assert al.map.alpha_ == 0.5


def test_transport_is_calibrated_W_v_with_merged_provenance():
    al = fitted()
    d = src_direction()
    out = al.transport(d)
    expected = calibrate(d.vector @ al.map.W_, al.benign_stats)
    assert torch.allclose(out.vector, expected)
    assert out.norm == pytest.approx(float(al.benign_stats["median_norm"]), rel=1e-5)
    assert (out.model_id, out.site, out.origin, out.method) == ("minilm", "pooled", "transported",
                                                                 "transported:ridge")
    assert out.provenance.summary() == {"source": True, "target": False}
    assert out.meta["norm_before_calibration"] == pytest.approx(float((d.vector @ al.map.W_).norm()))
    assert out.meta["source_direction"]["model_id"] == "gemma"
    raw = al.transport(d, calibrate="none")
    assert torch.allclose(raw.vector, d.vector @ al.map.W_)


def test_transport_direction_set_keeps_categories():
    al = fitted()
    ds = DirectionSet({"global": src_direction(), "violence": src_direction(-torch.ones(8), cat="violence")})
    out = al.transport(ds, calibrate="spread")
    assert set(out.categories) == {"global", "violence"}
    assert out.model_id == "minilm" and out["violence"].category == "violence"


def test_transport_refuses_other_spaces_with_named_errors():
    al = fitted()
    with pytest.raises(DimensionMismatchError, match="direction has dim 5 but alignment input expects 8"):
        al.transport(src_direction(torch.ones(5)))
    with pytest.raises(ProvenanceError, match="llama"):
        al.transport(src_direction(model="llama"))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = al.transport(src_direction(site="layer:12/mean"), strict=False)
    assert out.dim == 5 and any("layer:12" in str(x.message) for x in w)
    with pytest.raises(UnsafeDataError):
        al.transport(src_direction(prov=(PAIRS_S, PAIRS_T)))


@pytest.mark.parametrize("method", list(MAPS))
def test_save_load_round_trip(tmp_path, method):
    al = fitted(method)
    al.save_pretrained(tmp_path / "al")
    back = Alignment.from_pretrained(tmp_path / "al")
    X, _, _ = data(seed=3)
    assert type(back.map) is type(al.map)
    assert torch.equal(back.transform(X), al.transform(X))
    d = src_direction()
    assert torch.equal(back.transport(d).vector, al.transport(d).vector)
    assert back.fit_stats == json.loads(json.dumps(al.fit_stats))
    assert back.provenance.data == al.provenance.data
    assert back.map.params_() == al.map.params_()


def _edit_json(path, fn):
    edit_json(path, fn)  # sealed again: these tests reach the checks behind the checksum


def test_corrupt_or_edited_artifacts_fail_clearly(tmp_path):
    al = fitted()
    al.save_pretrained(tmp_path / "a")
    st = tmp_path / "a" / "alignment.safetensors"
    st.write_bytes(st.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(ArtifactError, match="SHA-256"):
        Alignment.from_pretrained(tmp_path / "a")

    cases = {
        "source dim 9": lambda m: m["source"].__setitem__("dim", 9),
        "target dim 4": lambda m: m["target"].__setitem__("dim", 4),
        "unknown alignment map 'pca'": lambda m: m.__setitem__("map", "pca"),
        "incomplete": lambda m: m.pop("target"),
        "kind 'direction'": lambda m: m.__setitem__("kind", "direction"),
    }
    for i, (message, edit) in enumerate(cases.items()):
        d = tmp_path / f"e{i}"
        al.save_pretrained(d)
        _edit_json(d / "alignment.json", edit)
        with pytest.raises(ArtifactError, match=message):
            Alignment.from_pretrained(d)


def test_loaded_artifact_with_unsafe_target_record_is_refused(tmp_path):
    al = fitted()
    al.save_pretrained(tmp_path / "a")
    _edit_json(tmp_path / "a" / "alignment.json", lambda m: m["data"].append(PAIRS_T.to_dict()))
    with pytest.raises(UnsafeDataError):
        Alignment.from_pretrained(tmp_path / "a")


def test_other_xsteer_version_warns_on_load(tmp_path):
    al = fitted()
    al.save_pretrained(tmp_path / "a")
    _edit_json(tmp_path / "a" / "alignment.json", lambda m: m.__setitem__("xsteer_version", "0.0.1"))
    with pytest.warns(UserWarning, match="0.0.1"):
        back = Alignment.from_pretrained(tmp_path / "a")
    assert "RidgeMap" in repr(back.map) and "gemma:layer:6/mean (8) -> minilm:pooled (5)" in repr(back)


def test_too_few_rows_for_a_holdout_skips_heldout_stats():
    X, Y, _ = data(n=4)
    al = Alignment.fit(X, Y, source=SRC, target=TGT, data=[BENIGN_T], holdout=0.2)
    assert al.fit_stats["n_holdout"] == 0 and al.fit_stats["heldout_r2"] is None
    assert al.fit_stats["train"]["n"] == 4
    with pytest.raises(ValueError, match="holdout"):
        Alignment.fit(X, Y, source=SRC, target=TGT, data=[BENIGN_T], holdout=1.0)


def test_source_encoder_round_trips_and_a_dtype_mismatch_warns(tmp_path):
    al = fitted(source_encoder={"model_id": SRC[0], "dtype": "bfloat16"})
    al.save_pretrained(tmp_path / "al")
    back = Alignment.load(tmp_path / "al")
    assert back.source_encoder == {"model_id": SRC[0], "dtype": "bfloat16"}
    d = src_direction()
    d.meta["dtype"] = "float32"
    with pytest.warns(UserWarning, match="estimated with gemma in float32 but the alignment "
                                         "read it in bfloat16"):
        back.transport(d)
    d.meta["dtype"] = "bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moved = back.transport(d)  # same dtype: silent
    assert torch.allclose(moved.vector, back.transport(src_direction()).vector)
    del d.meta["dtype"]  # a direction without the record (older artifacts): silent too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back.transport(d)
