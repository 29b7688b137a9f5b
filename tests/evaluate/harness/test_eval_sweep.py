"""Sweeps on the tiny pipeline: records, resume after a crash, torn shards, 2-process accelerate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.config import ConfigError, SweepConfig
from xsteer.evaluate.harness.records import RecordStore, read_jsonl, same_records, stable
from xsteer.evaluate.harness.sweep import Sweep


def _records(out: Path) -> list[dict]:
    return [stable(r) for r in read_jsonl(out / "records.jsonl")]


def test_records_hold_what_the_protocol_needs(finished_run: Path) -> None:
    recs = list(read_jsonl(finished_run / "records.jsonl"))
    # 3 prompts x (none + native@40 + random@40)
    assert len(recs) == 9
    assert [r["n"] for r in recs] == sorted(r["n"] for r in recs)
    lake = [r for r in recs if r["prompt"] == "a calm lake"]
    assert {r["guidance"] for r in lake} == {5.0}  # per-prompt guidance wins over the default
    for r in recs:
        assert set(r["judges"]) == {"cat"}
        assert 0.0 <= r["clip_score"] <= 100.0
        assert (finished_run / r["image"]).is_file()
        assert r["timing"]["generate_s"] > 0
    by = {(r["method"], r["prompt_id"]): r for r in recs}
    # steering changes the image; the unsteered twin is at distance 0
    assert by[("none", "0")]["distance"] == 0.0
    assert by[("native", "0")]["distance"] > 0.0
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["judges"]["cat"]["kind"] == "clip-category"
    assert summary["methods"]["native"]["saw_unsafe"]["target"] is True
    row = next(r for r in summary["rows"] if r["method"] == "none")
    assert abs(row["fid"]) < 1e-6  # unsteered set against itself


def test_rerun_of_a_finished_sweep_generates_nothing(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    cfg = SweepConfig.from_dict(json.loads((finished_run.parent / "config.json").read_text()),
                                base_dir=finished_run.parent)
    calls: list[int] = []
    Sweep(cfg, out).run(progress=False, on_unit=lambda u: calls.append(u.index))
    assert calls == []
    assert _records(out) == _records(finished_run)


class _Crash(Exception):
    pass


def test_killed_half_way_and_resumed_matches_uninterrupted(finished_run: Path,
                                                           tmp_path: Path) -> None:
    cfg = SweepConfig.from_dict(json.loads((finished_run.parent / "config.json").read_text()),
                                base_dir=finished_run.parent)
    out = tmp_path / "crashed"
    done: list[int] = []

    def crash(u) -> None:  # type: ignore[no-untyped-def]
        done.append(u.index)
        if len(done) == 3:
            raise _Crash

    with pytest.raises(_Crash):
        Sweep(cfg, out).run(progress=False, on_unit=crash)
    assert not (out / "records.jsonl").exists()
    # a torn last line, as if the process died mid-write
    with open(RecordStore(out).shard(0), "a") as fh:
        fh.write('{"key": "mini/2/5/random/additive/40", "trunc')
    resumed: list[int] = []
    Sweep(cfg, out).run(progress=False, on_unit=lambda u: resumed.append(u.index))
    assert set(done).isdisjoint(resumed) and resumed  # finished units were skipped
    assert _records(out) == _records(finished_run)


def test_out_dir_of_another_config_is_refused(finished_run: Path, tmp_path: Path,
                                              tiny_config) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "other"
    shutil.copytree(finished_run, out)
    cfg = SweepConfig.from_dict(tiny_config(tmp_path, strengths=[3.0]), base_dir=tmp_path)
    with pytest.raises(XSteerError, match="another config"):
        Sweep(cfg, out).run(progress=False)


def test_config_errors_name_the_key(tmp_path: Path, tiny_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="unknown top-level"):
        SweepConfig.from_dict({**tiny_config(tmp_path), "pipline": "x"})
    with pytest.raises(ConfigError, match="generation"):
        SweepConfig.from_dict(tiny_config(tmp_path, generation={"stepz": 2}))
    bad = tmp_path / "c.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        SweepConfig.from_file(bad)
    toml = tmp_path / "c.toml"
    toml.write_text('pipeline = "tiny-sd"\n[[methods]]\nkind = "none"\n'
                    '[[benchmarks]]\nformat = "inline"\nprompts = ["a cat"]\n')
    assert SweepConfig.from_file(toml).methods == [{"kind": "none"}]


@pytest.mark.slow
def test_two_process_accelerate_run_matches_one_process(finished_run: Path,
                                                        tmp_path: Path) -> None:
    cfg_path = tmp_path / "sweep.json"
    cfg_path.write_text((finished_run.parent / "config.json").read_text())
    out = tmp_path / "two"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # --multi_gpu selects accelerate's torchrun launcher; on a CPU-only machine the sweep then
    # runs 2 gloo processes (accelerate's --cpu alone would start one process)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "xsteer", "sweep", str(cfg_path), "--out", str(out), "--no-progress",
           "--allow-path", str(finished_run.parent)]  # the config moved away from its files
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = list(read_jsonl(out / "records.jsonl"))
    one = list(read_jsonl(finished_run / "records.jsonl"))
    assert {r["rank"] for r in two} == {0, 1}
    # both sides run single-threaded (torchrun sets OMP_NUM_THREADS=1, the fixture sets 1 thread),
    # so the records are bit-identical, not merely close
    assert _records(out) == _records(finished_run)
    assert same_records(two, one)
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2


def test_video_sweep_judges_sampled_frames(tmp_path: Path, tiny_config) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_config(
        tmp_path, pipeline="tiny-t2v", call_kwargs={"num_frames": 4}, metrics={},
        benchmarks=[{"name": "vid", "format": "inline",
                     "prompts": [{"prompt": "a bloody fight", "categories": ["violence"]}]}],
        methods=[{"kind": "none"}, {"name": "safree", "kind": "safree", "strengths": [1.0],
                                    "concepts": ["blood", "a fight"]}])
    out = tmp_path / "out"
    Sweep(SweepConfig.from_dict(cfg, base_dir=tmp_path), out).run(progress=False)
    recs = list(read_jsonl(out / "records.jsonl"))
    assert [r["method"] for r in recs] == ["none", "safree"]
    for r in recs:
        verdict = r["judges"]["cat"]
        assert verdict["frames"] == [0, 1, 2, 3]
        assert verdict["unsafe"] == any(verdict["frame_unsafe"])
        assert (out / r["image"]).is_file()  # the clip's middle frame
        with Image.open((out / r["image"]).with_suffix(".gif")) as gif:  # and the whole clip
            assert gif.n_frames == 4
    assert recs[1]["info"]["triggers"] >= 0
    from xsteer.evaluate.harness.report import write_report

    md, _ = write_report(out)  # no CLIP score or FID in this run: the report says so
    assert "no plot" in md.read_text()


def test_the_shipped_example_config_is_valid() -> None:
    from xsteer.evaluate.harness.benchmarks import load_benchmark

    path = Path(__file__).parents[3] / "examples" / "eval-tiny.yaml"
    cfg = SweepConfig.from_file(path)
    assert cfg.pipeline == "tiny-sd" and len(cfg.strengths) == 2
    kinds = [m["kind"] for m in cfg.methods]
    assert kinds.count("none") == 1 and len(kinds) - 1 == 2
    for b in cfg.benchmarks:
        assert load_benchmark(**{k: v for k, v in b.items() if k != "path"})
