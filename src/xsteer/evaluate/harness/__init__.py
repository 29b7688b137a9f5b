"""Evaluation harness for real generators: benchmarks, judges, methods, sweeps, reports.

``xsteer sweep CONFIG --out DIR`` runs a sweep (resumable, shardable with ``accelerate launch``);
``xsteer report DIR`` writes the Markdown/HTML report. The protocol is in docs/evaluation.md.

What does not live here: the metrics (ASR, CLIP score, FID, image distances) are in the shared
`xsteer.evaluate.metrics`; the representation-level evaluation is `xsteer.evaluate.representation`;
pipelines, their loader and the tiny offline models are in `xsteer.pipelines`.

Names are imported lazily, so registering the CLI commands does not import the harness's modules.
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
    "FID": "xsteer.evaluate.metrics", "ClipScorer": "xsteer.evaluate.metrics",
    "ImageDistance": "xsteer.evaluate.metrics", "asr": "xsteer.evaluate.metrics",
    "same_records": "records", "write_report": "report", "Sweep": "sweep",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _EXPORTS[name]
    if "." not in module:
        module = f"{__name__}.{module}"
    return getattr(importlib.import_module(module), name)
