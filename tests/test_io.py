import json

import pytest
import torch

from xsteer.errors import ArtifactError
from xsteer.io import allow_legacy, atomic_write_bytes, hash_texts, load_artifact, save_artifact


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    t = {"a": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([1, 2])}
    save_artifact(tmp_path, "x", t, {"kind": "thing", "note": "hi"})
    out, meta = load_artifact(tmp_path, "x", kind="thing")
    assert out["a"].dtype == torch.float32  # floats are stored as float32
    assert torch.equal(out["a"], t["a"].float())
    assert torch.equal(out["b"], t["b"])
    assert meta["note"] == "hi" and meta["format_version"] == 2 and "xsteer_version" in meta


def test_wrong_kind_is_named(tmp_path):
    save_artifact(tmp_path, "x", {"a": torch.ones(2)}, {"kind": "gate"})
    with pytest.raises(ArtifactError, match="kind 'gate', expected 'direction'"):
        load_artifact(tmp_path, "x", kind="direction")


def test_corrupt_tensor_file_is_detected(tmp_path):
    save_artifact(tmp_path, "x", {"a": torch.ones(4)}, {"kind": "k"})
    p = tmp_path / "x.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_artifact(tmp_path, "x")


def test_future_format_version_is_refused(tmp_path):
    save_artifact(tmp_path, "x", {"a": torch.ones(4)}, {"kind": "k"})
    meta = json.loads((tmp_path / "x.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "x.json").write_text(json.dumps(meta))
    (tmp_path / "x.manifest.json").unlink()  # a future writer's manifest is not ours to check
    with pytest.raises(ArtifactError, match="format_version 99"):
        load_artifact(tmp_path, "x")


def test_garbage_json_and_missing_files(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "nope", "x")
    save_artifact(tmp_path, "x", {"a": torch.ones(4)}, {"kind": "k"})
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="SHA-256 does not match"):
        load_artifact(tmp_path, "x")
    (tmp_path / "x.manifest.json").unlink()
    with pytest.raises(ArtifactError, match="corrupt artifact metadata"):
        load_artifact(tmp_path, "x")


def test_nan_tensors_are_refused_on_save_and_on_load(tmp_path):
    from safetensors.torch import save

    from xsteer.errors import NonFiniteError
    from xsteer.io import manifest_name, sha256_bytes

    with pytest.raises(NonFiniteError, match="'a'"):
        save_artifact(tmp_path / "n", "x", {"a": torch.tensor([1.0, float("nan")])}, {"kind": "k"})
    with pytest.raises(NonFiniteError, match="beyond float32"):  # 1e39 overflows float32
        save_artifact(tmp_path / "n", "x", {"a": torch.tensor([1e39], dtype=torch.float64)}, {})
    with pytest.raises(NonFiniteError, match=r"x\.fit\.r2"):
        save_artifact(tmp_path / "n", "x", {"a": torch.ones(1)}, {"fit": {"r2": float("inf")}})
    assert not (tmp_path / "n").exists() and list(tmp_path.iterdir()) == []
    # a NaN written by something else is still refused on load
    save_artifact(tmp_path / "m", "x", {"a": torch.ones(2)}, {"kind": "k"})
    data = save({"a": torch.tensor([1.0, float("nan")])})
    meta = json.loads((tmp_path / "m" / "x.json").read_text())
    meta["tensors_sha256"] = sha256_bytes(data)
    (tmp_path / "m" / "x.safetensors").write_bytes(data)
    (tmp_path / "m" / "x.json").write_text(json.dumps(meta))
    (tmp_path / "m" / manifest_name("x")).unlink()
    meta["format_version"] = 1
    (tmp_path / "m" / "x.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="allow-legacy"):  # a forged format 1 is refused
        load_artifact(tmp_path / "m", "x")
    with allow_legacy(), pytest.warns(UserWarning, match="format_version 1"), \
            pytest.raises(ArtifactError, match="NaN"):
        load_artifact(tmp_path / "m", "x")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]  # no temporary left behind


def test_hash_texts_is_order_and_boundary_sensitive():
    assert hash_texts(["ab", "c"]) != hash_texts(["a", "bc"])
    assert hash_texts(["a", "b"]) != hash_texts(["b", "a"])
    assert hash_texts(["a", "b"]) == hash_texts(["a", "b"])
