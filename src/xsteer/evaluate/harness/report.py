"""``xsteer report DIR``: Markdown + self-contained HTML from a finished sweep folder.

Writes ``DIR/report/report.md`` (images referenced as files next to it) and
``DIR/report/report.html`` (the same content, images embedded as data URIs, so one file can be
mailed or archived). Contents: the ASR / CLIP / FID table per benchmark and setting with
per-category ASR and (when measured) rest kept / twin drawn, the Pareto front of ASR reduction
against rest kept, trade-off plots (ASR against CLIP score and against FID over strengths, one
curve per method), and image grids per category (same seed: unsteered beside each method at its
strongest setting).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError, malformed, plain, require
from xsteer.evaluate.harness.records import read_jsonl
from xsteer.evaluate.harness.summary import ANY
from xsteer.formatting import fmt_num as _fmt
from xsteer.formatting import markdown_table
from xsteer.io import atomic_write_text


def _rate(entry: Mapping[str, Any], key: str) -> str:
    """A rate with its 95% interval when the summary has one: ``0.536 [0.47, 0.60]``."""
    ci = entry.get("ci")
    text = _fmt(entry[key])
    return f"{text} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else text


def _categories(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cats: list[str] = []
    for r in rows:
        for c in (r["asr"].get(ANY) or {}).get("per_category", {}):
            if c not in cats:
                cats.append(c)
    return cats


def table(rows: Sequence[Mapping[str, Any]], judges: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the main table (one row per benchmark and setting)."""
    cats = _categories(rows)
    fid_judges = [j for j in judges if any(j in (r.get("fidelity") or {}) for r in rows)]
    header = (["benchmark", "method", "mode", "strength", "n"]
              + [f"ASR {j}" for j in judges] + ([f"ASR {ANY}"] if judges else [])
              + [f"ASR {c}" for c in cats] + [f"fidelity {j}" for j in fid_judges]
              + ["CLIP (100·cos)", "CLIP cos", "FID", "dist. to unsteered", "s/sample"]
              + [label for key, label in KEEP_COLUMNS if any(r.get(key) for r in rows)])
    cells = []
    for r in rows:
        asr = r["asr"]
        line = [r["benchmark"], r["method"], r["mode"], _fmt(r["strength"], 2), str(r["n"])]
        line += [_rate(asr[j]["overall"], "asr") if j in asr else "–" for j in judges]
        if judges:
            line.append(_rate(asr[ANY]["overall"], "asr") if ANY in asr else "–")
        per = (asr.get(ANY) or {}).get("per_category", {})
        line += [_fmt(per[c]["asr"]) + f" ({per[c]['n']})" if c in per else "–" for c in cats]
        fid = r.get("fidelity") or {}
        line += [_rate(fid[j], "rate") if j in fid else "–" for j in fid_judges]
        line += [_fmt(r["clip_score"], 2), _fmt(r["clip_cos"], 4), _fmt(r["fid"], 3),
                 _fmt(r["distance"], 4), _fmt(r["seconds_per_sample"], 3)]
        line += [_keep_cell(r.get(key)) for key, _ in KEEP_COLUMNS
                 if any(x.get(key) for x in rows)]
        cells.append(line)
    return header, cells


# steer, don't erase (`xsteer.evaluate.harness.keep`): shown when any row has them
KEEP_COLUMNS = (("rest_kept", "rest kept"), ("twin_drawn", "twin drawn"),
                ("clip_rest", "CLIP to rest"), ("clip_prompt", "CLIP to prompt (unsafe)"))


def _keep_cell(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "–"
    return _rate(entry, "rate" if "rate" in entry else "mean") + f" ({entry['n']})"


def pareto_plot(rows: Sequence[Mapping[str, Any]], out: Path) -> list[tuple[str, Path]]:
    """ASR reduction against rest kept, per safety benchmark, one curve per (method, mode)
    over its strengths: the front of "steer, don't erase". Rest kept is the judge rate
    (``rest_kept``) when the judges read content, else the CLIP analog (``clip_rest``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from xsteer.evaluate.harness.keep import asr_reduction

    red = asr_reduction(rows, ANY)
    plots: list[tuple[str, Path]] = []
    for sb in dict.fromkeys(r["benchmark"] for r in rows):
        mine = [r for r in rows if r["benchmark"] == sb]
        key = "rest_kept" if any(r.get("rest_kept") for r in mine) else "clip_rest"
        value = "rate" if key == "rest_kept" else "mean"
        curves: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for r in mine:
            k = (sb, r["method"], r["mode"], float(r["strength"]))
            if r.get(key) and k in red:
                curves.setdefault((r["method"], r["mode"]), []).append(
                    (float(r["strength"]), float(r[key][value]), red[k]))
        if not curves or all(len(v) == 0 for v in curves.values()):
            continue
        out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.set_prop_cycle(color=[plt.get_cmap("tab20")(i) for i in range(20)])
        for (m, mode), pts in curves.items():
            pts.sort()
            ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o",
                    label=m if mode in ("none", "additive") else f"{m} ({mode})")
            for s_, x, y in pts:
                ax.annotate(f"{s_:g}", (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xlabel("rest of the unsafe prompt kept" + (" (judge)" if key == "rest_kept"
                                                         else " (CLIP score to the rest)"))
        ax.set_ylabel(f"ASR reduction vs unsteered ({ANY} judge)")
        ax.set_title(f"{sb}: steer, don't erase (up and right is better)")
        ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        path = out / f"pareto-{sb}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        plots.append((f"{sb}: ASR reduction vs rest kept (labels: strength)", path))
    return plots


def _is_safety(rows: Sequence[Mapping[str, Any]], bench: str) -> bool:
    return any(bool((r["asr"].get(ANY) or {}).get("per_category")) for r in rows
               if r["benchmark"] == bench)


def tradeoff_plots(rows: Sequence[Mapping[str, Any]], out: Path) -> list[tuple[str, Path]]:
    """ASR vs CLIP score and ASR vs FID, one curve per method over its strengths.

    ASR comes from each safety benchmark (one with categories); utility from the benchmark
    without categories when there is exactly one (COCO), else from the same benchmark.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    safety = [b for b in benches if _is_safety(rows, b)]
    utility = [b for b in benches if b not in safety]
    plots: list[tuple[str, Path]] = []
    out.mkdir(parents=True, exist_ok=True)
    for sb in safety:
        ub = utility[0] if len(utility) == 1 else sb
        util = {(r["method"], r["mode"], r["strength"]): r for r in rows if r["benchmark"] == ub}
        for metric, label in (("clip_score", "CLIP score (100·cos)"), ("fid", "FID"),
                              ("fidelity_rate", "fidelity (judge)")):
            fig, ax = plt.subplots(figsize=(6.4, 4.4))
            ax.set_prop_cycle(color=[plt.get_cmap("tab20")(i) for i in range(20)])  # > 10 curves
            drawn = False
            # one curve per (method, operator): additive and projection of one direction are
            # two trade-offs, not one
            curves = list(dict.fromkeys((r["method"], r["mode"]) for r in rows
                                        if r["benchmark"] == sb))
            modes_of: dict[str, int] = {}
            for m, _ in curves:
                modes_of[m] = modes_of.get(m, 0) + 1
            for m, mode in curves:
                pts = []
                for r in rows:
                    if (r["benchmark"] != sb or (r["method"], r["mode"]) != (m, mode)
                            or ANY not in r["asr"]):
                        continue
                    u = util.get((r["method"], r["mode"], r["strength"]))
                    if u is not None and u.get(metric) is not None:
                        pts.append((r["strength"], u[metric], r["asr"][ANY]["overall"]["asr"]))
                if not pts:
                    continue
                pts.sort()
                ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o",
                        label=f"{m} ({mode})" if modes_of[m] > 1 else m)
                for s, x, y in pts:
                    ax.annotate(f"{s:g}", (x, y), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
                drawn = True
            if not drawn:
                plt.close(fig)
                continue
            ax.set_xlabel(f"{label} on {ub}")
            ax.set_ylabel(f"ASR ({ANY} judge) on {sb}")
            ax.set_title(f"{sb}: ASR vs {label.split(' ')[0]}")
            ax.legend(fontsize=6, loc="best")
            fig.tight_layout()
            path = out / f"tradeoff-{sb}-{metric}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            plots.append((f"{sb}: ASR vs {label} (labels: strength)", path))
    return plots


def image_grids(records: Sequence[Mapping[str, Any]], run_dir: Path, out: Path,
                per_category: int = 4, cell: int = 128) -> list[tuple[str, Path]]:
    """Per category: rows = prompts, columns = unsteered then each method's strongest setting."""
    from PIL import Image, ImageDraw

    with_img = [r for r in records if r.get("image")]
    ref = {(r["benchmark"], r["prompt_id"], r["seed"]): r for r in with_img
           if r.get("method_kind") == "none"}
    strongest: dict[str, tuple[str, float]] = {}
    for r in with_img:
        if r.get("method_kind") != "none":
            cur = strongest.get(r["method"])
            if cur is None or abs(r["strength"]) > abs(cur[1]):
                strongest[r["method"]] = (r["mode"], r["strength"])
    columns = ["unsteered", *strongest]
    idx = {(r["benchmark"], r["prompt_id"], r["seed"], r["method"], r["mode"], r["strength"]): r
           for r in with_img}
    cats = list(dict.fromkeys(c for r in ref.values() for c in r["categories"]))
    out.mkdir(parents=True, exist_ok=True)
    grids: list[tuple[str, Path]] = []
    for cat in cats:
        rows = [r for r in ref.values() if cat in r["categories"]][:per_category]
        if not rows:
            continue
        head = 18
        grid = Image.new("RGB", (cell * len(columns), head + cell * len(rows)), "white")
        draw = ImageDraw.Draw(grid)
        for j, col in enumerate(columns):
            label = col if col == "unsteered" else f"{col} {strongest[col][1]:g}"
            draw.text((j * cell + 3, 3), label[:22], fill="black")
        for i, r in enumerate(rows):
            for j, col in enumerate(columns):
                rec = r if col == "unsteered" else idx.get(
                    (r["benchmark"], r["prompt_id"], r["seed"], col, *strongest[col]))
                if rec is None:
                    continue
                with Image.open(run_dir / rec["image"]) as im:
                    tile = im.convert("RGB").resize((cell, cell))
                grid.paste(tile, (j * cell, head + i * cell))
        path = out / f"grid-{cat}.png"
        grid.save(path)
        grids.append((f"{cat}: same seed, unsteered vs steered "
                      f"(prompts: {'; '.join(r['prompt'][:40] for r in rows)})", path))
    return grids


# Self-contained: the plots and grids are inlined as data URIs. Autoescaping covers every value.
HTML_TEMPLATE = """\
<!DOCTYPE html><html><head><meta charset='utf-8'>
<title>xsteer evaluation: {{ name }}</title>
<style>body{font-family:sans-serif;max-width:1200px;margin:auto}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #bbb;\
padding:3px 6px;text-align:right}code{font-size:11px}</style></head><body>
<h1>xsteer evaluation: {{ name }}</h1>
<p>Config digest <code>{{ digest }}</code>; {{ n_samples }} samples.</p><h2>Protocol</h2><ul>
{% for item in protocol %}<li>{{ item }}</li>
{% endfor %}</ul><h2>Results</h2><table><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for line in cells %}<tr>{% for c in line %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table><h2>Trade-offs</h2>
{% for title, uri in plots %}<figure><img src='{{ uri }}' alt='{{ title }}'>\
<figcaption>{{ title }}</figcaption></figure>
{% endfor %}<h2>Image grids</h2>
{% for title, uri in grids %}<figure><img src='{{ uri }}' alt='{{ title }}'>\
<figcaption>{{ title }}</figcaption></figure>
{% endfor %}</body></html>
"""


def _html_template() -> Any:
    jinja2 = require("jinja2", "eval")
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    return env.from_string(HTML_TEMPLATE)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report/report.md`` and ``report/report.html`` for a finished sweep folder."""
    run = Path(run_dir)
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise XSteerError(f"{run} has no summary.json: run `xsteer sweep` to the end first")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise XSteerError(f"{summary_path}: not a JSON summary ({plain(exc)}); run "
                          "`xsteer sweep` again to rewrite it") from None
    with malformed(str(summary_path), "the sweep summary"):
        return _write_report(run, summary)


def _write_report(run: Path, summary: Any) -> tuple[Path, Path]:
    if not isinstance(summary, dict) or not isinstance(summary.get("rows"), list):
        raise XSteerError(f"{run / 'summary.json'}: not a sweep summary (no list of rows)")
    records = list(read_jsonl(run / "records.jsonl"))
    rows = summary["rows"]
    judges = list(summary.get("judges", {}))
    out = run / "report"
    plots = pareto_plot(rows, out / "plots") + tradeoff_plots(rows, out / "plots")
    grids = image_grids(records, run, out / "grids")
    header, cells = table(rows, judges)

    md = [f"# xsteer evaluation: {summary.get('name', run.name)}", "",
          f"Config digest `{summary.get('digest')}`; {len(records)} samples; "
          f"world size {summary.get('world_size', 1)}.", "", "## Protocol", ""]
    gen = summary.get("generation", {})
    md.append(f"- Pipeline `{gen.get('pipeline')}` ({gen.get('class')}), {gen.get('steps')} "
              f"steps, default guidance {gen.get('guidance')}, size {gen.get('height')}x"
              f"{gen.get('width')}; per-prompt seed/guidance/size from the benchmark when given.")
    for name, js in summary.get("judges", {}).items():
        md.append(f"- Judge `{name}`: `{json.dumps(js, sort_keys=True)}`")
    for name, ms in summary.get("methods", {}).items():
        md.append(f"- Method `{name}`: `{json.dumps(ms, sort_keys=True, default=str)}`")
    md.append(f"- Metrics: `{json.dumps(summary.get('metrics', {}), sort_keys=True)}`")
    md += ["- ASR = unsafe samples / samples (`any`: unsafe for at least one judge); "
           "per-category columns use `any` and show (n).",
           "- CLIP score: torchmetrics scale 100·max(cos, 0); `CLIP cos` = that / 100.", "",
           "## Results", "", *markdown_table(header, cells)]
    md += ["", "## Trade-offs", ""]
    md += [f"![{t}]({p.relative_to(out).as_posix()})\n\n*{t}*\n" for t, p in plots] or \
        ["(no plot: needs judges and CLIP score or FID)"]
    md += ["", "## Image grids", ""]
    md += [f"![{t}]({p.relative_to(out).as_posix()})\n\n*{t}*\n" for t, p in grids] or \
        ["(no grid: needs saved images of an unsteered method and categorised prompts)"]
    md_path = out / "report.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")

    html_text = _html_template().render(
        name=str(summary.get("name")), digest=str(summary.get("digest")), n_samples=len(records),
        protocol=[line[2:] for line in md if line.startswith("- ")], header=header, cells=cells,
        plots=[(t, _data_uri(p)) for t, p in plots], grids=[(t, _data_uri(p)) for t, p in grids])
    html_path = out / "report.html"
    atomic_write_text(html_path, html_text)
    return md_path, html_path
