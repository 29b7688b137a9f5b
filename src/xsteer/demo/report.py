"""Plots and Markdown for the demo report (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xsteer.formatting import fmt_num as _f
from xsteer.formatting import markdown_table

ROW_HEADER = ("direction", "map", "cos→native", "ASR before", "ASR after", "ASR (linear)",
              "pair fidelity", "self cos", "benign cos", "AUROC", "false trig.", "unsafe trig.",
              "held-out R²", "top-1")
KIND_STYLE = {"native": ("tab:green", "o"), "random": ("tab:gray", "x"),
              "transported": ("tab:blue", "s")}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(n: int) -> tuple[Any, Any]:
    """One figure with a panel per source→target pair."""
    fig, axes = _plt().subplots(1, n, figsize=(5 * n, 4), squeeze=False)
    return fig, axes[0]


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def plot_tradeoff(results: list[dict[str, Any]], out: Path) -> Path:
    """ASR after steering vs benign cosine, over strengths, one curve per direction."""
    fig, axes = _panels(len(results))
    for ax, r in zip(axes, results, strict=True):
        for row in r["rows"]:
            if not row["curve"] or row["direction"] not in KIND_STYLE:
                continue
            color, marker = KIND_STYLE[row["direction"]]
            label = row["direction"] if row["direction"] != "transported" else row["method"]
            xs = [p["benign_cosine"] for p in row["curve"]]
            ys = [p["asr_after"] for p in row["curve"]]
            ls = "-" if row["direction"] != "transported" else "--"
            ax.plot(xs, ys, ls, marker=marker, label=label,
                    color=None if row["direction"] == "transported" else color)
        ax.set_title(f"{r['source']} → {r['target']}", fontsize=9)
        ax.set_xlabel("benign cosine (1 = untouched)")
        ax.set_ylabel("ASR after steering (kNN judge)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, out / "tradeoff.png")


def plot_category_cosines(results: list[dict[str, Any]], out: Path) -> Path:
    """Cosine between transported and native directions, per category and alignment map."""
    import numpy as np

    fig, axes = _panels(len(results))
    for ax, r in zip(axes, results, strict=True):
        cc = r["category_cosines"]
        methods = list(cc)
        cats = list(next(iter(cc.values())))
        width = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            ax.bar(np.arange(len(cats)) + i * width, [cc[m][c] for c in cats], width, label=m)
        ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2)
        ax.set_xticklabels(cats, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("cos(transported, native)")
        ax.set_title(f"{r['source']} → {r['target']}", fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
        ax.legend(fontsize=7)
    return _save(fig, out / "category_cosines.png")


def render_markdown(metrics: dict[str, Any], plots: list[str]) -> str:
    """The demo's report.md."""
    lines = [
        "# xsteer demo report", "",
        f"Held-out evaluation on {metrics['n_test_pairs']} pairs (estimation used the other "
        f"{metrics['n_train_pairs']}); alignment fitted on {metrics['n_anchors']} benign anchors "
        f"only; false triggers on {metrics['n_captions']} held-out benign captions. Strength "
        f"{metrics['strength']} × the typical benign norm of the target (every direction is "
        "rescaled the same way). ASR: share of held-out unsafe prompts that a cross-fitted kNN "
        "judge (k=5, cosine) flags; cosines in benign-centred coordinates.", "",
    ]
    for r in metrics["pairs"]:
        lines += [f"## {r['source']} → {r['target']}", "",
                  f"Source site `{r['source_site']}`, target site `{r['target_site']}`.", "",
                  *markdown_table(ROW_HEADER, ([
                      row["direction"], str(row["method"]), _f(row.get("cos_native")),
                      _f(row["asr_before"]), _f(row["asr_after"]), _f(row["asr_linear_after"]),
                      _f(row["pair_fidelity_after"]), _f(row["self_cosine"]),
                      _f(row["benign_cosine"]), _f(row["auroc"]), _f(row["false_trigger_rate"]),
                      _f(row["unsafe_trigger_rate"]), _f(row.get("heldout_r2")),
                      _f(row.get("heldout_top1"))] for row in r["rows"]))]
        cats = list(next(iter(r["category_cosines"].values())))
        lines += ["", "Per-category cos(transported, native):", "",
                  *markdown_table(["map", *cats], ([m, *(_f(v) for v in cc.values())]
                                                   for m, cc in r["category_cosines"].items())),
                  ""]
    lines += [f"![{p}]({p})" for p in plots]
    lines += ["", f"Run time: {metrics['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"
