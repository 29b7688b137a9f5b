"""The held-out sets written apart from the training data: evaluation only, never fitted on.

Files are named by set: ``heldout1_*`` the first (captions written with the training data,
``load_benign(kind="captions")``), ``heldout2_*`` the second, ``heldout3_lexica_*`` the third.

The second set (`load_heldout`): four shipped files (``heldout2_*``, see ``README.md`` in this
folder for how they were written):
safe/unsafe pairs (same format as ``pairs.jsonl``), captions and near-miss benign prompts (for
false triggers), and euphemistic or indirect unsafe rewrites (recall under obfuscation). Nothing
in the library fits, calibrates or tunes on them; ``tests/data/test_leaks.py`` checks that no
training file overlaps them.

>>> h = load_heldout()
>>> len(h.pairs) >= 140 and len(h.captions) >= 200 and len(h.euphemistic) >= 200
True
>>> sorted({e.technique for e in h.euphemistic})[:3]
['artistic', 'clinical', 'euphemism']

The third set (`load_heldout_lexica`): prompts in the lexica.art / I2P style (long, comma-separated,
artists, quality tags, prompt weights such as ``(masterpiece:1.2)``): unsafe prompts tagged with
their category and whether the harm is only implied (an artist, a famous scene, a situation),
benign prompts in the same style, and near-miss benign prompts (false triggers).

>>> lex = load_heldout_lexica()
>>> len(lex.unsafe) >= 210 and len(lex.benign) >= 300 and len(lex.nearmiss) >= 150
True
>>> len(lex.unsafe_texts("hate", implicit=True))
15
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
from xsteer.errors import UnknownCategoryError

HELDOUT_FILES = {"pairs": "heldout2_pairs.jsonl", "captions": "heldout2_captions.txt",
                 "nearmiss": "heldout2_nearmiss.txt", "euphemistic": "heldout2_euphemistic.jsonl"}
LEXICA_FILES = {"unsafe": "heldout3_lexica_unsafe.jsonl", "benign": "heldout3_lexica_benign.txt",
                "nearmiss": "heldout3_lexica_nearmiss.txt"}
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


@dataclass(frozen=True)
class LexicaPrompt:
    """One unsafe lexica-style prompt; ``implicit`` when it implies the harm without naming it."""

    category: str
    implicit: bool
    prompt: str


@dataclass(frozen=True)
class LexicaSet:
    """The third held-out set (lexica.art / I2P style), as loaded from the package."""

    unsafe: list[LexicaPrompt]
    benign: list[str]
    nearmiss: list[str]

    def unsafe_texts(self, category: str | None = None,
                     implicit: bool | None = None) -> list[str]:
        """Unsafe prompts, optionally of one category (aliases accepted) and one kind."""
        cat = None if category is None else normalize_category(category, allow_global=False)
        return [u.prompt for u in self.unsafe
                if (cat is None or u.category == cat) and (implicit is None or u.implicit == implicit)]


def _parse_lexica(name: str, text: str) -> list[LexicaPrompt]:
    """JSONL lines ``{"category", "implicit", "prompt"}``; errors name the file and line."""
    out: list[LexicaPrompt] = []
    for where, obj in _json_objects(name, text):
        for key in ("category", "implicit", "prompt"):
            if key not in obj:
                raise DataFormatError(f"{where}: missing key {key!r}")
        cat, implicit, prompt = obj["category"], obj["implicit"], obj["prompt"]
        if not isinstance(implicit, bool):
            raise DataFormatError(f"{where}: 'implicit' must be true or false, got {implicit!r}")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFormatError(f"{where}: 'prompt' must be a non-empty string")
        if not isinstance(cat, str):
            raise DataFormatError(f"{where}: 'category' must be a string, got {cat!r}")
        try:
            category = normalize_category(cat, allow_global=False)
        except UnknownCategoryError as exc:
            raise UnknownCategoryError(f"{where}: {exc}") from exc
        out.append(LexicaPrompt(category, implicit, prompt.strip()))
    return out


def load_heldout_lexica() -> LexicaSet:
    """The shipped third held-out set: unsafe (category, implicit, prompt), benign and near-miss."""
    return LexicaSet(unsafe=_parse_lexica(*_shipped(LEXICA_FILES["unsafe"])),
                     benign=dedupe(_parse_txt(_shipped(LEXICA_FILES["benign"])[1])),
                     nearmiss=dedupe(_parse_txt(_shipped(LEXICA_FILES["nearmiss"])[1])))
