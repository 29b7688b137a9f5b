"""A direction set and an alignment between two bag-of-words encoders, saved for CLI tests."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.fakes import BagOfWordsEncoder
from tests.test_workflow import BENIGN, make_pairs

ENCODERS = {"src": lambda: BagOfWordsEncoder(dim=24, model_id="src"),
            "tgt": lambda: BagOfWordsEncoder(
                dim=24, model_id="tgt",
                project=torch.randn(24, 16, generator=torch.Generator().manual_seed(5)))}


def save_pair(d: Path) -> None:
    """``d/dirs`` (estimated on src, layer 1) and ``d/align`` (ridge, src layer 1 -> tgt)."""
    from xsteer.workflow import estimate, fit_alignment

    src, tgt = ENCODERS["src"](), ENCODERS["tgt"]()
    pairs = make_pairs()
    estimate(src, pairs, layer=1).save_pretrained(d / "dirs")
    fit_alignment(src, tgt, BENIGN + [p.safe for p in pairs], method="ridge",
                  source_layer=1).save_pretrained(d / "align")
