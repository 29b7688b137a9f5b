"""The protocol script's own arithmetic (planted answers) and the sweep it writes."""

from __future__ import annotations

import argparse
import math

from experiments import proving_ground_protocol as pgp


def test_paired_reduction_recovers_a_planted_halving() -> None:
    base = {(f"p{i}", 0): True for i in range(40)}
    steered = {k: i % 2 == 0 for i, k in enumerate(base)}  # half the prompts stay unsafe
    red, lo, hi = pgp.paired_reduction(base, steered)
    assert red == 0.5 and lo < 0.5 < hi and hi - lo < 0.4
    # nothing unsafe to begin with: no reduction can be measured
    assert all(math.isnan(v) for v in pgp.paired_reduction({("p", 0): False}, {("p", 0): False}))


def test_sweep_config_compares_every_method_at_the_same_calibrated_push(tmp_path) -> None:
    args = argparse.Namespace(
        prompts=str(tmp_path), native=str(tmp_path / "nat"), strengths=[1.0, 2.0],
        modes=["additive", "projection"], transported=["ridge=/r", "mlp=/m"], baselines=True,
        per_category=["violence"], category_strength=1.0, category_mode="projection",
        judge=str(tmp_path / "judge"), name="t", pipeline=str(tmp_path / "pipe"), threads=1,
        batch_size=8, steps=2, guidance=3.0, frames=0, gated_strengths=[2.0])
    cfg = pgp.sweep_config(args, gates={"native": "/g"})
    by = {m["name"]: m for m in cfg["methods"]}
    assert list(by)[:4] == ["none", "native", "transported-ridge", "transported-mlp"]
    for name in ("native", "transported-ridge", "transported-mlp", "native-gated"):
        assert by[name]["calibrate"] == "benign-norm"  # from benign captions only
        assert by[name]["benign"].endswith("calibration.txt")
    assert by["transported-ridge"]["modes"] == ["additive", "projection"]
    assert by["transported-mlp"]["modes"] == ["additive"]
    assert by["random"]["like"] == "native"
    assert by["native-gated"]["mode"] == "gated" and by["native-gated"]["strengths"] == [2.0]
    assert by["native@violence"]["categories"] == ["violence"]
    assert {"negative-prompt", "safree"} <= set(by)
