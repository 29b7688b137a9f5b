"""``xsteer sweep CONFIG --out DIR`` (`xsteer.evaluate.harness.run.run_sweep`) and ``xsteer report
DIR`` (`xsteer.evaluate.harness.report.write_report`).

Multi-process: ``accelerate launch --multi_gpu --num_processes N -m xsteer sweep CONFIG --out DIR``
(on a machine without GPUs this runs N CPU processes). ``xsteer eval`` is the old, hidden name of
``xsteer sweep``: it still works and prints a one-line deprecation note to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# `sweep` and its deprecated alias `eval` take the same arguments
ConfigArg = Annotated[Path, typer.Argument(help="Sweep config (.yaml, .yml, .toml or .json).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder (re-run to resume).")]
AllowPathOpt = Annotated[list[Path] | None, typer.Option(
    "--allow-path", help="Also let the config read files under this folder (repeatable); by "
    "default only its own folder and xsteer's cache.")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]
TrustOpt = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow pipeline_kwargs trust_remote_code / custom_pipeline "
    "(runs Python from the model folder or the Hub).")]
CallablesOpt = Annotated[bool, typer.Option(
    "--allow-callables", help="Allow judges of kind 'callable' (imports module:function).")]


def sweep_cmd(
    config: Annotated[Path | None, typer.Argument(
        help="Sweep config (.yaml, .yml, .toml or .json).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder (re-run to resume).")] = None,
    no_progress: NoProgressOpt = False,
    trust_remote_code: TrustOpt = False,
    allow_callables: CallablesOpt = False,
    allow_path: AllowPathOpt = None,
    schema: Annotated[bool, typer.Option(
        "--schema", help="Print the config's JSON schema (for editors) and exit.")] = False,
) -> None:
    """Run (or resume) an evaluation sweep: generate, judge, measure, record."""
    if schema:
        from xsteer.evaluate.harness.schema import json_schema

        typer.echo(json_schema())
        return
    if config is None or out is None:
        raise typer.BadParameter("give a CONFIG file and --out DIR (or --schema)")
    from xsteer.evaluate.harness.config import SweepConfig
    from xsteer.evaluate.harness.run import run_sweep
    from xsteer.outdir import hold

    cfg = SweepConfig.from_file(config, allow_paths=allow_path or ())
    # a sweep folder resumes; each process of a launch holds its own lock
    hold(out, "sweep", resume=True, inputs={"CONFIG": config})
    rows = run_sweep(cfg, out, trust_remote_code=trust_remote_code,
                     allow_callables=allow_callables, progress=not no_progress)
    if rows:
        typer.echo(f"{len(rows)} settings summarised in {out / 'summary.json'}; "
                   f"per-sample records in {out / 'records.jsonl'}")


def eval_cmd(
    config: ConfigArg,
    out: OutOpt,
    no_progress: NoProgressOpt = False,
    trust_remote_code: TrustOpt = False,
    allow_callables: CallablesOpt = False,
    allow_path: AllowPathOpt = None,
) -> None:
    typer.echo("xsteer eval is deprecated: use xsteer sweep (same arguments)", err=True)
    sweep_cmd(config, out, no_progress, trust_remote_code, allow_callables, allow_path)


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `xsteer sweep`.")],
) -> None:
    """Write report/report.md and a self-contained report/report.html."""
    from xsteer.evaluate.harness.report import write_report

    md, html = write_report(run_dir)
    typer.echo(f"wrote {md} and {html}")


def register(app: typer.Typer) -> None:
    """Add ``sweep`` (and its deprecated alias ``eval``) and ``report`` to the xsteer CLI."""
    app.command("sweep")(sweep_cmd)
    app.command("eval", hidden=True, help="Deprecated name of `xsteer sweep`.")(eval_cmd)
    app.command("report")(report_cmd)
