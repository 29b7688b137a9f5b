"""What a sweep ran on, recorded in its summary (and reported by model cards): the package
versions and the hardware."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for pkg in ("xsteer", "torch", "diffusers", "transformers", "torchmetrics", "nudenet",
                "accelerate"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"python": platform.python_version(), "versions": versions, "hardware": hardware()}


def hardware() -> dict[str, Any]:
    """What ran the sweep (model cards report it): CPU, cores, torch threads, GPUs."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpus": gpus, "device": ", ".join(gpus) if gpus else f"CPU ({cpu})"}
