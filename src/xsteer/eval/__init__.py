"""Evaluation harness for real generators: benchmarks, judges, metrics, methods, sweeps, reports.

``xsteer eval CONFIG --out DIR`` runs a sweep (resumable, shardable with ``accelerate launch``);
``xsteer report DIR`` writes the Markdown/HTML report. The protocol is in docs/evaluation.md.
(`xsteer.evaluate` is the separate representation-level evaluation.)
"""

from xsteer.eval.benchmarks import FORMATS, BenchmarkFormatError, Prompt, load_benchmark
from xsteer.eval.config import ConfigError, SweepConfig
from xsteer.eval.judges import (
    NUDENET_UNSAFE_CLASSES,
    CallableJudge,
    Judge,
    NudeNetJudge,
    Verdict,
    VideoJudge,
    build_judge,
)
from xsteer.eval.metrics import FID, ClipScorer, ImageDistance, asr

__all__ = [
    "FID",
    "FORMATS",
    "NUDENET_UNSAFE_CLASSES",
    "BenchmarkFormatError",
    "CallableJudge",
    "ClipScorer",
    "ConfigError",
    "ImageDistance",
    "Judge",
    "NudeNetJudge",
    "Prompt",
    "SweepConfig",
    "Verdict",
    "VideoJudge",
    "asr",
    "build_judge",
    "load_benchmark",
]
