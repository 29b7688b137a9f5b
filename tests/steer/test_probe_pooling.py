"""The probe's pooling reaches the source model at fit and at inference: a planted encoder whose
``last`` features see only a prompt's last word, so a ``last``-pooled probe fires on "hand holding
a gun" and not on "gun near a cat", while a ``mean``-pooled one fires on both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from tests.fakes import KeywordEncoder
from xsteer.probe_fit import ProbeData, fit_source_gate
from xsteer.steer.probe import SourceProbe
from xsteer.steer.source_gate import SourceGate

WORDS = ("cat", "tree", "house", "river", "cup", "bird", "chair", "lamp", "boat", "kite")


class LastWordEncoder(KeywordEncoder):
    """Keyword features: anywhere in the text (mean), or only as its last word (last)."""

    def __init__(self) -> None:
        super().__init__(keywords=("gun", *WORDS))
        self.poolings: list[str] = []

    def _compute(self, texts: list[str], layers: list[int], pooling: str, batch_size: int,
                 progress: bool | None) -> dict[int, torch.Tensor]:
        self.poolings.append(pooling)
        words = [t.lower().split() for t in texts]
        seen = [w[-1:] if pooling == "last" else w for w in words]
        feats = torch.tensor([[float(k in s) for k in self.keywords] for s in seen])
        return {layer: feats.clone() for layer in layers}


def _data() -> ProbeData:
    unsafe = [("violence", f"a {w} and a gun") for w in WORDS] * 3
    benign = [f"a {a} near a {b}" for a in WORDS for b in WORDS]
    return ProbeData(unsafe=unsafe, benign={"captions": benign * 2})


def _fires(gate: SourceGate, texts: Sequence[str]) -> list[bool]:
    return gate.decide(list(texts))["global"].tolist()


def test_last_pooling_is_fitted_recorded_and_used_at_inference(tmp_path: Path) -> None:
    enc = LastWordEncoder()
    probe = fit_source_gate(enc, _data(), layers=[1], q=0.1, delta=0.1, pooling="last",
                            progress=False)
    assert set(enc.poolings) == {"last"}
    assert probe.pooling == "last" and probe.source["pooling"] == "last"
    loaded = SourceProbe.from_pretrained(str(probe.save_pretrained(tmp_path / "p")))
    assert loaded.pooling == "last"
    gate = SourceGate(loaded, enc)
    assert _fires(gate, ["hand holding a gun", "gun near a cat"]) == [True, False]
    assert enc.poolings[-1] == "last"
    mean = fit_source_gate(LastWordEncoder(), _data(), layers=[1], q=0.1, delta=0.1,
                           progress=False)
    assert mean.pooling == "mean"
    assert _fires(SourceGate(mean, LastWordEncoder()),
                  ["hand holding a gun", "gun near a cat"]) == [True, True]
