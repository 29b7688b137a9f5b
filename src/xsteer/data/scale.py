"""Benign anchors at scale: a deterministic, download-free build from packaged sources.

`build_benign_corpus` grows the shipped anchors (``benign.txt`` + ``benign_nearmiss.txt``) to tens
of thousands of benign texts from three sources that every install already has:

* ``recombined``: caption-like prompts, the subject of one shipped generic prompt joined to the
  setting of another (split at the first preposition: "a fox sitting" + "on a frozen lake");
* ``nearmiss-recombined``: the subject of a near-miss prompt (knives, hospitals, boxing) joined to
  the setting of a generic prompt, so the unsafe/safe axis stays covered at scale;
* ``stdlib-prose``: English sentences from the docstrings of the Python standard library (read with
  `ast`, never imported): instructions and technical prose, a real corpus unlike the captions.

Every text is screened (`UNSAFE_WORDS`), deduplicated, and dropped if it copies or nearly copies a
held-out prompt (the shipped held-out captions, the second held-out set and the lexica-style third). The result depends
only on ``n``, ``seed``, the shipped files and the Python version (recorded in the manifest with a
hash of the texts), so it is a build step, not a data file: nothing is downloaded, nothing shipped.

>>> c = build_benign_corpus(n=3000, seed=0, sources=("recombined",))
>>> len(c.texts), c.manifest["counts"]["shipped"] > 2000
(3000, True)
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import sys
import sysconfig
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from xsteer.data.heldout import load_heldout, load_heldout_lexica
from xsteer.data.loaders import dedupe, load_benign, norm_key
from xsteer.errors import XSteerError

BUILD_VERSION = 1
SOURCES = ("recombined", "nearmiss-recombined", "stdlib-prose")
# Words that only appear in clearly unsafe text; a text holding one is dropped from the build.
UNSAFE_WORDS = (
    "nude", "nudes", "naked", "nudity", "porn", "porno", "pornographic", "nsfw", "erotic", "sex",
    "sexual", "topless", "orgy", "genitals", "stripper", "hentai", "rape", "raped", "gore", "gory",
    "corpse", "corpses", "decapitated", "behead", "beheaded", "dismembered", "mutilated",
    "cannibal", "maggots", "suicide", "suicidal", "overdose", "self-harm", "noose", "cocaine",
    "heroin", "meth", "junkie", "swastika", "nazi", "kkk", "lynching", "torture", "massacre",
    "slaughter", "bloodbath", "stabbing", "strangling", "murder", "kill", "killing", "killed",
    "terrorist", "bomb", "gun", "slur", "racist", "hate", "abuse", "victim", "dead", "death",
)
_UNSAFE_RE = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, UNSAFE_WORDS)) + r")(?![\w-])")
_SPLIT_RE = re.compile(r"^(.{6,}?)\s+((?:in|on|at|by|near|under|inside|beside|behind|along|across|"
                       r"through|over|next to|outside) .{6,})$", re.IGNORECASE)
_STOP = frozenset("a an the of in on at with and is are to for by from its his her their".split())
NEAR = 0.6


@dataclass
class BenignCorpus:
    """The built texts (shipped anchors first), the source of each, and the build manifest."""

    texts: list[str]
    sources: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)


def is_screened_out(text: str) -> bool:
    """True when ``text`` holds a word of `UNSAFE_WORDS` (case-insensitive, whole words)."""
    return bool(_UNSAFE_RE.search(text.lower()))


def _content(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower())) - _STOP


class _NearIndex:
    """Finds texts that copy or nearly copy (content-word Jaccard ≥ `NEAR`) any indexed text."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.sets = [_content(t) for t in texts]
        self.exact = {" ".join(sorted(s)) for s in self.sets}
        self.post: dict[str, list[int]] = {}
        for i, s in enumerate(self.sets):
            for w in s:
                self.post.setdefault(w, []).append(i)

    def hit(self, text: str) -> bool:
        a = _content(text)
        if not a or " ".join(sorted(a)) in self.exact:
            return bool(a)
        overlap = Counter(i for w in a for i in self.post.get(w, ()))
        return any(k / (len(a) + len(self.sets[i]) - k) >= NEAR for i, k in overlap.items())


def _split(texts: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for t in texts:
        m = _SPLIT_RE.match(t.strip().rstrip("."))
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def _recombine(subjects: Sequence[tuple[str, str]], settings: Sequence[tuple[str, str]],
               rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    if not subjects or not settings:
        return out
    for _ in range(4 * n):
        if len(out) >= n:
            break
        (subj, _), (_, tail) = rng.choice(subjects), rng.choice(settings)
        out.append(f"{subj} {tail}")
    return out


@lru_cache(maxsize=1)
def stdlib_sentences() -> tuple[str, ...]:
    """English docstring sentences of the Python standard library (6-30 words, prose only)."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "site-packages", "idlelib", "lib2to3", "turtledemo"}
    out: list[str] = []
    for f in sorted(lib.rglob("*.py")):
        if skip & set(f.relative_to(lib).parts):
            continue
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node) or ""
            for para in re.split(r"\n\s*\n", doc):
                for s in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
                    if (6 <= len(s.split()) <= 30
                            and re.fullmatch(r"[A-Z][A-Za-z0-9 ,;:'()\-]*[.!?]", s)
                            and not re.search(r"\w_\w|\(\)", s)):
                        out.append(s)
    return tuple(dedupe(out))


def build_benign_corpus(n: int = 20000, seed: int = 0, sources: Sequence[str] = SOURCES,
                        generic: Sequence[str] | None = None,
                        nearmiss: Sequence[str] | None = None) -> BenignCorpus:
    """``n`` benign texts: the shipped anchors, then equal shares of each of ``sources``.

    ``generic`` / ``nearmiss`` replace the shipped generic and near-miss prompts as the material
    (an experiment passes only its fitting half of the near-miss set, so that its held-out half
    leaks nowhere). Raises `XSteerError` if the sources cannot fill ``n``.
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise XSteerError(f"unknown corpus sources {sorted(unknown)}; known: {', '.join(SOURCES)}")
    gen = list(generic) if generic is not None else load_benign(kind="generic")
    nm = list(nearmiss) if nearmiss is not None else load_benign(kind="nearmiss")
    shipped = dedupe(gen + nm)
    h, lex = load_heldout(), load_heldout_lexica()
    held = _NearIndex([*load_benign(kind="captions"), *h.captions, *h.nearmiss,
                       *h.unsafe_texts(), *h.safe_texts(), *(r.prompt for r in h.euphemistic),
                       *lex.unsafe_texts(), *lex.benign, *lex.nearmiss])
    seen = {norm_key(t) for t in shipped}
    texts, srcs = list(shipped), ["shipped"] * len(shipped)
    need = max(0, n - len(texts))
    rng = random.Random(seed)
    for i, src in enumerate(sources):
        quota = need // len(sources) + (1 if i < need % len(sources) else 0)
        if src == "recombined":
            pool = _recombine(_split(gen), _split(gen), rng, 3 * quota)
        elif src == "nearmiss-recombined":
            pool = _recombine(_split(nm), _split(gen), rng, 3 * quota)
        else:
            pool = list(stdlib_sentences())
            rng.shuffle(pool)
        got = 0
        for t in pool:
            if got >= quota:
                break
            key = norm_key(t)
            if key in seen or is_screened_out(t) or held.hit(t):
                continue
            seen.add(key)
            texts.append(t)
            srcs.append(src)
            got += 1
        if got < quota:
            raise XSteerError(f"source {src!r} gave {got} texts, {quota} needed for n={n}")
    texts, srcs = texts[:n], srcs[:n]
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    manifest = {"build_version": BUILD_VERSION, "n": len(texts), "seed": seed,
                "sources": list(sources), "counts": dict(Counter(srcs)),
                "python": ".".join(map(str, sys.version_info[:3])), "sha256": digest}
    return BenignCorpus(texts, srcs, manifest)
