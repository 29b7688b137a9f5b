"""Artifacts are all-or-nothing: a failure between any two writes of a save, or a SIGKILL at a
random point of one, leaves the old artifact or the new one, loadable, and nothing else."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
from pathlib import Path

import pytest
import torch

from xsteer import io
from xsteer.errors import ArtifactError
from xsteer.io import load_artifact, manifest_name, recover, save_artifact

FILES = {"x.json", "x.safetensors", manifest_name("x")}


def _version(out: Path) -> int:
    """Which of the two artifacts loads from ``out`` (tensor and JSON must agree)."""
    tensors, meta = load_artifact(out, "x", kind="k")
    v = int(meta["v"])
    assert torch.equal(tensors["w"], torch.full_like(tensors["w"], float(v)))
    return v


def _save(out: Path, v: int, n: int = 64) -> None:
    save_artifact(out, "x", {"w": torch.full((n,), float(v))}, {"kind": "k", "v": v})


def _steps(tmp_path: Path) -> list[str]:
    seen: list[str] = []
    _save(tmp_path / "probe", 1)
    orig = io._checkpoint
    io._checkpoint = seen.append
    try:
        _save(tmp_path / "probe", 2)  # over an existing artifact: the swap steps
    finally:
        io._checkpoint = orig
    recover(tmp_path / "probe")
    return seen


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "rename-aside"])
def test_a_failure_between_any_two_writes_leaves_old_or_new(tmp_path, monkeypatch, exchange):
    monkeypatch.setattr(io, "USE_EXCHANGE", exchange)
    steps = _steps(tmp_path)
    assert {"write x.safetensors", "write x.json", "write manifest", "swap",
            "remove-old"} <= set(steps)
    for step in steps:
        root = tmp_path / step.replace(" ", "_")
        out = root / "out"
        _save(out, 1)

        def boom(label: str, step: str = step) -> None:
            if label == step:
                raise OSError(f"injected at {label}")

        monkeypatch.setattr(io, "_checkpoint", boom)
        with pytest.raises(OSError, match="injected"):
            _save(out, 2)
        monkeypatch.setattr(io, "_checkpoint", lambda label: None)
        # the new artifact is in place only once the swap is done
        assert _version(out) == (2 if step == "remove-old" else 1), step
        assert {p.name for p in out.iterdir()} == FILES, step
        assert [p.name for p in root.iterdir()] == ["out"], step  # no temporary folder left
        _save(out, 3)  # and the next save goes through
        assert _version(out) == 3


@pytest.mark.parametrize("step", ["write x.safetensors", "write x.json", "write manifest",
                                  "rename-new-in"])
def test_a_fresh_save_that_fails_leaves_nothing(tmp_path, monkeypatch, step):
    def boom(label: str) -> None:
        if label == step:
            raise OSError("disk full")

    monkeypatch.setattr(io, "_checkpoint", boom)
    with pytest.raises(OSError):
        _save(tmp_path / "out", 1)
    assert list(tmp_path.iterdir()) == []


def test_editing_the_json_or_dropping_the_manifest_fails_the_load(tmp_path):
    _save(tmp_path / "out", 1)
    meta = json.loads((tmp_path / "out" / "x.json").read_text())
    (tmp_path / "out" / "x.json").write_text(json.dumps({**meta, "side": "source"}))
    with pytest.raises(ArtifactError, match=r"x\.json: SHA-256 does not match"):
        load_artifact(tmp_path / "out", "x")
    (tmp_path / "out" / manifest_name("x")).unlink()
    with pytest.raises(ArtifactError, match="manifest not found"):
        load_artifact(tmp_path / "out", "x")


def test_a_folder_with_other_files_is_not_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"notes\.txt"):
        _save(tmp_path, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _save_forever(out: str, exchange: bool, started: object) -> None:
    io.USE_EXCHANGE = exchange
    v = 1
    started.set()  # type: ignore[attr-defined]
    while True:
        v = 3 - v
        _save(Path(out), v, n=20_000)


@pytest.mark.slow
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "rename-aside"])
def test_sigkill_at_random_points_of_saves_loses_nothing(tmp_path, exchange):
    """Kill a process that saves over one artifact in a loop at 40 random moments per mode."""
    ctx = mp.get_context("forkserver")  # a clean server forks each child: no torch threads
    ctx.set_forkserver_preload(["tests.test_io_atomic"])
    rng = random.Random(13)
    out = tmp_path / "out"
    _save(out, 1, n=20_000)
    seen = set()
    for _ in range(40):
        started = ctx.Event()
        p = ctx.Process(target=_save_forever, args=(str(out), exchange, started))
        p.start()
        assert started.wait(30)
        p.join(rng.uniform(0.0, 0.05))  # a random moment, most likely inside a save
        assert p.is_alive()
        p.kill()
        p.join()
        seen.add(_version(out))  # loads (old or new) even before any clean-up
        if out.exists():
            assert {q.name for q in out.iterdir()} == FILES
        recover(out)  # what the next save does first
        assert [q.name for q in tmp_path.iterdir()] == ["out"]
        assert {q.name for q in out.iterdir()} == FILES
    assert seen == {1, 2}
