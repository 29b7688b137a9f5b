"""``xsteer gate calibrate`` and ``xsteer gate score``: gate artifacts from the command line.

Two kinds of gate. **Source-side** (``--source MODEL``): the source LLM reads the prompt's text
and a per-category probe decides (`xsteer.probe_fit.fit_source_gate`: fitted on unsafe prompts,
which the source side may see, and benign texts; conformal threshold at ``--q``/``--delta`` on
held-apart benign texts; held-out false-trigger rate per benign style recorded). **Target-side**
(``--direction``): the gate reads benign prompts where its direction lives: at a pipeline site
exactly as the pipeline reads it (``--target-pipeline ID --site NAME``, text encoders only) or in
a target model (``--target MODEL``). Its threshold is the ``--quantile`` of benign scores
on a seeded share of the benign file (with ``--delta``, the conformal threshold that keeps false
triggers at most ``1 - quantile`` with probability ``1 - delta``); the artifact records the
quantile, the file's sha256 and the false-trigger rate on the held-out rest. A target-side gate's
benign file is screened for unsafe text first (``--allow-flagged`` records what was flagged). ``--per-category`` writes one gate per member of a
direction set (``OUT/<category>/``); ``xsteer generate --gate OUT`` and sweep configs
(``gates: OUT``) take either form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import xsteer.cli.args as check

Opt = typer.Option
gate_app = typer.Typer(help="Benign-calibrated gates (steer only prompts that score as harmful).",
                       no_args_is_help=True)


@gate_app.command("calibrate")
def calibrate_cmd(
    out: Annotated[Path, Opt("--out", help="gate folder (with --per-category: a folder of them)")],
    direction: Annotated[Path | None, Opt("--direction", help="Direction or DirectionSet "
                                          "artifact (target-side gates)")] = None,
    benign: Annotated[list[Path] | None, Opt("--benign", help="benign prompts (.txt/.csv/"
                                             ".jsonl): BENIGN ONLY; default: the shipped "
                                             "anchors. --source: repeatable, one style per "
                                             "file, added to the shipped ones")] = None,
    target_pipeline: Annotated[str | None, Opt("--target-pipeline", help="diffusers pipeline "
                               "(Hub id or folder); loads its text encoders only")] = None,
    site: Annotated[str | None, Opt("--site", help="pipeline site (default: the one the "
                                    "direction records)")] = None,
    target: Annotated[str | None, Opt("--target", help="target model (alias, id, folder)")] = None,
    source: Annotated[str | None, Opt("--source", help="source model (alias, id, folder): fit "
                                      "the source-side probe gate")] = None,
    layers: Annotated[str | None, Opt("--layers", help="--source: comma-separated source "
                                      "layers (default: four middle layers)")] = None,
    q: Annotated[float | None, Opt("--q", callback=check.finite, help="--source: false-trigger "
                                   "budget (default 0.01; or 1 - --quantile)")] = None,
    pairs: Annotated[Path | None, Opt("--pairs", help="--source: safe/unsafe pairs JSONL "
                                      "(default: the shipped pairs)")] = None,
    unsafe: Annotated[list[Path] | None, Opt("--unsafe", help="--source: more unsafe prompts, "
                                             "JSONL {category, prompt} (repeatable)")] = None,
    quantile: Annotated[float, Opt("--quantile", callback=check.quantile,
                                   help="benign quantile of the threshold")] = 0.99,
    delta: Annotated[float | None, Opt("--delta", help="conformal threshold: false triggers "
                                       "<= 1 - quantile with probability >= 1 - delta "
                                       "(default: the plain empirical quantile)")] = None,
    holdout: Annotated[float, Opt("--holdout", callback=check.fraction,
                                  help="share of benign prompts held out to measure the "
                                  "false-trigger rate")] = 0.2,
    allow_flagged: Annotated[bool, Opt("--allow-flagged", help="calibrate a target-side gate "
                                       "even if the unsafe screen flags some benign prompts "
                                       "(the count is recorded)")] = False,
    per_category: Annotated[bool, Opt("--per-category", help="one gate per category of a "
                                      "direction set (default: the global direction only)")]
        = False,
    seed: Annotated[int, Opt("--seed")] = 0,
    token_quantile: Annotated[float | None, Opt("--token-quantile", help="with "
                              "--target-pipeline: also record the benign per-token threshold "
                              "(this quantile of every benign token's harm score) that "
                              "`--mode tokens` uses")] = None,
    max_sequence_length: Annotated[int | None, Opt("--max-sequence-length", help="with "
                                   "--target-pipeline: the value generation will use")] = None,
    dtype: Annotated[str, Opt("--dtype")] = "float32",
    device: Annotated[str, Opt("--device")] = "cpu",
    force: Annotated[bool, Opt("--force", help="calibrate even if the direction was made for "
                               "another site or encoder (recorded)")] = False,
    overwrite: check.Overwrite = False,
) -> None:
    """Calibrate a gate: a source-side probe (--source) or a target-side gate on benign prompts
    where the direction lives; write it to OUT."""
    from xsteer.errors import XSteerError
    from xsteer.outdir import hold

    kind = "source-probe" if source is not None else ("gates" if per_category else "gate")
    hold(out, kind, overwrite=overwrite, inputs={
        "--direction": direction, "--target-pipeline": target_pipeline, "--target": target,
        "--source": source, **{f"--benign {b}": b for b in benign or []}})
    if source is not None:
        if direction is not None or target is not None or target_pipeline is not None:
            raise XSteerError("--source fits the source-side probe: give no --direction, "
                              "--target or --target-pipeline with it")
        _calibrate_source(source, out, benign or [], layers, q, 1.0 - quantile, delta, pairs,
                          unsafe or [], seed, device, dtype)
        return
    if direction is None:
        raise XSteerError("a target-side gate needs --direction (or use --source MODEL for the "
                          "source-side probe)")
    if benign is not None and len(benign) > 1:
        raise XSteerError("a target-side gate takes one --benign file")
    _calibrate_target(direction, out, benign[0] if benign else None, target_pipeline, site,
                      target, quantile, delta, holdout, allow_flagged, per_category, seed,
                      max_sequence_length, dtype, device, force, token_quantile)


def _calibrate_source(source: str, out: Path, benign: list[Path], layers: str | None,
                      q: float | None, q_default: float, delta: float | None,
                      pairs: Path | None, unsafe: list[Path], seed: int, device: str,
                      dtype: str) -> None:
    from xsteer.gate_fit import calibrate_source_gate
    from xsteer.probe_fit import check_layers, summary_line

    qq = q if q is not None else round(q_default, 10)  # 1 - 0.99 is 0.010000000000000009
    if not 0.0 < qq < 1.0:
        raise typer.BadParameter(f"--q must be in (0, 1), got {qq}")
    dl = 0.05 if delta is None else delta
    if not 0.0 < dl < 1.0:
        raise typer.BadParameter(f"--delta must be in (0, 1), got {dl}")
    probe = calibrate_source_gate(source, benign=benign, layers=check_layers(layers), q=qq,
                                  delta=dl, pairs=pairs, unsafe=unsafe, seed=seed, device=device,
                                  dtype=dtype)
    probe.save_pretrained(out)
    typer.echo(f"wrote {out} (source-side probe on {probe.model_id}, layers "
               f"{list(probe.layers)}): {summary_line(probe)}")


def _calibrate_target(direction: Path, out: Path, benign: Path | None,
                      target_pipeline: str | None, site: str | None, target: str | None,
                      quantile: float, delta: float | None, holdout: float, allow_flagged: bool,
                      per_category: bool, seed: int, max_sequence_length: int | None, dtype: str,
                      device: str, force: bool, token_quantile: float | None = None) -> None:
    from xsteer.gate_fit import calibrate_target_gates

    fitted = calibrate_target_gates(
        direction, benign=benign, target_pipeline=target_pipeline, site=site, target=target,
        quantile=quantile, delta=delta, holdout=holdout, allow_flagged=allow_flagged,
        per_category=per_category, seed=seed, max_sequence_length=max_sequence_length,
        dtype=dtype, device=device, force=force, token_quantile=token_quantile, echo=typer.echo)
    fitted.save(out)
    written = [f"{cat}: threshold {gate.threshold:.4g}, held-out false-trigger "
               f"{gate.meta['heldout_false_trigger_rate']}" for cat, gate in fitted.gates.items()]
    typer.echo(f"wrote {out} ({fitted.side}-side, quantile {quantile}, benign sha256 "
               f"{fitted.benign_sha256[:12]}): " + "; ".join(written))


@gate_app.command("score")
def score_cmd(
    gate: Annotated[Path, Opt("--gate", help="source-side gate folder (xsteer gate calibrate "
                              "--source)")],
    prompts: Annotated[Path, Opt("--prompts", help="prompts to audit (.txt/.csv/.jsonl)")],
    json_out: Annotated[Path | None, Opt("--json", help="write one object per prompt, in "
                                         "input order")] = None,
    source_device: Annotated[str, Opt("--source-device")] = "cpu",
    source_dtype: Annotated[str, Opt("--source-dtype")] = "float32",
) -> None:
    """Print each prompt's decision and per-category scores under a source-side gate."""
    from xsteer.data.loaders import load_prompts
    from xsteer.errors import XSteerError
    from xsteer.io import atomic_write_text
    from xsteer.steer.source_gate import SourceGate, is_source_gate_dir

    if not is_source_gate_dir(gate):
        raise XSteerError(f"{gate}: not a source-side gate (no probe.json); gate score audits "
                          "prompts with the source model")
    texts = load_prompts(prompts)
    sg = SourceGate.from_pretrained(gate, device=source_device, dtype=source_dtype)
    recs = sg.score(texts)
    names = list(sg.probe.names_)
    for r in recs:
        fired = [n for n in names if r["categories"][n]["fires"]]
        typer.echo(f"{'FIRES' if r['fires'] else 'pass '}  "
                   f"{r['categories']['global']['score']:+.2f}  "
                   f"{','.join(fired) or '-':<24} {r['prompt']}")
    n_fire = sum(r["fires"] for r in recs)
    typer.echo(f"{n_fire} of {len(recs)} prompts fire (threshold {sg.probe.threshold_:.4g})")
    if json_out is not None:
        import json

        atomic_write_text(json_out, "".join(json.dumps(r) + "\n" for r in recs))


def register(app: typer.Typer) -> None:
    """Add the ``gate`` group to the ``xsteer`` app."""
    app.add_typer(gate_app, name="gate")
