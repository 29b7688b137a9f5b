"""``xsteer generate`` (`xsteer.pipelines.run.generate_steered`: steered images/videos from a
diffusers pipeline, with manifests and grids) and ``xsteer sites`` (the site table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import xsteer.cli.args as check

Opt = typer.Option


def generate_cmd(
    pipeline: Annotated[str, Opt("--pipeline", help="diffusers pipeline: Hub id or local folder")],
    out: Annotated[Path, Opt("--out", help="output folder (one subfolder per prompt)")],
    direction: Annotated[Path | None, Opt("--direction", help="Direction or DirectionSet "
                                          "artifact folder (in the target encoder's space)")]
        = None,
    adapter: Annotated[str | None, Opt("--adapter", help="an adapter folder or Hub id from "
                                       "`xsteer pack` (instead of --direction/--gate/--mode; "
                                       "--strength, --mode, --combine and --branch override it "
                                       "when given)")] = None,
    prompt: Annotated[str | None, Opt("--prompt", help="one prompt")] = None,
    prompts: Annotated[Path | None, Opt("--prompts", help=".txt (one a line) or .jsonl "
                                                          "('prompt' key)")] = None,
    strength: Annotated[float | None, Opt("--strength", help="default 1")] = None,
    mode: Annotated[str | None, Opt("--mode", help="additive, projection, clamp, gated, or the "
                                    "gated keep-the-rest modes tokens, minimal, target (default "
                                    "additive)")] = None,
    window: Annotated[str | None, Opt("--window", help="START:END fractions of the denoising "
                                      "steps to steer (e.g. 0:0.5); conditional branch")] = None,
    targets: Annotated[Path | None, Opt("--targets", help="target points folder for --mode "
                                        "target (xsteer.steer.targets)")] = None,
    inner: Annotated[str, Opt("--inner", help="gated/tokens: additive or projection; target: "
                              "along or full")] = "additive",
    allow_negative: Annotated[bool, Opt("--allow-negative", help="allow a negative strength "
                                        "(steers toward unsafe)")] = False,
    site: Annotated[str | None, Opt("--site", help="site to steer (default: the one the "
                                    "direction records; it must match)")] = None,
    force: Annotated[bool, Opt("--force", help="steer even if the direction was made for "
                               "another site or encoder (the manifest records it)")] = False,
    gate: Annotated[list[Path] | None, Opt("--gate", help="gate folder from `xsteer gate "
                                           "calibrate`: a source-side probe (--source), or "
                                           "target gates (one, or one per category; "
                                           "repeatable); needed by gated/clamp")] = None,
    combine: Annotated[str | None, Opt("--combine", help="with a source-side gate: source "
                                       "(default), or or/and with target gates")] = None,
    source_device: Annotated[str, Opt("--source-device", help="device of the source model a "
                                      "source-side gate loads")] = "cpu",
    source_dtype: Annotated[str, Opt("--source-dtype", help="dtype of that source "
                                     "model")] = "float32",
    category: Annotated[list[str] | None, Opt("--category", help="steer only these categories "
                                              "of a DirectionSet")] = None,
    branch: Annotated[str | None, Opt("--branch", help="conditional (prompt_embeds path, the "
                                      "default) or both (hooks: negative branch too)")] = None,
    negative_prompt: Annotated[str | None, Opt("--negative-prompt")] = None,
    seed: Annotated[int, Opt("--seed", help="seed of prompt i is seed + i")] = 0,
    steps: Annotated[int | None, Opt("--steps", callback=check.positive)] = None,
    guidance: Annotated[float | None, Opt("--guidance", callback=check.finite)] = None,
    height: Annotated[int | None, Opt("--height", callback=check.positive)] = None,
    width: Annotated[int | None, Opt("--width", callback=check.positive)] = None,
    num_frames: Annotated[int | None, Opt("--num-frames", callback=check.positive,
                                           help="video pipelines only")] = None,
    max_sequence_length: Annotated[int | None, Opt("--max-sequence-length",
                                   callback=check.positive, help="T5/UMT5/LLM "
                                   "encoders: the length align and gate calibrate used")] = None,
    fps: Annotated[int, Opt("--fps", callback=check.positive)] = 8,
    compare: Annotated[bool, Opt("--compare", help="also write the unsteered output (same "
                                 "seed) and a side-by-side grid")] = False,
    dtype: Annotated[str, Opt("--dtype", help="float32, float16 or bfloat16")] = "float32",
    device: Annotated[str, Opt("--device")] = "cpu",
    cpu_offload: Annotated[bool, Opt("--cpu-offload", help="enable_model_cpu_offload for big "
                                     "models")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="write into an earlier `xsteer generate` "
                                   "folder (its samples are replaced)")] = False,
) -> None:
    """Generate steered samples; writes media, a manifest per sample and (--compare) grids."""
    from xsteer.cli.args import check_strength
    from xsteer.errors import XSteerError
    from xsteer.outdir import hold
    from xsteer.pipelines.generate import read_prompts
    from xsteer.pipelines.run import generate_steered

    hold(out, "samples", overwrite=overwrite, inputs={
        "--pipeline": pipeline, "--direction": direction, "--prompts": prompts,
        **{f"--gate {g}": g for g in gate or []}})
    if strength is not None:
        check_strength(strength, allow_negative)
    if (prompt is None) == (prompts is None):
        raise XSteerError("give exactly one of --prompt or --prompts")
    if (direction is None) == (adapter is None):
        raise XSteerError("give exactly one of --direction or --adapter")
    texts = [prompt] if prompt is not None else read_prompts(prompts)  # type: ignore[arg-type]
    extra = {"negative_prompt": negative_prompt, "guidance_scale": guidance, "height": height,
             "width": width, "num_frames": num_frames,
             "max_sequence_length": max_sequence_length}
    run = generate_steered(
        pipeline, texts, out, direction=direction, adapter=adapter, strength=strength, mode=mode,
        window=window, targets=targets, inner=inner, site=site, force=force, gate=gate or [],
        combine=combine, source_device=source_device, source_dtype=source_dtype,
        category=category, branch=branch, seed=seed, steps=steps, compare=compare, fps=fps,
        dtype=dtype, device=device, cpu_offload=cpu_offload,
        call_kwargs={k: v for k, v in extra.items() if v is not None})
    typer.echo(f"wrote {len(run.manifests)} sample(s) to {out} ({run.n_steered} steered, branch "
               f"{run.branch}, mode {run.steerer.mode}, strength {run.steerer.strength})")


def sites_cmd(
    pipeline: Annotated[str | None, Opt("--pipeline", help="a pipeline (Hub id or folder): "
                                        "load its text encoders and list its sites")] = None,
) -> None:
    """List the site-table families and their sites, or the sites of one pipeline."""
    from xsteer.pipelines.families import FAMILIES

    def show(name: str, classes: tuple[str, ...], sites: list[Any], default: str) -> None:
        typer.echo(f"{name} ({', '.join(classes)}); default site: {default}")
        for s in sites:
            typer.echo(f"  {s.name:<24} {s.component}.{s.output} ({s.kind})")

    if pipeline is None:
        for fam in FAMILIES.values():
            show(fam.name, fam.classes, list(fam.sites), fam.default_site)
        typer.echo("other pipelines with encode_prompt + prompt_embeds: the generic adapter "
                   "(xsteer sites --pipeline ID shows what it finds)")
        return
    from xsteer.pipelines.components import load_text_side
    from xsteer.pipelines.generic import family_for

    pipe = load_text_side(pipeline, echo=typer.echo)
    fam = family_for(pipe)
    show(fam.name, fam.classes, list(fam.sites), fam.default_site)


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``sites`` to the ``xsteer`` app."""
    app.command("generate")(generate_cmd)
    app.command("sites")(sites_cmd)
