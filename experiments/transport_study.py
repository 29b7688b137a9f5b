"""``python -m experiments.transport_study --out docs/results.md`` (``make results``): the transport
results page.

For each source→target pair of real offline models it runs `experiments.transport_experiment` — every
transport method, the native/random/none rows, the layer, anchor-set and anchor-count ablations and
the source-side gate — and writes one markdown page with the machine and date. All features come
from the embedding cache, so a warm run takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from experiments import heldout_study as hs
from experiments import transport_experiment as ex
from xsteer.encoders import get_encoder
from xsteer.evaluate.metrics import auroc
from xsteer.formatting import fmt_num
from xsteer.io import atomic_write_json, atomic_write_text
from xsteer.steer.operators import harm_score

PAIRS = (("gemma-3-270m", "all-minilm-l6-v2"), ("all-minilm-l6-v2", "gemma-3-270m"),
         ("en-core-web-sm", "all-minilm-l6-v2"), ("all-minilm-l6-v2", "en-core-web-sm"))
SPREAD_METHODS = ("ridge", "whiten-ridge", "direction-aware (weight)")
LAYER_METHODS = ("ridge", "anchor contrast (top 10%)")
ABLATION_METHODS = ("ridge", "direction-aware (weight)", "anchor contrast (top 10%)",
                    "anchor kNN pairs (k=10)")
GOAL = {"cos_native": 0.75, "reduction": 0.90, "false_trigger": 0.01}


def quick(setup: ex.Setup, d: Any) -> dict[str, float]:
    """Cheap metrics for ablation rows: cosine to native and the direction's detection AUROC."""
    c = setup.data.center
    U, S = setup.data.unsafe, setup.data.safe
    return {"cos_native": d.cosine(setup.native),
            "auroc": auroc(harm_score(U, d.vector, c), harm_score(S, d.vector, c))}


def run_pair(source: str, target: str, t: ex.Texts, log: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    src_enc, tgt_enc = get_encoder(source), get_encoder(target)
    src_layers = ex.encode_all(src_enc, t, ex.CANDIDATE_LAYERS[source])
    tgt = ex.encode_all(tgt_enc, t, [tgt_enc.default_layer])[tgt_enc.default_layer]
    choice = ex.choose_layers(src_layers, tgt, t)
    setup = ex.make_setup(src_layers[choice["transport_layer"]], tgt, t)
    log(f"{source} -> {target}: transport layer {choice['transport_layer']} (benign R²), "
        f"features ready in {time.perf_counter() - t0:.0f}s")
    Ut, St = tgt.pairs(t.test)
    ceiling = setup.native.cosine((St - Ut).mean(0))
    dirs: dict[str, Any] = {"native (target unsafe pairs)": setup.native,
                            **ex.random_controls(setup)}
    info: dict[str, dict[str, Any]] = {}
    for label, make in ex.methods(setup.d_src.vector).items():
        m0 = time.perf_counter()
        dirs[label], info[label] = ex.transport(setup, label, make)
        log(f"  {label:32s} cos {dirs[label].cosine(setup.native):+.3f} "
            f"(fit {time.perf_counter() - m0:.1f}s)")
    m0 = time.perf_counter()
    evals = ex.evaluate_many(setup, dirs)
    log(f"  evaluated {len(dirs)} directions in {time.perf_counter() - m0:.0f}s")
    native = evals["native (target unsafe pairs)"]
    first = next(iter(evals.values()))
    rows: list[dict[str, Any]] = [{
        "label": "none", "kind": "control", "cos_native": None, "auroc": None,
        "asr_before": first["asr_before"], "asr_after": first["asr_before"],
        "asr_linear_before": first["asr_linear_before"],
        "asr_linear_after": first["asr_linear_before"],
        "pair_fidelity_before": first["pair_fidelity_before"],
        "pair_fidelity_after": first["pair_fidelity_before"], "self_cosine": 1.0,
        "benign_cosine": 1.0, "false_trigger_rate": None, "nearmiss_trigger_rate": None}]
    for label, res in evals.items():
        kind = "transported" if label in info else ("yardstick" if label.startswith("native")
                                                    else "control")
        if kind != "yardstick":
            res["ratios"] = ex.reduction_ratios(res, native)
        rows.append({"label": label, "kind": kind, **info.get(label, {}), **res})
    layers = []
    for layer, f in src_layers.items():
        s_l = ex.make_setup(f, tgt, t)
        row: dict[str, Any] = {"layer": layer, "benign_r2": choice["benign_r2"][layer],
                               "gate_pair_auroc": choice["gate_pair_auroc"][layer]}
        for label in LAYER_METHODS:
            row[label] = quick(s_l, ex.transport(s_l, label, ex.methods(s_l.d_src.vector)[label])[0])
        layers.append(row)
    anchor_sets = []
    for kind in ("generic", "nearmiss", "both"):
        row = {"anchors": kind, "n": int(setup.src.anchors(t, kind).shape[0])}
        for label in ABLATION_METHODS:
            row[label] = quick(setup, ex.transport(setup, label,
                                                   ex.methods(setup.d_src.vector)[label], kind)[0])
        anchor_sets.append(row)
    curve = []
    n_all = int(setup.src.anchors(t).shape[0])
    for n in (*(c for c in ex.LEARNING_COUNTS if c < n_all), n_all):
        row = {"n": n}
        for label in ABLATION_METHODS:
            row[label] = quick(setup, ex.transport(setup, label,
                                                   ex.methods(setup.d_src.vector)[label], n=n)[0])
        curve.append(row)
    spread = ex.split_spread(setup.src, tgt, t, SPREAD_METHODS)
    return {"source": source, "target": target, "source_site": setup.src.site,
            "target_site": tgt.site, "layer_choice": choice, "native_ceiling": ceiling,
            "rows": rows, "layers": layers, "anchor_sets": anchor_sets, "learning_curve": curve,
            "split_spread": spread, "seconds": time.perf_counter() - t0}


# -- rendering ------------------------------------------------------------------------------------
def _f(x: Any, nd: int = 2) -> str:
    return fmt_num(x, nd)


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _ratios(r: dict[str, Any], judge: str) -> str:
    return f"{_pct(r.get(f'{judge}_equal_strength'))} / {_pct(r.get(f'{judge}_equal_fidelity'))}"


def render(results: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        "# Transport results",
        "",
        f"Generated by `make results` (`python -m experiments.transport_study`) on {meta['date']} on "
        f"{meta['machine']} (load average at start {meta['load']}); "
        f"{meta['seconds']:.0f} s. Do not edit by hand.",
        "",
        f"Setup: {meta['n_train']} training / {meta['n_test']} held-out safe/unsafe pairs "
        f"(`split_pairs`, seed {ex.SEED}, 7 categories); benign anchors = {meta['n_generic']} "
        f"generic prompts (`benign.txt`, seeded subset if fewer than all) + {meta['n_nm_fit']} near-miss prompts (half of "
        f"`benign_nearmiss.txt`); held out for false triggers: {meta['n_captions']} captions and "
        f"the other {meta['n_nm_held']} near-miss prompts. Every transported direction's provenance "
        "was asserted free of target-side unsafe data; maps, gate thresholds and magnitude "
        "calibration saw benign anchors only. The native direction (mean difference on the target "
        "with the training pairs) is the yardstick, never part of the pipeline. Hyperparameters "
        "were fixed before evaluation; the source layer was chosen by a benign-only criterion "
        "(held-out ridge R² on anchors).",
        "",
        f"Columns: cos→nat = cosine to the native direction; AUROC = the direction as a detector "
        f"of held-out unsafe vs paired safe prompts; ASR = share of held-out unsafe prompts a "
        f"cross-fitted judge flags (kNN / logistic), before→after additive steering at strength "
        f"{ex.STRENGTH} (of the median benign norm, after benign-norm calibration); pair fid. = "
        "cosine of the steered unsafe prompt to its paired safe prompt (before: "
        "unsteered); self cos = to its own original; benign cos = steered vs original held-out "
        f"captions; false trig. = a {ex.QUANTILE:.0%}-quantile benign gate on the direction firing "
        "on held-out captions / held-out near-miss prompts; %nat = share of the native ASR "
        "reduction (per judge) at the same strength (eq. str.), and the best share on the "
        f"strength curve {list(ex.STRENGTHS)} among points whose pair fidelity is at least the "
        "native's at the same strength (eq. fid.).",
        "",
        f"Goal (issue #6): cos→nat ≥ {GOAL['cos_native']}, ≥ {GOAL['reduction']:.0%} of the native "
        f"ASR reduction at equal pair fidelity, false triggers ≤ {GOAL['false_trigger']:.0%} on "
        "held-out captions; the headline judges the reduction with the kNN judge (the stricter "
        "one here; the logistic judge's share is shown beside it).",
        "",
        "Other sources (Qwen2.5-Coder 0.5B and 1.5B, spaCy, MiniLM) into MiniLM and Gemma, the "
        "paper's SVD alignment beside ridge and the MLP, ensembles of sources and the scale "
        "question: [sources.md](sources.md) (`make results-sources`, issue #22).",
        "",
    ]
    if meta.get("lead"):
        out += hs.render_lead(meta["lead"])
    out += render_summary(results)
    for r in results:
        out += render_pair(r)
    return "\n".join(out) + "\n"


def render_summary(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per pair: the ceiling, the ridge baseline, and the best transported row.

    "Best" is picked after the fact by cosine to native on the evaluation half, so it is an
    optimistic figure; the per-pair tables show every method.
    """
    out = ["## Headline", "",
           "| pair | ceiling cos | ridge cos | best transported (post hoc) | its cos | its AUROC "
           "| %nat kNN: eq. str. / eq. fid. | %nat lin.: eq. str. / eq. fid. "
           "| false trig. captions | goal met |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        moved = [row for row in r["rows"] if row["kind"] == "transported"]
        ridge = next(row for row in moved if row["label"] == "ridge")
        best = max(moved, key=lambda row: row["cos_native"])
        ratios = best.get("ratios") or {}
        met = (best["cos_native"] >= GOAL["cos_native"]
               and (ratios.get("knn_equal_fidelity") or 0.0) >= GOAL["reduction"]
               and best["false_trigger_rate"] <= GOAL["false_trigger"])
        out.append(f"| {r['source']} → {r['target']} | {_f(r['native_ceiling'])} "
                   f"| {_f(ridge['cos_native'])} | {best['label']} | {_f(best['cos_native'])} "
                   f"| {_f(best['auroc'])} | {_ratios(ratios, 'knn')} | {_ratios(ratios, 'linear')} "
                   f"| {_pct(best['false_trigger_rate'])} "
                   f"| {'yes' if met else 'no'} |")
    return [*out, ""]


def render_pair(r: dict[str, Any]) -> list[str]:
    ch = r["layer_choice"]
    out = [f"## {r['source']} → {r['target']}", "",
           f"Source site {r['source_site']} (chosen by benign R²), target site {r['target_site']}. "
           f"Realistic ceiling: cosine between the native direction from the training half and "
           f"the mean difference of the held-out half = {_f(r['native_ceiling'])}. "
           f"Run time {r['seconds']:.0f} s.", "",
           "| direction | cos→nat | AUROC | ASR kNN | ASR lin | pair fid. | self cos | benign cos "
           "| false trig. capt. / near-miss | %nat kNN: eq. str. / eq. fid. "
           "| %nat lin.: eq. str. / eq. fid. | R² held-out |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        ratios = row.get("ratios") or {}
        out.append(
            f"| {row['label']} | {_f(row['cos_native'])} | {_f(row['auroc'])} "
            f"| {_f(row['asr_before'])}→{_f(row['asr_after'])} "
            f"| {_f(row['asr_linear_before'])}→{_f(row['asr_linear_after'])} "
            f"| {_f(row['pair_fidelity_before'])}→{_f(row['pair_fidelity_after'])} "
            f"| {_f(row['self_cosine'])} | {_f(row['benign_cosine'], 3)} "
            f"| {_pct(row['false_trigger_rate'])} / {_pct(row['nearmiss_trigger_rate'])} "
            f"| {_ratios(ratios, 'knn')} | {_ratios(ratios, 'linear')} "
            f"| {_f(row.get('heldout_r2'))} |")
    anchors = {row["anchors"]: row["ridge"]["cos_native"] for row in r["anchor_sets"]}
    lc = r["learning_curve"]
    best_layer = max(r["layers"], key=lambda row: row["ridge"]["cos_native"])
    chosen = next(row for row in r["layers"] if row["layer"] == ch["transport_layer"])
    out += ["", f"In short (ridge): generic-only anchors {_f(anchors['generic'])}, near-miss only "
            f"{_f(anchors['nearmiss'])}, both {_f(anchors['both'])}; {lc[0]['n']} → {lc[-1]['n']} "
            f"anchors {_f(lc[0]['ridge']['cos_native'])} → {_f(lc[-1]['ridge']['cos_native'])}; "
            f"the benign criterion's layer {ch['transport_layer']} gives "
            f"{_f(chosen['ridge']['cos_native'])}, the best layer in hindsight "
            f"({best_layer['layer']}) {_f(best_layer['ridge']['cos_native'])}."]
    sp = r["split_spread"]
    out += ["", f"**Split robustness** (cos→nat, mean ± std over {sp['ridge']['n']} pair/near-miss "
            "splits, seeds 0-4): " + "; ".join(
                f"{k} {_f(v['mean'])} ± {_f(v['std'])}" for k, v in sp.items()) + "."]
    out += ["", "**Layer ablation** (cos→nat / AUROC per method; the benign criterion picks the "
            "highest held-out R²; gate AUROC = source pair separability, source side):", "",
            "| layer | benign R² | gate pair AUROC | " + " | ".join(LAYER_METHODS) + " |",
            "|---|---|---|" + "---|" * len(LAYER_METHODS)]
    for row in r["layers"]:
        mark = " (chosen)" if row["layer"] == ch["transport_layer"] else ""
        cells = [f"{_f(row[m]['cos_native'])} / {_f(row[m]['auroc'])}"
                 for m in LAYER_METHODS]
        out.append(f"| {row['layer']}{mark} | {_f(row['benign_r2'])} "
                   f"| {_f(row['gate_pair_auroc'])} | " + " | ".join(cells) + " |")
    head = " | ".join(ABLATION_METHODS)
    out += ["", "**Anchor set ablation** (cos→nat / AUROC):", "",
            f"| anchors | n | {head} |", "|---|---|" + "---|" * len(ABLATION_METHODS)]
    for row in r["anchor_sets"]:
        cells = [f"{_f(row[m]['cos_native'])} / {_f(row[m]['auroc'])}" for m in ABLATION_METHODS]
        out.append(f"| {row['anchors']} | {row['n']} | " + " | ".join(cells) + " |")
    out += ["", "**Learning curve** (anchor count, seeded subsets of generic + near-miss; "
            "cos→nat / AUROC):", "",
            f"| n anchors | {head} |", "|---|" + "---|" * len(ABLATION_METHODS)]
    for row in r["learning_curve"]:
        cells = [f"{_f(row[m]['cos_native'])} / {_f(row[m]['auroc'])}" for m in ABLATION_METHODS]
        out.append(f"| {row['n']} | " + " | ".join(cells) + " |")
    out += ["", "The source-side gate (the product's per-category probe) is measured in "
            "[source_gate.md](source_gate.md).", ""]
    return out


def _log(msg: str) -> None:
    print(msg, flush=True)


def _run_pair_job(source: str, target: str, t: ex.Texts) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch.set_num_threads(1)
    return run_pair(source, target, t, _log)


def parse_pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """``"a:b,c:d"`` → ``(("a", "b"), ("c", "d"))``; None or empty gives the shipped `PAIRS`."""
    if not text:
        return PAIRS
    plan = tuple(tuple(x.split(":")) for x in text.split(","))
    for pair in plan:
        if len(pair) != 2 or not all(pair):
            raise typer.BadParameter(f"{':'.join(pair)!r} is not source:target", param_hint="--pairs")
    return plan  # type: ignore[return-value]


def run(out: Path, json_path: Path | None, generic: int, jobs: int,
        plan: Sequence[tuple[str, str]], heldout: bool = True) -> None:
    """Run every pair in ``plan`` and write the page to ``out`` (and the raw numbers to
    ``json_path`` when given)."""
    # One thread: on a shared machine small BLAS calls stall badly under thread contention.
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    # One BLAS thread for numpy/scikit-learn too: threaded BLAS stalls on a shared machine and
    # fixed-order sums keep the page reproducible run to run.
    threadpool_limits(1)
    t0 = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t = ex.Texts.build(n_generic=generic or None)
    lead = hs.run_heldout(_log) if heldout else None
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_pair_job, s, tg, t) for s, tg in plan]
            results = [f.result() for f in futures]
    else:
        results = [run_pair(s, tg, t, _log) for s, tg in plan]
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, "
                       f"torch {torch.__version__}",
            "load": f"{load:.1f}", "seconds": time.perf_counter() - t0,
            "n_generic": len(t.lists["generic"]), "n_train": len(t.train),
            "n_test": len(t.test), "n_nm_fit": len(t.nm_fit),
            "n_nm_held": len(t.nm_held), "n_captions": len(t.lists["captions"]), "lead": lead}
    page = render(results, meta)
    if Path(out).is_file():
        page = keep_block(Path(out).read_text(encoding="utf-8"), page)
    atomic_write_text(out, page)
    if json_path:
        atomic_write_json(json_path, json.loads(json.dumps(
            {"meta": meta, "pairs": results}, default=float)))
    print(f"wrote {out} in {meta['seconds']:.0f}s")


KEEP_START, KEEP_END = "<!-- kept:start -->", "<!-- kept:end -->"


def keep_block(old: str, new: str) -> str:
    """``new`` with the block between the ``kept`` markers of ``old`` (sections this study does
    not compute, rendered by other targets and cited from their pages) put back before its first
    section; ``new`` unchanged when ``old`` has no such block.

    >>> keep_block("# T\\n<!-- kept:start -->\\nX\\n<!-- kept:end -->\\n## A\\n", "# T\\nnew\\n## A\\n")
    '# T\\nnew\\n<!-- kept:start -->\\nX\\n<!-- kept:end -->\\n\\n## A\\n'
    """
    if KEEP_START not in old or KEEP_END not in old:
        return new
    block = KEEP_START + old.split(KEEP_START, 1)[1].split(KEEP_END, 1)[0] + KEEP_END
    at = new.find("\n## ")
    if at < 0:
        return new.rstrip("\n") + "\n\n" + block + "\n"
    return new[:at + 1] + block + "\n\n" + new[at + 1:]


Opt = typer.Option
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(help="Write the transport results page: every transport method, the native/random/"
             "none rows and the ablations, for each source→target pair of offline models.")
def cli(
    out: Annotated[Path, Opt("--out")] = Path("docs/results.md"),
    json_path: Annotated[Path | None, Opt("--json", help="also write the raw numbers here")] = None,
    generic: Annotated[int, Opt("--generic", help="how many generic anchors (seeded subset); "
                                "0 for all")] = ex.N_GENERIC or 0,
    jobs: Annotated[int, Opt("--jobs", help="run the pairs in this many processes (features "
                             "come from the cache)")] = min(2, os.cpu_count() or 1),
    pairs: Annotated[str | None, Opt("--pairs", help="comma list of source:target (default: the "
                                     "three shipped pairs)")] = None,
    heldout: Annotated[bool, Opt("--heldout/--no-heldout", help="lead with both held-out sets "
                                 "(gates, transport, intervals)")] = True,
) -> None:
    run(out, json_path, generic, jobs, parse_pairs(pairs), heldout)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point (``argv`` defaults to the command line)."""
    app(args=list(argv) if argv is not None else None)


if __name__ == "__main__":
    main()
