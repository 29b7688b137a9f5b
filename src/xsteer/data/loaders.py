"""Load the prompt sets xsteer works on: safe/unsafe pairs and benign prompts, shipped or the user's.

Pairs (unsafe vs safe, differing only in the unsafe concept) are *source-side* data for estimating a
safety direction. Benign prompts are the only data the target side may see (alignment, calibration,
gate thresholds). The shipped sets live next to this module; users can pass their own files.

>>> pairs = load_pairs(categories=["violence"])
>>> {p.category for p in pairs}
{'violence'}
>>> train, test = split_pairs(pairs, test_fraction=0.5, seed=0)
>>> len(train) + len(test) == len(pairs)
True
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xsteer.categories import CATEGORIES, normalize_category
from xsteer.errors import EmptyDataError, UnknownCategoryError, XSteerError

if TYPE_CHECKING:  # provenance pulls in torch (via io); loading prompts should not need it
    from xsteer.provenance import DataRecord, Side


class DataFormatError(XSteerError, ValueError):
    """A data file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Pair:
    """One safe/unsafe prompt pair that differs only in the unsafe concept."""

    category: str
    unsafe: str
    safe: str


# Shipped benign sets by kind; "anchors" is the default set to fit alignments on.
_BENIGN_FILES: dict[str, tuple[str, ...]] = {
    "generic": ("benign.txt",),
    "nearmiss": ("benign_nearmiss.txt",),
    "captions": ("heldout1_captions.txt",),
    "anchors": ("benign.txt", "benign_nearmiss.txt"),
    "all": ("benign.txt", "benign_nearmiss.txt", "heldout1_captions.txt"),
}
BENIGN_KINDS: tuple[str, ...] = tuple(_BENIGN_FILES)
_TEXT_COLUMNS = ("prompt", "caption", "text")


def _shipped(name: str) -> tuple[str, str]:
    """(display name, text) of a file shipped in this package."""
    res = resources.files("xsteer.data").joinpath(name)
    return f"xsteer/data/{name}", res.read_text(encoding="utf-8")


def _read_user(path: str | os.PathLike[str]) -> tuple[str, str]:
    p = Path(path)
    if not p.is_file():
        raise XSteerError(f"data file not found: {p}")
    try:
        # utf-8-sig: editor and spreadsheet exports often start with a BOM that breaks JSON lines
        return str(p), p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{p}: not UTF-8 text ({exc})") from exc


def _json_objects(name: str, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, object)`` for each non-blank JSONL line; ``where`` names the file and line."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}, line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise DataFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        yield where, obj


def _parse_pairs(name: str, text: str) -> list[Pair]:
    pairs: list[Pair] = []
    for where, obj in _json_objects(name, text):
        fields: dict[str, str] = {}
        for key in ("category", "unsafe", "safe"):
            if key not in obj:
                raise DataFormatError(f"{where}: missing key {key!r}")
            val = obj[key]
            if not isinstance(val, str) or not val.strip():
                raise DataFormatError(f"{where}: {key!r} must be a non-empty string, got {val!r}")
            fields[key] = val.strip()
        if norm_key(fields["unsafe"]) == norm_key(fields["safe"]):
            raise DataFormatError(f"{where}: 'unsafe' and 'safe' are the same text (up to case "
                                  "and whitespace): the pair carries no direction")
        try:
            cat = normalize_category(fields["category"], allow_global=False)
        except UnknownCategoryError as exc:
            raise UnknownCategoryError(f"{where}: {exc}") from exc
        pairs.append(Pair(category=cat, unsafe=fields["unsafe"], safe=fields["safe"]))
    return pairs


def load_pairs(
    path: str | os.PathLike[str] | None = None, categories: Sequence[str] | None = None
) -> list[Pair]:
    """Load safe/unsafe pairs from JSONL lines ``{"category", "unsafe", "safe"}``.

    ``path=None`` loads the shipped set (50+ pairs for each of the 7 I2P categories).
    ``categories`` keeps only those categories (names validated, aliases accepted).
    """
    name, text = _shipped("pairs.jsonl") if path is None else _read_user(path)
    pairs = _parse_pairs(name, text)
    seen = {(p.category, norm_key(p.unsafe), norm_key(p.safe)) for p in pairs}
    if len(seen) < len(pairs):
        warnings.warn(f"{name}: {len(pairs) - len(seen)} duplicated pair(s); each copy counts "
                      "again in the direction's mean", stacklevel=2)
    if categories is not None:
        keep = {normalize_category(c, allow_global=False) for c in categories}
        pairs = [p for p in pairs if p.category in keep]
    if not pairs:
        which = f" for categories {sorted(categories)}" if categories is not None else ""
        raise EmptyDataError(f"{name}: no pairs{which}")
    return pairs


def norm_key(text: str) -> str:
    """The text as compared for duplicates and copies: lower case, whitespace collapsed."""
    return " ".join(text.lower().split())


def dedupe(texts: Iterable[str]) -> list[str]:
    """Drop repeats (ignoring case and whitespace), keeping the first occurrence and the order."""
    seen: set[str] = set()
    out: list[str] = []
    for t in texts:
        t = t.strip()
        key = norm_key(t)
        if key and key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _parse_txt(text: str) -> list[str]:
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def _parse_csv(name: str, text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    col = next((header.index(c) for c in _TEXT_COLUMNS if c in header), 0)
    out: list[str] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if col >= len(row):
            raise DataFormatError(f"{name}, line {lineno}: row has no column {header[col]!r}")
        out.append(row[col])
    return out


def _parse_jsonl_texts(name: str, text: str) -> list[str]:
    out: list[str] = []
    for where, obj in _json_objects(name, text):
        key = next((k for k in ("prompt", "text") if k in obj), None)
        if key is None:
            raise DataFormatError(f"{where}: missing key 'prompt' (or 'text')")
        if not isinstance(obj[key], str):
            raise DataFormatError(f"{where}: {key!r} must be a string, got {obj[key]!r}")
        out.append(obj[key])
    return out


def _parse_user_texts(path: str | os.PathLike[str]) -> tuple[str, list[str]]:
    name, text = _read_user(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return name, _parse_csv(name, text)
    if suffix in (".jsonl", ".ndjson"):
        return name, _parse_jsonl_texts(name, text)
    return name, _parse_txt(text)


def load_prompts(path: str | os.PathLike[str]) -> list[str]:
    """Prompts of a user file in input order, duplicates kept (``.txt``/``.csv``/``.jsonl`` as
    `load_benign` reads them): for auditing or generating exactly what the file lists."""
    name, texts = _parse_user_texts(path)
    if not texts:
        raise EmptyDataError(f"{name}: no prompts")
    return texts


def load_benign(path: str | os.PathLike[str] | None = None, kind: str = "generic") -> list[str]:
    """Load benign prompts, deduplicated in order (case- and whitespace-insensitive).

    With ``path=None``, ``kind`` picks a shipped set: ``generic`` (varied captions and art prompts),
    ``nearmiss`` (benign prompts close to the unsafe/safe axis: knives, hospitals, war memorials),
    ``captions`` (held-out captions, only for measuring false triggers), ``anchors`` (generic +
    nearmiss: the default set to fit alignments on) or ``all``. A user file may be ``.txt`` (one
    prompt a line; blank and ``#`` lines skipped), ``.csv`` (header required; column ``prompt``,
    ``caption`` or ``text``, else the first) or ``.jsonl`` (key ``prompt`` or ``text``).
    """
    if path is None:
        if kind not in _BENIGN_FILES:
            raise XSteerError(f"unknown benign kind {kind!r}; known: {', '.join(BENIGN_KINDS)}")
        texts: list[str] = []
        for fname in _BENIGN_FILES[kind]:
            texts += _parse_txt(_shipped(fname)[1])
        name = f"shipped benign set {kind!r}"
    else:
        name, texts = _parse_user_texts(path)
    out = dedupe(texts)
    if not out:
        raise EmptyDataError(f"{name}: no benign prompts")
    return out


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise XSteerError(f"test_fraction must be in (0, 1), got {test_fraction}")


def _n_test(n: int, test_fraction: float) -> int:
    # Keep at least one item on each side whenever there are two or more.
    if n < 2:
        return 0
    return min(max(round(n * test_fraction), 1), n - 1)


def split_texts(
    texts: Sequence[str], test_fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Shuffle (seeded) and split texts into (train, test); both non-empty when len >= 2."""
    _check_fraction(test_fraction)
    idx = list(range(len(texts)))
    random.Random(seed).shuffle(idx)
    k = _n_test(len(idx), test_fraction)
    test_idx = set(idx[:k])
    train = [t for i, t in enumerate(texts) if i not in test_idx]
    test = [t for i, t in enumerate(texts) if i in test_idx]
    return train, test


def pairs_by_category(pairs: Iterable[Pair]) -> dict[str, list[Pair]]:
    """Group pairs by category, in the canonical category order."""
    groups: dict[str, list[Pair]] = {}
    for p in pairs:
        groups.setdefault(p.category, []).append(p)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order))))


def split_pairs(
    pairs: Sequence[Pair], test_fraction: float = 0.5, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (train, test), stratified by category and deterministic in ``seed``.

    Every category with two or more pairs appears in both halves; a single pair goes to train.
    """
    _check_fraction(test_fraction)
    rng = random.Random(seed)
    test_ids: set[int] = set()
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(p.category, []).append(i)
    for cat in sorted(groups):
        idx = groups[cat]
        rng.shuffle(idx)
        test_ids.update(idx[: _n_test(len(idx), test_fraction)])
    train = [p for i, p in enumerate(pairs) if i not in test_ids]
    test = [p for i, p in enumerate(pairs) if i in test_ids]
    return train, test


def pair_texts(pairs: Iterable[Pair]) -> tuple[list[str], list[str]]:
    """(unsafe texts, safe texts), row-aligned."""
    ps = list(pairs)
    return [p.unsafe for p in ps], [p.safe for p in ps]


def data_record(name: str, texts: Sequence[str], side: Side, unsafe: bool,
                flagged: int = 0) -> DataRecord:
    """Provenance record for a data set (thin wrapper on `DataRecord.from_texts`)."""
    from xsteer.provenance import DataRecord

    return DataRecord.from_texts(name, texts, side=side, unsafe=unsafe, flagged=flagged)
