"""The protocol script's own arithmetic (planted answers) and the sweep it writes."""

from __future__ import annotations

import argparse
import json
import math

from experiments import proving_ground_protocol as pgp


def test_paired_reduction_recovers_a_planted_halving() -> None:
    base = {(f"p{i}", 0): True for i in range(40)}
    steered = {k: i % 2 == 0 for i, k in enumerate(base)}  # half the prompts stay unsafe
    red, lo, hi = pgp.paired_reduction(base, steered)
    assert red == 0.5 and lo < 0.5 < hi and hi - lo < 0.4
    # nothing unsafe to begin with: no reduction can be measured
    assert all(math.isnan(v) for v in pgp.paired_reduction({("p", 0): False}, {("p", 0): False}))


def test_paired_difference_recovers_a_planted_gap_and_its_sign() -> None:
    base = {(f"p{i}", 0): True for i in range(80)}
    a = {k: i % 4 == 0 for i, k in enumerate(base)}  # 25% stay unsafe: reduction 0.75
    b = {k: i % 2 == 0 for i, k in enumerate(base)}  # 50% stay unsafe: reduction 0.50
    d, lo, hi = pgp.paired_difference(base, a, b)
    assert d == 0.25 and lo < 0.25 < hi and lo > 0  # a beats b, the interval excludes 0
    assert pgp.paired_difference(base, b, a)[0] == -0.25
    same = pgp.paired_difference(base, a, a)
    assert same == (0.0, 0.0, 0.0)  # identical settings: no difference in any resample


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


def test_video_table_reads_per_frame_and_motion_rates_from_the_summary_rows() -> None:
    from experiments.proving_ground_protocol import video_table

    def rate(r: float, n: int) -> dict:
        return {"rate": r, "n": n, "ci": [r - 0.1, r + 0.1]}

    rows = [{"benchmark": "unsafe", "method": "none", "mode": "none", "strength": 0.0,
             "video": {"pg": {"asr_per_frame": rate(0.9, 40)}}},
            {"benchmark": "benign", "method": "none", "mode": "none", "strength": 0.0,
             "video": {"pg": {"fidelity_per_frame": rate(0.8, 20), "motion_match": rate(0.7, 5)}}}]
    out = [{"method": "none", "mode": "none", "strength": 0.0}]
    lines = video_table(rows, out)
    assert lines[-1] == "| none | none | 0 | 0.900 [0.80, 1.00] | 0.800 [0.70, 0.90] | 0.700 [0.60, 0.80] |"
    assert out[0]["video"]["motion_match"]["n"] == 5
    images = [{**r, "video": {}} for r in rows]
    assert video_table(images, [{"method": "none", "mode": "none", "strength": 0.0}]) == []


def test_grid_has_one_row_per_setting_and_one_column_per_category_plus_benign(tmp_path) -> None:
    import json

    import numpy as np
    from PIL import Image

    from experiments.proving_ground_grid import grid, pick_columns

    recs = []
    for k, (bench, cat) in enumerate([("unsafe", "sexual"), ("unsafe", "sexual"),
                                      ("unsafe", "hate"), ("benign", None)]):
        for method, colour in (("none", 0), ("native-gated", 255)):
            rel = f"images/{method}/{k}.png"
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), colour, np.uint8)).save(tmp_path / rel)
            recs.append({"benchmark": bench, "categories": [cat] if cat else [],
                         "prompt_id": f"p{k}", "method": method, "mode": "none" if method ==
                         "none" else "gated", "strength": 0.0 if method == "none" else 4.0,
                         "image": rel})
    (tmp_path / "records.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    assert pick_columns(recs) == ["p0", "p2", "p3"]  # first of each category, then benign
    img = np.asarray(grid(tmp_path, ["none/none/0", "native-gated/gated/4"], scale=1))
    assert img.shape == (14 + 2 * 34, 150 + 3 * 34, 3)
    assert (img[14:14 + 32, 150:182] == 0).all() and (img[48:80, 150:182] == 255).all()


def test_keep_methods_cover_each_gated_direction_and_the_random_control(tmp_path) -> None:
    args = argparse.Namespace(
        native=str(tmp_path / "nat"), transported=["ridge=/r"], strengths=[1.0],
        gated_strengths=[4.0], keep_modes=["tokens", "minimal", "target"],
        keep_strengths=[1.0, 2.0], token_quantile=0.95, targets=["native=/tn"],
        windows=["0:0.5"])
    calib = {"calibrate": "benign-norm", "benign": "/c.txt"}
    ms = {m["name"]: m for m in pgp.keep_methods(args, {"native": "/gn", "ridge": "/gr"}, calib)}
    assert ms["ridge-tokens"]["gates"] == "/gr" and ms["ridge-tokens"]["token_quantile"] == 0.95
    assert "ridge-target" not in ms  # no transported targets given
    assert ms["native-target"]["targets"].endswith("tn")
    rnd = ms["random-minimal"]
    assert rnd["kind"] == "random" and rnd["like"] == "native" and rnd["gates"] == "/gn"
    assert ms["random-target"]["targets"] == ms["native-target"]["targets"]
    w = ms["native-gated-w0-0.5"]
    assert w["window"] == [0.0, 0.5] and w["mode"] == "gated" and w["strengths"] == [4.0]
    assert all(m["calibrate"] == "benign-norm" for m in ms.values())


def test_probe_methods_gate_by_the_probe_and_combine_with_the_target_gate(tmp_path) -> None:
    args = argparse.Namespace(
        probe=str(tmp_path / "probe"), transported=["ridge=/r", "mlp=/m"], strengths=[1.0],
        gated_strengths=[2.0, 4.0], keep_modes=["tokens", "target"], keep_strengths=[2.0],
        token_quantile=0.99, targets=["ridge=/tr"], windows=["0.5:1"],
        probe_per_category=["sexual", "hate"], category_strength=4.0, half_gate="/grh")
    calib = {"calibrate": "benign-norm", "benign": "/c.txt"}
    ms = {m["name"]: m for m in pgp.probe_methods(args, {"native": "/gn", "ridge": "/gr"}, calib)}
    probe = str((tmp_path / "probe").resolve())
    assert ms["ridge-probe-gated"]["gates"] == probe == ms["mlp-probe-gated"]["gates"]
    assert ms["ridge-probe-gated"]["strengths"] == [2.0, 4.0]
    # OR: the target side at half the budget; AND: the gate as calibrated
    assert ms["ridge-probe-or"]["gates"] == [probe, "/grh"]
    assert ms["ridge-probe-or"]["combine"] == "or"
    assert (ms["ridge-probe-and"]["gates"], ms["ridge-probe-and"]["combine"]) == ([probe, "/gr"],
                                                                                "and")
    # keep modes: the probe decides (no combine), the target gate gives the geometry
    tok = ms["ridge-probe-tokens"]
    assert tok["gates"] == [probe, "/gr"] and "combine" not in tok and tok["strengths"] == [2.0]
    assert ms["ridge-probe-target"]["targets"] == "/tr"
    assert ms["ridge-probe-gated-w0.5-1"]["window"] == [0.5, 1.0]
    cat = ms["ridge-probe@sexual"]
    assert cat["categories"] == ["sexual"] and cat["gates"] == probe and cat["strengths"] == [4.0]
    assert not any(n.startswith("mlp-probe-") and n != "mlp-probe-gated" for n in ms)
    # no target gate for the first transported direction: only the probe-gated rows
    only = pgp.probe_methods(args, {"native": "/gn"}, calib)
    assert [m["name"] for m in only] == ["ridge-probe-gated", "mlp-probe-gated"]


def test_skip_leaves_out_named_methods_but_never_the_unsteered_one(tmp_path) -> None:
    args = argparse.Namespace(
        prompts=str(tmp_path), native=str(tmp_path / "nat"), strengths=[4.0],
        modes=["projection"], transported=["ridge=/r"], baselines=False, per_category=[],
        category_strength=1.0, category_mode="projection", judge=str(tmp_path / "judge"),
        name="t", pipeline=str(tmp_path / "pipe"), threads=1, batch_size=8, steps=2,
        guidance=3.0, frames=0, gated_strengths=[4.0], skip=["random", "none", "native-gated"])
    names = [m["name"] for m in pgp.sweep_config(args, gates={"native": "/g"})["methods"]]
    assert names == ["none", "native", "transported-ridge"]


def test_screen_calibration_drops_what_the_products_screens_flag(tmp_path) -> None:
    from xsteer.data import load_pairs
    from xsteer.pipelines import tiny

    tiny.build("sd").save_pretrained(tmp_path / "sd")
    unsafe = load_pairs()[0].unsafe
    captions = ["a red cat on a sofa", "a bowl of fruit", unsafe, "a calm lake at dawn"]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "calibration.txt").write_text("\n".join(captions) + "\n")
    args = argparse.Namespace(prompts=str(tmp_path / "p"), pipeline=str(tmp_path / "sd"))
    out = tmp_path / "out"
    out.mkdir()
    path = pgp.screen_calibration(args, out)
    kept = path.read_text().split("\n")[:-1]
    dropped = json.loads((out / "calibration_dropped.json").read_text())
    assert unsafe not in kept and {d["text"] for d in dropped} | set(kept) == set(captions)
    assert {d["line"] for d in dropped} >= {3}
    args.calibration = str(path)
    assert pgp.calibration_file(args) == path


def test_make_gates_gates_every_transported_direction_with_all_operators(tmp_path) -> None:
    import torch

    from xsteer.directions import Direction
    from xsteer.pipelines import tiny

    pipe = tiny.build("sd")
    pipe.save_pretrained(tmp_path / "sd")
    dim = int(pipe.text_encoder.config.hidden_size)
    paths = {}
    for i, name in enumerate(("nat", "ridge", "mlp")):
        v = torch.zeros(dim)
        v[i] = 1.0
        paths[name] = str(Direction(v, "tiny", "pooled").save_pretrained(tmp_path / name))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "calibration.txt").write_text("a red cat\na bowl of fruit\na calm lake\n")
    args = argparse.Namespace(pipeline=str(tmp_path / "sd"), prompts=str(tmp_path / "p"),
                              native=paths["nat"], gate_quantile=0.99,
                              transported=[f"ridge={paths['ridge']}", f"mlp={paths['mlp']}"])
    assert set(pgp.make_gates(args, tmp_path / "a")) == {"native", "ridge"}  # first only
    args.all_operators = True
    gates = pgp.make_gates(args, tmp_path / "b")
    assert set(gates) == {"native", "ridge", "mlp"}
    cfg = pgp.sweep_config(argparse.Namespace(
        prompts=str(tmp_path / "p"), native=paths["nat"], strengths=[4.0],
        modes=["projection"], transported=args.transported, baselines=False, per_category=[],
        judge=None, name="t", pipeline=args.pipeline, threads=1, batch_size=8, steps=2,
        guidance=3.0, frames=0, gated_strengths=[4.0], all_operators=True), gates=gates)
    by = {m["name"]: m for m in cfg["methods"]}
    assert by["transported-mlp"]["modes"] == ["projection"]
    assert by["mlp-gated"]["gates"] == gates["mlp"] and by["mlp-gated"]["path"] == paths["mlp"]
