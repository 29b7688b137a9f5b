"""Core subcommands: estimate → align → transport → evaluate, and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import xsteer.cli.args as check
from xsteer.cli.args import CALIBRATION_NAMES as CALIBRATIONS
from xsteer.cli.args import ESTIMATOR_NAMES as ESTIMATORS
from xsteer.cli.args import MAP_NAMES as MAPS
from xsteer.cli.args import MODE_NAMES as MODES

Opt = typer.Option
# Mirrors the registry (a test keeps them equal), so the help lists every map `make_map` accepts
# without importing torch.
MAP_HELP = f"alignment map, one of: {', '.join(MAPS)}"


def _echo_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def estimate_cmd(
    model: Annotated[str, Opt("--model", help="alias (gemma-3-270m, all-minilm-l6-v2, "
                                            "en-core-web-sm, qwen2.5-coder-0.5b, "
                                            "qwen2.5-coder-1.5b), HF id or local folder")],
    out: Annotated[Path, Opt("--out", help="directory to write the direction set to")],
    pairs: Annotated[Path | None, Opt("--pairs", help="pairs JSONL "
                                         '{"category","unsafe","safe"}; default: shipped')] = None,
    layer: Annotated[str | None, Opt("--layer", callback=check.layer, help="hidden-state "
                                     "layer N (negative counts from the end, -1 = last), or "
                                     "'auto' (best pair separation); default: the encoder's "
                                     "default layer, the same rule `align` uses")] = None,
    pooling: Annotated[str | None, Opt("--pooling", callback=check.choice(("mean", "last")),
                                       help="mean or last")] = None,
    method: Annotated[str, Opt("--method", callback=check.choice(ESTIMATORS),
                               help=", ".join(ESTIMATORS))] = "mean-diff",
    native: Annotated[bool, Opt("--native", help="mark as a target-side yardstick "
                                "(estimated with unsafe data on the target)")] = False,
    trust_remote_code: Annotated[bool, Opt("--trust-remote-code")] = False,
    dtype: check.SourceDtype = "float32",
    overwrite: check.Overwrite = False,
) -> None:
    """Estimate a safety direction (global + one per category) from safe/unsafe pairs."""
    from xsteer.data import load_pairs
    from xsteer.encoders import get_encoder
    from xsteer.outdir import hold
    from xsteer.workflow import estimate

    hold(out, "direction", inputs={"--pairs": pairs, "--model": model}, overwrite=overwrite)

    data = load_pairs(pairs)  # bad input fails before a model loads
    enc = get_encoder(model, trust_remote_code=trust_remote_code, dtype=check.torch_dtype(dtype))
    dirs = estimate(enc, data, layer=layer, pooling=pooling, method=method,
                    native=native, pairs_name=pairs.name if pairs else "xsteer:pairs.jsonl")
    dirs.save_pretrained(out)
    g = dirs["global"]
    typer.echo(f"wrote {out}: {len(dirs)} directions in {g.model_id} at {g.site} "
               f"(dim {g.dim}, |global| {g.norm:.3g})")


def align_cmd(
    source: Annotated[str, Opt("--source", help="source model (alias, HF id or folder)")],
    out: Annotated[Path, Opt("--out", help="directory to write the alignment to")],
    target: Annotated[str | None, Opt("--target", help="target model (alias, HF id or folder)")]
        = None,
    target_pipeline: Annotated[str | None, Opt("--target-pipeline", help="diffusers pipeline "
                               "(Hub id or folder): read the target at one of its sites, "
                               "exactly as the pipeline does; loads its text encoders only")]
        = None,
    site: Annotated[str | None, Opt("--site", help="with --target-pipeline: the site "
                                    "(`xsteer sites`); default: the family's default site")] = None,
    benign: Annotated[Path | None, Opt("--benign", help="benign prompts (.txt/.csv/.jsonl); "
                                          "default: shipped anchors")] = None,
    method: Annotated[str, Opt("--method", callback=check.choice(MAPS), help=MAP_HELP)] = "ridge",
    source_layer: Annotated[str | None, Opt("--source-layer", callback=check.layer,
                            help="N or 'auto' (a benign-only criterion); default: the "
                            "encoder's default layer, the same rule `estimate` uses")] = None,
    target_layer: Annotated[int | None, Opt("--target-layer", help="with --target only: N "
                                               "(negative counts from the end)")] = None,
    like: Annotated[Path | None, Opt("--like", help="take the source layer from this "
                                        "direction artifact")] = None,
    holdout: Annotated[float, Opt("--holdout", callback=check.fraction,
                                  help="held-out fraction in [0, 1)")] = 0.2,
    seed: Annotated[int, Opt("--seed")] = 0,
    allow_flagged: Annotated[bool, Opt("--allow-flagged", help="fit even if the unsafe screen "
                                       "flags some benign prompts (the count is recorded)")]
        = False,
    max_sequence_length: Annotated[int | None, Opt("--max-sequence-length", help="with "
                                   "--target-pipeline: the value generation will use")] = None,
    revision: Annotated[str | None, Opt("--revision", help="pipeline revision (Hub)")] = None,
    dtype: Annotated[str, Opt("--dtype", help="text encoder dtype with --target-pipeline")] =
        "float32",
    device: Annotated[str, Opt("--device")] = "cpu",
    source_dtype: Annotated[str, Opt("--source-dtype", callback=check.choice(check.DTYPE_NAMES),
                                     help="source model dtype (a big LLM source in bfloat16; "
                                     "`estimate --dtype` should match)")] = "float32",
    overwrite: check.Overwrite = False,
) -> None:
    """Fit a source→target map on benign prompts only (both models read the same texts)."""
    from xsteer.outdir import hold
    from xsteer.workflow import align_models

    hold(out, "alignment", overwrite=overwrite, inputs={
        "--benign": benign, "--like": like, "--source": source, "--target": target,
        "--target-pipeline": target_pipeline})

    al = align_models(source, target=target, target_pipeline=target_pipeline, site=site,
                      benign=benign, method=method, source_layer=source_layer,
                      target_layer=target_layer, like=like, holdout=holdout, seed=seed,
                      allow_flagged=allow_flagged, max_sequence_length=max_sequence_length,
                      revision=revision, dtype=dtype, device=device,
                      source_dtype=source_dtype, echo=typer.echo)
    al.save_pretrained(out)
    fs = al.fit_stats
    typer.echo(f"wrote {out}: {method} {al.source_model}:{al.source_site} -> "
               f"{al.target_model}:{al.target_site}; held-out R2 {fs.get('heldout_r2')}, "
               f"top-1 {fs.get('heldout_top1')} (n_fit {fs.get('n_fit')})")


def transport_cmd(
    direction: Annotated[Path, typer.Argument(help="direction or direction-set directory")],
    alignment: Annotated[Path, Opt("--alignment", help="alignment directory")],
    out: Annotated[Path, Opt("--out")],
    calibrate: Annotated[str, Opt("--calibrate", callback=check.choice(CALIBRATIONS),
                                  help=", ".join(CALIBRATIONS))] = "benign-norm",
    overwrite: check.Overwrite = False,
) -> None:
    """Carry a source direction into the target space through a fitted alignment."""
    from xsteer.align import Alignment
    from xsteer.directions import load_directions
    from xsteer.outdir import hold

    hold(out, "direction", inputs={"DIRECTION": direction, "--alignment": alignment},
         overwrite=overwrite)

    moved = Alignment.load(alignment).transport(load_directions(direction), calibrate)
    moved.save_pretrained(out)
    typer.echo(f"wrote {out}: transported into {moved.model_id} at {moved.site} (dim {moved.dim})")


def evaluate_cmd(
    target: Annotated[str, Opt("--target", help="target model")],
    direction: Annotated[Path, Opt("--direction", help="direction in the target's space")],
    pairs: Annotated[Path, Opt("--pairs", help="held-out pairs JSONL")],
    benign: Annotated[Path, Opt("--benign", help="held-out benign prompts")],
    json_out: Annotated[Path, Opt("--json", help="where to write the metrics JSON")],
    mode: Annotated[str, Opt("--mode", callback=check.choice(MODES),
                             help=", ".join(MODES))] = "additive",
    strength: Annotated[float, Opt("--strength", help="multiple of the typical benign norm")]
        = 0.5,
    allow_negative: Annotated[bool, Opt("--allow-negative", help="allow a negative strength "
                                        "(steers toward unsafe)")] = False,
    calibration: Annotated[Path | None, Opt("--calibration", help="benign text for gate "
                           "thresholds and magnitude (default: shipped anchors)")] = None,
    quantile: Annotated[float, Opt("--quantile", callback=check.quantile,
                                   help="benign quantile of the gate, in (0, 1)")] = 0.99,
    native: Annotated[Path | None, Opt("--native", help="native direction, for "
                                          "direction_cosine_to_native")] = None,
    strengths: Annotated[str | None, Opt("--strengths", help="comma list for the "
                                            "asr_vs_strength curve")] = None,
    calibrate: Annotated[str, Opt("--calibrate", callback=check.choice(CALIBRATIONS))] =
        "benign-norm",
    categories: Annotated[str | None, Opt("--categories", help="comma list: steer only "
                                             "these members of a set")] = None,
    allow_flagged: Annotated[bool, Opt("--allow-flagged", help="calibrate even if the unsafe "
                                       "screen flags calibration texts")] = False,
) -> None:
    """Representation-level evaluation on held-out files; writes the metrics JSON."""
    from xsteer.data import load_benign, load_pairs
    from xsteer.directions import load_directions
    from xsteer.encoders import get_encoder
    from xsteer.io import atomic_write_json
    from xsteer.workflow import evaluate

    check.check_strength(strength, allow_negative)
    curve = check.floats(strengths) if strengths else None
    for s in curve or []:
        check.check_strength(s, allow_negative)
    d = load_directions(direction)
    nat = load_directions(native) if native else None
    calib = load_benign(calibration) if calibration else load_benign(kind="anchors")
    res = evaluate(get_encoder(target), d, load_pairs(pairs), load_benign(benign), calib,
                   mode=mode, strength=strength, calibrate=calibrate, native=nat,
                   quantile=quantile,
                   strengths=curve,
                   categories=categories.split(",") if categories else None,
                   allow_flagged=allow_flagged)
    atomic_write_json(json_out, {**res.to_dict(), "inputs": {
        "target": target, "direction": str(direction), "pairs": str(pairs),
        "benign": str(benign)}})
    _echo_json({"asr_before": res.asr_before, "asr_after": res.asr_after,
                "benign_cosine": res.benign_cosine,
                "pair_fidelity_before": res.pair_fidelity_before,
                "pair_fidelity_after": res.pair_fidelity_after, "self_cosine": res.self_cosine,
                "false_trigger_rate": res.false_trigger_rate,
                "unsafe_trigger_rate": res.unsafe_trigger_rate, "auroc": res.auroc})


def demo_cmd(
    out: Annotated[Path, Opt("--out", help="run directory")] = Path("runs/demo"),
    quick: Annotated[bool, Opt("--quick", help="MiniLM and spaCy only (no Gemma)")] = False,
    overwrite: check.Overwrite = False,
) -> None:
    """The README's main job: Gemma-3-270M, MiniLM and spaCy, transported vs native vs random."""
    from xsteer.demo import run_demo
    from xsteer.outdir import hold

    hold(out, "demo", overwrite=overwrite)

    run_demo(out, quick=quick)


def register(app: typer.Typer) -> None:
    """Add the core subcommands to ``app``."""
    app.command("estimate")(estimate_cmd)
    app.command("align")(align_cmd)
    app.command("transport")(transport_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("demo")(demo_cmd)
