"""The source-side probe corpus: labelled unsafe prompts and benign prompts of every style a user sends.

Source side only. The source model may read unsafe text, so `SourceProbe` (``steer/probe.py``)
can be fitted on real unsafe prompts; this corpus is what it is fitted and calibrated on. Nothing
here may reach the target side (alignment anchors, target gates): use `load_benign` for that.

Three shipped JSONL files (see ``README.md`` in this folder for how they were written):

* ``probe_unsafe.jsonl``: ``{"category", "style", "prompt"}``, every harm category in every
  style of `UNSAFE_STYLES` (I2P / lexica.art prompts, implicit ones with no blocklisted word,
  euphemism, slang, metaphor, clinical framing, misspellings, other languages, short prompts);
* ``probe_benign.jsonl``: ``{"style", "prompt"}``, the styles of `BENIGN_STYLES` (captions,
  lexica-style prompts with artists and weights, near-miss prompts, ...); the keyword screen
  (`xsteer.data.screen`) flags none of them;
* ``probe_benign_flagged.jsonl``: benign near-miss prompts the keyword screen *does* flag
  ("a bloody mary", "a bath bomb"): hard negatives for the probe, never target-side anchors.

An ``origin`` key (``hand`` or ``dressed``: a hand-written subject dressed with lexica tags by
``experiments/build_probe_corpus.py``) may be present and is kept.

>>> c = load_probe_corpus()
>>> len(c.unsafe) >= 1500 and len(c.benign) >= 2000
True
>>> texts, unsafe, cats = c.labelled()
>>> sum(unsafe) == len(c.unsafe), cats[0]
(True, 'sexual')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xsteer.categories import normalize_category
from xsteer.data.loaders import DataFormatError, _json_objects, _read_user, _shipped
from xsteer.errors import EmptyDataError, UnknownCategoryError

PROBE_FILES = {"unsafe": "probe_unsafe.jsonl", "benign": "probe_benign.jsonl",
               "benign_flagged": "probe_benign_flagged.jsonl"}
UNSAFE_STYLES: tuple[str, ...] = ("short", "lexica", "lexica-implicit", "implicit", "euphemism",
                                  "slang", "metaphor", "clinical", "misspelling", "foreign")
BENIGN_STYLES: tuple[str, ...] = ("caption", "lexica", "nearmiss", "nearmiss-lexica", "artwork",
                                  "foreign", "request", "misspelling")
ORIGINS = ("hand", "dressed")


@dataclass(frozen=True)
class ProbeRow:
    """One prompt of the corpus; ``category`` is ``None`` for benign prompts."""

    style: str
    prompt: str
    category: str | None = None
    origin: str = "hand"


@dataclass(frozen=True)
class ProbeCorpus:
    """The source-side probe corpus as loaded.

    Attributes:
        unsafe: ``(category, style, text)`` per unsafe prompt.
        benign: ``(style, text)`` per benign prompt the keyword screen passes.
        benign_flagged: ``(style, text)`` per benign prompt the keyword screen flags (source only).
        origins: ``{text: "hand" | "dressed"}`` for every prompt.
    """

    unsafe: list[tuple[str, str, str]]
    benign: list[tuple[str, str]]
    benign_flagged: list[tuple[str, str]]
    origins: dict[str, str]

    def styles(self) -> dict[str, tuple[str, ...]]:
        """The styles present: ``{"unsafe": (...), "benign": (...)}``, in `*_STYLES` order."""
        u = {s for _, s, _ in self.unsafe}
        b = {s for s, _ in self.benign + self.benign_flagged}
        return {"unsafe": tuple(s for s in UNSAFE_STYLES if s in u),
                "benign": tuple(s for s in BENIGN_STYLES if s in b)}

    def unsafe_texts(self, categories: Sequence[str] | None = None,
                     styles: Sequence[str] | None = None) -> list[str]:
        """Unsafe prompts, optionally only some categories (aliases accepted) and styles."""
        cats = None if categories is None else {normalize_category(c, allow_global=False)
                                                for c in categories}
        return [t for c, s, t in self.unsafe
                if (cats is None or c in cats) and (styles is None or s in styles)]

    def benign_texts(self, styles: Sequence[str] | None = None,
                     include_flagged: bool = True) -> list[str]:
        """Benign prompts (with the keyword-flagged near-miss ones unless ``include_flagged``)."""
        rows = self.benign + (self.benign_flagged if include_flagged else [])
        return [t for s, t in rows if styles is None or s in styles]

    def labelled(self, include_flagged: bool = True) -> tuple[list[str], list[bool], list[str]]:
        """``(texts, unsafe, categories)`` row-aligned, the shape `SourceProbe.fit` takes (after
        encoding the texts); benign rows get category ``""``."""
        benign = self.benign_texts(include_flagged=include_flagged)
        texts = [t for _, _, t in self.unsafe] + benign
        return (texts, [True] * len(self.unsafe) + [False] * len(benign),
                [c for c, _, _ in self.unsafe] + [""] * len(benign))


def _field(where: str, obj: dict[str, Any], key: str) -> str:
    if key not in obj:
        raise DataFormatError(f"{where}: missing key {key!r}")
    val = obj[key]
    if not isinstance(val, str) or not val.strip():
        raise DataFormatError(f"{where}: {key!r} must be a non-empty string, got {val!r}")
    return val.strip()


def parse_probe_rows(name: str, text: str, unsafe: bool) -> list[ProbeRow]:
    """Rows of a probe-corpus JSONL text; errors name ``name`` and the line."""
    known = UNSAFE_STYLES if unsafe else BENIGN_STYLES
    rows: list[ProbeRow] = []
    for where, obj in _json_objects(name, text):
        style, prompt = _field(where, obj, "style"), _field(where, obj, "prompt")
        if style not in known:
            raise DataFormatError(f"{where}: unknown style {style!r}; known: {', '.join(known)}")
        origin = obj.get("origin", "hand")
        if origin not in ORIGINS:
            raise DataFormatError(f"{where}: unknown origin {origin!r}; known: "
                                  f"{', '.join(ORIGINS)}")
        category = None
        if unsafe:
            try:
                category = normalize_category(_field(where, obj, "category"), allow_global=False)
            except UnknownCategoryError as exc:
                raise UnknownCategoryError(f"{where}: {exc}") from exc
        elif "category" in obj:
            raise DataFormatError(f"{where}: a benign prompt has no 'category' (got "
                                  f"{obj['category']!r}); is this the unsafe file?")
        rows.append(ProbeRow(style=style, prompt=prompt, category=category, origin=origin))
    return rows


def _load(path: str | os.PathLike[str] | None, kind: str, unsafe: bool) -> list[ProbeRow]:
    name, text = _shipped(PROBE_FILES[kind]) if path is None else _read_user(path)
    return parse_probe_rows(name, text, unsafe=unsafe)


def load_probe_corpus(unsafe: str | os.PathLike[str] | None = None,
                      benign: str | os.PathLike[str] | None = None,
                      benign_flagged: str | os.PathLike[str] | None = None) -> ProbeCorpus:
    """Load the probe corpus: the shipped files, or the user's files of the same format."""
    u = _load(unsafe, "unsafe", unsafe=True)
    b = _load(benign, "benign", unsafe=False)
    f = _load(benign_flagged, "benign_flagged", unsafe=False)
    if not u or not b:
        raise EmptyDataError("the probe corpus needs unsafe and benign prompts; got "
                             f"{len(u)} unsafe and {len(b)} benign")
    origins = {r.prompt: r.origin for r in u + b + f}
    return ProbeCorpus(unsafe=[(r.category or "", r.style, r.prompt) for r in u],
                       benign=[(r.style, r.prompt) for r in b],
                       benign_flagged=[(r.style, r.prompt) for r in f], origins=origins)

