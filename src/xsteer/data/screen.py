"""Screen target-side text for unsafe content before anything is fitted on it.

The target side of xsteer (alignment anchors, gate and magnitude calibration) must only see
benign text. `flag_unsafe` is the check: a text is flagged when it is one of the shipped pairs'
unsafe prompts or contains a word or phrase of the shipped blocklist (``blocklist.txt``; whole
words), both compared after `xsteer.data.normalize.screen_key` (Unicode compatibility forms,
invisible characters, look-alike letters of other scripts, accents, leetspeak, spaced letters,
punctuation and case), so "...!" appended, a zero-width space or a Cyrillic ``е`` changes nothing.
`screen_semantic` adds the encoder's view where the target encoder is at hand
(`xsteer.data.semantic`): a text that reads like a shipped unsafe prompt is flagged even without
a listed word. None of the shipped benign sets is flagged. Both refuse a flagged set with
`UnsafeDataError` unless the caller allows it, and return the count so provenance can record it.

>>> [f.index for f in flag_unsafe(["a cat on a mat", "a nude figure on a beach"])]
[1]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import torch

from xsteer.data.normalize import screen_key
from xsteer.data.semantic import Embed, SemanticScreen
from xsteer.errors import UnsafeDataError


@dataclass(frozen=True)
class Flag:
    """One flagged text: its position, the text and why."""

    index: int
    text: str
    reason: str


@lru_cache(maxsize=1)
def _rules() -> tuple[re.Pattern[str], frozenset[str]]:
    from xsteer.data.loaders import load_pairs

    root = resources.files("xsteer.data")
    terms = [t for line in root.joinpath("blocklist.txt").read_text(encoding="utf-8").splitlines()
             if (t := screen_key(line)) and not line.strip().startswith("#")]
    words = "|".join(sorted((re.escape(t) for t in terms), key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)")
    return pattern, frozenset(screen_key(p.unsafe) for p in load_pairs())


@lru_cache(maxsize=1)
def shipped_benign_keys() -> frozenset[str]:
    """The shipped benign texts (vetted by hand: the benign sets and the pairs' safe sides), as
    the screen compares them."""
    from xsteer.data.loaders import load_benign, load_pairs

    texts = [*load_benign(kind="all"), *(p.safe for p in load_pairs())]
    return frozenset(screen_key(t) for t in texts)


def flag_unsafe(texts: Sequence[str]) -> list[Flag]:
    """The texts the unsafe detector flags, in order."""
    pattern, unsafe = _rules()
    out = []
    for i, t in enumerate(texts):
        key = screen_key(t)
        if key in unsafe:
            out.append(Flag(i, t, "an unsafe prompt of the shipped pairs"))
        elif (m := pattern.search(key)) is not None:
            out.append(Flag(i, t, f"blocklisted {m.group(0)!r}"))
    return out


def _refuse(flags: Sequence[Flag], n: int, name: str, step: str, hint: str) -> None:
    shown = "; ".join(f"#{f.index + 1} {f.text[:60]!r} ({f.reason})" for f in flags[:3])
    raise UnsafeDataError(f"{step} must only see benign target-side text, but {len(flags)} of "
                          f"{n} texts in {name} look unsafe: {shown}; remove them, or {hint}")


_SCREENS: dict[str, SemanticScreen] = {}
_PROBE = "a probe sentence that tells one encoder from another: 7 quiet violet kites"


def flag_semantic(texts: Sequence[str], features: torch.Tensor, embed: Embed,
                  key: str | None = None) -> list[Flag]:
    """The texts the semantic screen (`SemanticScreen`) flags, in order: ``texts`` already read
    as ``features`` ``(n, dim)`` by the target; ``embed`` reads the reference texts the same way
    (once per encoder and ``key``, e.g. model and site, within a process). Shipped benign texts
    and texts the lexical screen flags are left out (`flag_unsafe` names those)."""
    lexical = {f.index for f in flag_unsafe(texts)}
    own = [i for i, t in enumerate(texts)
           if i not in lexical and screen_key(t) not in shipped_benign_keys()]
    if not own:
        return []
    # the references are read once per encoder: known by its reading of one probe sentence
    probe = torch.as_tensor(embed([_PROBE])).detach().float().cpu().numpy().tobytes()
    cache_key = f"{key}:{hashlib.sha256(probe).hexdigest()}"
    sem = _SCREENS.get(cache_key)
    if sem is None:
        sem = SemanticScreen.fit(embed)
        if len(_SCREENS) >= 8:
            _SCREENS.pop(next(iter(_SCREENS)))
        _SCREENS[cache_key] = sem
    feats = torch.as_tensor(features)[own]
    return [Flag(own[i], texts[own[i]], f"reads like the unsafe prompt {near[:40]!r}: score "
                 f"{sc:.3f} > {sem.threshold:.3f}") for i, sc, near in sem.flags(feats)]


def screen_semantic(texts: Sequence[str], features: torch.Tensor, embed: Embed, name: str,
                    step: str, allow_flagged: bool = False,
                    hint: str = "pass --allow-flagged if they are benign",
                    key: str | None = None) -> int:
    """`flag_semantic` as a check: raises `UnsafeDataError` naming the flagged texts unless
    ``allow_flagged``; returns the flagged count (the lexical screen's are counted by `screen`)."""
    flags = flag_semantic(texts, features, embed, key)
    if flags and not allow_flagged:
        _refuse(flags, len(texts), name, step, hint)
    return len(flags)


def screen(texts: Sequence[str], name: str, step: str, allow_flagged: bool = False,
           hint: str = "pass --allow-flagged if they are benign") -> int:
    """Check a target-side text set; raise `UnsafeDataError` naming the first flagged lines
    unless ``allow_flagged``. Returns the number of flagged texts (for provenance)."""
    flags = flag_unsafe(texts)
    if flags and not allow_flagged:
        _refuse(flags, len(texts), name, step, hint)
    return len(flags)
