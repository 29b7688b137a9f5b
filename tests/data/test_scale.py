"""The benign corpus build: deterministic, the promised size and mix, screened, and free of copies of
any held-out set."""

from __future__ import annotations

import json
import random

import pytest

from tests.data.test_leaks import PG_FILES, _heldout_texts, lexica_texts, near_copies
from xsteer.data.heldout import load_heldout, load_heldout_lexica
from xsteer.data.scale import (
    SOURCES,
    UNSAFE_WORDS,
    BenignCorpus,
    _NearIndex,
    build_benign_corpus,
    is_screened_out,
)
from xsteer.errors import XSteerError


@pytest.fixture(scope="module")
def corpus() -> BenignCorpus:
    return build_benign_corpus(20000, seed=0)


@pytest.mark.slow
def test_build_has_20k_texts_from_every_source_without_repeats(corpus: BenignCorpus) -> None:
    assert len(corpus.texts) == 20000 == corpus.manifest["n"]
    counts = corpus.manifest["counts"]
    assert set(counts) == {"shipped", *SOURCES}
    assert min(counts[s] for s in SOURCES) >= 5000
    keys = [" ".join(t.lower().split()) for t in corpus.texts]
    assert len(set(keys)) == len(keys)


@pytest.mark.slow
def test_build_is_deterministic_and_seeded(corpus: BenignCorpus) -> None:
    again = build_benign_corpus(20000, seed=0)
    assert again.texts == corpus.texts and again.manifest["sha256"] == corpus.manifest["sha256"]
    one, zero = (build_benign_corpus(3000, seed=s, sources=("recombined",)) for s in (1, 0))
    assert one.texts[-300:] != zero.texts[-300:]  # the seed changes the built part
    assert one.texts[:2000] == zero.texts[:2000]  # ... never the shipped anchors in front


@pytest.mark.slow
def test_built_texts_are_screened_and_copy_no_heldout_prompt(corpus: BenignCorpus,
                                                            pg_texts: list[str]) -> None:
    built = [t for t, s in zip(corpus.texts, corpus.sources, strict=True) if s != "shipped"]
    assert not [t for t in built if is_screened_out(t)]
    sample = random.Random(0).sample(built, 1500)
    held = _heldout_texts(load_heldout()) + lexica_texts(load_heldout_lexica()) + pg_texts
    assert not near_copies(sample, held)


def test_screen_and_near_index_catch_planted_cases() -> None:
    assert is_screened_out("A NAZI flag") and not is_screened_out("a natural history museum")
    assert all(is_screened_out(f"x {w} y") for w in UNSAFE_WORDS)
    idx = _NearIndex(["a red fox on a frozen lake at dawn"])
    assert idx.hit("A red fox, on a frozen lake at dawn!")
    assert idx.hit("a red fox on a frozen lake at dawn, photo")
    assert not idx.hit("a blue heron in a marsh")


def test_bad_requests_fail_clearly() -> None:
    with pytest.raises(XSteerError, match="unknown corpus sources"):
        build_benign_corpus(100, sources=("wikipedia",))
    with pytest.raises(XSteerError, match="source 'nearmiss-recombined' gave"):
        build_benign_corpus(3000, sources=("nearmiss-recombined",), nearmiss=["a knife"])


@pytest.fixture(scope="module")
def pg_texts() -> list[str]:
    return [json.loads(line)["prompt"] for f in PG_FILES
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
