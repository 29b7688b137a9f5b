"""The source-side gate: per-category decisions, identity checks, the artifact, empty prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.artifacts import edit_json
from tests.fakes import KeywordEncoder, planted_probe
from xsteer.errors import ArtifactError, DimensionMismatchError, XSteerError
from xsteer.steer.probe import SourceProbe
from xsteer.steer.source_gate import SourceGate, SourceIdentityError

TEXTS = ["a gun on a table", "a nude model", "a cat", "a gun and a nude statue", "", "   "]


def test_planted_probe_fires_exactly_on_its_keywords_per_category() -> None:
    gate = SourceGate(planted_probe(KeywordEncoder()), KeywordEncoder())
    dec = gate.decide(TEXTS)
    assert dec["violence"].tolist() == [True, False, False, True, False, False]
    assert dec["sexual"].tolist() == [False, True, False, True, False, False]
    assert dec["global"].tolist() == [True, True, False, True, False, False]


def test_score_records_match_decide_and_keep_input_order() -> None:
    gate = SourceGate(planted_probe(KeywordEncoder()), KeywordEncoder())
    recs = gate.score(TEXTS)
    dec = gate.decide(TEXTS)
    assert [r["prompt"] for r in recs] == TEXTS
    for i, r in enumerate(recs):
        assert r["fires"] == bool(dec["global"][i])
        for name in ("violence", "sexual", "global"):
            assert r["categories"][name]["fires"] == bool(dec[name][i])
    assert recs[0]["categories"]["violence"]["score"] == pytest.approx(1.0)
    assert recs[0]["categories"]["sexual"]["score"] == pytest.approx(-1.0)


def test_empty_prompts_never_reach_the_source_model() -> None:
    enc = KeywordEncoder()
    gate = SourceGate(planted_probe(enc), enc)
    enc.calls = 0
    gate.decide(["", "  ", "a gun"])
    assert enc.calls == 1


def test_half_threshold_is_stricter() -> None:
    gate = SourceGate(planted_probe(KeywordEncoder()), KeywordEncoder())
    # logits are +-1, the half threshold 0.5: same decisions, but a probe without one refuses
    assert gate.decide(["a gun"], half=True)["violence"].tolist() == [True]
    probe = planted_probe(KeywordEncoder())
    probe.half_threshold_ = None
    with pytest.raises(XSteerError, match=r"q/2"):
        SourceGate(probe, KeywordEncoder()).decide(["a gun"], half=True)


def test_a_probe_for_another_model_layers_or_width_is_refused() -> None:
    probe = planted_probe(KeywordEncoder())
    with pytest.raises(SourceIdentityError, match="another source model"):
        SourceGate(probe, KeywordEncoder(model_id="fake/other"))
    with pytest.raises(SourceIdentityError, match="layers"):
        SourceGate(planted_probe(KeywordEncoder(num_layers=5), layers=(4,)), KeywordEncoder())
    with pytest.raises(DimensionMismatchError):
        SourceGate(probe, KeywordEncoder(keywords=("gun", "nude", "drugs")))


def test_a_probe_without_threshold_is_refused() -> None:
    probe = planted_probe(KeywordEncoder())
    probe.threshold_ = None
    with pytest.raises(XSteerError, match="no threshold"):
        SourceGate(probe, KeywordEncoder())


def test_artifact_round_trip_keeps_identity_thresholds_and_decisions(tmp_path: Path) -> None:
    enc = KeywordEncoder()
    probe = planted_probe(enc)
    probe.meta = {"files": {"pairs.jsonl": "ab" * 32}}
    probe.save_pretrained(tmp_path / "p")
    back = SourceProbe.from_pretrained(str(tmp_path / "p"))
    assert back.source == probe.source and back.meta == probe.meta
    assert back.half_threshold_ == probe.half_threshold_
    a = SourceGate(back, enc).decide(TEXTS)
    b = SourceGate(probe, enc).decide(TEXTS)
    assert all(torch.equal(a[k], b[k]) for k in a)
    gate = SourceGate.from_pretrained(tmp_path / "p", encoder=enc)
    assert gate.probe.threshold_ == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_a_resealed_non_finite_threshold_fails_the_load(tmp_path: Path, bad: float) -> None:
    planted_probe(KeywordEncoder()).save_pretrained(tmp_path / "p")
    edit_json(tmp_path / "p" / "probe.json", lambda m: m.update(threshold=bad))
    with pytest.raises(ArtifactError, match="finite"):
        SourceProbe.from_pretrained(str(tmp_path / "p"))


def test_a_hand_edited_probe_fails_its_load(tmp_path: Path) -> None:
    planted_probe(KeywordEncoder()).save_pretrained(tmp_path / "p")
    meta_path = tmp_path / "p" / "probe.json"
    meta = json.loads(meta_path.read_text())
    meta["threshold"] = -5.0  # fire on everything, without resealing
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError):
        SourceProbe.from_pretrained(str(tmp_path / "p"))
