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
from xsteer.eval.methods import METHOD_KINDS, Method, build_methods
from xsteer.eval.metrics import FID, ClipScorer, ImageDistance, asr
from xsteer.eval.records import same_records
from xsteer.eval.report import write_report
from xsteer.eval.sweep import Sweep

__all__ = [
    "FID",
    "FORMATS",
    "METHOD_KINDS",
    "NUDENET_UNSAFE_CLASSES",
    "BenchmarkFormatError",
    "CallableJudge",
    "ClipScorer",
    "ConfigError",
    "ImageDistance",
    "Judge",
    "Method",
    "NudeNetJudge",
    "Prompt",
    "Sweep",
    "SweepConfig",
    "Verdict",
    "VideoJudge",
    "asr",
    "build_judge",
    "build_methods",
    "load_benchmark",
    "same_records",
    "write_report",
]
