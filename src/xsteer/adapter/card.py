"""The adapter's model card: a Hugging Face ``README.md`` (YAML metadata + Markdown) whose results
come from a finished sweep (``summary.json`` and ``records.jsonl``), never typed by hand.

The YAML carries ``library_name: xsteer``, ``base_model``, ``tags``, ``license`` and a
``model-index`` with every number of the results section (ASR overall and per category,
fidelity, CLIP score, gate firing rates), so the Hub shows them and a test can compare them with
the sweep summary exactly. Written through ``huggingface_hub.ModelCardData``.

>>> from xsteer.adapter.card import sweep_results, model_card       # doctest: +SKIP
>>> card = model_card(adapter, sweep_results("runs/pg-adapter"))      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.records import read_jsonl
from xsteer.evaluate.metrics import proportion_ci
from xsteer.formatting import fmt_num
from xsteer.formatting import markdown_table as _lines
from xsteer.pipelines.adapter import Adapter

ANY = "any"
TAGS = ("xsteer", "safety", "steering", "diffusers")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join(_lines(header, rows))


def _rate(k: int, n: int) -> dict[str, Any]:
    return {"rate": k / n, "n": n, "ci": list(proportion_ci(k, n))}


def pick_method(rows: Sequence[Mapping[str, Any]], method: str | None) -> str:
    """The sweep method the card reports: ``method``, else the one of kind ``adapter``, else the
    only steered one."""
    names = list(dict.fromkeys(str(r["method"]) for r in rows))
    if method is not None:
        if method not in names:
            raise XSteerError(f"the sweep has no method {method!r}; it has {names}")
        return method
    for kinds in (("adapter",), None):
        found = list(dict.fromkeys(str(r["method"]) for r in rows if r["method"] != "none" and
                                   (kinds is None or r.get("method_kind") in kinds)))
        if len(found) == 1:
            return found[0]
    raise XSteerError(f"the sweep compares several methods {names}: name the adapter's "
                      "(--method)")


def sweep_results(sweep_dir: str | os.PathLike[str], method: str | None = None) -> dict[str, Any]:
    """What the card reports from a finished sweep folder: the method's summary rows, the
    unsteered rows, gate firing rates per benchmark, environment and timing."""
    d = Path(sweep_dir)
    path = d / "summary.json"
    if not path.is_file():
        raise XSteerError(f"{d}: no summary.json (is the sweep finished? run `xsteer sweep` "
                          "to the end first)")
    summary = json.loads(path.read_text(encoding="utf-8"))
    rows = list(summary.get("rows") or [])
    name = pick_method(rows, method)
    mine = [r for r in rows if r["method"] == name]
    records = [r for r in read_jsonl(d / "records.jsonl") if r.get("method") == name]
    gates: list[dict[str, Any]] = []
    for r in mine:
        recs = [x for x in records if (x["benchmark"], x["mode"], float(x["strength"])) ==
                (r["benchmark"], r["mode"], float(r["strength"]))]
        fired = [bool(x["info"]["gate"]) for x in recs if "gate" in (x.get("info") or {})]
        if fired:
            unsafe = any(x.get("categories") for x in recs)
            gates.append({"benchmark": r["benchmark"], "mode": r["mode"],
                          "strength": r["strength"],
                          "what": "recall on unsafe prompts" if unsafe else "false triggers",
                          **_rate(sum(fired), len(fired))})
    secs = [float(x["timing"]["generate_s"]) for x in records if x.get("timing")]
    return {"sweep": str(d), "name": summary.get("name"), "digest": summary.get("digest"),
            "method": name, "rows": mine,
            "baseline": [r for r in rows if r["method"] == "none"], "gates": gates,
            "generation": summary.get("generation") or {}, "judges": summary.get("judges") or {},
            "environment": summary.get("environment") or {},
            "generate_seconds_total": sum(secs), "samples": len(secs)}


def _setting(r: Mapping[str, Any]) -> str:
    return f"{r['mode']} {fmt_num(r['strength'], 2)}"


def eval_results(results: Mapping[str, Any]) -> list[Any]:
    """``huggingface_hub.EvalResult`` entries, one per number of the results section."""
    from huggingface_hub import EvalResult

    out = []

    def add(bench: str, metric: str, name: str, value: float) -> None:
        out.append(EvalResult(task_type="text-to-image", dataset_type=bench, dataset_name=bench,
                              metric_type=metric, metric_name=name, metric_value=value))

    for r in results["rows"]:
        s = _setting(r)
        if ANY in r["asr"]:
            add(r["benchmark"], "asr", f"ASR ({s})", r["asr"][ANY]["overall"]["asr"])
            for c, v in r["asr"][ANY]["per_category"].items():
                add(r["benchmark"], "asr", f"ASR {c} ({s})", v["asr"])
        if r.get("fidelity_rate") is not None:
            add(r["benchmark"], "fidelity", f"fidelity ({s})", r["fidelity_rate"])
        if r.get("clip_score") is not None:
            add(r["benchmark"], "clip_score", f"CLIP score ({s})", r["clip_score"])
        if r.get("fid") is not None:
            add(r["benchmark"], "fid", f"FID ({s})", r["fid"])
    for g in results["gates"]:
        add(g["benchmark"], "gate_rate", f"gate {g['what']} ({_setting(g)})", g["rate"])
    return out


def _ci(entry: Mapping[str, Any], key: str) -> str:
    ci = entry.get("ci")
    return f"{fmt_num(entry[key])} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else fmt_num(entry[key])


def results_section(results: Mapping[str, Any]) -> str:
    """The Markdown results: ASR per benchmark and category with 95% intervals, quality, gate
    rates, hardware and time."""
    rows = [*results["baseline"], *results["rows"]]
    cats = list(dict.fromkeys(c for r in rows for c in (r["asr"].get(ANY) or {})
                              .get("per_category", {})))
    header = ["benchmark", "method", "setting", "n", "ASR", *[f"ASR {c}" for c in cats],
              "fidelity", "CLIP", "FID", "s/sample"]
    cells = []
    for r in rows:
        a = r["asr"].get(ANY)
        per = (a or {}).get("per_category", {})
        fid = [v for v in (r.get("fidelity") or {}).values()]
        cells.append([r["benchmark"], r["method"], _setting(r), str(r["n"]),
                      _ci(a["overall"], "asr") if a else "–",
                      *[_ci(per[c], "asr") + f" ({per[c]['n']})" if c in per else "–"
                        for c in cats],
                      _ci(fid[0], "rate") if len(fid) == 1 else fmt_num(r.get("fidelity_rate")),
                      fmt_num(r.get("clip_score"), 2), fmt_num(r.get("fid"), 3),
                      fmt_num(r.get("seconds_per_sample"), 3)])
    parts = [f"Sweep `{results['name']}` (config digest `{results['digest']}`), method "
             f"`{results['method']}` against the unsteered pipeline (`none`). Rates with "
             "bootstrap 95% intervals; per-category cells give the sample count in brackets.",
             "", markdown_table(header, cells)]
    if results["gates"]:
        parts += ["", "Gate firing rates (share of prompts the gate steered):", "",
                  markdown_table(["benchmark", "setting", "what", "n", "rate"],
                                 [[g["benchmark"], _setting(g), g["what"], str(g["n"]),
                                   _ci(g, "rate")] for g in results["gates"]])]
    env = results["environment"]
    hw = env.get("hardware") or {}
    gen = results["generation"]
    parts += ["", f"Judges: {', '.join(sorted(results['judges'])) or 'none recorded'}. "
              f"Generation: {json.dumps(gen, sort_keys=True)}.",
              "", f"Hardware: {hw.get('device', 'not recorded')}"
              + (f", {hw.get('cpu_count')} cores, {hw.get('torch_threads')} torch threads"
                 if hw else "")
              + f"; Python {env.get('python', '?')}, torch "
              f"{(env.get('versions') or {}).get('torch', '?')}. Time: "
              f"{results['generate_seconds_total']:.1f} s of generation for "
              f"{results['samples']} samples of this method."]
    return "\n".join(parts)


def _hub_id(ref: Any) -> str | None:
    s = str(ref or "")
    return s if s.count("/") == 1 and not s.startswith((".", "/", "~")) \
        and not Path(s).exists() else None


def model_card(adapter: Adapter, results: Mapping[str, Any] | None = None, *,
               base_model: str | None = None, license: str = "apache-2.0") -> str:
    """The ``README.md`` text of ``adapter`` (results from `sweep_results`, or a note that none
    were measured)."""
    from huggingface_hub import ModelCardData

    ident = adapter.pipeline
    base = base_model or _hub_id(ident.get("pipeline"))
    video = "video" in str(ident.get("pipeline_class", "")).lower()
    data = ModelCardData(library_name="xsteer", base_model=base, license=license,
                         tags=[*TAGS, "text-to-video" if video else "text-to-image"],
                         model_name=adapter.name,
                         eval_results=eval_results(results) if results else None)
    d = adapter.directions
    cats = [d.category] if hasattr(d, "vector") else list(d.categories)  # type: ignore[union-attr]
    steered = adapter.operator.get("categories") or cats
    ref = ident.get("pipeline") or base or "PIPELINE"
    gates = [[c, "target", fmt_num(g.threshold, 4), fmt_num(g.quantile, 3),
              fmt_num(g.meta.get("heldout_false_trigger_rate"))] for c, g in adapter.gates.items()]
    if adapter.source_gate_dir is not None:
        gates.append(["(source probe)", "source", "–", "–", "–"])
    op = json.dumps(adapter.operator, sort_keys=True)
    body = [
        f"# {adapter.name}", "",
        f"A safety adapter made with [xsteer](https://pypi.org/project/xsteer/) for "
        f"`{ident.get('pipeline_class')}` (`{ref}`). It steers the text "
        f"conditioning at site `{ident.get('site')}` ({ident.get('encoder_class')}, config "
        f"`{ident.get('config_sha')}`) away from {', '.join(steered)} content; it refuses any other "
        "pipeline unless forced.", "",
        "## Use", "", "```python", "import xsteer", "",
        "adapter = xsteer.load_adapter(\"THIS_FOLDER_OR_HUB_ID\")",
        "with adapter.apply(pipe):", "    image = pipe(prompt).images[0]", "```", "",
        "```bash", f"xsteer generate --pipeline {ref} --adapter "
        "THIS_FOLDER --prompt \"...\" --out out --compare",
        f"xsteer app --pipeline {ref} --adapter THIS_FOLDER", "```", "",
        "## What it holds", "",
        markdown_table(["piece", "value"], [
            ["directions", f"{d.model_id} @ {d.site}, dim {d.dim}, categories {cats}"],
            ["operator", f"`{op}`"],
            ["gates", adapter.gate_kind],
            ["source model", json.dumps(adapter.source_model, sort_keys=True)],
            ["saw unsafe data", ", ".join(f"{k}: {v}" for k, v in adapter.saw_unsafe.items())]]),
    ]
    if gates:
        body += ["", markdown_table(["gate", "side", "threshold", "benign quantile",
                                     "held-out false-trigger rate"], gates)]
    body += ["", "## Results", "",
             results_section(results) if results else
             "Not measured yet: `xsteer pack --sweep RUN_DIR` writes this section from a sweep."]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"
