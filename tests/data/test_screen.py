"""The benign-only invariant is checked: target-side text sets are screened before fitting."""

from __future__ import annotations

import json
import warnings

import pytest

from tests.fakes import BagOfWordsEncoder
from xsteer.data import load_benign, load_pairs
from xsteer.data.loaders import DataFormatError
from xsteer.data.screen import flag_unsafe, screen
from xsteer.errors import EmptyDataError, UnsafeDataError
from xsteer.workflow import estimate, fit_alignment


def test_no_shipped_benign_text_is_flagged_and_every_shipped_unsafe_prompt_is():
    assert flag_unsafe(load_benign(kind="all")) == []
    pairs = load_pairs()
    assert len(flag_unsafe([p.unsafe for p in pairs])) == len(pairs)
    assert flag_unsafe([p.safe for p in pairs]) == []


def test_thirty_explicit_unsafe_prompts_among_anchors_are_refused_unless_allowed():
    unsafe = [p.unsafe for p in load_pairs()][:30]
    texts = [f"a calm harbour scene number {i} with boats" for i in range(40)] + unsafe
    with pytest.raises(UnsafeDataError, match=r"30 of 70 texts in mine.txt look unsafe: #41"):
        screen(texts, "mine.txt", "alignment")
    enc_s, enc_t = BagOfWordsEncoder(model_id="s"), BagOfWordsEncoder(model_id="t")
    with pytest.raises(UnsafeDataError):
        fit_alignment(enc_s, enc_t, texts, benign_name="mine.txt")
    al = fit_alignment(enc_s, enc_t, texts, benign_name="mine.txt", allow_flagged=True)
    target = [r for r in al.provenance.data if r.side == "target"]
    assert [r.flagged for r in target] == [30] and not al.provenance.saw_unsafe("target")


def test_same_model_and_site_on_both_sides_warns():
    texts = [f"a quiet field number {i}" for i in range(30)]
    with pytest.warns(UserWarning, match="identity"):
        fit_alignment(BagOfWordsEncoder(), BagOfWordsEncoder(), texts, source_layer=1,
                      target_layer=1)


def test_whitespace_only_pairs_are_refused_and_duplicates_warn(tmp_path):
    row = {"category": "violence", "unsafe": "a man  with a knife", "safe": "a man with a knife"}
    (tmp_path / "p.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataFormatError, match="line 1: 'unsafe' and 'safe' are the same"):
        load_pairs(tmp_path / "p.jsonl")
    row["safe"] = "a man with a loaf"
    (tmp_path / "p.jsonl").write_text((json.dumps(row) + "\n") * 3)
    with pytest.warns(UserWarning, match="2 duplicated pair"):
        load_pairs(tmp_path / "p.jsonl")


def test_a_zero_direction_is_an_error():
    from xsteer.data import Pair

    # words the encoder maps identically: same bag of words in another order
    pairs = [Pair("violence", "dog bites man", "man bites dog")] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(EmptyDataError, match="direction is zero"):
            estimate(BagOfWordsEncoder(), pairs, layer=1)
