"""The source-side probe corpus: size and spread per category and style, no repeats, the languages
and the adults it promises, the keyword screen's verdicts, and the loader's errors. (Leaks into
the held-out sets are checked with every other training file in ``test_leaks.py``; the build in
``tests/experiments/test_build_probe_corpus.py``.)"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from xsteer.categories import CATEGORIES
from xsteer.data import DataFormatError, ProbeCorpus, load_probe_corpus
from xsteer.data.loaders import norm_key
from xsteer.data.probe_corpus import BENIGN_STYLES, UNSAFE_STYLES, parse_probe_rows
from xsteer.data.screen import flag_unsafe
from xsteer.errors import UnknownCategoryError

ADULT = re.compile(r"\badults?\b|\bgrown\b|grown-up|adulte|adult[oa]s?\b|erwachsene|volwassen|"
                   r"dorosł|成人|成年|성인|взросл", re.IGNORECASE)
MINORS = re.compile(r"\b(child|children|kids?|teens?|teenagers?|girls?|boys?|minors?|underage|"
                    r"young|youth|school ?girls?|loli|schoolboy|pupils?|students?)\b|"
                    r"niñ[oa]|enfant|\bkinder\b|bambin|criança|小孩|儿童|子供|少女|少年|아이|"
                    r"ребён|девочк|мальчик", re.IGNORECASE)
# A script or a few common function words per language: enough to tell that it is there.
LANGS = {"ja": r"[\u3040-\u30ff]", "zh": r"^[^\u3040-\u30ff\uac00-\ud7af]*[\u4e00-\u9fff]",
         "ko": r"[\uac00-\ud7af]", "ru": r"[\u0400-\u04ff]",
         "fr": r"\b(une|des|dans|femme|homme|qui)\b", "es": r"\b(una|los|las|mujer|hombre|en la)\b",
         "de": r"\b(ein|eine|der|die|im|mit|sich)\b", "it": r"\b(uomo|donna|gli|nella|che|di|sul)\b",
         "pt": r"\b(um|uma|homem|mulher|com|no|na)\b", "nl": r"\b(een|het|op|met)\b"}
MAJOR = ("short", "lexica", "lexica-implicit", "implicit", "euphemism", "clinical", "misspelling",
         "foreign")


@pytest.fixture(scope="module")
def corpus() -> ProbeCorpus:
    return load_probe_corpus()


def test_sizes_are_as_promised_and_categories_balanced(corpus: ProbeCorpus) -> None:
    assert len(corpus.unsafe) >= 1500 and len(corpus.benign) >= 2000
    per_cat = Counter(c for c, _, _ in corpus.unsafe)
    assert set(per_cat) == set(CATEGORIES)
    assert max(per_cat.values()) <= 1.2 * min(per_cat.values()), per_cat
    benign = Counter(s for s, _ in corpus.benign)
    assert benign["lexica"] >= 600 and benign["caption"] >= 300, benign
    assert benign["nearmiss"] + benign["nearmiss-lexica"] >= 500, benign


def test_every_category_appears_in_every_major_style(corpus: ProbeCorpus) -> None:
    cell = Counter((c, s) for c, s, _ in corpus.unsafe)
    thin = {(c, s): cell[c, s] for c in CATEGORIES for s in MAJOR if cell[c, s] < 8}
    assert not thin, f"category x style cells with fewer than 8 prompts: {thin}"
    assert set(corpus.styles()["unsafe"]) == set(UNSAFE_STYLES)
    assert set(corpus.styles()["benign"]) == set(BENIGN_STYLES)
    assert min(Counter(s for s, _ in corpus.benign).values()) >= 30


def test_no_prompt_repeats_anywhere_after_normalising(corpus: ProbeCorpus) -> None:
    keys = [norm_key(t) for t in corpus.unsafe_texts() + corpus.benign_texts()]
    assert len(set(keys)) == len(keys), [k for k, n in Counter(keys).items() if n > 1][:5]


@pytest.mark.parametrize("side", ["unsafe", "benign"])
def test_foreign_prompts_cover_the_promised_languages(corpus: ProbeCorpus, side: str) -> None:
    texts = (corpus.unsafe_texts(styles=["foreign"]) if side == "unsafe"
             else corpus.benign_texts(styles=["foreign"]))
    found = {lang: sum(bool(re.search(rx, t, re.IGNORECASE)) for t in texts)
             for lang, rx in LANGS.items()}
    assert min(found.values()) >= 3, found


def test_sexual_prompts_all_name_adults_and_never_minors(corpus: ProbeCorpus) -> None:
    sexual = corpus.unsafe_texts(categories=["sexual"])
    assert len(sexual) >= 150
    assert not [t for t in sexual if not ADULT.search(t)]
    assert not [t for t in sexual if MINORS.search(t)]


def test_implicit_prompts_hold_no_blocklisted_word(corpus: ProbeCorpus) -> None:
    implicit = corpus.unsafe_texts(styles=["implicit", "lexica-implicit"])
    assert len(implicit) >= 7 * 60
    assert not flag_unsafe(implicit)


def test_the_keyword_screen_passes_the_benign_file_and_flags_the_flagged_one(
        corpus: ProbeCorpus) -> None:
    assert not flag_unsafe(corpus.benign_texts(include_flagged=False))
    flagged = [t for _, t in corpus.benign_flagged]
    assert flagged and len(flag_unsafe(flagged)) == len(flagged)
    # ...and it would have caught a fair share of the explicit unsafe prompts
    short = corpus.unsafe_texts(styles=["short", "lexica"])
    assert len(flag_unsafe(short)) >= 0.5 * len(short)


def test_lexica_prompts_look_like_lexica_on_both_sides(corpus: ProbeCorpus) -> None:
    tag = re.compile(r"artstation|render|\bby [a-z]|:\d\.\d\)|--|\b[48]k\b|detailed|lighting|"
                     r"masterpiece|quality|photograph|painting|\d+mm")
    for texts in (corpus.unsafe_texts(styles=["lexica", "lexica-implicit"]),
                  corpus.benign_texts(styles=["lexica", "nearmiss-lexica"])):
        share = sum(bool(tag.search(t)) for t in texts) / len(texts)
        assert share >= 0.9, share


def test_a_large_share_is_hand_written(corpus: ProbeCorpus) -> None:
    origin = Counter(corpus.origins.values())
    assert origin["hand"] >= 0.4 * (origin["hand"] + origin["dressed"]), origin
    assert Counter(corpus.origins[t] for t in corpus.unsafe_texts())["hand"] >= 800


def test_labelled_rows_line_up_for_a_probe(corpus: ProbeCorpus) -> None:
    texts, unsafe, cats = corpus.labelled()
    assert len(texts) == len(unsafe) == len(cats)
    n = len(corpus.unsafe)
    assert all(unsafe[:n]) and not any(unsafe[n:])
    assert set(cats[:n]) == set(CATEGORIES) and set(cats[n:]) == {""}
    assert len(corpus.labelled(include_flagged=False)[0]) == len(texts) - len(
        corpus.benign_flagged)


_GOOD_U = '{"category": "violence", "style": "short", "prompt": "x"}'
_GOOD_B = '{"style": "caption", "prompt": "a cat"}'


@pytest.mark.parametrize(("text", "unsafe", "error", "match"), [
    (_GOOD_U + "\n{not json", True, DataFormatError, r"f, line 2: invalid JSON"),
    ('{"category": "violence", "prompt": "x"}', True, DataFormatError, r"line 1: missing key 'style'"),
    (_GOOD_U.replace('"short"', '"haiku"'), True, DataFormatError, r"unknown style 'haiku'"),
    (_GOOD_U.replace("violence", "rudeness"), True, UnknownCategoryError, r"line 1: unknown harm"),
    (_GOOD_U.replace('"x"', '"  "'), True, DataFormatError, r"'prompt' must be a non-empty"),
    ('{"style": "short", "prompt": "x"}', True, DataFormatError, r"missing key 'category'"),
    (_GOOD_U.replace("short", "caption"), False, DataFormatError, r"benign prompt has no 'category'"),
    (_GOOD_B.replace("}", ', "origin": "scraped"}'), False, DataFormatError, r"unknown origin"),
    ("[1, 2]", False, DataFormatError, r"line 1: expected a JSON object"),
])
def test_malformed_lines_are_refused_with_file_and_line(text: str, unsafe: bool,
                                                        error: type[Exception], match: str) -> None:
    assert parse_probe_rows("f", _GOOD_B if not unsafe else _GOOD_U, unsafe=unsafe)
    with pytest.raises(error, match=match):
        parse_probe_rows("f", text, unsafe=unsafe)


def test_user_files_load_and_aliases_normalise(tmp_path: Path) -> None:
    u, b, f = tmp_path / "u.jsonl", tmp_path / "b.jsonl", tmp_path / "f.jsonl"
    u.write_text(_GOOD_U.replace("violence", "Self Harm") + "\n\n", encoding="utf-8")
    b.write_text(_GOOD_B + "\n", encoding="utf-8")
    f.write_text("", encoding="utf-8")
    c = load_probe_corpus(u, b, f)
    assert c.unsafe == [("self-harm", "short", "x")] and c.benign == [("caption", "a cat")]
    assert c.unsafe_texts(categories=["selfharm"]) == ["x"] and c.benign_flagged == []
