"""Evaluation harness for real generators: benchmarks, judges, metrics, methods, sweeps, reports.

``xsteer eval CONFIG --out DIR`` runs a sweep (resumable, shardable with ``accelerate launch``);
``xsteer report DIR`` writes the Markdown/HTML report. The protocol is in docs/evaluation.md.
(`xsteer.evaluate` is the separate representation-level evaluation.)

Names are imported lazily, so registering the CLI commands (which imports this package) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FORMATS": "benchmarks", "BenchmarkFormatError": "benchmarks", "Prompt": "benchmarks",
    "load_benchmark": "benchmarks",
    "ConfigError": "config", "SweepConfig": "config",
    "NUDENET_UNSAFE_CLASSES": "judges", "CallableJudge": "judges", "Judge": "judges",
    "NudeNetJudge": "judges", "Verdict": "judges", "VideoJudge": "judges",
    "build_judge": "judges",
    "METHOD_KINDS": "methods", "Method": "methods", "build_methods": "methods",
    "FID": "metrics", "ClipScorer": "metrics", "ImageDistance": "metrics", "asr": "metrics",
    "same_records": "records", "write_report": "report", "Sweep": "sweep",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xsteer.eval' has no attribute {name!r}")
    return getattr(importlib.import_module(f"xsteer.eval.{_EXPORTS[name]}"), name)
