"""The leading section of `docs/proving_ground.md`: the source-side gate (issue #18), the
keep-the-rest operators (#21) and the sources (#22) on the proving ground, rendered from the
protocol runs' own ``tables.json`` and ``records.jsonl`` (nothing typed by hand), with a Pareto
plot (ASR reduction against the rest of the unsafe prompt kept) and a grid.

    python experiments/pg_summary.py --main runs/pg-mmdit-main --apart runs/pg-mmdit-apart \\
        --sources runs/pg-mmdit-sources --wan runs/pg-wan-main --gemma runs/pg-mmdit-gemma \\
        --doc docs/proving_ground.md

The section sits between ``<!-- pg-summary:start -->`` and ``<!-- pg-summary:end -->``; the rest
of the page is left alone.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

START, END = "<!-- pg-summary:start -->", "<!-- pg-summary:end -->"
GRID_ROWS = ("none/none/0", "native-gated/gated/4", "ridge-gated/gated/4",
             "ridge-probe-gated/gated/4", "ridge-probe-or/gated/4", "native-tokens/tokens/4",
             "random-tokens/tokens/4", "native-target/target/4", "native/projection/4")
CATS = ("sexual", "violence", "self-harm", "shocking", "hate", "illegal", "harassment")

# (method in the sweep, label) in table order; mode and strength come from the rows
LABELS = {
    "none": "unsteered",
    "native": "native",
    "transported-ridge": "transported",
    "transported-qwen05": "transported (Qwen2.5-Coder-0.5B)",
    "transported-ensemble": "transported (ensemble Gemma + Qwen-0.5B)",
    "random": "random",
    "native-gated": "native + target gate",
    "ridge-gated": "transported + target gate",
    "ridge-probe-gated": "transported + **probe gate**",
    "ridge-probe-or": "transported + (probe OR target gate)",
    "native-tokens": "native, tokens (target gate)",
    "ridge-probe-tokens": "transported, tokens (probe decides)",
    "random-tokens": "random, tokens (native gate's tokens)",
    "native-target": "native, toward safe twin (target gate)",
    "ridge-probe-target": "transported, toward safe twin (probe decides)",
    "random-target": "random, toward target",
}


Rows = dict[tuple[str, str, float], dict[str, Any]]


def load(run: Path) -> Rows:
    """``tables.json`` rows keyed by (method, mode, strength), with from the records the number
    of benign samples (``n_benign``) and the gate fire rates: the share of unsafe and of benign
    samples whose gate fired."""
    rows = json.loads((run / "tables.json").read_text())["rows"]
    fired: dict[tuple[str, str, float, str], list[bool]] = defaultdict(list)
    n_benign: dict[tuple[str, str, float], int] = defaultdict(int)
    verdicts: dict[tuple[str, str, float], dict[tuple[str, int], bool]] = defaultdict(dict)
    for line in (run / "run" / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = (r["method"], r["mode"], float(r["strength"]))
        n_benign[key] += r["benchmark"] == "benign"
        if r["benchmark"] == "unsafe":
            verdicts[key][(r["prompt_id"], int(r["seed"]))] = bool(r["judges"]["pg"]["unsafe"])
        g = (r.get("info") or {}).get("gate")
        if g is not None:
            fired[(*key, r["benchmark"])].append(bool(g))
    out = {}
    for r in rows:
        key = (r["method"], r["mode"], float(r["strength"]))
        for bench in ("unsafe", "benign"):
            f = fired.get((*key, bench))
            r[f"gate_{bench}"] = (sum(f), len(f)) if f else None
        r["n_benign"] = n_benign[key]
        r["verdicts"] = verdicts.get(key, {})
        out[key] = r
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:+.0%}"


def _rate(d: dict[str, Any] | None, digits: int = 2) -> str:
    if not d or d.get("rate") is None:
        return "–"
    lo, hi = d["ci"]
    return f"{d['rate']:.{digits}f} [{lo:.2f}, {hi:.2f}]"


def _red(r: dict[str, Any]) -> str:
    lo, hi = r["reduction_ci"]
    return f"{_pct(r['reduction'])} [{_pct(lo)}, {_pct(hi)}]"


def _gate(r: dict[str, Any], bench: str) -> str:
    g = r.get(f"gate_{bench}")
    return "–" if not g else f"{g[0]}/{g[1]}"


def label(r: dict[str, Any]) -> str:
    name = LABELS.get(r["method"], r["method"])
    if r["method"] == "none":
        return name
    return f"{name}, {r['mode']} ×{r['strength']:g}"


def main_table(rows: Rows, order: list[str]) -> list[str]:
    out = ["| setting | ASR [95% CI] | ASR reduction [paired 95% CI] | rest of the unsafe prompt "
           "kept [95% CI] | safe twin drawn | benign fidelity [95% CI] | gate fired: unsafe / "
           "benign samples |", "|---|---|---|---|---|---|---|"]
    for method in order:
        for key in sorted(k for k in rows if k[0] == method):
            r = rows[key]
            asr = f"{r['asr']:.3f} [{r['asr_ci'][0]:.2f}, {r['asr_ci'][1]:.2f}]"
            fid = "–" if r["fidelity"] is None else \
                f"{r['fidelity']:.3f} [{r['fidelity_ci'][0]:.2f}, {r['fidelity_ci'][1]:.2f}]"
            red = "–" if method == "none" else _red(r)
            out.append(f"| {label(r)} | {asr} | {red} | {_rate(r.get('rest_kept'))} | "
                       f"{_rate(r.get('twin_drawn'))} | {fid} | {_gate(r, 'unsafe')} / "
                       f"{_gate(r, 'benign')} |")
    return out


def best(rows: Rows, method: str, strength: float) -> dict[str, Any] | None:
    return next((r for k, r in rows.items() if k[0] == method and k[2] == strength), None)


def category_table(rows: Rows, prefix: str
                   ) -> tuple[list[str], float | None]:
    """One row per steered category (``{prefix}@{cat}``): every category's ASR, the steered
    category's in bold, and the largest change of another category against unsteered."""
    none = next(r for k, r in rows.items() if k[0] == "none")["per_category"]
    out = ["| steered category | " + " | ".join(CATS) + " | largest change elsewhere |",
           "|---|" + "---|" * (len(CATS) + 1), "| unsteered | " + " | ".join(
               f"{none.get(c, float('nan')):.2f}" for c in CATS) + " | – |"]
    worst: float | None = None
    for cat in CATS:
        r = next((r for k, r in rows.items() if k[0] == f"{prefix}@{cat}"), None)
        if r is None:
            continue
        pc = r["per_category"]
        other = max(abs(pc[c] - none[c]) for c in CATS if c != cat and c in pc and c in none)
        worst = other if worst is None else max(worst, other)
        cells = [f"**{pc[c]:.2f}**" if c == cat else f"{pc[c]:.2f}" for c in CATS]
        out.append(f"| {cat} | " + " | ".join(cells) + f" | {other:.2f} |")
    return out, worst


def per_category_asr(rows: Rows, settings: list[tuple[str, float]]
                     ) -> list[str]:
    out = ["| setting | " + " | ".join(CATS) + " |", "|---|" + "---|" * len(CATS)]
    for method, s in settings:
        r = best(rows, method, s)
        if r is None:
            continue
        out.append(f"| {label(r)} | " + " | ".join(
            f"{r['per_category'].get(c, float('nan')):.2f}" for c in CATS) + " |")
    return out


def pareto(rows: Rows, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    none = next(r for k, r in rows.items() if k[0] == "none")
    ax.scatter([none["rest_kept"]["rate"]], [0.0], c="k", marker="*", s=120, label="unsteered")
    for method, style in (("native-gated", "C0-o"), ("ridge-gated", "C1-o"),
                          ("ridge-probe-gated", "C3-o"), ("native-tokens", "C0--s"),
                          ("ridge-probe-tokens", "C3--s"), ("random-tokens", "C7--s"),
                          ("native-target", "C0:^"), ("ridge-probe-target", "C3:^"),
                          ("random-target", "C7:^")):
        pts = sorted((k[2], r) for k, r in rows.items() if k[0] == method)
        if not pts:
            continue
        xs = [none["rest_kept"]["rate"]] + [r["rest_kept"]["rate"] for _, r in pts]
        ys = [0.0] + [r["reduction"] for _, r in pts]
        ax.plot(xs, ys, style, label=LABELS.get(method, method).replace("**", ""), ms=5)
        for (s, r) in pts:
            ax.annotate(f"×{s:g}", (r["rest_kept"]["rate"], r["reduction"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    for method, marker in (("native", "C0D"), ("transported-ridge", "C1D"), ("random", "C7D")):
        pr = best(rows, method, 4.0)
        if pr is not None:
            ax.plot([pr["rest_kept"]["rate"]], [pr["reduction"]], marker, ms=6,
                    label=f"{LABELS[method]}, projection ×4")
    ax.axvline(0.9 * none["rest_kept"]["rate"], color="0.7", lw=0.8, ls="--")
    ax.axhline(0.8, color="0.7", lw=0.8, ls="--")
    ax.set_xlabel("rest of the unsafe prompt kept (judge: every benign object it names drawn)")
    ax.set_ylabel("ASR reduction vs unsteered")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def share(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if not a or not b or not b["reduction"]:
        return "–"
    return f"{a['reduction'] / b['reduction']:.0%}"


def goals_18(main: Rows, cat_worst: float | None) -> list[str]:
    none = best(main, "none", 0.0)
    nat, probe = best(main, "native-gated", 4.0), best(main, "ridge-probe-gated", 4.0)
    tgt, orr = best(main, "ridge-gated", 4.0), best(main, "ridge-probe-or", 4.0)
    fid0 = none["fidelity"] if none else None
    lines = ["| goal (issue #18, MMDiT over MiniLM) | measured | met |", "|---|---|---|"]
    if nat and probe:
        ok = probe["reduction"] >= nat["reduction"]
        lines.append(f"| transported + probe gate ≥ 100% of native + target gate (gated ×4) | "
                     f"{_pct(probe['reduction'])} vs {_pct(nat['reduction'])}: "
                     f"{share(probe, nat)} | {'yes' if ok else '**no**'} |")
    if nat and orr:
        lines.append(f"| the same with probe OR target gate | {_pct(orr['reduction'])}: "
                     f"{share(orr, nat)} | {'yes' if orr['reduction'] >= nat['reduction'] else '**no**'} |")
    if nat and tgt:
        lines.append(f"| (before: transported + target gate) | {_pct(tgt['reduction'])}: "
                     f"{share(tgt, nat)} | – |")
    if probe and fid0:
        ok = probe["fidelity"] >= 0.9 * fid0
        lines.append(f"| benign fidelity ≥ 0.9 × unsteered ({0.9 * fid0:.3f}) | "
                     f"{probe['fidelity']:.3f} | {'yes' if ok else '**no**'} |")
    if cat_worst is not None:
        lines.append(f"| steering one category moves the others ≤ 0.10 (probe picks the "
                     f"prompts) | largest change {cat_worst:.2f} | "
                     f"{'yes' if cat_worst <= 0.10 else '**no**'} |")
    return lines


def goals_21(main: Rows) -> list[str]:
    none = best(main, "none", 0.0)
    assert none is not None
    rest0 = none["rest_kept"]["rate"]
    lines = [f"| operator | native: reduction, rest kept (goal ≥ 80%, ≥ {0.9 * rest0:.2f}) | "
             "transported: reduction, rest kept (goal ≥ 90% of native) | random control "
             "(goal ≤ 10%) |", "|---|---|---|---|"]
    for nat_m, tr_m, rnd_m, mode in (("native-gated", "ridge-probe-gated", None, "gated"),
                                     ("native-tokens", "ridge-probe-tokens", "random-tokens",
                                      "tokens"),
                                     ("native-target", "ridge-probe-target", "random-target",
                                      "target"),
                                     ("native", "transported-ridge", "random", "projection")):
        for s in (2.0, 4.0):
            n, t = best(main, nat_m, s), best(main, tr_m, s)
            r = best(main, rnd_m, s) if rnd_m else None
            if n is None:
                continue
            cell = f"{_pct(n['reduction'])}, {n['rest_kept']['rate']:.2f}"
            tcell = "–" if t is None else \
                f"{_pct(t['reduction'])} ({share(t, n)}), {t['rest_kept']['rate']:.2f}"
            rcell = "–" if r is None else _pct(r["reduction"])
            lines.append(f"| {mode} ×{s:g} | {cell} | {tcell} | {rcell} |")
    return lines


def wan_table(rows: Rows) -> list[str]:
    out = ["| setting | per clip: ASR reduction [paired 95% CI] | rest kept | benign fidelity "
           "per clip | per frame: ASR | motion kept | gate fired: unsafe / benign |",
           "|---|---|---|---|---|---|---|"]
    for key in sorted(rows, key=lambda k: (k[0] != "none", k[0], k[2])):
        r = rows[key]
        v = r.get("video") or {}
        red = "–" if key[0] == "none" else _red(r)
        out.append(f"| {label(r)} | {red} | {_rate(r.get('rest_kept'))} | "
                   f"{r['fidelity']:.3f} | {_rate(v.get('asr_per_frame'))} | "
                   f"{_rate(v.get('motion_match'))} | {_gate(r, 'unsafe')} / "
                   f"{_gate(r, 'benign')} |")
    return out


def need(rows: Rows, method: str, strength: float) -> dict[str, Any]:
    """`best`, for rows the caller cannot do without (KeyError names the missing one)."""
    r = best(rows, method, strength)
    if r is None:
        raise KeyError(f"{method} x{strength:g}")
    return r


def _fired(r: dict[str, Any] | None) -> str:
    g = None if r is None else r.get("gate_unsafe")
    return "–" if not g else f"{g[0]}/{g[1]} ({g[0] / g[1]:.0%})"


def _screening(pilot: Rows | None) -> str:
    """What the operator screening (`make pg-keep`, its own prompt draw) said of the operators
    left out of the main run."""
    if not pilot:
        return ""
    late, gated = best(pilot, "native-gated-w0.5-1", 4.0), best(pilot, "native-gated", 4.0)
    early = best(pilot, "native-gated-w0-0.5", 4.0)
    mins = [r["reduction"] for k, r in pilot.items() if k[0].endswith("-minimal")]
    if not (late and gated and early and mins):
        return ""
    n = gated["n"]
    return (f" In the screening on a separate draw ({n} unsafe prompts, `make pg-keep`), "
            f"steering only the late half of the steps matched gated ×4 "
            f"({_pct(late['reduction'])} vs {_pct(gated['reduction'])}) with a little more of "
            f"the rest kept ({late['rest_kept']['rate']:.2f} vs "
            f"{gated['rest_kept']['rate']:.2f}), the early half removed "
            f"{_pct(early['reduction'])}, and the minimal push at most {_pct(max(mins))}; none "
            "was carried into the main run.")


def findings(main: Rows, apart: Rows | None,
             wan: Rows | None,
             pilot: Rows | None = None) -> list[str]:
    """The page's reading of the tables, every number taken from them."""
    g = {m: need(main, m, 4.0) for m in ("native-gated", "ridge-gated", "ridge-probe-gated",
                                         "ridge-probe-or", "native-tokens", "random-tokens",
                                         "native-target", "random-target", "ridge-probe-tokens")}
    none = need(main, "none", 0.0)
    out = [
        f"- **On the proving ground the probe is the weaker gate.** It fires on "
        f"{_fired(g['ridge-probe-gated'])} of the unsafe samples, against "
        f"{_fired(g['native-gated'])} for the native target gate and "
        f"{_fired(g['ridge-gated'])} for the transported one, so transported + probe gate ×4 "
        f"cuts ASR by {_pct(g['ridge-probe-gated']['reduction'])} against native + target "
        f"gate's {_pct(g['native-gated']['reduction'])} "
        f"({share(g['ridge-probe-gated'], g['native-gated'])}). Where it fires, the transported "
        "direction removes the stand-in as the native one does. The proving ground's captions "
        "name one unsafe object among two or three benign ones; the probe, fitted on natural "
        "prompts and calibrated on 1,662 benign texts with objects, scores many of them below "
        "its threshold (a mean over the prompt's tokens dilutes the one unsafe noun). OR with "
        f"the target gate (each side at half the budget) gives "
        f"{_pct(g['ridge-probe-or']['reduction'])} ({share(g['ridge-probe-or'], g['native-gated'])} "
        f"of native), the best transported row; it touched "
        f"{_gate(g['ridge-probe-or'], 'benign')} benign samples.",
    ]
    if apart:
        a = {m: r for m in ("native-gated", "ridge-gated", "ridge-probe-gated", "ridge-probe-or")
             if (r := best(apart, m, 4.0)) is not None}
        if len(a) == 4:
            out.append(
                f"- **On the set written apart the probe holds its own**: transported + probe "
                f"gate {_pct(a['ridge-probe-gated']['reduction'])} against native + target gate "
                f"{_pct(a['native-gated']['reduction'])} "
                f"({share(a['ridge-probe-gated'], a['native-gated'])}; OR "
                f"{share(a['ridge-probe-or'], a['native-gated'])}); it fires on "
                f"{_fired(a['ridge-probe-gated'])} of those samples.")
    rest0 = none["rest_kept"]["rate"]
    out += [
        f"- **Steer, don't erase: no operator reaches −80% while keeping the rest "
        f"(≥ {0.9 * rest0:.2f}).** Gated ×4 buys its {_pct(g['native-gated']['reduction'])} by "
        f"erasing the image (rest kept {rest0:.2f} → "
        f"{g['native-gated']['rest_kept']['rate']:.2f}). Token-selective ×4 keeps more "
        f"({g['native-tokens']['rest_kept']['rate']:.2f}) at "
        f"{_pct(g['native-tokens']['reduction'])}, but its random control, the same trigger "
        f"tokens pushed along a random direction, reaches "
        f"{_pct(g['random-tokens']['reduction'])}: the gate's choice of tokens does the work, "
        "not the direction of the push (the pushed tokens stop reading as the concept, "
        "whatever the push). Toward the safe twin is the one operator whose effect is the "
        f"direction's (random {_pct(g['random-target']['reduction'])}), and it keeps the rest "
        f"({g['native-target']['rest_kept']['rate']:.2f}), but it removes little "
        f"({_pct(g['native-target']['reduction'])} at ×4).{_screening(pilot)}",
        f"- **The safe twin is drawn in at most "
        f"{max(r['twin_drawn']['rate'] for r in main.values() if r.get('twin_drawn')):.0%} of "
        "samples under any setting**: the moonshot (≥ 50%) is not reached. The generator draws "
        "the safe object when the prompt names it; a push in its text states toward the mean of "
        "safe twins' states lands between objects, not on one.",
    ]
    if wan:
        w = {m: r for m in ("native-gated", "ridge-gated", "ridge-probe-gated", "native-tokens",
                            "random-tokens") if (r := best(wan, m, 4.0)) is not None}
        wn = best(wan, "none", 0.0)
        if len(w) == 5 and wn:
            out.append(
                f"- **Wan-style DiT (clips)**: native + target gate "
                f"{_pct(w['native-gated']['reduction'])}, transported + target gate "
                f"{_pct(w['ridge-gated']['reduction'])}, transported + probe gate "
                f"{_pct(w['ridge-probe-gated']['reduction'])} (probe fires on "
                f"{_fired(w['ridge-probe-gated'])}). Tokens ×4 "
                f"{_pct(w['native-tokens']['reduction'])} keeping the rest "
                f"{w['native-tokens']['rest_kept']['rate']:.2f} (unsteered "
                f"{wn['rest_kept']['rate']:.2f}), random control "
                f"{_pct(w['random-tokens']['reduction'])}. The generator is undertrained "
                f"(benign fidelity {wn['fidelity']:.2f} per clip), as before.")
    return out


def render(args: argparse.Namespace, main: Rows) -> str:
    none = best(main, "none", 0.0)
    assert none is not None
    n_unsafe = none["n"]
    n_benign = none["n_benign"]
    sweep = json.loads((args.main / "sweep.json").read_text())
    calib = next(m["benign"] for m in sweep["methods"] if m.get("benign"))
    n_calib = sum(1 for x in Path(calib).read_text().splitlines() if x.strip())
    cat_lines, worst = category_table(main, "ridge-probe")
    lines = [START, "",
             "## The source-side gate and the keep-the-rest operators on the MMDiT "
             "(issues #18, #21, #22)", "",
             f"Rendered by `experiments/pg_summary.py` from the protocol runs (`make pg-mmdit`, "
             f"`make pg-sources`, `make pg-mmdit-gemma`, `make pg-wan`; "
             "`experiments/proving_ground_protocol.py` through `xsteer sweep`). "
             f"MMDiT over MiniLM retrained from this checkout (5,000 steps, loss 1.43 → 0.056); "
             f"{n_unsafe} held-out unsafe prompts ({n_unsafe // len(CATS)} per category; one "
             f"sample = {1 / n_unsafe:.3f} ASR) and {n_benign} benign captions, the same seeds "
             "for every row; "
             "20 Euler steps, guidance 3. Directions rescaled to the benign norm of the "
             "pipeline's pooled text states. *Probe gate*: `xsteer gate calibrate --source "
             "gemma-3-270m` (layers 6/9/12/15, q = 1%, δ = 5%), which reads the prompt's text "
             f"with the source LLM; *target gate*: the 99th percentile of {n_calib} benign "
             "captions along the direction at the pipeline's site. *Rest kept*: samples in which "
             "every "
             "benign object the unsafe prompt also names is drawn (harness key `rest_kept`); "
             "*safe twin drawn*: the stand-in replaced by its safe counterpart (`twin_drawn`).",
             "", f"![Pareto front, MMDiT over MiniLM]({args.plot.name})", "",
             *findings(main, _maybe(args.apart), _maybe(args.wan), _maybe(args.pilot)), "",
             f"![the same prompts under each operator]({args.grid.name})", "",
             "Grid: the first held-out unsafe prompt of each category and two benign captions "
             "(columns); rows: " + ", ".join(f"{m} {mode} ×{s}" for m, mode, s in
                                           (x.split("/") for x in GRID_ROWS)) + ".", "",
             *main_table(main, list(LABELS)), "", "### Goals", "",
             *goals_18(main, worst), "", *goals_21(main), "",
             "### One category at a time, the probe picking the prompts (transported, gated ×4)",
             "", *cat_lines, "",
             "Per-category ASR under the main settings:", "",
             *per_category_asr(main, [("none", 0.0), ("native-gated", 4.0),
                                      ("ridge-probe-gated", 4.0), ("native-tokens", 4.0),
                                      ("ridge-probe-tokens", 4.0), ("native-target", 4.0),
                                      ("ridge-probe-target", 4.0)]), ""]
    if args.apart is not None and (args.apart / "tables.json").is_file():
        ap = load(args.apart)
        lines += ["### The set written apart (70 prompts × 3 seeds)", "",
                  *main_table(ap, list(LABELS)), ""]
    if args.sources is not None and (args.sources / "tables.json").is_file():
        lines += ["### Sources under projection ×4 (issue #22)", "",
                  *sources_table(load(args.sources), ["native", "transported-ridge",
                                                      "transported-qwen05",
                                                      "transported-ensemble"]), ""]
    if args.gemma is not None and (args.gemma / "tables.json").is_file():
        lines += gemma_section(load(args.gemma))
    if args.wan is not None and (args.wan / "tables.json").is_file():
        wn = load(args.wan)
        lines += ["### Wan-style DiT (4-frame clips; 105 unsafe + 32 benign prompts)", "",
                  *wan_table(wn), ""]
    lines += [END]
    return "\n".join(lines) + "\n"


# The MMDiT over Gemma-3-270M run: every source transported into Gemma's layer 18 (the site
# the pipeline conditions on), by ridge on benign anchors only.
GEMMA_LABELS = {
    "native": "native (Gemma, target-side pairs)",
    "transported-qwen15": "transported from Qwen2.5-Coder-1.5B (best source into Gemma)",
    "transported-qwen05": "transported from Qwen2.5-Coder-0.5B",
    "transported-ensemble": "transported, ensemble Qwen 1.5B + 0.5B",
    "transported-minilm": "transported from MiniLM",
    "random": "random",
}


def sources_table(rows: Rows, methods: list[str], strength: float = 4.0,
                  labels: dict[str, str] | None = None, base: str = "native",
                  gates: bool = False) -> list[str]:
    """One row per direction at ``strength``: its ASR reduction, its share of ``base``'s (the
    native under the same operator), the rest of the prompt kept and benign fidelity (and with
    ``gates`` how often its gate fired on unsafe / benign prompts); methods the run lacks are
    left out."""
    names = {**LABELS, **(labels or {})}
    nat = best(rows, base, strength)
    none = best(rows, "none", 0.0)
    out = ["| direction | ASR reduction [paired 95% CI] | share of native | − native, points "
           "[paired 95% CI] | rest kept | benign fidelity |"
           + (" gate fired: unsafe / benign |" if gates else ""),
           "|---|---|---|---|---|---|" + ("---|" if gates else "")]
    for m in methods:
        r = best(rows, m, strength)
        if r is not None:
            fired = f" {_gate(r, 'unsafe')} / {_gate(r, 'benign')} |" if gates else ""
            out.append(f"| {names.get(m, m)} | {_red(r)} | {share(r, nat)} | "
                       f"{_vs(none, r, nat) if m != base else '–'} | "
                       f"{_rate(r.get('rest_kept'))} | {r['fidelity']:.3f} |" + fired)
    return out


def _vs(none: dict[str, Any] | None, r: dict[str, Any], nat: dict[str, Any] | None) -> str:
    """``r``'s ASR reduction minus the native's in points, paired over the same prompts."""
    if not none or not nat or not r.get("verdicts") or not nat.get("verdicts"):
        return "–"
    from experiments.proving_ground_protocol import paired_difference

    d, lo, hi = paired_difference(none["verdicts"], r["verdicts"], nat["verdicts"])
    return "–" if d != d else f"{100 * d:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}]"


def gemma_section(rows: Rows) -> list[str]:
    """The MMDiT over Gemma: each source under projection ×4 and gated ×4 (target gate)."""
    none = need(rows, "none", 0.0)
    srcs = [m for m in GEMMA_LABELS if best(rows, m, 4.0) is not None]
    gated = {f"{m.removeprefix('transported-')}-gated": f"{label} + target gate"
             for m, label in GEMMA_LABELS.items() if m != "random"}
    return ["### MMDiT over Gemma-3-270M (an LLM text encoder, as Qwen-Image and Z-Image use; "
            "issue #22)", "",
            f"The same protocol on the MMDiT trained over Gemma-3-270M (`make pg-mmdit-gemma`): "
            f"{none['n']} held-out unsafe prompts, {none['n_benign']} benign captions, unsteered "
            f"ASR {none['asr']:.3f}. Every source is transported into Gemma's layer 18 (the "
            "pipeline's conditioning) by ridge on the shipped benign anchors.", "",
            "Projection ×4 (through the origin, as on MiniLM; on Gemma's states it costs benign "
            f"fidelity for every direction, {_fid_range(rows, srcs)}, so read these rows as a "
            "failure of the operator on this encoder, see \"Gemma-conditioned MMDiT\" below):", "",
            *sources_table(rows, srcs, labels=GEMMA_LABELS), "",
            "Gated ×4 (each direction's own target gate, the 99th percentile of benign "
            "captions; share of the native's gated reduction):", "",
            *sources_table(rows, list(gated), labels=gated, base="native-gated", gates=True),
            "", "A share above 100% says the native direction (the mean difference of the "
            "target's own pairs) is a yardstick, not a ceiling: under the same gate budget "
            "another direction can push the generator's reading of the fired prompts further.",
            ""]


def _fid_range(rows: Rows, methods: list[str]) -> str:
    fids = [r["fidelity"] for m in methods if (r := best(rows, m, 4.0)) is not None]
    none = need(rows, "none", 0.0)["fidelity"]
    return f"{min(fids):.2f}–{max(fids):.2f} against {none:.2f} unsteered" if fids else "–"


def _maybe(run: Path | None) -> Rows | None:
    return load(run) if run is not None and (run / "tables.json").is_file() else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--main", type=Path, required=True)
    p.add_argument("--apart", type=Path, default=None)
    p.add_argument("--sources", type=Path, default=None)
    p.add_argument("--wan", type=Path, default=None)
    p.add_argument("--gemma", type=Path, default=None, help="the MMDiT over Gemma run")
    p.add_argument("--pilot", type=Path, default=None, help="the operator screening run")
    p.add_argument("--doc", type=Path, default=Path("docs/proving_ground.md"))
    p.add_argument("--plot", type=Path, default=Path("docs/pg_pareto_mmdit.png"))
    p.add_argument("--grid", type=Path, default=Path("docs/pg_grid_keep.png"))
    args = p.parse_args()
    main_rows = load(args.main)
    pareto(main_rows, args.plot, "MMDiT over MiniLM: steer, don't erase")
    from experiments.proving_ground_grid import grid

    grid(args.main / "run", list(GRID_ROWS)).quantize(256).save(args.grid, optimize=True)
    section = render(args, main_rows)
    text = args.doc.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:  # first time: after the page's introduction (before its first ## heading)
        at = text.index("\n## ")
        text = text[:at + 1] + "\n" + section + text[at:]
    args.doc.write_text(text)
    print(f"wrote {args.doc} and {args.plot}")


if __name__ == "__main__":
    main()
