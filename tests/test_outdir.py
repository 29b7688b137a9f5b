"""The --out rule and the output lock (issue 19): each reproduction of the issue, with every file
checked before and after. Commands run in-process on bag-of-words encoders (`tests/fakes.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fuzz_artifacts import ENCODERS, save_pair
from tests.test_fuzz_inputs import run_cli
from xsteer.errors import OutputError
from xsteer.outdir import claim, holds, lock, lock_path


@pytest.fixture
def enc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xsteer.encoders.get_encoder", lambda name, **kw: ENCODERS[name]())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pair")
    save_pair(d)  # d/dirs (a direction set), d/align (an alignment)
    return d


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` (links not followed): file bytes, link targets, folders."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            out[rel] = ("link:" + os.readlink(p) if p.is_symlink() else
                        "dir" if p.is_dir() else p.read_bytes())
    return out


def refused(root: Path, *args: object, match: str) -> str:
    """Run ``xsteer ARGS``; it must fail in one line matching ``match`` and change nothing."""
    before = snapshot(root)
    code, err = run_cli(*args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]
    assert snapshot(root) == before, "a refused command changed files"
    return lines[0]


def copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_pipelines_text_encoder_folder_is_not_replaced(tmp_path, enc):
    te = tmp_path / "pipe" / "text_encoder"
    te.mkdir(parents=True)
    (te / "config.json").write_text('{"model_type": "clip_text_model"}')
    (te / "model.safetensors").write_bytes(b"weights")
    line = refused(tmp_path, "estimate", "--model", "src", "--layer", "1", "--out", te,
                   match="model weights")
    assert str(te) in line
    # --overwrite does not make it an artifact
    refused(tmp_path, "estimate", "--model", "src", "--layer", "1", "--out", te, "--overwrite",
            match="model weights")


def test_an_artifact_of_another_kind_is_not_replaced(tmp_path, enc, pair):
    al = copy(pair / "align", tmp_path / "al")
    refused(tmp_path, "estimate", "--model", "src", "--layer", "1", "--out", al, "--overwrite",
            match="an alignment artifact (this command writes direction output)")


def test_the_input_of_a_command_is_not_its_output(tmp_path, enc, pair):
    d, al = copy(pair / "dirs", tmp_path / "d"), copy(pair / "align", tmp_path / "al")
    refused(tmp_path, "gate", "calibrate", "--direction", d, "--source", "src", "--out", d,
            "--overwrite", match="it is --direction")
    refused(tmp_path, "transport", d, "--alignment", al, "--out", d, "--overwrite",
            match="it is DIRECTION")
    refused(tmp_path, "transport", d, "--alignment", al, "--out", d / "inside",
            match="an input of this command")
    refused(tmp_path, "align", "--source", "src", "--target", "tgt", "--benign",
            tmp_path / "b.txt", "--like", d, "--out", tmp_path, match="an input")


def test_a_symlinked_out_is_refused_without_debris(tmp_path, enc, pair):
    real = copy(pair / "dirs", tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    refused(tmp_path, "estimate", "--model", "src", "--layer", "1", "--out", link,
            "--overwrite", match="symbolic link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_the_same_kind_needs_overwrite_and_then_is_replaced(tmp_path, enc, pair):
    d = copy(pair / "dirs", tmp_path / "d")
    refused(tmp_path, "estimate", "--model", "src", "--layer", "0", "--out", d,
            match="pass --overwrite")
    before = (d / "direction_set.json").read_bytes()
    code, err = run_cli("estimate", "--model", "src", "--layer", "0", "--out", d, "--overwrite")
    assert code == 0, err
    assert (d / "direction_set.json").read_bytes() != before  # layer 0 now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no lock or temp left


def test_a_read_only_artifact_is_not_replaced(tmp_path, enc, pair):
    d = copy(pair / "dirs", tmp_path / "d")
    d.chmod(0o555)
    try:
        refused(tmp_path, "estimate", "--model", "src", "--layer", "0", "--out", d,
                "--overwrite", match="read-only")
    finally:
        d.chmod(0o755)


def test_holds_names_each_kind(tmp_path, pair):
    assert holds(pair / "dirs")[0] == "direction"
    assert holds(pair / "align")[0] == "alignment"
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text('{"digest": "x", "config": {}}')
    assert holds(tmp_path / "cfg")[0] == "sweep"
    # a folder of per-category gates, and one stray file that spoils it
    import torch

    from xsteer.steer.gate import Gate

    g = Gate(direction=torch.ones(3), center=torch.zeros(3), threshold=0.5, quantile=0.9)
    g.save_pretrained(tmp_path / "gates" / "violence")
    assert holds(tmp_path / "gates")[0] == "gates"
    (tmp_path / "gates" / "notes.txt").write_text("x")
    assert holds(tmp_path / "gates")[0] is None


def _holder(path: Path) -> subprocess.Popen[str]:
    """Another process that holds the lock of ``path`` until killed."""
    code = ("import sys, time; from xsteer.outdir import lock\n"
            f"with lock({str(path)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_a_second_run_on_a_locked_folder_fails_naming_the_pid(tmp_path, enc):
    out = tmp_path / "out"
    p = _holder(out)
    try:
        line = refused(tmp_path, "estimate", "--model", "src", "--layer", "1", "--out", out,
                       match=f"pid {p.pid}")
        assert "another xsteer run" in line
        cfg = tmp_path / "sweep.json"
        cfg.write_text('{"pipeline": "tiny-sd", "methods": [{"kind": "none"}], '
                       '"benchmarks": [{"format": "inline", "prompts": ["a cat"]}]}')
        refused(tmp_path, "sweep", cfg, "--out", out, match=f"pid {p.pid}")
    finally:
        p.kill()
        p.wait()
    # the holder died without cleaning up: its stale lock file is taken over
    assert lock_path(out).exists()
    code, err = run_cli("estimate", "--model", "src", "--layer", "1", "--out", out)
    assert code == 0, err
    assert not lock_path(out).exists()


def test_each_process_of_a_launch_has_its_own_lock(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert lock_path(out, 0) != lock_path(out, 1)
    with lock(out, 0), lock(out, 1):  # rank 0 and rank 1 of one launch both write their shards
        with pytest.raises(OutputError, match=f"pid {os.getpid()}"):
            with lock(out, 1):  # but a second launch's rank 1 does not
                pass
    assert list(tmp_path.iterdir()) == []


def test_claim_rules_in_python(tmp_path):
    assert claim(tmp_path / "new", "direction") == tmp_path / "new"
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        claim(tmp_path / "f", "direction")
    (tmp_path / "empty").mkdir()
    assert claim(tmp_path / "empty", "alignment") == tmp_path / "empty"
    t0 = time.perf_counter()
    with lock(tmp_path / "x"):
        pass
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("args", [
    ["--arch", "mmdit", "--hidden", "130", "--heads", "4"],
    ["--arch", "legacy-unet", "--channels", "abc"],
    ["--arch", "mmdit", "--steps", "0"],
    ["--arch", "mmdit", "--schedule", "sawtooth"],
    ["--arch", "unet", "--layers", "x,y"],
])
def test_train_fresh_checks_every_argument_before_touching_the_checkpoint(tmp_path, args):
    out = tmp_path / "gen"
    # a previous run's checkpoint: the mmdit/unet one beside OUT, the legacy one inside it
    for ckpt in (tmp_path / "gen.checkpoint", out / "checkpoint"):
        ckpt.mkdir(parents=True)
        (ckpt / "checkpoint.json").write_text('{"step": 500}')
        (ckpt / "checkpoint.safetensors").write_bytes(b"weights of 500 steps")
    (out / "proving_ground.json").write_text("{}")  # a legacy generator folder
    (out / "unet").mkdir()
    (out / "model_index.json").write_text("{}")  # and a trained pipeline's files
    (out / "proving_ground_training.json").write_text("{}")
    refused(tmp_path, "proving-ground", "train", "--fresh", "--out", out, *args, match="")


def test_fresh_checkpoint_swaps_in_only_a_finished_run(tmp_path):
    from xsteer.proving_ground.training import fresh_checkpoint

    ckpt = tmp_path / "c"
    ckpt.mkdir()
    (ckpt / "checkpoint.json").write_text("old")
    with pytest.raises(RuntimeError), fresh_checkpoint(ckpt, True) as new:
        new.mkdir()
        (new / "checkpoint.json").write_text("half")
        raise RuntimeError("stopped")
    assert (ckpt / "checkpoint.json").read_text() == "old"
    with fresh_checkpoint(ckpt, True) as new:
        assert new != ckpt and not new.exists()  # the leftover of the failed run is cleared
        new.mkdir()
        (new / "checkpoint.json").write_text("new")
    assert (ckpt / "checkpoint.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    with fresh_checkpoint(ckpt, False) as same:
        assert same == ckpt
