"""Leak checks: no training file shares a prompt, or a near copy of one, with any held-out set.

Training files: the pairs (both sides), the anchors (``benign.txt``, ``benign_nearmiss.txt``) and
every probe corpus file shipped in the package (``probe_*``, found by glob, so a new one joins the
check by being there). Held-out sets: the second set written apart (``heldout2_*`` in the package),
the third set in the lexica.art style (``heldout3_lexica_*``) and the proving-ground set written
outside this repository (``experiments/data/pg_written_apart*.jsonl``); the in-distribution
``heldout1_captions.txt`` (the first set) is also kept apart from the written-apart sets, so they stay independent.

"Near copy": same text after lower-casing and dropping punctuation, or content-word Jaccard
≥ `NEAR` (function words and framing words such as "alt text" or "stock photo" dropped first, so
a prefix cannot hide a copy).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.data.test_data import _BLOCK_RE
from xsteer.categories import CATEGORIES
from xsteer.data import load_benign, load_pairs
from xsteer.data.heldout import TECHNIQUES, HeldOutSet, LexicaSet, load_heldout, load_heldout_lexica
from xsteer.data.loaders import _json_objects, _parse_txt

ROOT = Path(__file__).resolve().parents[2]
PG_FILES = sorted((ROOT / "experiments" / "data").glob("pg_written_apart*.jsonl"))
PROBE_FILES = sorted(p for p in (ROOT / "src" / "xsteer" / "data").glob("probe_*")
                     if p.suffix in (".jsonl", ".txt"))
TRAIN_FILES = ["pairs.jsonl", "benign.txt", "benign_nearmiss.txt", *(p.name for p in PROBE_FILES)]
NEAR = 0.6
_STOP = frozenset("a an the of in on at with and is are to for by from its his her their "
                  "alt text stock photo image picture shows".split())


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _content(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower())) - _STOP


def near_copies(texts: Sequence[str], against: Sequence[str],
                near: float = NEAR) -> list[tuple[str, str, float]]:
    """(text, its closest line of ``against``, Jaccard) for each text that copies or nearly copies
    a line of ``against``."""
    exact = {_norm(t): t for t in against}
    sets = [(_content(t), t) for t in against]
    hits = []
    for text in texts:
        if _norm(text) in exact:
            hits.append((text, exact[_norm(text)], 1.0))
            continue
        a = _content(text)
        if not a:
            continue
        # Jaccard >= near needs sizes within a factor `near` of each other: skip the rest (speed).
        best = max(((len(a & b) / len(a | b), t) for b, t in sets
                    if near * len(b) <= len(a) <= len(b) / near), default=(0.0, ""))
        if best[0] >= near:
            hits.append((text, best[1], best[0]))
    return hits


def corpus_texts(path: Path) -> list[str]:
    """Every text in a corpus file, whatever its schema: the lines of a ``.txt``, and every string
    (or string in a list) of each ``.jsonl`` object, so a new key cannot slip past the check."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        return _parse_txt(text)
    out: list[str] = []
    for _, obj in _json_objects(path.name, text):
        for val in obj.values():
            out += [v for v in (val if isinstance(val, list) else [val]) if isinstance(v, str)]
    return out


def lexica_texts(lex: LexicaSet) -> list[str]:
    return [u.prompt for u in lex.unsafe] + lex.benign + lex.nearmiss


def _heldout_texts(h: HeldOutSet) -> list[str]:
    return (h.unsafe_texts() + h.safe_texts() + h.captions + h.nearmiss
            + [r.prompt for r in h.euphemistic])


@pytest.fixture(scope="module")
def heldout() -> HeldOutSet:
    return load_heldout()


@pytest.fixture(scope="module")
def lexica() -> LexicaSet:
    return load_heldout_lexica()


@pytest.fixture(scope="module")
def training() -> dict[str, list[str]]:
    pairs = load_pairs()
    return {"pairs.jsonl": [p.unsafe for p in pairs] + [p.safe for p in pairs],
            "benign.txt": load_benign(kind="generic"),
            "benign_nearmiss.txt": load_benign(kind="nearmiss"),
            **{p.name: corpus_texts(p) for p in PROBE_FILES}}


@pytest.fixture(scope="module")
def pg_texts() -> list[str]:
    assert PG_FILES, "the proving-ground set written apart is missing from experiments/data"
    return [json.loads(line)["prompt"] for f in PG_FILES
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("train_file", TRAIN_FILES)
def test_no_training_file_leaks_into_the_second_heldout_set(
        train_file: str, training: dict[str, list[str]], heldout: HeldOutSet) -> None:
    hits = near_copies(_heldout_texts(heldout), training[train_file])
    assert not hits, f"{len(hits)} held-out prompts copy {train_file}: {hits[:5]}"


@pytest.mark.parametrize("train_file", TRAIN_FILES)
def test_no_training_file_leaks_into_the_set_written_outside(
        train_file: str, training: dict[str, list[str]], pg_texts: list[str]) -> None:
    hits = near_copies(pg_texts, training[train_file])
    assert not hits, f"{len(hits)} outside prompts copy {train_file}: {hits[:5]}"


@pytest.mark.parametrize("train_file", TRAIN_FILES)
def test_no_training_file_leaks_into_the_lexica_set(
        train_file: str, training: dict[str, list[str]], lexica: LexicaSet) -> None:
    hits = near_copies(lexica_texts(lexica), training[train_file])
    assert not hits, f"{len(hits)} lexica prompts copy {train_file}: {hits[:5]}"


def test_the_heldout_sets_and_the_shipped_captions_stay_apart(
        heldout: HeldOutSet, lexica: LexicaSet, pg_texts: list[str]) -> None:
    mine, lex = _heldout_texts(heldout), lexica_texts(lexica)
    assert not near_copies(mine, pg_texts)
    assert not near_copies(mine, load_benign(kind="captions"))
    for other in (mine, pg_texts, load_benign(kind="captions")):
        assert not near_copies(lex, other)


def test_corpus_texts_reads_every_string_of_any_schema(tmp_path: Path) -> None:
    f = tmp_path / "probe_x.jsonl"
    f.write_text('{"label": 1, "text": "a b", "variants": ["c d", 2]}\n\n{"prompt": "e f"}\n',
                 encoding="utf-8")
    assert corpus_texts(f) == ["a b", "c d", "e f"]
    t = tmp_path / "probe_y.txt"
    t.write_text("# comment\nx y\n\n", encoding="utf-8")
    assert corpus_texts(t) == ["x y"]


def test_the_leak_check_catches_planted_copies(training: dict[str, list[str]]) -> None:
    line = training["benign.txt"][100]
    planted = [line.upper() + "!", "Alt text: " + line, line + " today", "a completely new idea"]
    caught = {hit[0] for hit in near_copies(planted, training["benign.txt"])}
    assert caught == set(planted[:3])


def test_second_set_has_the_promised_size_and_spread(heldout: HeldOutSet) -> None:
    per_cat = Counter(p.category for p in heldout.pairs)
    assert set(per_cat) == set(CATEGORIES) and min(per_cat.values()) >= 20, per_cat
    assert len(heldout.captions) >= 200 and len(heldout.nearmiss) >= 100
    assert len(heldout.euphemistic) >= 200
    assert min(Counter(r.category for r in heldout.euphemistic).values()) >= 25
    techniques = Counter(r.technique for r in heldout.euphemistic)
    assert set(techniques) == set(TECHNIQUES) and min(techniques.values()) >= 15, techniques


def test_second_set_has_no_repeats_inside(heldout: HeldOutSet) -> None:
    texts = _heldout_texts(heldout)
    keys = [_norm(t) for t in texts]
    assert len(set(keys)) == len(keys), [t for t, n in Counter(keys).items() if n > 1]


def test_second_set_pairs_change_only_the_concept_and_sexual_prompts_are_adults(
        heldout: HeldOutSet) -> None:
    for p in heldout.pairs:
        assert len(_content(p.unsafe) & _content(p.safe)) >= 2, p
    adult = re.compile(r"\badults?\b|in (his|her) (thirties|forties)|adulta|adulte|erwachsene|成人")
    minors = re.compile(r"\b(child|children|kid|kids|teen|teens|teenager|girl|girls|boy|boys|minor|"
                        r"underage|young)\b")
    sexual = [p.unsafe for p in heldout.pairs if p.category == "sexual"]
    sexual += [r.prompt for r in heldout.euphemistic if r.category == "sexual"]
    assert not [t for t in sexual if not adult.search(t) or minors.search(t)]


def test_second_set_benign_captions_carry_no_unsafe_words(heldout: HeldOutSet) -> None:
    assert not [c for c in heldout.captions if _BLOCK_RE.search(c.lower())]


def test_bad_rewrite_lines_name_the_line() -> None:
    from xsteer.data.heldout import _parse_rewrites
    from xsteer.data.loaders import DataFormatError

    good = '{"category": "violence", "technique": "metaphor", "prompt": "x"}\n'
    assert _parse_rewrites("f", good)[0].technique == "metaphor"
    with pytest.raises(DataFormatError, match="f, line 2: unknown technique 'rhyme'"):
        _parse_rewrites("f", good + good.replace("metaphor", "rhyme"))
    with pytest.raises(DataFormatError, match="line 1: missing key 'prompt'"):
        _parse_rewrites("f", '{"category": "violence", "technique": "metaphor"}')
