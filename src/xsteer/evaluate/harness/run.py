"""`run_sweep`: ``xsteer sweep`` as one call — a `Sweep` with the CLI's process settings.

>>> from xsteer.evaluate.harness.config import SweepConfig            # doctest: +SKIP
>>> rows = run_sweep(SweepConfig.from_file("sweep.yaml"), "runs/sweep")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from xsteer.evaluate.harness.config import SweepConfig


def run_sweep(cfg: SweepConfig, out: str | os.PathLike[str], *, trust_remote_code: bool = False,
              allow_callables: bool = False, progress: bool = True,
              quiet: bool = True) -> list[dict[str, Any]]:
    """Run (or resume) the sweep ``cfg`` into ``out``; returns the summary rows (main process).

    ``quiet``: per-prompt truncation warnings of diffusers/transformers would drown the
    progress bar. ``cfg.threads`` sets this process's torch threads (tiny CPU models run faster
    on one thread)."""
    from xsteer.evaluate.harness.sweep import Sweep

    if quiet:
        try:
            from diffusers.utils import logging as dlog
            from transformers.utils import logging as tlog

            dlog.set_verbosity_error()
            tlog.set_verbosity_error()
        except ImportError:  # pragma: no cover - the sweep then names the missing extra
            pass
    sweep = Sweep(cfg, out, trust_remote_code=trust_remote_code,
                  allow_callables=allow_callables)
    if cfg.threads:
        import torch

        torch.set_num_threads(int(cfg.threads))
    return sweep.run(progress=progress)
