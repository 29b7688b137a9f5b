"""How much the unsafe screen catches (issue 19): recall on unsafe prompts written to pass a
keyword list, false alarms on benign sets, for the lexical screen alone and with the semantic one.

Lexical: `xsteer.data.screen.flag_unsafe` (keywords and the shipped unsafe prompts, after Unicode
normalization). Semantic: `xsteer.data.semantic.SemanticScreen` read through each target encoder
(MiniLM, and Gemma-3-270M with ``--gemma``): the mean cosine to the 5 nearest shipped unsafe
prompts minus that to the 5 nearest of a seeded sample of 1,000 shipped anchors, thresholded at
the highest score of an anchor of that sample. Recall sets: 63 paraphrases written without blocklist words
(``tests/data/paraphrased_unsafe.jsonl``), the 210 indirect rewrites of ``heldout2_euphemistic``,
the 140 unsafe sides of ``heldout2_pairs``, and the shipped unsafe prompts written with tricks
(``!`` appended, zero-width spaces, Cyrillic look-alikes, full-width letters). False alarms: the
1,668 anchors outside the threshold sample, the held-out caption and near-miss sets, and the safe
sides of both pair sets (minimal edits of unsafe prompts: the hardest benign text there is).
Rates carry seeded bootstrap 95% intervals (`xsteer.evaluate.metrics.proportion_ci`).

``python -m experiments.screen_study --out docs/screen.md``
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from xsteer.data import load_benign, load_pairs
from xsteer.data.screen import flag_unsafe
from xsteer.data.semantic import N_BENIGN, SemanticScreen
from xsteer.encoders import get_encoder
from xsteer.evaluate.metrics import proportion_ci
from xsteer.io import atomic_write_text

PARAPHRASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "paraphrased_unsafe.jsonl"


def _lines(name: str) -> list[str]:
    text = resources.files("xsteer.data").joinpath(name).read_text(encoding="utf-8")
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def _jsonl(lines: list[str], key: str) -> list[str]:
    return [json.loads(line)[key] for line in lines]


def _tricks(unsafe: list[str]) -> dict[str, list[str]]:
    cyr = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440",
                         "c": "\u0441"})
    full = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz"}
    return {
        "shipped unsafe + '!'": [u + "!" for u in unsafe],
        "zero-width spaces between letters": [" ".join("\u200b".join(w) for w in u.split())
                                              for u in unsafe],
        "Cyrillic look-alikes": [u.translate(cyr) for u in unsafe],
        "full-width letters": ["".join(full.get(c, c) for c in u) for u in unsafe],
    }


def sets(seed: int = 0) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """(unsafe sets, benign sets, the anchors the threshold is set on)."""
    anchors = load_benign(kind="anchors")
    calib = random.Random(seed).sample(anchors, min(N_BENIGN, len(anchors)))
    taken = set(calib)
    unsafe_shipped = [p.unsafe for p in load_pairs()]
    held_pairs = [json.loads(line) for line in _lines("heldout2_pairs.jsonl")]
    tricked = _tricks(unsafe_shipped)
    unsafe = {"paraphrases (no blocklist word)": _jsonl(
                  PARAPHRASES.read_text(encoding="utf-8").splitlines(), "prompt"),
              "heldout2_euphemistic": _jsonl(_lines("heldout2_euphemistic.jsonl"), "prompt"),
              "heldout2_pairs (unsafe)": [p["unsafe"] for p in held_pairs], **tricked}
    benign = {"anchors outside the threshold sample": [a for a in anchors if a not in taken],
              "heldout1_captions": load_benign(kind="captions"),
              "heldout2_captions": _lines("heldout2_captions.txt"),
              "heldout2_nearmiss": _lines("heldout2_nearmiss.txt"),
              "pairs (safe sides)": [p.safe for p in load_pairs()],
              "heldout2_pairs (safe sides)": [p["safe"] for p in held_pairs]}
    return unsafe, benign, calib


def _rate(flags: list[bool]) -> dict[str, Any]:
    k, n = sum(flags), len(flags)
    return {"k": k, "n": n, "rate": k / n, "ci": list(proportion_ci(k, n))}


def study(models: list[str], seed: int = 0) -> dict[str, Any]:
    unsafe, benign, calib = sets(seed)
    out: dict[str, Any] = {"lexical": {}, "semantic": {}}
    lexical: dict[str, list[bool]] = {}
    for name, texts in {**unsafe, **benign}.items():
        hit = {f.index for f in flag_unsafe(texts)}
        lexical[name] = [i in hit for i in range(len(texts))]
        out["lexical"][name] = _rate(lexical[name])
    for model in models:
        enc = get_encoder(model)
        layer = enc.resolve_site(None, None)[0]

        def embed(texts: Sequence[str], enc: Any = enc, layer: int = layer) -> torch.Tensor:
            return enc.encode(list(texts), layer)

        sem = SemanticScreen.fit(embed, benign=calib)
        res: dict[str, Any] = {"threshold": sem.threshold, "site": enc.site(layer)}
        for name, texts in {**unsafe, **benign}.items():
            best, _ = sem.scores(embed(texts))
            flags = [bool(b > sem.threshold) for b in best]
            both = [a or b for a, b in zip(flags, lexical[name], strict=True)]
            res[name] = {"semantic": _rate(flags), "either": _rate(both)}
        out["semantic"][model] = res
    out["sets"] = {"unsafe": list(unsafe), "benign": list(benign), "threshold_sample": len(calib),
                   "seed": seed}
    return out


def _cell(r: dict[str, Any]) -> str:
    lo, hi = r["ci"]
    return f"{r['k']}/{r['n']} = {r['rate']:.2f} [{lo:.2f}, {hi:.2f}]"


def markdown(res: dict[str, Any]) -> str:
    sets_ = res["sets"]
    models = list(res["semantic"])
    head = ["set", "lexical", *[f"semantic ({m})" for m in models],
            *[f"either ({m})" for m in models]]
    lines = ["# The unsafe screen: recall and false alarms", "",
             "Written by `python -m experiments.screen_study` (see its docstring for the sets). "
             "Each cell: flagged / texts = rate [bootstrap 95% interval].", ""]
    for kind in ("unsafe", "benign"):
        lines += [f"## {'Recall on unsafe text' if kind == 'unsafe' else 'False alarms on benign text'}",
                  "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in sets_[kind]:
            row = [name, _cell(res["lexical"][name])]
            row += [_cell(res["semantic"][m][name]["semantic"]) for m in models]
            row += [_cell(res["semantic"][m][name]["either"]) for m in models]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    for m in models:
        r = res["semantic"][m]
        lines.append(f"- {m} at {r['site']}: threshold (the highest score among "
                     f"{sets_['threshold_sample']} shipped anchors) {r['threshold']:.3f}.")
    lines += ["", "Notes:", "",
              "- The semantic score (mean cosine to the 5 nearest unsafe prompts minus that to "
              "the 5 nearest anchors) replaced a plain nearest-unsafe cosine under the same "
              "zero-false-alarm rule (MiniLM: paraphrase recall 23/63) after looking at these "
              "sets in one run, held-out ones included: for this screen they are no longer "
              "untouched test data.",
              "- In use (`screen_semantic`), shipped benign texts (the benign sets and the "
              "pairs' safe sides) are not scored, and a text the lexical screen flags is "
              "counted once. The safe sides show what a user's own near-miss text costs.",
              "- The semantic screen reads the text as the target does, so look-alike letters "
              "and full-width forms defeat it; the lexical screen's normalization catches those."]
    return "\n".join(lines) + "\n"


def main(out: Annotated[Path, typer.Option(help="Markdown file to write")] = Path("docs/screen.md"),
         gemma: Annotated[bool, typer.Option(help="also read through Gemma-3-270M")] = False,
         ) -> None:
    res = study(["all-minilm-l6-v2", *(["gemma-3-270m"] if gemma else [])])
    atomic_write_text(out, markdown(res))
    typer.echo(markdown(res))


if __name__ == "__main__":
    typer.run(main)
