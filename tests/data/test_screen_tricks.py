"""The screen after issue 19: spelling tricks normalized away, shipped unsafe prompts matched by
content, and the semantic screen that reads text through the target encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.fakes import BagOfWordsEncoder
from xsteer.data import load_benign, load_pairs
from xsteer.data.normalize import screen_key
from xsteer.data.screen import flag_unsafe, screen_semantic
from xsteer.data.semantic import SemanticScreen
from xsteer.errors import UnsafeDataError
from xsteer.workflow import fit_alignment

PARAPHRASES = Path(__file__).with_name("paraphrased_unsafe.jsonl")
CYRILLIC = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440",
                          "c": "\u0441", "x": "\u0445"})
FULL = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz"}


@pytest.mark.parametrize(("text", "key"), [
    ("Ｎｕｄｅ", "nude"),                      # full-width (NFKC)
    ("nu\u200bde", "nude"),                    # zero-width space
    ("nu\u00adde", "nude"),                    # soft hyphen
    ("n\u0430k\u0435d", "naked"),            # Cyrillic a and e folded to Latin
    ("nüde", "nude"), ("nu\u0301de", "nude"),  # accents, precomposed and combining
    ("n4ked", "naked"), ("p0rn", "porn"),      # digits standing for letters
    ("n.u.d.e", "nude"), ("n u d e", "nude"),  # spaced letters
    ("A NUDE figure!!!", "a nude figure"),     # case and punctuation
    ("35mm film, 4 cats", "esmm film 4 cats"),  # a lone number stays a number
])
def test_screen_key(text, key):
    assert screen_key(text) == key


def _tricks(u: str) -> list[str]:
    return [u + "!", u + " ...!!", u.upper(), " ".join("\u200b".join(w) for w in u.split()),
            u.translate(CYRILLIC), "".join(FULL.get(c, c) for c in u), "  " + u.replace(" ", "  ")]


def test_every_shipped_unsafe_prompt_is_flagged_however_it_is_written():
    unsafe = [p.unsafe for p in load_pairs()]
    texts = [t for u in unsafe for t in _tricks(u)]
    assert len(flag_unsafe(texts)) == len(texts)
    # matched by content: a shipped prompt with its only blocklist word spelled out of reach
    # of the word list is still one of the shipped unsafe prompts
    reasons = {f.reason for f in flag_unsafe([u + "!" for u in unsafe])}
    assert "an unsafe prompt of the shipped pairs" in reasons


def test_no_shipped_benign_text_is_flagged_after_normalization():
    assert flag_unsafe(load_benign(kind="all")) == []
    assert flag_unsafe([p.safe for p in load_pairs()]) == []


def test_the_paraphrases_carry_no_blocklist_word():
    """They test the semantic screen: the lexical one must not see them."""
    rows = [json.loads(line) for line in PARAPHRASES.read_text().splitlines()]
    assert len(rows) >= 60 and flag_unsafe([r["prompt"] for r in rows]) == []


# -- the semantic screen ------------------------------------------------------------------------
# A planted encoder: bag-of-words vectors plus a "harm" axis that every blocklist word and also
# "pistol" and "narcotics" load on. The shipped unsafe prompts lie along it; so does SNEAKY, which has
# no blocklist word: the semantic screen must flag it and nothing benign.
SNEAKY = "a man with a pistol selling narcotics to a kid"
CALM = [f"a calm harbour scene number {i} with boats and gulls" for i in range(30)]


def _embed(enc: BagOfWordsEncoder):
    from importlib import resources

    lines = resources.files("xsteer.data").joinpath("blocklist.txt").read_text().splitlines()
    harm = {w for w in lines if w and not w.startswith("#") and w.isalpha()} | {"pistol", "narcotics"}

    def embed(texts):
        base = enc.encode(list(texts), 1)
        axis = torch.tensor([[12.0 * any(w in harm for w in screen_key(t).split())]
                             for t in texts])
        return torch.cat([base, axis], dim=1)

    return embed


def test_semantic_screen_flags_text_that_reads_unsafe_without_a_listed_word():
    enc = BagOfWordsEncoder(model_id="t")
    assert flag_unsafe([SNEAKY]) == []
    texts = [*CALM, SNEAKY]
    feats = _embed(enc)(texts)
    with pytest.raises(UnsafeDataError, match=r"1 of 31 texts in mine.txt look unsafe: #31 "
                                              r"'a man with a pistol.*reads like the unsafe prompt"):
        screen_semantic(texts, feats, _embed(enc), "mine.txt", "alignment")
    assert screen_semantic(texts, feats, _embed(enc), "mine.txt", "alignment",
                           allow_flagged=True) == 1
    assert screen_semantic(CALM, _embed(enc)(CALM), _embed(enc), "calm", "alignment") == 0


def test_the_threshold_keeps_every_benign_reference_below_it():
    enc = BagOfWordsEncoder(model_id="t")
    benign = load_benign(kind="anchors")[:300]
    sem = SemanticScreen.fit(_embed(enc), benign=benign)
    assert sem.flags(_embed(enc)(benign)) == [] or all(  # scored against itself: at most ties
        s <= sem.threshold + 1e-6 for _, s, _ in sem.flags(_embed(enc)(benign)))
    scores, _ = sem.scores(_embed(enc)(benign), leave_one_out=True)
    assert float(scores.max()) == pytest.approx(sem.threshold)
    assert sem.flags(_embed(enc)([SNEAKY]))


def test_an_alignment_refuses_anchors_the_semantic_screen_flags(monkeypatch):
    s, t = BagOfWordsEncoder(model_id="s"), BagOfWordsEncoder(model_id="t")
    planted = _embed(BagOfWordsEncoder(model_id="t"))
    monkeypatch.setattr(t, "encode", lambda texts, layer=None, pooling=None: planted(texts))
    texts = [*CALM, SNEAKY]
    with pytest.raises(UnsafeDataError, match="reads like the unsafe prompt"):
        fit_alignment(s, t, texts, benign_name="mine.txt")
    al = fit_alignment(s, t, texts, benign_name="mine.txt", allow_flagged=True)
    assert [r.flagged for r in al.provenance.data if r.side == "target"] == [1]


@pytest.mark.real
@pytest.mark.slow
def test_minilm_semantic_screen_catches_paraphrases_and_spares_captions():
    """Floors, not exact numbers (experiments/screen_study.py measures them)."""
    from xsteer.encoders import get_encoder

    enc = get_encoder("all-minilm-l6-v2")
    embed = lambda texts: enc.encode(list(texts), enc.default_layer)  # noqa: E731
    sem = SemanticScreen.fit(embed)
    para = [json.loads(line)["prompt"] for line in PARAPHRASES.read_text().splitlines()]
    recall = len(sem.flags(embed(para))) / len(para)
    captions = load_benign(kind="captions")
    false_alarms = len(sem.flags(embed(captions))) / len(captions)
    assert recall >= 0.5 and false_alarms <= 0.02, (recall, false_alarms)
    assert torch.isfinite(torch.tensor(sem.threshold))
