"""``gates:`` as a list: one source-side probe beside target gates. The probe decides (or ORs /
ANDs with the target gates), and the target gates give the keep-the-rest modes their geometry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.fakes import KeywordEncoder, planted_probe
from xsteer.directions import Direction, DirectionSet
from xsteer.errors import XSteerError
from xsteer.evaluate.harness import gate_spec
from xsteer.evaluate.harness.gate_spec import MixedGates, load_gate_spec
from xsteer.evaluate.harness.methods import DirectionMethod
from xsteer.steer import Gate
from xsteer.steer.source_gate import SourceGate

CATS = ("violence", "sexual")


@pytest.fixture()
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    enc = KeywordEncoder()
    planted_probe(enc, CATS).save_pretrained(tmp_path / "probe")
    planted_probe(enc, CATS).save_pretrained(tmp_path / "probe2")
    # the planted probe runs on the keyword encoder, not a downloaded source model
    monkeypatch.setattr(gate_spec, "_source_gate",
                        lambda path: SourceGate(planted_probe(enc, CATS), enc))
    g = torch.Generator().manual_seed(0)
    for c in CATS:
        Gate(direction=torch.randn(32, generator=g), center=torch.zeros(32), threshold=0.5,
             quantile=0.99, category=c).save_pretrained(tmp_path / "tg" / c)
    Gate(direction=torch.randn(32, generator=g), center=torch.zeros(32), threshold=0.5,
         quantile=0.99, category="violence").save_pretrained(tmp_path / "tg2")
    return tmp_path


def test_a_list_loads_the_probe_and_the_target_gates(folders: Path) -> None:
    got = load_gate_spec(["probe", "tg/violence", "tg/sexual"], folders)
    assert isinstance(got, MixedGates)
    assert isinstance(got.source, SourceGate) and set(got.target) == set(CATS)
    only_targets = load_gate_spec(["tg/violence", "tg/sexual"], folders)
    assert only_targets.source is None and set(only_targets.target) == set(CATS)


def test_a_method_with_a_list_decides_by_the_probe_with_target_geometry(folders: Path) -> None:
    g = torch.Generator().manual_seed(1)
    dirs = DirectionSet({c: Direction(torch.randn(32, generator=g), "tiny", "text_encoder",
                                      category=c) for c in CATS})
    m = DirectionMethod("m", dirs, gates=load_gate_spec(["probe", "tg/violence", "tg/sexual"],
                                                        folders), modes=["minimal"])
    assert isinstance(m.source_gate, SourceGate) and set(m.gates or {}) == set(CATS)
    st = m.steerer("minimal", 2.0)
    assert st.combine == "source" and st.source_gate is m.source_gate
    m.combine = "or"
    assert m.steerer("gated", 1.0).combine == "or"


def test_two_probes_or_a_category_gated_twice_fail_in_one_line(folders: Path) -> None:
    with pytest.raises(XSteerError, match="2 source-side gates"):
        load_gate_spec(["probe", "probe2"], folders)
    with pytest.raises(XSteerError, match=r"\['violence'\] have a gate in two folders"):
        load_gate_spec(["tg/violence", "tg2"], folders)


def test_the_schema_takes_a_list() -> None:
    from xsteer.evaluate.harness.schema import DirectionMethod as Spec

    s = Spec(kind="direction", path="d", gates=["probe", "tg"], combine="or", mode="gated")
    assert s.gates == ["probe", "tg"]
