"""``xsteer eval CONFIG --out DIR`` and ``xsteer report DIR``.

Multi-process: ``accelerate launch --multi_gpu --num_processes N -m xsteer eval CONFIG --out DIR``
(on a machine without GPUs this runs N CPU processes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``report`` to the xsteer CLI."""

    @app.command("eval")
    def eval_cmd(
        config: Annotated[Path, typer.Argument(
            help="Sweep config (.yaml, .yml, .toml or .json).")],
        out: Annotated[Path, typer.Option("--out", "-o",
                                          help="Output folder (re-run to resume).")],
        no_progress: Annotated[bool, typer.Option("--no-progress",
                                                  help="Hide progress bars.")] = False,
    ) -> None:
        """Run (or resume) an evaluation sweep: generate, judge, measure, record."""
        from xsteer.eval.config import SweepConfig
        from xsteer.eval.sweep import Sweep

        try:  # per-prompt truncation warnings would drown the progress bar
            from diffusers.utils import logging as dlog
            from transformers.utils import logging as tlog

            dlog.set_verbosity_error()
            tlog.set_verbosity_error()
        except ImportError:  # pragma: no cover - the sweep then names the missing extra
            pass
        cfg = SweepConfig.from_file(config)
        if cfg.threads:  # this process only; tiny CPU models run faster on one thread
            import torch

            torch.set_num_threads(int(cfg.threads))
        rows = Sweep(cfg, out).run(progress=not no_progress)
        if rows:
            typer.echo(f"{len(rows)} settings summarised in {out / 'summary.json'}; "
                       f"per-sample records in {out / 'records.jsonl'}")

    @app.command("report")
    def report_cmd(
        run_dir: Annotated[Path, typer.Argument(help="A folder written by `xsteer eval`.")],
    ) -> None:
        """Write report/report.md and a self-contained report/report.html."""
        from xsteer.eval.report import write_report

        md, html = write_report(run_dir)
        typer.echo(f"wrote {md} and {html}")
