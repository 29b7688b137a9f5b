"""Text as the unsafe screen compares it: one spelling for the many ways a word can be written.

`screen_key` undoes the tricks that pass a keyword list: full-width and other compatibility
forms (NFKC), zero-width and other invisible format characters, combining accents, look-alike
letters from other scripts (Cyrillic ``а``, Greek ``ο``: folded to the Latin letter they imitate,
from the Unicode confusables table through `confusable_homoglyphs` when it is installed, else a
built-in table of the common ones), digits and symbols inside words (``n4ked``), letters spaced
out (``n.u.d.e``), punctuation and case. It is for matching only; the text itself is kept.

>>> screen_key("Ｎｕ\u200bdе  P.O.R.N!!")
'nude porn'
>>> screen_key("a n4ked figure, 3 cats")
'a naked figure 3 cats'
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# the look-alikes that matter most, for when `confusable_homoglyphs` is not installed
_FALLBACK = dict(zip("аеорсухіјѕԁһӏɡαοτνκιρχуΑΒΕΗΙΚΜΝΟΡΤΧΥΖаѵԝ",
                     "aeopcyxijsdhlgaotvkipxyABEHIKMNOPTXYZavw", strict=True))
# digits and symbols that stand for letters, inside a word that also has letters
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "l"})
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){2,}[a-z]\b")  # n.u.d.e, n u d e, n-u-d-e
_WORD = re.compile(r"[^\s]+")


@lru_cache(maxsize=4096)
def fold_char(ch: str) -> str:
    """The ASCII letter ``ch`` imitates, or ``ch`` itself (ASCII and unconfusable letters)."""
    if ch.isascii():
        return ch
    try:
        from confusable_homoglyphs import confusables
    except ImportError:
        return _FALLBACK.get(ch, ch)
    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=["latin"]) or []
    for info in found:
        for h in info.get("homoglyphs", []):
            c = h.get("c", "")
            if len(c) == 1 and c.isascii() and c.isalpha():
                return c
    return _FALLBACK.get(ch, ch)


_CORE = re.compile(r"^(\W*)(.*?)(\W*)$")


def _unleet(word: str) -> str:
    head, core, tail = _CORE.match(word).groups()  # type: ignore[union-attr]
    if sum(c.isalpha() for c in core) >= 2 and any(not c.isalpha() for c in core):
        return head + core.translate(_LEET) + tail
    return word


def screen_key(text: str) -> str:
    """``text`` as the screen matches it (see the module doc)."""
    t = unicodedata.normalize("NFKC", text)
    # drop invisible format characters (zero-width space/joiners, soft hyphen, bidi marks)
    t = "".join(c for c in t if unicodedata.category(c) != "Cf")
    t = "".join(fold_char(c) for c in t)
    # accents: decompose and drop the combining marks (nüde, nu\u0301de -> nude)
    t = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
    t = t.lower()
    t = _WORD.sub(lambda m: _unleet(m.group(0)), t)
    t = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), t)
    t = re.sub(r"[^\w]+|_", " ", t)
    return " ".join(t.split())
