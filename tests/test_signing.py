"""Provenance that survives sharing (issue 19): a signed artifact verifies; an edited, resealed
one (the issue's forgery: saw_unsafe flipped and the manifest's SHA-256 recomputed) does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.artifacts import edit_json
from tests.test_fuzz_inputs import run_cli
from xsteer.directions import Direction
from xsteer.errors import ArtifactError
from xsteer.provenance import DataRecord, Provenance

pytest.importorskip("cryptography")

from xsteer.signing import SignatureError, keygen, sign, verify


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    rec = DataRecord.from_texts("anchors", ["a cat"], side="target", unsafe=False)
    Direction(torch.ones(4), model_id="m", site="layer:1/mean",
              provenance=Provenance([rec])).save_pretrained(tmp_path / "d")
    key, pub = keygen(tmp_path / "keys" / "k")
    sign(tmp_path / "d", key)
    return tmp_path / "d", key, pub


def test_a_signed_artifact_verifies_and_keeps_no_key(signed):
    d, key, pub = signed
    assert verify(d, pub) == ["direction"]
    sig = json.loads((d / "direction.sig.json").read_text())
    assert set(sig) == {"algorithm", "manifest", "key_fingerprint", "signature"}
    for f in d.iterdir():  # neither key is stored in the artifact
        assert key.read_bytes() not in f.read_bytes() and pub.read_bytes() not in f.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    Direction.load(d)  # a signature does not change loading


def test_a_forged_resealed_artifact_fails_verify(signed):
    d, _, pub = signed

    def flip(meta):
        meta["data"][0]["unsafe"] = True  # saw_unsafe on the target side, hidden by a reseal

    edit_json(d / "direction.json", flip)
    Direction.load(d)  # the manifest check alone cannot see it: the hashes are recomputed
    with pytest.raises(SignatureError, match="changed after it was signed"):
        verify(d, pub)
    code, err = run_cli("verify", d, "--pubkey", pub)
    assert code == 2 and err.startswith("error: ") and "changed after it was signed" in err


def test_an_edit_without_reseal_another_key_and_no_signature_fail(signed, tmp_path):
    d, _, pub = signed
    other_key, other_pub = keygen(tmp_path / "other")
    with pytest.raises(SignatureError, match="was signed by key"):
        verify(d, other_pub)
    bare = tmp_path / "bare"
    shutil.copytree(d, bare)
    (bare / "direction.sig.json").unlink()
    with pytest.raises(SignatureError, match="is not signed"):
        verify(bare, pub)
    raw = bytearray((d / "direction.safetensors").read_bytes())
    raw[-1] ^= 1
    (d / "direction.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="SHA-256 does not match"):
        verify(d, pub)
    with pytest.raises(ArtifactError, match="SHA-256 does not match"):
        sign(d, other_key)  # nothing corrupt gets signed


def test_keys_are_never_replaced_and_the_cli_round_trip(tmp_path):
    code, err = run_cli("keygen", "--key", tmp_path / "k")
    assert code == 0, err
    before = (tmp_path / "k").read_bytes()
    code, err = run_cli("keygen", "--key", tmp_path / "k")
    assert code == 2 and "keys are never replaced" in err
    assert (tmp_path / "k").read_bytes() == before
    Direction(torch.ones(3), model_id="m", site="layer:1/mean").save_pretrained(tmp_path / "d")
    assert run_cli("sign", tmp_path / "d", "--key", tmp_path / "k")[0] == 0
    code, err = run_cli("verify", tmp_path / "d", "--pubkey", tmp_path / "k.pub")
    assert code == 0, err
    # a re-save replaces the folder: the new artifact is unsigned until signed again
    Direction(torch.ones(3) * 2, model_id="m", site="layer:1/mean").save_pretrained(tmp_path / "d")
    assert "is not signed" in run_cli("verify", tmp_path / "d", "--pubkey", tmp_path / "k.pub")[1]
