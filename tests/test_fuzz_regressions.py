"""Inputs the fuzzer (tests/test_fuzz_inputs.py) found escaping as unexpected errors, kept as fast
regression examples: each is now one clear line and exit 2, with nothing at ``--out``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_fuzz_inputs import run_cli

SWEEP_BASE = ("benchmarks:\n- format: inline\n  prompts:\n  - a cat\nmethods:\n- kind: none\n"
              "pipeline: /no/such/pipeline\n")


@pytest.mark.parametrize(("extra", "match"), [
    ("pipeline_kwargs: []\n", "pipeline_kwargs must be a mapping, got []"),
    ("generation: ''\n", "generation must be a mapping"),
])
def test_sweep_configs_the_fuzzer_found(tmp_path: Path, extra: str, match: str) -> None:
    (tmp_path / "s.yaml").write_text(SWEEP_BASE + extra)
    code, err = run_cli("sweep", tmp_path / "s.yaml", "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and match in err, err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    from tests.fuzz_artifacts import save_pair

    save_pair(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("which", "edit", "match"), [
    ("align", lambda m: m["map_params"].update(alphas="layer:-1/mean"),
     "alignment metadata is malformed (could not convert"),
    ("dirs", lambda m: m.update(members=[{"a": 1}]),
     "direction-set metadata is malformed ("),
    ("dirs", lambda m: m["members"]["global"].update(dim="x"),
     "direction-set metadata is malformed"),
])
def test_sealed_artifact_edits_the_fuzzer_found(saved: Path, which: str, edit, match: str) -> None:
    from tests.artifacts import edit_json

    name = {"dirs": "direction_set.json", "align": "alignment.json"}[which]
    edit_json(saved / which / name, edit)
    code, err = run_cli("transport", saved / "dirs", "--alignment", saved / "align", "--out",
                        saved / "out")
    assert code == 2 and err.count("\n") == 1 and match in err and "--debug" not in err, err
    assert not (saved / "out").exists()
