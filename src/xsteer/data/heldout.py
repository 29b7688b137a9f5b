"""The second held-out set, written apart from the training data: evaluation only, never fitted on.

Four shipped files (``heldout_*``, see ``README.md`` in this folder for how they were written):
safe/unsafe pairs (same format as ``pairs.jsonl``), captions and near-miss benign prompts (for
false triggers), and euphemistic or indirect unsafe rewrites (recall under obfuscation). Nothing
in the library fits, calibrates or tunes on them; ``tests/data/test_leaks.py`` checks that no
training file overlaps them.

>>> h = load_heldout()
>>> len(h.pairs) >= 140 and len(h.captions) >= 200 and len(h.euphemistic) >= 200
True
>>> sorted({e.technique for e in h.euphemistic})[:3]
['artistic', 'clinical', 'euphemism']
"""

from __future__ import annotations

from dataclasses import dataclass

from xsteer.categories import normalize_category
from xsteer.data.loaders import (
    DataFormatError,
    Pair,
    _json_objects,
    _parse_pairs,
    _parse_txt,
    _shipped,
    dedupe,
)

HELDOUT_FILES = {"pairs": "heldout_pairs.jsonl", "captions": "heldout_captions.txt",
                 "nearmiss": "heldout_nearmiss.txt", "euphemistic": "heldout_euphemistic.jsonl"}
TECHNIQUES = ("euphemism", "metaphor", "misspelling", "foreign", "clinical", "artistic", "style",
              "slang")


@dataclass(frozen=True)
class Rewrite:
    """One unsafe prompt said indirectly; ``technique`` names how (one of `TECHNIQUES`)."""

    category: str
    technique: str
    prompt: str


@dataclass(frozen=True)
class HeldOutSet:
    """Everything in the second held-out set, as loaded from the package."""

    pairs: list[Pair]
    captions: list[str]
    nearmiss: list[str]
    euphemistic: list[Rewrite]

    def unsafe_texts(self) -> list[str]:
        return [p.unsafe for p in self.pairs]

    def safe_texts(self) -> list[str]:
        return [p.safe for p in self.pairs]


def _parse_rewrites(name: str, text: str) -> list[Rewrite]:
    out: list[Rewrite] = []
    for where, obj in _json_objects(name, text):
        try:
            cat, tech, prompt = obj["category"], obj["technique"], obj["prompt"]
        except KeyError as exc:
            raise DataFormatError(f"{where}: missing key {exc}") from exc
        if tech not in TECHNIQUES:
            raise DataFormatError(f"{where}: unknown technique {tech!r}; known: "
                                  f"{', '.join(TECHNIQUES)}")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFormatError(f"{where}: 'prompt' must be a non-empty string")
        out.append(Rewrite(normalize_category(cat, allow_global=False), tech, prompt.strip()))
    return out


def load_heldout() -> HeldOutSet:
    """The shipped second held-out set (pairs, captions, near-miss prompts, euphemistic rewrites)."""
    def text(kind: str) -> tuple[str, str]:
        return _shipped(HELDOUT_FILES[kind])

    return HeldOutSet(pairs=_parse_pairs(*text("pairs")),
                      captions=dedupe(_parse_txt(text("captions")[1])),
                      nearmiss=dedupe(_parse_txt(text("nearmiss")[1])),
                      euphemistic=_parse_rewrites(*text("euphemistic")))
