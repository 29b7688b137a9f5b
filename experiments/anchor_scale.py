"""Benign anchors at scale (issue #14): the learning curve of each map to 20k anchors.

The anchors are `xsteer.data.scale.build_benign_corpus` (shipped anchors first, then recombined
captions, recombined near-miss prompts and standard-library prose; built deterministically, no
download), with the study's held-out near-miss half kept out of the material. Gemma-3-270M layer 6
→ MiniLM layer 6 on split 0, as in the study's own learning curve: cosine to native and AUROC per
map, per anchor count and per source; and for ridge, the share of the native ASR reduction on both
held-out sets with the shipped anchors and with all 20k. Encodings go to the embedding cache in
chunks, so an interrupted cold run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from experiments import heldout_study as hs
from experiments import transport_experiment as ex
from xsteer.align import Alignment, transport_pairs
from xsteer.align.calibration import calibrate_direction
from xsteer.data import data_record
from xsteer.data.scale import SOURCES, build_benign_corpus
from xsteer.directions import Direction
from xsteer.encoders import Encoder, get_encoder
from xsteer.evaluate.metrics import auroc
from xsteer.io import atomic_write_json, atomic_write_text
from xsteer.steer.operators import harm_score

N_TOTAL = 20000
COUNTS = (100, 400, 1600, 5000, 10000, 20000)
METHODS = ("ridge", "direction-aware (weight)", "anchor contrast (top 10%)",
           "anchor kNN pairs (k=10)")
CHUNK = 2000


def encode_chunked(enc: Encoder, texts: Sequence[str], layer: int,
                   log: Callable[[str], None] = print) -> torch.Tensor:
    """Pooled features of ``texts`` at ``layer``, cached per chunk of `CHUNK` texts."""
    parts = []
    for i in range(0, len(texts), CHUNK):
        t0 = time.perf_counter()
        parts.append(enc.encode(list(texts[i:i + CHUNK]), layer, progress=False))
        log(f"  {enc.model_id} chunk {i // CHUNK + 1}/{-(-len(texts) // CHUNK)}: "
            f"{time.perf_counter() - t0:.0f}s")
    return torch.cat(parts)


def fit_direction(setup: ex.Setup, label: str, X: torch.Tensor, Y: torch.Tensor,
                  texts: Sequence[str]) -> Direction:
    """`ex.transport` on given anchors (features and their texts), calibrated the same way."""
    recs = [data_record("xsteer:anchors[scale]", list(texts), side=s, unsafe=False)
            for s in ("source", "target")]
    al = Alignment.fit(X, Y, ex.methods(setup.d_src.vector)[label](),
                       source=(setup.src.model_id, setup.src.site),
                       target=(setup.tgt.model_id, setup.tgt.site), data=recs)
    if label in ex.PAIR_METHODS:
        U, S = setup.src.pairs(setup.t.train)
        moved = Direction(transport_pairs(al.map, U, S), al.target_model, al.target_site,
                          origin="transported", method=f"transported:pairs:{al.map.name}",
                          provenance=setup.d_src.provenance.merged(al.provenance))
    else:
        moved = al.transport(setup.d_src, calibrate="none")
    moved = calibrate_direction(moved, setup.stats, "benign-norm")
    assert not moved.provenance.saw_unsafe("target"), label
    return moved


def _quick(setup: ex.Setup, d: Direction) -> dict[str, float]:
    c, U, S = setup.data.center, setup.data.unsafe, setup.data.safe
    return {"cos_native": d.cosine(setup.native),
            "auroc": auroc(harm_score(U, d.vector, c), harm_score(S, d.vector, c))}


def run_scale(log: Callable[[str], None] = print) -> dict[str, Any]:
    """The learning curve to `N_TOTAL` anchors and the per-source ablation (split 0)."""
    t0 = time.perf_counter()
    t = ex.Texts.build()
    nm_fit = [t.lists["nearmiss"][i] for i in t.nm_fit]
    corpus = build_benign_corpus(N_TOTAL, seed=ex.SEED, generic=t.lists["generic"],
                                 nearmiss=nm_fit)
    log(f"anchor scale: corpus {corpus.manifest['counts']} built in "
        f"{time.perf_counter() - t0:.0f}s")
    F = hs.load_features(t)
    src_enc, tgt_enc = get_encoder(hs.SOURCE), get_encoder(hs.TARGET)
    X = encode_chunked(src_enc, corpus.texts, hs.TRANSPORT_LAYER, log)
    Y = encode_chunked(tgt_enc, corpus.texts, F["target_layer"], log)
    log(f"anchor scale: features ready in {time.perf_counter() - t0:.0f}s")
    setup = ex.make_setup(F["src"][hs.TRANSPORT_LAYER], F["tgt"], t)
    srcs = corpus.sources
    n_shipped = srcs.count("shipped")
    perm = torch.randperm(len(srcs), generator=torch.Generator().manual_seed(ex.SEED)).tolist()
    shipped = [i for i in perm if srcs[i] == "shipped"]
    extra = [i for i in perm if srcs[i] != "shipped"]

    def take(idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        ii = torch.as_tensor(idx)
        return X[ii], Y[ii], [corpus.texts[i] for i in idx]

    curve = []
    for n in sorted({*COUNTS, n_shipped}):
        idx = shipped[:n] if n <= n_shipped else shipped + extra[:n - n_shipped]
        row: dict[str, Any] = {"n": len(idx)}
        for label in METHODS:
            row[label] = _quick(setup, fit_direction(setup, label, *take(idx)))
        curve.append(row)
        log(f"  {len(idx):6d} anchors: ridge cos {row['ridge']['cos_native']:+.3f}")
    by_source = []
    for src in SOURCES:
        idx = shipped + [i for i in extra if srcs[i] == src]
        by_source.append({"source": src, "n": len(idx),
                          **{m: _quick(setup, fit_direction(setup, m, *take(idx)))
                             for m in ("ridge", "direction-aware (weight)")}})
    ho_cats = [p.category for p in F["heldout"].pairs]
    shares = {}
    for name, idx in (("shipped", shipped), ("all", shipped + extra)):
        d = fit_direction(setup, "ridge", *take(idx))
        Ut, St = F["tgt"].pairs(t.test)
        shares[name] = {
            "in-distribution": hs.transport_on(setup, d, Ut, St,
                                               [t.categories[i] for i in t.test], True),
            "written apart": hs.transport_on(setup, d, F["tgt"].by_list["ho_unsafe"],
                                             F["tgt"].by_list["ho_safe"], ho_cats, True)}
    return {"manifest": corpus.manifest, "curve": curve, "by_source": by_source,
            "shares": shares, "seconds": time.perf_counter() - t0}


def render_scale(res: dict[str, Any]) -> list[str]:
    """The anchors-at-scale section of the page."""
    m = res["manifest"]
    counts = ", ".join(f"{k} {v}" for k, v in m["counts"].items())
    out = ["## Benign anchors at scale (gemma-3-270m → all-minilm-l6-v2, split 0)", "",
           f"`xsteer.data.scale.build_benign_corpus` (build {m['build_version']}, seed {m['seed']}, "
           f"Python {m['python']}, sha256 {m['sha256'][:12]}…): {counts}. Deterministic and "
           "download-free (screened for unsafe words, deduplicated, near copies of held-out "
           "prompts dropped; the study's held-out near-miss half is not used as material). "
           f"Run time {res['seconds']:.0f} s.", "",
           "**Learning curve** (cos→nat / AUROC; up to the shipped count: seeded subsets of the "
           "shipped anchors; beyond: all shipped plus a seeded subset of the built ones):", "",
           "| n anchors | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for row in res["curve"]:
        out.append(f"| {row['n']} | " + " | ".join(
            f"{row[k]['cos_native']:.2f} / {row[k]['auroc']:.2f}" for k in METHODS) + " |")
    out += ["", "**By source** (shipped anchors + all built texts of one source; cos→nat / AUROC):",
            "", "| added source | n | ridge | direction-aware (weight) |", "|---|---|---|---|"]
    for row in res["by_source"]:
        out.append(f"| {row['source']} | {row['n']} | {row['ridge']['cos_native']:.2f} / "
                   f"{row['ridge']['auroc']:.2f} | {row['direction-aware (weight)']['cos_native']:.2f}"
                   f" / {row['direction-aware (weight)']['auroc']:.2f} |")
    out += ["", "**Ridge, shipped anchors vs all of them** (share of the native kNN ASR reduction, "
            "split 0 [95% bootstrap interval over prompts]):", "",
            "| anchors | set | cos→nat | %nat eq. str. | %nat eq. fid. |", "|---|---|---|---|---|"]
    for name, sets in res["shares"].items():
        for s, r in sets.items():
            cells = []
            for key in ("eq_strength", "eq_fidelity"):
                ci = r.get(f"{key}_ci")
                v = r[key]
                cells.append("–" if v is None else f"{100 * v:.0f}%" + (
                    f" [{100 * ci[0]:.0f}–{100 * ci[1]:.0f}]" if ci else ""))
            out.append(f"| {name} | {s} | {r['cos_native']:.3f} | {cells[0]} | {cells[1]} |")
    return [*out, ""]


def write_page(out: Path, json_path: Path | None = None) -> None:
    """Run `run_scale` and write its page (and the raw numbers)."""
    import datetime as dt
    import json
    import os
    import platform

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    res = run_scale()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = ["# Benign anchors at scale", "",
            f"Generated by `make results-anchors` (`python -m experiments.anchor_scale`) on "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} on {platform.machine()} "
            f"{platform.system()}, {os.cpu_count()} CPU cores, torch {torch.__version__} (load "
            f"average at the end {load:.1f}). Do not edit by hand.", ""]
    atomic_write_text(out, "\n".join(head + render_scale(res)) + "\n")
    if json_path:
        atomic_write_json(json_path, json.loads(json.dumps(res, default=float)))
    print(f"wrote {out} in {res['seconds']:.0f}s")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(help="Write the anchors-at-scale page: the learning curve of each map to 20k "
             "benign anchors built from packaged sources.")
def cli(out: Annotated[Path, typer.Option("--out")] = Path("docs/anchors_at_scale.md"),
        json_path: Annotated[Path | None, typer.Option("--json")] = None) -> None:
    write_page(out, json_path)


if __name__ == "__main__":
    app()
