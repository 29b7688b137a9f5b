"""Leak checks: no training file shares a prompt, or a near copy of one, with either held-out set.

Training files: the pairs (both sides), the anchors (``benign.txt``, ``benign_nearmiss.txt``) and
the source-side probe corpus (``probe_unsafe.jsonl``, ``probe_benign.jsonl``,
``probe_benign_flagged.jsonl``).
Held-out sets: the second set written apart (``heldout_*`` in the package) and the proving-ground set
written outside this repository (``experiments/data/pg_written_apart*.jsonl``); the in-distribution
``captions_heldout.txt`` is also kept apart from the second set, so that set stays independent.

"Near copy": same text after lower-casing and dropping punctuation, or content-word Jaccard
≥ `NEAR` (function words and framing words such as "alt text" or "stock photo" dropped first, so
a prefix cannot hide a copy). A failure names only the training lines to rewrite, so that fixing a
leak never shows anyone the held-out prompt.
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
from xsteer.data.heldout import TECHNIQUES, HeldOutSet, load_heldout
from xsteer.data.probe_corpus import load_probe_corpus

ROOT = Path(__file__).resolve().parents[2]
PG_FILES = sorted((ROOT / "experiments" / "data").glob("pg_written_apart*.jsonl"))
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


def _heldout_texts(h: HeldOutSet) -> list[str]:
    return (h.unsafe_texts() + h.safe_texts() + h.captions + h.nearmiss
            + [r.prompt for r in h.euphemistic])


@pytest.fixture(scope="module")
def heldout() -> HeldOutSet:
    return load_heldout()


@pytest.fixture(scope="module")
def training() -> dict[str, list[str]]:
    pairs = load_pairs()
    probe = load_probe_corpus()
    return {"pairs.jsonl": [p.unsafe for p in pairs] + [p.safe for p in pairs],
            "benign.txt": load_benign(kind="generic"),
            "benign_nearmiss.txt": load_benign(kind="nearmiss"),
            "probe_unsafe.jsonl": probe.unsafe_texts(),
            "probe_benign.jsonl": probe.benign_texts(include_flagged=False),
            "probe_benign_flagged.jsonl": [t for _, t in probe.benign_flagged]}


@pytest.fixture(scope="module")
def pg_texts() -> list[str]:
    assert PG_FILES, "the proving-ground set written apart is missing from experiments/data"
    return [json.loads(line)["prompt"] for f in PG_FILES
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


TRAINING_FILES = ["pairs.jsonl", "benign.txt", "benign_nearmiss.txt", "probe_unsafe.jsonl",
                  "probe_benign.jsonl", "probe_benign_flagged.jsonl"]


def _refuse(hits: list[tuple[str, str, float]], train_file: str, against: str) -> None:
    """Fail naming the training lines to rewrite (and their Jaccard), never the held-out line
    (``pytest.fail``, not ``assert``: assertion rewriting would print the held-out side too)."""
    if hits:
        pytest.fail(f"{len(hits)} lines of {train_file} copy {against}: "
                    f"{[(train, round(j, 2)) for _, train, j in hits]}")


@pytest.mark.parametrize("train_file", TRAINING_FILES)
def test_no_training_file_leaks_into_the_second_heldout_set(
        train_file: str, training: dict[str, list[str]], heldout: HeldOutSet) -> None:
    _refuse(near_copies(_heldout_texts(heldout), training[train_file]), train_file,
            "the second held-out set")


# The anchors and the in-distribution captions were written together (a few near copies by
# design); the probe corpus was written apart from them too.
@pytest.mark.parametrize("train_file", [f for f in TRAINING_FILES if f.startswith("probe_")])
def test_the_probe_corpus_leaks_into_no_shipped_heldout_caption(
        train_file: str, training: dict[str, list[str]]) -> None:
    _refuse(near_copies(load_benign(kind="captions"), training[train_file]), train_file,
            "the held-out captions")


@pytest.mark.parametrize("train_file", TRAINING_FILES)
def test_no_training_file_leaks_into_the_set_written_outside(
        train_file: str, training: dict[str, list[str]], pg_texts: list[str]) -> None:
    _refuse(near_copies(pg_texts, training[train_file]), train_file, "the set written outside")


def test_the_two_heldout_sets_and_the_shipped_captions_stay_apart(
        heldout: HeldOutSet, pg_texts: list[str]) -> None:
    mine = _heldout_texts(heldout)
    assert not near_copies(mine, pg_texts)
    assert not near_copies(mine, load_benign(kind="captions"))


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
