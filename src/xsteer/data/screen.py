"""Screen target-side text for unsafe content before anything is fitted on it.

The target side of xsteer (alignment anchors, gate and magnitude calibration) must only see
benign text. `flag_unsafe` is the check: a text is flagged when it is one of the shipped pairs'
unsafe prompts (case and whitespace ignored) or contains a word or phrase of the shipped
blocklist (``blocklist.txt``; whole words, any case). None of the shipped benign sets is flagged.
`screen` refuses a flagged set with `UnsafeDataError` unless the caller allows it, and returns the
count so provenance can record it.

>>> [f.index for f in flag_unsafe(["a cat on a mat", "a nude figure on a beach"])]
[1]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from xsteer.errors import UnsafeDataError


@dataclass(frozen=True)
class Flag:
    """One flagged text: its position, the text and why."""

    index: int
    text: str
    reason: str


@lru_cache(maxsize=1)
def _rules() -> tuple[re.Pattern[str], frozenset[str]]:
    from xsteer.data.loaders import load_pairs, norm_key

    root = resources.files("xsteer.data")
    terms = [t for line in root.joinpath("blocklist.txt").read_text(encoding="utf-8").splitlines()
             if (t := line.strip().lower()) and not t.startswith("#")]
    words = "|".join(sorted((re.escape(t) for t in terms), key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{words})(?![\w-])", re.IGNORECASE)
    return pattern, frozenset(norm_key(p.unsafe) for p in load_pairs())


def flag_unsafe(texts: Sequence[str]) -> list[Flag]:
    """The texts the unsafe detector flags, in order."""
    from xsteer.data.loaders import norm_key

    pattern, unsafe = _rules()
    out = []
    for i, t in enumerate(texts):
        if norm_key(t) in unsafe:
            out.append(Flag(i, t, "an unsafe prompt of the shipped pairs"))
        elif (m := pattern.search(t)) is not None:
            out.append(Flag(i, t, f"blocklisted {m.group(0).lower()!r}"))
    return out


def screen(texts: Sequence[str], name: str, step: str, allow_flagged: bool = False,
           hint: str = "pass --allow-flagged if they are benign") -> int:
    """Check a target-side text set; raise `UnsafeDataError` naming the first flagged lines
    unless ``allow_flagged``. Returns the number of flagged texts (for provenance)."""
    flags = flag_unsafe(texts)
    if flags and not allow_flagged:
        shown = "; ".join(f"#{f.index + 1} {f.text[:60]!r} ({f.reason})" for f in flags[:3])
        raise UnsafeDataError(f"{step} must only see benign target-side text, but {len(flags)} of "
                              f"{len(texts)} texts in {name} look unsafe: {shown}; remove them, or "
                              f"{hint}")
    return len(flags)
