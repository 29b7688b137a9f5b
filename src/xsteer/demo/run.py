"""The demo (``make demo`` / ``xsteer demo``): the whole cross-model path on real offline models.

For each source→target pair (Gemma-3-270M→MiniLM, MiniLM→Gemma-3-270M, spaCy→MiniLM) and each
alignment map (ridge, Procrustes, CCA, MLP), it estimates a direction on the source from training
pairs, fits the map on benign anchors only, transports the direction and evaluates it on the
target's held-out pairs against a native direction (estimated on the target WITH unsafe pairs: the
yardstick), a random direction of the same norm, and no steering. It writes ``report.md``,
``metrics.json`` and plots to the run directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xsteer.align.calibration import benign_stats
from xsteer.data import load_benign, load_pairs, split_pairs
from xsteer.directions import Direction, DirectionSet, random_direction
from xsteer.encoders import Encoder, get_encoder
from xsteer.evaluate import (
    DirectionEvaluation,
    EvalData,
    direction_cosines,
    evaluate_direction,
)
from xsteer.formatting import finite_or_none, fmt_num
from xsteer.io import atomic_write_json, atomic_write_text
from xsteer.workflow import calibrated, estimate, evaluation_data, fit_alignment, parse_site

METHODS = ("ridge", "procrustes", "cca", "mlp")
STRENGTHS = (0.1, 0.25, 0.5, 0.75, 1.0)
STRENGTH = 0.5
FULL_PAIRS = (("gemma-3-270m", "all-minilm-l6-v2"), ("all-minilm-l6-v2", "gemma-3-270m"),
              ("en-core-web-sm", "all-minilm-l6-v2"))
QUICK_PAIRS = (("en-core-web-sm", "all-minilm-l6-v2"), ("all-minilm-l6-v2", "en-core-web-sm"))
PIPED_WIDTH = 160  # columns of a console that is not a terminal: every table fits unfolded
ROW_KEYS = ("asr_before", "asr_after", "asr_linear_after", "pair_fidelity_after", "self_cosine",
            "benign_cosine", "auroc", "false_trigger_rate", "unsafe_trigger_rate")


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class TargetBundle:
    encoder: Encoder
    data: EvalData
    native: DirectionSet
    stats: dict[str, torch.Tensor]


def _row(kind: str, res: DirectionEvaluation, **extra: Any) -> dict[str, Any]:
    return {"direction": kind, **{k: getattr(res, k) for k in ROW_KEYS}, **extra,
            "curve": res.asr_vs_strength or []}


def _target(name: str, encoders: dict[str, Encoder], train: list, test: list, anchors: list[str],
            captions: list[str]) -> TargetBundle:
    enc = encoders[name]
    native = estimate(enc, train, layer=None, native=True, pairs_name="xsteer:pairs[train]")
    data = evaluation_data(enc, native.site, test, captions, anchors)
    stats = benign_stats(data.calibration)
    return TargetBundle(enc, data, calibrated(native, stats), stats)


def _evaluate(d: Direction | DirectionSet, t: TargetBundle, mode: str = "additive",
              curve: bool = True) -> DirectionEvaluation:
    return evaluate_direction(d, t.data, mode=mode, strength=STRENGTH,
                              strengths=list(STRENGTHS) if curve else None)


def run_pair(source: str, target: str, encoders: dict[str, Encoder], t: TargetBundle,
             train: list, anchors: list[str], log: Any) -> dict[str, Any]:
    """All rows for one source→target pair."""
    src = encoders[source]
    t0 = time.perf_counter()
    src_dirs = estimate(src, train, layer=None, pairs_name="xsteer:pairs[train]")
    rows: list[dict[str, Any]] = []
    nat_global = t.native["global"]
    none = evaluate_direction(nat_global, t.data, strength=0.0)
    rows.append(_row("none", none, method="-", cos_native=None))
    rows.append(_row("native", _evaluate(nat_global, t), method="mean-diff (target unsafe)",
                     cos_native=1.0))
    rnd = Direction(random_direction(nat_global.dim, nat_global.norm, seed=1), nat_global.model_id,
                    nat_global.site, origin="random", method="random")
    rows.append(_row("random", _evaluate(rnd, t), method="random",
                     cos_native=rnd.cosine(nat_global)))
    per_category: dict[str, dict[str, float]] = {}
    fits: dict[str, Any] = {}
    for method in METHODS:
        m0 = time.perf_counter()
        al = fit_alignment(src, t.encoder, anchors, method=method,
                           source_layer=parse_site(src_dirs.site)[0],
                           target_layer=parse_site(nat_global.site)[0],
                           benign_name="xsteer:anchors")
        moved = calibrated(al.transport(src_dirs), t.stats)
        assert not moved.provenance.saw_unsafe("target")  # the invariant, checked on the artifact
        cos = direction_cosines(moved, t.native)
        per_category[method] = cos
        fits[method] = {k: al.fit_stats.get(k) for k in ("heldout_r2", "heldout_top1", "n_fit")}
        fits[method]["seconds"] = time.perf_counter() - m0
        res = _evaluate(moved["global"], t)
        rows.append(_row("transported", res, method=method, cos_native=cos["global"],
                         heldout_r2=fits[method]["heldout_r2"],
                         heldout_top1=fits[method]["heldout_top1"]))
        gated = _evaluate(moved["global"], t, mode="gated", curve=False)
        rows.append(_row("transported+gate", gated, method=method, cos_native=cos["global"]))
        log(f"  {source} -> {target} [{method}] cos(native) {cos['global']:.3f}  "
            f"ASR {res.asr_before:.2f} -> {res.asr_after:.2f}  "
            f"({time.perf_counter() - m0:.1f}s)")
    nat_gated = _evaluate(nat_global, t, mode="gated", curve=False)
    rows.append(_row("native+gate", nat_gated, method="mean-diff (target unsafe)", cos_native=1.0))
    return {"source": source, "target": target, "source_site": str(src_dirs.site),
            "target_site": str(nat_global.site), "rows": rows, "category_cosines": per_category,
            "alignment_fits": fits, "seconds": time.perf_counter() - t0}


def run_demo(out: str | Path = "runs/demo", quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Run the demo and write its report; returns the metrics dict."""
    console = _console()
    log = console.print
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    pairs = load_pairs()
    train, test = split_pairs(pairs, test_fraction=0.5, seed=seed)
    anchors = load_benign(kind="anchors")
    captions = load_benign(kind="captions")
    plan = QUICK_PAIRS if quick else FULL_PAIRS
    names = sorted({n for p in plan for n in p})
    log(f"[bold]xsteer demo[/]: {len(train)} training / {len(test)} held-out pairs, "
        f"{len(anchors)} benign anchors, {len(captions)} held-out captions; models {names}")
    encoders = {n: get_encoder(n) for n in names}
    targets: dict[str, TargetBundle] = {}
    results = []
    for source, target in plan:
        if target not in targets:
            targets[target] = _target(target, encoders, train, test, anchors, captions)
        results.append(run_pair(source, target, encoders, targets[target], train, anchors, log))
    metrics = {"strength": STRENGTH, "strengths": list(STRENGTHS), "seed": seed,
               "n_train_pairs": len(train), "n_test_pairs": len(test),
               "n_anchors": len(anchors), "n_captions": len(captions), "pairs": results,
               "seconds": time.perf_counter() - t_start}
    atomic_write_json(out / "metrics.json", finite_or_none(metrics))
    from xsteer.demo.report import plot_category_cosines, plot_tradeoff, render_markdown

    plots = [plot_tradeoff(results, out), plot_category_cosines(results, out)]
    atomic_write_text(out / "report.md", render_markdown(metrics, [p.name for p in plots]))
    _print_table(console, results)
    log(f"wrote {out}/report.md, metrics.json and {len(plots)} plots "
        f"in {metrics['seconds']:.0f}s")
    return metrics


def _console() -> Any:
    """A rich console; when output is piped (CI logs, ``make demo > log``) it is wide enough that
    no number is cut, unless ``COLUMNS`` says otherwise."""
    import os

    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=PIPED_WIDTH)
    return console


def _print_table(console: Any, results: list[dict[str, Any]]) -> None:
    from rich.table import Table

    for r in results:
        table = Table(title=f"{r['source']} → {r['target']} (strength {STRENGTH})")
        for col in ("direction", "map", "cos→native", "ASR kNN", "ASR lin", "pair fid.",
                    "self cos", "benign cos", "AUROC", "false trig."):
            table.add_column(col, overflow="fold")  # fold, never truncate, a narrow column
        for row in r["rows"]:
            table.add_row(row["direction"], str(row["method"]), _f(row.get("cos_native")),
                          f"{_f(row['asr_before'])}→{_f(row['asr_after'])}",
                          _f(row["asr_linear_after"]), _f(row["pair_fidelity_after"]),
                          _f(row["self_cosine"]), _f(row["benign_cosine"]), _f(row["auroc"]),
                          _f(row["false_trigger_rate"]))
        console.print(table)


def _f(x: Any) -> str:
    return fmt_num(x, 2, missing="-")
