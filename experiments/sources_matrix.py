"""``python -m experiments.sources_matrix --out docs/sources.md`` (``make results-sources``): do
models share safety representations? Five real sources × two real targets (issue #22).

Sources: Gemma-3-270M, Qwen2.5-Coder-0.5B, Qwen2.5-Coder-1.5B (both need the ``sources`` extra),
MiniLM, spaCy. Targets: MiniLM (the CLIP/T5 role, layer 6) and Gemma-3-270M (the LLM-encoder
role of Qwen-Image and Z-Image, layer 18, the layer the proving-ground MMDiT over Gemma reads).
Rows: the paper's SVD alignment (`xsteer.align.SVDMap`), ridge and the MLP (Jacobian transport).

It reuses `experiments.transport_experiment` (text lists, splits, setup, transport with
benign-norm calibration, the target-side-unsafe assertion) and `experiments.heldout_study`
(`transport_on`: cosines, cross-fitted kNN ASR and the shares of native at equal strength and at
equal pair fidelity) unchanged; nothing here estimates anything new. Per source the transport
layer is chosen ONCE by the benign-only criterion (`select_site_by_fidelity`: held-out benign R²
of ridge on split 0's anchors), before any direction is scored. Every number is then measured on
5 pair splits; cells give the mean and the range over splits.

The ensembles: the benign-norm-calibrated transported directions of several sources, averaged and
calibrated again (no new fit, nothing tuned); and one map fitted from the LLM sources' features
side by side (`joint_feats`), which carries their side-by-side direction. Each is compared with
its best member split by split, on the test half and on the set written apart
(`xsteer/data/heldout2_*`), which no member saw.

Encoding uses the shipped anchors (2,242 generic + the near-miss half of 426), not the 20k set;
cold encoding times are recorded in the xsteer cache (``timings/sources_encode.json``) and
printed on the page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer

from experiments import heldout_study as hs
from experiments import transport_experiment as ex
from experiments.sources_report import render
from xsteer.align import MLPMap, RidgeMap, SVDMap
from xsteer.align.calibration import calibrate_direction
from xsteer.align.layers import select_site_by_fidelity
from xsteer.data.heldout import load_heldout
from xsteer.directions import Direction
from xsteer.encoders import Encoder, HFEncoder, get_encoder
from xsteer.errors import MissingExtraError
from xsteer.evaluate.metrics import auroc
from xsteer.io import atomic_write_json, atomic_write_text
from xsteer.models import cache_dir
from xsteer.models.split_gguf import SPLIT_MODELS
from xsteer.steer.operators import harm_score

SOURCES: tuple[str, ...] = ("gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b",
                           "all-minilm-l6-v2", "en-core-web-sm")
LLMS = ("gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
TARGETS = {"all-minilm-l6-v2": 6, "gemma-3-270m": 18}
# Qwen: the lower half only (cost); Gemma's transport peaked at a third of its depth (layer 6/18),
# and the causal-LM default layer is num_layers // 3 (8 and 9 here).
QWEN_TOP = 12
LAYERS = {**ex.CANDIDATE_LAYERS, "qwen2.5-coder-0.5b": (4, 6, 8, 10, 12),
          "qwen2.5-coder-1.5b": (4, 6, 8, 10, 12)}
# Generic anchors: all 2,242 shipped (None), or a seeded subset (`--n-generic`, via
# `ex.Texts.build`), the same for every source; plus each split's near-miss fitting half.
N_GENERIC: int | None = None
MAPS: dict[str, Callable[[], Any]] = {
    "svd": SVDMap,
    "ridge": RidgeMap,
    "mlp": lambda: MLPMap(hidden=128, epochs=30, patience=5, transport_mode="jvp"),
}
SEEDS = (0, 1, 2, 3, 4)
SKIPPED: dict[str, str] = {}  # sources left out by --skip, with the reason shown on the page
ENCODE_ORDER = ("all-minilm-l6-v2", "en-core-web-sm", "gemma-3-270m", "qwen2.5-coder-0.5b",
                "qwen2.5-coder-1.5b")
SOURCE_LISTS = ("unsafe", "safe", "nearmiss", "generic")  # all a source ever reads


def _timings_path() -> Path:
    return cache_dir() / "timings" / "sources_encode.json"


def source_encoder(name: str) -> Encoder:
    """The cached encoder of a source; the Qwen sources run in bf16 and only up to `QWEN_TOP`.

    Both are cost cuts for a 2-core machine (measured there: bf16 halves the Qwen forward on a
    CPU with avx512_bf16), recorded in the cache key (dtype) and on the page. Truncating the
    decoder stack leaves every layer up to `QWEN_TOP` exactly as it was (a causal stack: block
    k never reads blocks above it), so only layers <= `QWEN_TOP` are ever requested.
    """
    if name not in SPLIT_MODELS:
        return get_encoder(name)
    enc = get_encoder(name, dtype=torch.bfloat16)
    assert isinstance(enc, HFEncoder) and max(LAYERS[name]) <= QWEN_TOP
    load = enc._ensure_loaded

    def load_prefix() -> None:
        fresh = enc._module is None
        load()
        if fresh:
            enc._module.layers = enc._module.layers[: QWEN_TOP + 1]
            enc.num_layers = QWEN_TOP + 1

    enc._ensure_loaded = load_prefix  # type: ignore[method-assign]
    return enc


def encode_source(name: str, t: ex.Texts, log: Callable[[str], None]) -> dict[int, ex.Feats]:
    """A source's features at its candidate layers, from the cache; cold times are recorded."""
    enc = source_encoder(name)
    layers = list(LAYERS[name])
    out: dict[int, dict[str, torch.Tensor]] = {k: {} for k in layers}
    cold_texts, cold_s, t0 = 0, 0.0, time.perf_counter()
    for lst in SOURCE_LISTS:
        misses, t1 = enc.cache.misses if enc.cache else 0, time.perf_counter()
        got = enc.encode_layers(t.lists[lst], layers, progress=False)
        if enc.cache is not None and enc.cache.misses > misses:  # computed, not read back
            cold_texts += len(t.lists[lst])
            cold_s += time.perf_counter() - t1
        for k in layers:
            out[k][lst] = got[k]
        log(f"  {name}: {lst} ready ({time.perf_counter() - t0:.0f}s)")
    if cold_texts:
        path = _timings_path()
        rec = json.loads(path.read_text()) if path.is_file() else {}
        rec[name] = {"seconds": round(cold_s, 1), "texts": cold_texts,
                     "layers": layers, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "settings": enc.cache_settings()}
        atomic_write_json(path, rec)
    return {k: ex.Feats(enc.model_id, enc.site(k), f) for k, f in out.items()}


def encode_target(name: str, t: ex.Texts) -> ex.Feats:
    """The target's features at its layer for every list, plus the written-apart pairs."""
    enc = get_encoder(name)
    layer = TARGETS[name]
    f = ex.encode_all(enc, t, [layer])[layer]
    h = load_heldout()
    f.by_list["ho_unsafe"] = enc.encode(h.unsafe_texts(), layer, progress=False)
    f.by_list["ho_safe"] = enc.encode(h.safe_texts(), layer, progress=False)
    return f


def choose_layer(src: dict[int, ex.Feats], tgt: ex.Feats, t: ex.Texts) -> tuple[int, dict]:
    """Benign-only: the layer whose anchors best predict the target's (held-out R² of ridge)."""
    return select_site_by_fidelity({k: f.anchors(t) for k, f in src.items()}, tgt.anchors(t),
                                   RidgeMap())


def score(setup: ex.Setup, d: Direction, tgt: ex.Feats, t: ex.Texts,
          ho_cats: list[str]) -> dict[str, dict[str, Any]]:
    """`hs.transport_on` on both sets, plus the direction's detection AUROC on each."""
    U, S = tgt.pairs(t.test)
    Uh, Sh = tgt.by_list["ho_unsafe"], tgt.by_list["ho_safe"]
    c = setup.data.center
    out = {}
    for name, (u, s, cats) in {"in-distribution": (U, S, [t.categories[i] for i in t.test]),
                               "written apart": (Uh, Sh, ho_cats)}.items():
        r = hs.transport_on(setup, d, u, s, cats, boot=False)
        r["auroc"] = auroc(harm_score(u, d.vector, c), harm_score(s, d.vector, c))
        out[name] = r
    return out


def ensemble(dirs: list[Direction], setup: ex.Setup) -> Direction:
    """Mean of benign-norm-calibrated directions, calibrated again (each member weighs the same)."""
    v = torch.stack([d.vector for d in dirs]).mean(0)
    prov = dirs[0].provenance
    for d in dirs[1:]:
        prov = prov.merged(d.provenance)
    first = dirs[0]
    return calibrate_direction(Direction(v, first.model_id, first.site, origin="transported",
                                         method="ensemble:mean", provenance=prov),
                               setup.stats, "benign-norm")


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    t = ex.Texts.build(n_generic=N_GENERIC)
    ho_cats = [p.category for p in load_heldout().pairs]
    feats: dict[str, dict[int, ex.Feats]] = {}
    missing: dict[str, str] = dict(SKIPPED)
    targets: dict[str, ex.Feats] = {}
    for name in ENCODE_ORDER:  # a target after its source pass, whose layers it reuses
        if name in SOURCES and name not in missing:
            try:
                feats[name] = encode_source(name, t, log)
            except MissingExtraError as exc:
                missing[name] = str(exc)
                log(f"  {name}: skipped ({exc})")
        if name in TARGETS:
            targets[name] = encode_target(name, t)
    log(f"features ready in {time.perf_counter() - t0:.0f}s")
    cells: dict[str, Any] = {}
    # native, calibration statistics and the scoring centre depend on the target and split only
    setups: dict[str, dict[int, ex.Setup]] = {name: {} for name in targets}
    for tname, tgt in targets.items():
        per_src: dict[str, Any] = {}
        for sname, src in feats.items():
            if sname == tname:
                continue
            layer, r2 = choose_layer(src, tgt, t)
            # the rank the SVD map picks on split 0's anchors (t is split 0), for the page
            svd = SVDMap().fit(src[layer].anchors(t), tgt.anchors(t))
            rank = {"rank": svd.rank_, "max": min(src[layer].anchors(t).shape[1],
                                                  tgt.anchors(t).shape[1])}
            runs: dict[str, list[Any]] = {m: [] for m in MAPS}
            dirs: dict[str, list[Direction]] = {m: [] for m in MAPS}
            for seed in SEEDS:
                ts = ex.Texts(t.lists, t.categories, *ex._splits(t, seed))
                setup = ex.make_setup(src[layer], tgt, ts)
                setups[tname].setdefault(seed, setup)
                for m, make in MAPS.items():
                    d, _ = ex.transport(setup, m, make)
                    dirs[m].append(d)
                    runs[m].append(score(setup, d, tgt, ts, ho_cats))
            per_src[sname] = {"layer": layer, "benign_r2": r2, "runs": runs, "dirs": dirs,
                              "svd_rank": rank}
            log(f"{sname} -> {tname}: layer {layer}, " + ", ".join(
                f"{m} cos {np.mean([r['in-distribution']['cos_native'] for r in runs[m]]):.3f}"
                for m in MAPS) + f" ({time.perf_counter() - t0:.0f}s)")
        cells[tname] = {s: per_src[s] for s in SOURCES if s in per_src}
    ens = run_ensembles(cells, setups, targets, t, ho_cats, feats)
    timings = json.loads(_timings_path().read_text()) if _timings_path().is_file() else {}
    for per_src in cells.values():
        for c in per_src.values():
            del c["dirs"]
    return {"cells": cells, "ensembles": ens, "missing": missing, "timings": timings,
            "target_layers": TARGETS, "n_generic": len(t.lists["generic"]),
            "n_anchors": len(t.anchor_texts()),
            "source_layers": {n: list(LAYERS[n]) for n in (*SOURCES, *SKIPPED)},
            "seconds": time.perf_counter() - t0}


def joint_feats(members: dict[str, ex.Feats]) -> ex.Feats:
    """The members' features side by side (one joint source for one map), each block divided by
    the RMS centred norm of its generic anchors, so every source weighs the same in the map's
    penalty whatever its scale. Benign-only: the scale comes from the generic anchors, the same
    texts for every split."""
    blocks: dict[str, list[torch.Tensor]] = {}
    for f in members.values():
        g = f.by_list["generic"]
        scale = float((g - g.mean(0)).pow(2).sum(1).mean().sqrt())
        if not scale > 0:
            raise ValueError(f"{f.model_id}: generic anchors have no spread to scale by")
        for lst, x in f.by_list.items():
            blocks.setdefault(lst, []).append(x / scale)
    lists = [set(f.by_list) for f in members.values()]
    common = set.intersection(*lists)
    return ex.Feats("+".join(f.model_id for f in members.values()),
                    next(iter(members.values())).site,
                    {k: torch.cat(v, 1) for k, v in blocks.items() if k in common})


def run_ensembles(cells: dict[str, Any], setups: dict[str, dict[int, ex.Setup]],
                  targets: dict[str, ex.Feats], t: ex.Texts, ho_cats: list[str],
                  feats: dict[str, dict[int, ex.Feats]]) -> dict[str, Any]:
    """Per target and map: the mean of all sources' directions and of the LLM sources'; and for
    the LLM sources one joint map fitted from their concatenated features (`joint_feats`, each at
    its own benign-chosen layer), which carries the concatenated source direction."""
    out: dict[str, Any] = {}
    for tname, per_src in cells.items():
        groups = {"all sources": list(per_src), "LLM sources": [s for s in per_src if s in LLMS]}
        for gname, members in groups.items():
            if len(members) < 2:
                continue
            for m in ("svd", "ridge"):
                runs = []
                for i, seed in enumerate(SEEDS):
                    ts = ex.Texts(t.lists, t.categories, *ex._splits(t, seed))
                    setup = setups[tname][seed]
                    d = ensemble([per_src[s]["dirs"][m][i] for s in members], setup)
                    runs.append(score(setup, d, targets[tname], ts, ho_cats))
                out[f"{tname}|{gname}|{m}"] = {"target": tname, "group": gname, "map": m,
                                               "kind": "mean", "members": members,
                                               "runs": runs}
        members = groups["LLM sources"]
        if len(members) < 2:
            continue
        joint = joint_feats({s: feats[s][per_src[s]["layer"]] for s in members})
        for m in ("svd", "ridge"):
            runs = []
            for seed in SEEDS:
                ts = ex.Texts(t.lists, t.categories, *ex._splits(t, seed))
                setup = ex.make_setup(joint, targets[tname], ts)
                d, _ = ex.transport(setup, m, MAPS[m])
                runs.append(score(setup, d, targets[tname], ts, ho_cats))
            out[f"{tname}|LLM sources, joint map|{m}"] = {
                "target": tname, "group": "LLM sources, joint map", "map": m, "kind": "joint",
                "members": members, "runs": runs}
    return out


def _anchor_words(res: dict[str, Any]) -> str:
    n, a = res["n_generic"], res["n_anchors"]
    if n >= 2242:
        return (f"the {n} shipped generic prompts plus the fitting half of the 426 near-miss "
                f"prompts ({a} per split), as in `docs/results.md`")
    return (f"a seeded {n} of the 2,242 shipped generic prompts plus the fitting half of the 426 "
            f"near-miss prompts ({a} per split; fewer than the 2,455 of `docs/results.md`: "
            "`docs/anchors_at_scale.md` shows what more anchors buy Gemma, cos 0.58 at 400 and "
            "0.82 at 2,455 with ridge)")


def page(res: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """The whole page for a result (fresh from `run`, or read back from its JSON)."""
    head = ["# Do models share safety representations? Sources × targets", "",
            f"Generated by `make results-sources` (`python -m experiments.sources_matrix`) on "
            f"{res['date']} on {res['machine']} (load average at the end {res['load']:.1f}); "
            f"{res['seconds']:.0f} s including encoding. Do not edit by hand.", "",
            "Five real sources, two real targets, three benign-only maps (the paper's SVD "
            "alignment = `xsteer.align.SVDMap`, reduced-rank ridge with the rank chosen on "
            "held-out anchors; ridge; the MLP with Jacobian transport, as in `make results`). "
            f"**Anchors: {_anchor_words(res)}, the same for every source.** The Qwen sources "
            "run in bf16 and read layers up to "
            f"{QWEN_TOP} only (see `source_encoder`). Directions: mean difference of each split's "
            f"training pairs, additive steering at strength {ex.STRENGTH} after benign-norm "
            "calibration; ASR from the kNN judge cross-fitted on each set's own target pairs. "
            "Sets: the test half of the shipped pairs (in-distribution, 183 pairs per split) and "
            "the pairs written apart (`xsteer/data/heldout2_pairs.jsonl`, 140 pairs, never used "
            "to fit or choose anything).", ""]
    return "\n".join(head + render(res, extra)) + "\n"


def write_page(out: Path, json_path: Path | None = None, render_from: Path | None = None,
               extra: Path | None = None) -> None:
    """Run the matrix (or read a saved result) and write its page and, when asked, the JSON."""
    import datetime as dt
    import os
    import platform

    from threadpoolctl import threadpool_limits

    if render_from is not None:
        res = json.loads(render_from.read_text(encoding="utf-8"))
    else:
        # One thread: on a shared 2-core machine oversubscribed BLAS threads stall.
        torch.set_num_threads(1)
        threadpool_limits(1)
        res = run()
        res.update(date=f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
                   machine=f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU "
                           f"cores, torch {torch.__version__}",
                   load=os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    more = json.loads(extra.read_text(encoding="utf-8")) if extra is not None else None
    atomic_write_text(out, page(res, more))
    if json_path and render_from is None:
        atomic_write_json(json_path, json.loads(json.dumps(res, default=float)))
    print(f"wrote {out}")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(help="Write the sources × targets page (issue #22).")
def cli(out: Annotated[Path, typer.Option("--out")] = Path("docs/sources.md"),
        json_path: Annotated[Path | None, typer.Option("--json")] = None,
        render_from: Annotated[Path | None, typer.Option(
            "--render-from", help="re-render the page from a saved --json result")] = None,
        n_generic: Annotated[int | None, typer.Option(
            "--n-generic", help="a seeded subset of the generic anchors (default: all)")] = None,
        maps: Annotated[str, typer.Option("--maps", help="comma-separated maps to run "
                                          "(default: svd,ridge,mlp)")] = "",
        targets: Annotated[str, typer.Option("--targets", help="comma-separated targets "
                                             "(default: both)")] = "",
        extra: Annotated[Path | None, typer.Option(
            "--extra", help="a saved --json result of a second run, rendered after the page")
                         ] = None,
        skip: Annotated[str, typer.Option(
            "--skip", help="comma-separated sources to leave out (named on the page)")] = ""
        ) -> None:
    global SOURCES, N_GENERIC, MAPS, TARGETS
    N_GENERIC = n_generic
    for flag, given, known in (("--maps", maps, MAPS), ("--targets", targets, TARGETS)):
        if set(given.split(",")) - set(known) - {""}:
            raise typer.BadParameter(f"{given!r}: known are {', '.join(known)}", param_hint=flag)
    if maps:
        MAPS = {m: MAPS[m] for m in maps.split(",")}
    if targets:
        TARGETS = {x: TARGETS[x] for x in targets.split(",")}
    left = [x for x in skip.split(",") if x]
    unknown = set(left) - set(SOURCES)
    if unknown:
        raise typer.BadParameter(f"unknown source(s) {sorted(unknown)}; known: {SOURCES}")
    SOURCES = tuple(x for x in SOURCES if x not in left)
    SKIPPED.update({x: "left out of this run (--skip)" for x in left})
    write_page(out, json_path, render_from, extra)


if __name__ == "__main__":
    app()
