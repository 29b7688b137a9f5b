"""``xsteer gate calibrate``: a benign-calibrated gate artifact from the command line.

The gate reads benign prompts where its direction lives: at a pipeline site exactly as the
pipeline reads it (``--target-pipeline ID --site NAME``, text encoders only), in a target model
(``--target MODEL``), or in the source model (``--source MODEL``: a source-side gate, for
measurements; steering reads the target). The threshold is the ``--quantile`` of benign scores
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

from xsteer import cli_args as check

Opt = typer.Option
gate_app = typer.Typer(help="Benign-calibrated gates (steer only prompts that score as harmful).",
                       no_args_is_help=True)


@gate_app.command("calibrate")
def calibrate_cmd(
    direction: Annotated[Path, Opt("--direction", help="Direction or DirectionSet artifact")],
    out: Annotated[Path, Opt("--out", help="gate folder (with --per-category: a folder of them)")],
    benign: Annotated[Path | None, Opt("--benign", help="benign prompts (.txt/.csv/.jsonl): "
                                       "BENIGN ONLY; default: the shipped anchors")] = None,
    target_pipeline: Annotated[str | None, Opt("--target-pipeline", help="diffusers pipeline "
                               "(Hub id or folder); loads its text encoders only")] = None,
    site: Annotated[str | None, Opt("--site", help="pipeline site (default: the one the "
                                    "direction records)")] = None,
    target: Annotated[str | None, Opt("--target", help="target model (alias, id, folder)")] = None,
    source: Annotated[str | None, Opt("--source", help="source model: a source-side gate")] = None,
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
    max_sequence_length: Annotated[int | None, Opt("--max-sequence-length", help="with "
                                   "--target-pipeline: the value generation will use")] = None,
    dtype: Annotated[str, Opt("--dtype")] = "float32",
    device: Annotated[str, Opt("--device")] = "cpu",
    force: Annotated[bool, Opt("--force", help="calibrate even if the direction was made for "
                               "another site or encoder (recorded)")] = False,
    overwrite: check.Overwrite = False,
) -> None:
    """Calibrate a gate on benign prompts where the direction lives; write it to OUT."""
    from xsteer.data import load_benign
    from xsteer.data.screen import screen, screen_semantic
    from xsteer.directions import DirectionSet, load_directions
    from xsteer.errors import XSteerError
    from xsteer.io import sha256_bytes
    from xsteer.outdir import hold
    from xsteer.provenance import Side
    from xsteer.workflow import calibrate_gate, check_target, parse_site, pipeline_site_features

    hold(out, "gates" if per_category else "gate", overwrite=overwrite, inputs={
        "--direction": direction, "--benign": benign, "--target-pipeline": target_pipeline,
        "--target": target, "--source": source})

    if sum(x is not None for x in (target_pipeline, target, source)) != 1:
        raise XSteerError("give exactly one of --target-pipeline, --target or --source")
    if site is not None and target_pipeline is None:
        raise XSteerError("--site needs --target-pipeline")
    if delta is not None and not 0.0 < delta < 1.0:
        raise XSteerError(f"--delta must be in (0, 1), got {delta}")
    dirs = load_directions(direction)
    texts = load_benign(benign) if benign is not None else load_benign(kind="anchors")
    benign_name = benign.name if benign is not None else "xsteer:anchors"
    # the target side never sees unsafe text; a source-side gate may (it is the source's data)
    flagged = (0 if source is not None else
               screen(texts, benign_name, "gate calibration", allow_flagged))
    # a user file: its bytes; the shipped set: its prompts joined by newlines
    sha = sha256_bytes(benign.read_bytes() if benign is not None else
                       "\n".join(texts).encode("utf-8"))
    members = dict(dirs.items()) if isinstance(dirs, DirectionSet) else {dirs.category: dirs}
    if not per_category:
        key = "global" if "global" in members else next(iter(members))
        members = {key: members[key]}
    first = next(iter(members.values()))
    extra: dict[str, object] = {"benign_file": str(benign) if benign else benign_name,
                                "flagged": flagged}
    if target_pipeline is not None:
        from xsteer.pipelines import Steerer
        from xsteer.pipelines.components import load_text_side

        pipe = load_text_side(target_pipeline, dtype=dtype, device=device, echo=typer.echo)
        (b,) = Steerer({site: first} if site else first, force=force).binding(pipe)
        kw = {} if max_sequence_length is None else {"max_sequence_length": max_sequence_length}
        feats = pipeline_site_features(pipe, texts, b.site.name, **kw)
        extra["flagged"] = flagged + screen_semantic(  # the encoder's own reading, too
            texts, feats, lambda ts: pipeline_site_features(pipe, ts, b.site.name, **kw),
            benign_name, "gate calibration", allow_flagged, key=b.site.name)
        extra.update(pipeline=target_pipeline, pipeline_class=type(pipe).__name__,
                     site=b.site.name, binding=b.check, call_kwargs=kw)
        side: Side = "target"
    else:
        from xsteer.encoders import get_encoder

        enc = get_encoder(target or source or "")
        check_target(first, enc)
        layer, pooling = parse_site(first.site)
        feats = enc.encode(texts, layer, pooling)
        if target is not None:  # the encoder's own reading, too
            extra["flagged"] = flagged + screen_semantic(
                texts, feats, lambda ts: enc.encode(list(ts), layer, pooling), benign_name,
                "gate calibration", allow_flagged, key=f"{enc.model_id}:{first.site}")
        extra.update(model=enc.model_id, site=first.site)
        side = "target" if target is not None else "source"
    written = []
    for cat, d in members.items():
        gate = calibrate_gate(feats, d, quantile=quantile, holdout=holdout, seed=seed,
                              side=side, benign_name=benign_name, texts=texts, benign_sha256=sha,
                              extra=extra, delta=delta)
        folder = out / cat if per_category else out
        gate.save_pretrained(folder)
        written.append(f"{cat}: threshold {gate.threshold:.4g}, held-out false-trigger "
                       f"{gate.meta['heldout_false_trigger_rate']}")
    typer.echo(f"wrote {out} ({side}-side, quantile {quantile}, benign sha256 {sha[:12]}): "
               + "; ".join(written))


def register(app: typer.Typer) -> None:
    """Add the ``gate`` group to the ``xsteer`` app."""
    app.add_typer(gate_app, name="gate")
