"""The core CLI chain on real packaged models (spaCy → MiniLM), on small subsets."""

import json

import pytest
from typer.testing import CliRunner

from xsteer.cli import _register
from xsteer.data import load_benign, load_pairs, split_pairs

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    train, test = split_pairs(load_pairs(), test_fraction=0.5, seed=0)
    # a small stratified subset keeps the chain quick
    def subset(ps, k):
        seen: dict[str, int] = {}
        out = []
        for p in ps:
            if seen.get(p.category, 0) < k:
                out.append(p)
                seen[p.category] = seen.get(p.category, 0) + 1
        return out

    for name, ps in (("train", subset(train, 8)), ("test", subset(test, 8))):
        (d / f"{name}.jsonl").write_text("\n".join(
            json.dumps({"category": p.category, "unsafe": p.unsafe, "safe": p.safe}) for p in ps))
    (d / "anchors.txt").write_text("\n".join(load_benign(kind="anchors")[::8]))
    (d / "captions.txt").write_text("\n".join(load_benign(kind="captions")[:60]))
    return d


def run(*args):
    return CliRunner().invoke(_register(), [str(a) for a in args], catch_exceptions=True)


def test_cli_chain_estimate_align_transport_evaluate(files):
    d = files
    r = run("estimate", "--model", "en-core-web-sm", "--pairs", d / "train.jsonl",
            "--out", d / "src_dir")
    assert r.exit_code == 0, r.output
    r = run("estimate", "--model", "all-minilm-l6-v2", "--pairs", d / "train.jsonl",
            "--layer", "6", "--native", "--out", d / "native")
    assert r.exit_code == 0, r.output
    r = run("align", "--source", "en-core-web-sm", "--target", "all-minilm-l6-v2",
            "--benign", d / "anchors.txt", "--method", "ridge", "--out", d / "al")
    assert r.exit_code == 0, r.output
    r = run("transport", d / "src_dir", "--alignment", d / "al", "--out", d / "moved")
    assert r.exit_code == 0, r.output
    meta = json.loads((d / "moved" / "direction_set.json").read_text())
    assert meta["saw_unsafe"] == {"source": True, "target": False}  # the invariant, on disk
    assert meta["members"]["global"]["origin"] == "transported"
    r = run("evaluate", "--target", "all-minilm-l6-v2", "--direction", d / "moved",
            "--pairs", d / "test.jsonl", "--benign", d / "captions.txt",
            "--calibration", d / "anchors.txt", "--native", d / "native",
            "--strengths", "0.25,0.5", "--json", d / "eval.json")
    assert r.exit_code == 0, r.output
    res = json.loads((d / "eval.json").read_text())
    for key in ("asr_before", "asr_after", "benign_cosine", "false_trigger_rate",
                "unsafe_trigger_rate", "auroc", "per_category", "pair_fidelity_before",
                "pair_fidelity_after", "self_cosine", "direction_cosine_to_native",
                "asr_vs_strength"):
        assert key in res
    assert 0.0 <= res["asr_after"] <= 1.0 and 0.0 <= res["benign_cosine"] <= 1.0
    assert len(res["asr_vs_strength"]) == 2
    assert set(res["per_category"]) == {p["category"] for p in map(
        json.loads, (d / "test.jsonl").read_text().splitlines())}
    # the native direction, evaluated the same way, separates held-out pairs well above chance
    r = run("evaluate", "--target", "all-minilm-l6-v2", "--direction", d / "native",
            "--pairs", d / "test.jsonl", "--benign", d / "captions.txt",
            "--calibration", d / "anchors.txt", "--json", d / "native.json")
    assert r.exit_code == 0, r.output
    nat = json.loads((d / "native.json").read_text())
    assert nat["auroc"] > 0.8
    assert nat["asr_after"] < nat["asr_before"]


def test_cli_errors_are_one_clear_line(files, tmp_path):
    # its own artifacts, so it runs alone or in any order
    d = tmp_path
    r = run("estimate", "--model", "all-minilm-l6-v2", "--pairs", files / "train.jsonl",
            "--layer", "6", "--native", "--out", d / "native")
    assert r.exit_code == 0, r.output
    r = run("align", "--source", "en-core-web-sm", "--target", "all-minilm-l6-v2",
            "--benign", files / "anchors.txt", "--method", "ridge", "--out", d / "al")
    assert r.exit_code == 0, r.output
    # a MiniLM direction (384) through a spaCy-input alignment (96)
    r = run("transport", d / "native", "--alignment", d / "al", "--out", d / "bad")
    assert r.exit_code != 0
    assert "dim 384 but alignment input expects 96" in str(r.exception)
    assert not (d / "bad").exists()  # nothing half-written
    # the installed entry point turns it into one line on stderr and exit status 2
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "xsteer", "transport", str(d / "native"),
                        "--alignment", str(d / "al"), "--out", str(d / "bad")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("error: dimension mismatch")


def test_unknown_model_and_bad_pairs_file(tmp_path):
    from xsteer.errors import UnknownCategoryError, UnknownModelError

    r = run("estimate", "--model", "no-such-model-xyz", "--out", tmp_path / "o")
    assert isinstance(r.exception, UnknownModelError)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"category": "weapons", "unsafe": "a", "safe": "b"}\n')
    r = run("estimate", "--model", "all-minilm-l6-v2", "--pairs", bad, "--out", tmp_path / "o")
    assert isinstance(r.exception, UnknownCategoryError) and "line 1" in str(r.exception)


def test_align_help_lists_every_registered_map():
    from xsteer.align import MAPS

    r = run("align", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    for name in MAPS:
        assert name in text


def test_cli_choices_mirror_their_registries() -> None:
    """`xsteer.cli.args` spells the choices out so that ``--help`` needs no torch; each must stay equal
    to the registry it mirrors."""
    import xsteer.cli.args as cli_args
    from xsteer.align.calibration import CALIBRATIONS
    from xsteer.align.registry import MAPS
    from xsteer.directions.estimators import ESTIMATORS
    from xsteer.steer.steering import MODES

    assert cli_args.MAP_NAMES == tuple(MAPS)
    assert cli_args.ESTIMATOR_NAMES == tuple(ESTIMATORS)
    assert cli_args.CALIBRATION_NAMES == tuple(CALIBRATIONS)
    assert cli_args.MODE_NAMES == tuple(MODES)
    from xsteer.pipelines.generate import DTYPES

    assert set(cli_args.DTYPE_NAMES) == set(DTYPES)


@pytest.mark.parametrize("argv", [["--help"], ["align", "--help"], ["align", "--bogus"],
                                  ["sweep", "--schema"]])
def test_help_and_usage_errors_import_no_torch(argv: list[str]) -> None:
    """The CLI answers ``--help``, a usage error and ``sweep --schema`` without importing torch
    (or diffusers): those imports belong to the commands that run models."""
    import subprocess
    import sys

    code = ("import sys\nfrom xsteer.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules),"
            " file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr[-500:]


@pytest.mark.parametrize("verbose", [False, True])
def test_library_warnings_are_silenced_unless_verbose(verbose: bool) -> None:
    """A warning raised from inside a library (here: diffusers) and its log level are hidden
    from CLI users; ``xsteer --verbose`` shows them. Run in a child: filters are process-wide."""
    import os
    import subprocess
    import sys

    code = ("import os, sys, warnings\nfrom xsteer.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "warnings.warn_explicit('library noise', FutureWarning, 'x.py', 1, "
            "module='diffusers.utils.deprecation_utils')\n"
            "print('level', os.environ.get('DIFFUSERS_VERBOSITY'), file=sys.stderr)")
    argv = [*(["--verbose"] if verbose else []), "sites"]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items()
                                            if not k.endswith("_VERBOSITY")})
    assert ("library noise" in proc.stderr) is verbose, proc.stderr[-800:]
    assert proc.stderr.strip().splitlines()[-1] == ("level None" if verbose else "level error")


def test_align_method_svd_fits_the_reduced_rank_map(files, tmp_path):
    import torch

    from xsteer.align import Alignment, SVDMap

    r = run("align", "--source", "en-core-web-sm", "--target", "all-minilm-l6-v2",
            "--benign", files / "anchors.txt", "--method", "svd", "--out", tmp_path / "al")
    assert r.exit_code == 0, r.output
    al = Alignment.load(tmp_path / "al")
    assert isinstance(al.map, SVDMap) and 1 <= al.map.rank_ <= 96
    assert al.map.W_.shape == (96, 384)
    assert int(torch.linalg.matrix_rank(al.map.W_.double(), rtol=1e-5)) <= al.map.rank_


def test_source_dtype_bfloat16_gives_the_same_direction_and_a_fit(files, tmp_path):
    """`estimate --dtype` / `align --source-dtype`: a big LLM source runs in bfloat16; the
    direction is the float32 one up to rounding, and the alignment fits from the bf16 source."""
    from xsteer.align import Alignment
    from xsteer.directions import load_directions

    d = files
    for dt in ("float32", "bfloat16"):
        r = run("estimate", "--model", "all-minilm-l6-v2", "--pairs", d / "train.jsonl",
                "--layer", "6", "--dtype", dt, "--out", tmp_path / dt)
        assert r.exit_code == 0, r.output
    a, b = (load_directions(tmp_path / dt)["global"] for dt in ("float32", "bfloat16"))
    cos = float(a.vector.float() @ b.vector.float() / (a.vector.norm() * b.vector.norm()))
    assert 0.99 < cos < 1.0 + 1e-6 and b.vector.dtype == a.vector.dtype
    r = run("align", "--source", "all-minilm-l6-v2", "--target", "en-core-web-sm",
            "--benign", d / "anchors.txt", "--source-dtype", "bfloat16", "--out", tmp_path / "al")
    assert r.exit_code == 0, r.output
    al = Alignment.load(tmp_path / "al")
    assert al.map.W_.shape[0] == 384 and al.source_encoder["dtype"] == "bfloat16"


def test_source_dtype_errors_are_one_line(files, tmp_path):
    r = run("estimate", "--model", "all-minilm-l6-v2", "--dtype", "float64", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "'float64' is not one of float32, bfloat16, float16" in r.output
    r = run("estimate", "--model", "en-core-web-sm", "--pairs", files / "train.jsonl",
            "--dtype", "bfloat16", "--out", tmp_path / "y")
    assert r.exit_code != 0 and "spaCy pipeline: it has no dtype" in str(r.exception)
    assert not (tmp_path / "y").exists()  # nothing half-written
