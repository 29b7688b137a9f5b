"""Build the source-side probe corpus (``src/xsteer/data/probe_*.jsonl``) from hand-written parts.

Everything comes from ``experiments/probe_corpus_parts/``: hand-written prompts of every style
(``unsafe_<style>.txt`` with ``## <category>`` sections, ``benign_<style>.txt``), and hand-written
lexica.art subjects that this build dresses with artists, quality tags, prompt weights and
parameters drawn from ``lexica.txt`` (one shared pool for benign and unsafe subjects, so the
decoration carries no label). Hand-written lines are copied as they are; only the ``lexica*`` and
``nearmiss-lexica`` styles are dressed, with a fixed seed, so the build is deterministic.

Checks while building (the build refuses to write otherwise):
* no line copies or nearly copies (content-word Jaccard ≥ 0.6, the rule of
  ``tests/data/test_leaks.py``) any held-out prompt: a dressed line that does is redrawn, a
  hand-written one is reported (only our own line is printed) so that it can be rewritten;
* ``implicit`` and ``lexica-implicit`` prompts hold no blocklisted word (`xsteer.data.screen`);
* benign lines the keyword screen flags go to ``probe_benign_flagged.jsonl`` (source side only).

Run ``python -m experiments.build_probe_corpus`` (``--check`` compares instead of writing).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

from xsteer.categories import CATEGORIES
from xsteer.data import load_benign
from xsteer.data.heldout import load_heldout
from xsteer.data.loaders import norm_key
from xsteer.data.screen import flag_unsafe
from xsteer.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
PARTS = Path(__file__).resolve().parent / "probe_corpus_parts"
OUT = ROOT / "src" / "xsteer" / "data"
SEED = 0
NEAR = 0.6
# (style, parts file) of the hand-written prompts, in build order.
UNSAFE_HAND = (("short", "unsafe_short.txt"), ("euphemism", "unsafe_euphemism.txt"),
               ("slang", "unsafe_slang.txt"), ("metaphor", "unsafe_metaphor.txt"),
               ("clinical", "unsafe_clinical.txt"), ("misspelling", "unsafe_misspelling.txt"),
               ("foreign", "unsafe_foreign.txt"), ("implicit", "unsafe_implicit.txt"),
               ("lexica", "unsafe_lexica_hand.txt"),
               ("lexica-implicit", "unsafe_lexica_implicit_hand.txt"))
BENIGN_HAND = (("caption", "benign_caption.txt"), ("nearmiss", "benign_nearmiss.txt"),
               ("artwork", "benign_artwork.txt"), ("foreign", "benign_foreign.txt"),
               ("request", "benign_request.txt"), ("misspelling", "benign_misspelling.txt"),
               ("lexica", "benign_lexica_hand.txt"),
               ("nearmiss-lexica", "benign_nearmiss_lexica_hand.txt"))
# (style, parts file(s) of subjects, dressed lines per category / in all).
UNSAFE_DRESSED = (("lexica", "unsafe_lexica.txt", 52),
                  ("lexica-implicit", "unsafe_lexica_implicit.txt", 44))
BENIGN_DRESSED = (("lexica", ("benign_lexica.txt", "benign_artwork.txt"), 840),
                  ("nearmiss-lexica", ("benign_nearmiss_lexica.txt",), 340))
_STOP = frozenset("a an the of in on at with and is are to for by from its his her their "
                  "alt text stock photo image picture shows".split())


def _content(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower())) - _STOP


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


class NearIndex:
    """Is a text an exact or near copy (content-word Jaccard ≥ `NEAR`) of an indexed text?"""

    def __init__(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        self.exact = {_norm(t) for t in texts}
        self.sets = [_content(t) for t in texts]
        self.post: dict[str, list[int]] = {}
        for i, s in enumerate(self.sets):
            for w in s:
                self.post.setdefault(w, []).append(i)

    def hit(self, text: str) -> bool:
        if _norm(text) in self.exact:
            return True
        a = _content(text)
        counts: dict[int, int] = {}
        for w in a:
            for i in self.post.get(w, ()):
                counts[i] = counts.get(i, 0) + 1
        return any(k / (len(a) + len(self.sets[i]) - k) >= NEAR for i, k in counts.items())


def heldout_texts() -> list[str]:
    """Every held-out prompt the leak test guards: the second set, the shipped held-out captions
    and the proving-ground sets written outside (``experiments/data/pg_written_apart*.jsonl``)."""
    h = load_heldout()
    texts = [*h.unsafe_texts(), *h.safe_texts(), *h.captions, *h.nearmiss,
             *(r.prompt for r in h.euphemistic), *load_benign(kind="captions")]
    for f in sorted((ROOT / "experiments" / "data").glob("pg_written_apart*.jsonl")):
        texts += [json.loads(line)["prompt"] for line in f.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    return texts


def read_lines(path: Path) -> list[str]:
    return [s for line in path.read_text(encoding="utf-8").splitlines()
            if (s := line.strip()) and not s.startswith("#")]


def read_sections(path: Path) -> dict[str, list[str]]:
    """``## name`` sections of a parts file → their lines (``#`` comments skipped)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s.startswith("## "):
            current = out.setdefault(s[3:].strip(), [])
        elif s and not s.startswith("#"):
            if current is None:
                raise SystemExit(f"{path}: line before the first '## ' section: {s!r}")
            current.append(s)
    return out


def dress(core: str, rng: random.Random, pools: dict[str, list[str]],
          weights: Sequence[str] = ()) -> str:
    """One lexica.art-style prompt around ``core``: artists, style and quality tags, sometimes
    weights (``weights`` first, else the neutral ones) and a parameter such as ``--ar 16:9``."""
    if rng.random() < 0.15:
        core = f"(({core}))" if rng.random() < 0.5 else f"[{core}]"
    parts = [core]
    if rng.random() < 0.5:
        parts.append(rng.choice(pools["styles"]))
    if rng.random() < 0.85:
        names = rng.sample(pools["artists"], rng.choice((1, 1, 2, 3)))
        names[1:] = [a.removeprefix("art ").removeprefix("by ") for a in names[1:]]
        parts.insert(rng.choice((1, len(parts))), " and ".join(names))
    parts += rng.sample(pools["quality"], rng.randint(2, 6))
    if weights and rng.random() < 0.7:
        parts.insert(rng.choice((0, 1, len(parts))), rng.choice(weights))
    if rng.random() < 0.35:
        parts.insert(rng.choice((0, len(parts))), rng.choice(pools["weights_neutral"]))
    text = ", ".join(parts)
    if rng.random() < 0.25:
        text += " " + rng.choice(pools["params"])
    return text


def _fill(cores: Sequence[str], n: int, rng: random.Random, make: Callable[[str], str],
          ok: Callable[[str], bool]) -> list[str]:
    """``n`` distinct dressed prompts, cycling over the (shuffled) cores."""
    order = list(cores)
    rng.shuffle(order)
    out: list[str] = []
    for attempt in range(50 * n):
        if len(out) >= n:
            break
        text = make(order[attempt % len(order)])
        if ok(text):
            out.append(text)
    if len(out) < n:
        raise SystemExit(f"could only dress {len(out)} of {n} prompts")
    return out


def build() -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """(unsafe rows, benign rows, keyword-flagged benign rows), deterministic."""
    held = NearIndex(heldout_texts())
    pools = read_sections(PARTS / "lexica.txt")
    rng = random.Random(SEED)
    seen: set[str] = set()
    leaks: list[str] = []

    def fresh(text: str) -> bool:
        key = norm_key(text)
        if key in seen or held.hit(text):
            return False
        seen.add(key)
        return True

    def take(text: str, where: str) -> bool:
        if held.hit(text):
            leaks.append(f"{where}: {text}")
            return False
        key = norm_key(text)
        if key in seen:
            raise SystemExit(f"{where}: repeated line {text!r}")
        seen.add(key)
        return True

    unsafe: list[dict[str, str]] = []
    for style, fname in UNSAFE_HAND:
        sections = read_sections(PARTS / fname)
        for cat in CATEGORIES:
            for text in sections.get(cat, []):
                if take(text, f"{fname} [{cat}]"):
                    unsafe.append({"category": cat, "style": style, "prompt": text,
                                   "origin": "hand"})
    for style, fname, n in UNSAFE_DRESSED:
        sections = read_sections(PARTS / fname)
        for cat in CATEGORIES:
            w = pools[f"weights_{cat}"] if style == "lexica" else ()
            for text in _fill(sections[cat], n, rng,
                              partial(dress, rng=rng, pools=pools, weights=w), fresh):
                unsafe.append({"category": cat, "style": style, "prompt": text,
                               "origin": "dressed"})
    benign: list[dict[str, str]] = []
    for style, fname in BENIGN_HAND:
        for text in read_lines(PARTS / fname):
            if take(text, fname):
                benign.append({"style": style, "prompt": text, "origin": "hand"})
    for style, fnames, n in BENIGN_DRESSED:
        cores = [t for f in fnames for t in read_lines(PARTS / f)]
        for text in _fill(cores, n, rng, partial(dress, rng=rng, pools=pools), fresh):
            benign.append({"style": style, "prompt": text, "origin": "dressed"})
    if leaks:
        raise SystemExit("hand-written lines copy a held-out prompt; rewrite them:\n"
                         + "\n".join(leaks))
    loud = [r["prompt"] for r in unsafe if r["style"].endswith("implicit")
            and flag_unsafe([r["prompt"]])]
    if loud:
        raise SystemExit(f"implicit prompts must hold no blocklisted word: {loud[:10]}")
    flagged_idx = {f.index for f in flag_unsafe([r["prompt"] for r in benign])}
    clean = [r for i, r in enumerate(benign) if i not in flagged_idx]
    flagged = [r for i, r in enumerate(benign) if i in flagged_idx]
    return unsafe, clean, flagged


def _jsonl(rows: Sequence[dict[str, str]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


FILES = ("probe_unsafe.jsonl", "probe_benign.jsonl", "probe_benign_flagged.jsonl")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped files")
    args = ap.parse_args(argv)
    texts = dict(zip(FILES, map(_jsonl, build()), strict=True))
    if args.check:
        stale = [f for f, t in texts.items() if (OUT / f).read_text(encoding="utf-8") != t]
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for f, t in texts.items():
        atomic_write_text(OUT / f, t)
        print(f"wrote {OUT / f} ({t.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
