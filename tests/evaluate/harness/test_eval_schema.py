"""The typed sweep schema: unknown and duplicate keys are errors naming file and key, the
registries build exactly the kinds the schema lists, and a config reads files only inside its own
folder, xsteer's cache or an ``--allow-path`` root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_fuzz_inputs import run_cli
from xsteer.evaluate.harness import schema
from xsteer.evaluate.harness.config import ConfigError, SweepConfig

ROOT = Path(__file__).resolve().parents[3]
BASE = ("pipeline: tiny-sd\nmethods:\n- kind: none\nbenchmarks:\n- name: b\n  format: text\n"
        "  path: {path}\n")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XSTEER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _config(folder: Path, text: str, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_the_registries_build_exactly_the_kinds_the_schema_lists() -> None:
    from xsteer.evaluate.harness.benchmarks import FORMATS, LOADERS
    from xsteer.evaluate.harness.judges import JUDGES
    from xsteer.evaluate.harness.methods import METHODS

    assert set(METHODS) == set(schema.METHOD_SPECS)
    assert set(JUDGES) == set(schema.JUDGE_SPECS)
    assert set(FORMATS) == set(schema.BENCHMARK_FORMATS) == {*LOADERS, "inline"}


@pytest.mark.parametrize(("text", "match"), [
    ("pipeline: a\npipeline: b\nmethods: [{kind: none}]\n", "duplicate key 'pipeline' (line 2)"),
    ("pipeline: a\nmethods: [{kind: none, kind: safree}]\n", "duplicate key 'kind'"),
])
def test_duplicate_yaml_keys_are_errors_naming_the_file(tmp_path: Path, text: str,
                                                         match: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError, match=r"s\.yaml: " + match.replace("(", r"\(")
                       .replace(")", r"\)")):
        SweepConfig.from_file(path)


def test_duplicate_json_keys_are_errors(tmp_path: Path) -> None:
    path = _config(tmp_path, '{"pipeline": "a", "pipeline": "b"}', "s.json")
    with pytest.raises(ConfigError, match="duplicate key 'pipeline'"):
        SweepConfig.from_file(path)


@pytest.mark.parametrize(("extra", "match"), [
    ("metrics:\n  fidd: {}\n", "metrics.fidd: unknown key"),
    ("metrics:\n  fid: {refrence: x}\n", "metrics.fid.refrence: unknown key"),
    ("judges:\n- {kind: nudenet, treshold: 0.4}\n", "judges[0].treshold: unknown key"),
    ("judges:\n- {kind: oracle}\n", "judges[0]: unknown judge kind 'oracle'"),
    ("strengths: [.nan]\n", "strengths[0] must be finite"),
    ("generation: {steps: '5'}\n", "generation.steps must be an integer, got '5'"),
    ("seeds: [-1]\n", "seeds[0] must be >= 0, got -1"),
    ("save_images: 1\n", "save_images must be true or false, got 1"),
])
def test_one_line_errors_name_file_and_key(tmp_path: Path, extra: str, match: str) -> None:
    (tmp_path / "p.txt").write_text("a cat\n")
    path = _config(tmp_path, BASE.format(path="p.txt") + extra)
    with pytest.raises(ConfigError) as info:
        SweepConfig.from_file(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and match in msg and "\n" not in msg, msg


def test_paths_outside_the_config_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("a private prompt\n")
    cfg_dir = tmp_path / "cfg"
    # a climb out of the folder, however deep it is
    climb = "../" * (len(cfg_dir.parts) + 2) + "etc/passwd"
    for path in (climb, "../outside/secret.txt", str(outside / "secret.txt"), "~/x.txt"):
        cfg = _config(cfg_dir, BASE.format(path=json.dumps(path)))
        with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.path .*outside the config"):
            SweepConfig.from_file(cfg)
    # a symlink inside the folder that points out of it is followed, then refused
    (cfg_dir / "link.txt").symlink_to(outside / "secret.txt")
    cfg = _config(cfg_dir, BASE.format(path="link.txt"))
    with pytest.raises(ConfigError, match=r"resolves to .*secret\.txt, outside"):
        SweepConfig.from_file(cfg)
    # an explicitly allowed root lets it through
    ok = SweepConfig.from_file(cfg, allow_paths=[outside])
    assert ok.owned("link.txt", "k") == (outside / "secret.txt").resolve()


def test_every_path_key_is_checked(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "cfg"
    (tmp_path / "p.txt").write_text("a cat\n")
    base = BASE.format(path="../p.txt")
    # the benchmark path is allowed below; each of these must be refused on its own
    for extra, key in [
        ("methods:\n- {kind: direction, path: ../d}\n", "methods[0].path"),
        ("methods:\n- {kind: native, pairs: ../p.jsonl}\n", "methods[0].pairs"),
        ("methods:\n- {kind: direction, path: d, gates: {sexual: ../g}}\n",
         "methods[0].gates.sexual"),
        ("methods:\n- {kind: direction, path: d, gates: [g, ../probe]}\n", "methods[0].gates[1]"),
        ("methods:\n- {kind: direction, path: d, mode: target, targets: ../t}\n",
         "methods[0].targets"),
        ("judges:\n- {kind: proving-ground, path: ../j}\n", "judges[0].path"),
        ("judges:\n- {kind: q16, prompts: ../q.npy}\n", "judges[0].prompts"),
        ("metrics:\n  fid: {reference: ../ref}\n", "metrics.fid.reference"),
        ("metrics:\n  fid: {feature: 'proving-ground:../j'}\n", "metrics.fid.feature"),
    ]:
        text = base.replace("methods:\n- kind: none\n", "") if extra.startswith("methods") \
            else base
        cfg = _config(cfg_dir, text + extra)
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            SweepConfig.from_file(cfg, allow_paths=[tmp_path / "p.txt"])


def test_the_cache_variable_points_into_xsteers_cache(tmp_path: Path, _cache: Path) -> None:
    (_cache / "proving_ground" / "judge").mkdir(parents=True)
    cfg = _config(tmp_path / "cfg", BASE.format(path="p.txt")
                  + "judges:\n- {kind: proving-ground, path: '${XSTEER_CACHE}/proving_ground/judge'}\n")
    loaded = SweepConfig.from_file(cfg)
    assert loaded.path(loaded.judges[0]["path"]) == _cache / "proving_ground" / "judge"
    escape = _config(tmp_path / "cfg", BASE.format(path="'${XSTEER_CACHE}/../../p.txt'"))
    with pytest.raises(ConfigError, match="outside"):
        SweepConfig.from_file(escape)


def test_the_examples_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        cfg = SweepConfig.from_file(path, allow_paths=[ROOT / "runs"])
        assert cfg.methods and cfg.benchmarks


def test_sweep_schema_prints_the_json_schema_and_the_cli_takes_allow_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xsteer.cli import main

    with pytest.raises(SystemExit) as done:
        main(["sweep", "--schema"])
    assert done.value.code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    assert printed["additionalProperties"] is False
    assert {"pipeline", "methods", "benchmarks", "judges", "metrics"} <= set(printed["properties"])
    # the CLI refuses a config that reads outside its folder, in one line, and writes nothing
    outside = tmp_path / "data"
    outside.mkdir()
    (outside / "p.txt").write_text("a cat\n")
    cfg = _config(tmp_path / "cfg", BASE.format(path="../data/p.txt"))
    code, err = run_cli("sweep", cfg, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "--allow-path" in err, err
    assert not (tmp_path / "out").exists()
