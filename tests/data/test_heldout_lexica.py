"""The third held-out set (lexica.art / I2P style): its promised size and spread, what its tags mean,
that it stays in the lexica style, and that its loader names a bad line."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter

import pytest

from tests.data.test_data import _BLOCK_RE
from tests.data.test_leaks import lexica_texts
from xsteer.categories import CATEGORIES
from xsteer.data.heldout import LexicaPrompt, LexicaSet, _parse_lexica, load_heldout_lexica
from xsteer.data.loaders import DataFormatError, norm_key
from xsteer.errors import UnknownCategoryError

_MINORS = re.compile(r"\b(child|children|kid|kids|teen|teens|teenage|teenager|girl|girls|boy|boys|"
                     r"schoolgirl|minor|minors|underage|young|student|students)\b")
_WEIGHT = re.compile(r"\([^()]+:\d(\.\d+)?\)|\(\(|\[[^\]]+\]")


@pytest.fixture(scope="module")
def lex() -> LexicaSet:
    return load_heldout_lexica()


def test_thirty_per_category_half_of_them_implicit(lex: LexicaSet) -> None:
    per_cat = Counter(u.category for u in lex.unsafe)
    assert set(per_cat) == set(CATEGORIES) and min(per_cat.values()) >= 30, per_cat
    for cat in CATEGORIES:
        n_implicit = len(lex.unsafe_texts(cat, implicit=True))
        assert n_implicit == len(lex.unsafe_texts(cat, implicit=False)), (cat, n_implicit)
    assert len(lex.benign) >= 300 and len(lex.nearmiss) >= 150


def test_no_prompt_repeats_across_the_three_files(lex: LexicaSet) -> None:
    keys = [norm_key(t) for t in lexica_texts(lex)]
    assert len(set(keys)) == len(keys), [k for k, n in Counter(keys).items() if n > 1]


def test_implicit_means_the_harm_is_never_named(lex: LexicaSet) -> None:
    # Implicit prompts carry no blocklisted word; a real share of the explicit ones do, so the tag
    # separates two kinds of prompt rather than labelling at random.
    assert not [t for t in lex.unsafe_texts(implicit=True) if _BLOCK_RE.search(t.lower())]
    explicit = lex.unsafe_texts(implicit=False)
    assert sum(bool(_BLOCK_RE.search(t.lower())) for t in explicit) >= 0.3 * len(explicit)


def test_sexual_prompts_name_adults_and_no_unsafe_prompt_names_a_minor(lex: LexicaSet) -> None:
    assert not [t for t in lex.unsafe_texts("sexual") if not re.search(r"\badults?\b", t.lower())]
    assert not [t for t in lex.unsafe_texts() if _MINORS.search(t.lower())]


def test_benign_and_nearmiss_carry_no_unsafe_words(lex: LexicaSet) -> None:
    assert not [t for t in lex.benign + lex.nearmiss if _BLOCK_RE.search(t.lower())]


@pytest.mark.parametrize("part", ["unsafe", "benign", "nearmiss"])
def test_every_part_is_in_the_lexica_style(lex: LexicaSet, part: str) -> None:
    texts = lex.unsafe_texts() if part == "unsafe" else getattr(lex, part)
    # long, comma-separated tag lists, some with prompt weights
    assert statistics.median(len(t.split()) for t in texts) >= 14
    assert sum(t.count(",") >= 3 for t in texts) >= 0.8 * len(texts)
    assert sum(bool(_WEIGHT.search(t)) for t in texts) >= 0.1 * len(texts)


def test_unsafe_texts_filters_by_category_alias_and_kind(lex: LexicaSet) -> None:
    by_alias = lex.unsafe_texts("Illegal Activity")
    assert by_alias == [u.prompt for u in lex.unsafe if u.category == "illegal"]
    assert len(lex.unsafe_texts()) == len(lex.unsafe)
    with pytest.raises(UnknownCategoryError):
        lex.unsafe_texts("weather")


def _line(**kw: object) -> str:
    return json.dumps({"category": "violence", "implicit": True, "prompt": "x, y", **kw})


def test_parse_accepts_aliases_and_strips() -> None:
    got = _parse_lexica("f", _line(category="Self Harm", prompt="  a b ") + "\n\n" + _line() + "\n")
    assert got == [LexicaPrompt("self-harm", True, "a b"), LexicaPrompt("violence", True, "x, y")]


@pytest.mark.parametrize(
    ("bad", "error", "needle"),
    [
        ('{"category": "hate", "prompt": "x"}', DataFormatError, "missing key 'implicit'"),
        (_line(implicit="yes"), DataFormatError, "'implicit' must be true or false"),
        (_line(implicit=1), DataFormatError, "'implicit' must be true or false"),
        (_line(prompt="  "), DataFormatError, "'prompt' must be a non-empty string"),
        (_line(category=7), DataFormatError, "'category' must be a string"),
        (_line(category="weather"), UnknownCategoryError, "unknown harm category 'weather'"),
        ("{not json", DataFormatError, "invalid JSON"),
    ],
)
def test_bad_lines_name_file_and_line(bad: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as info:
        _parse_lexica("lex.jsonl", _line() + "\n" + bad + "\n")
    assert "lex.jsonl, line 2" in str(info.value) and needle in str(info.value)
