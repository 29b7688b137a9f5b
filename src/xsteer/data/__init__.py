"""Shipped prompt sets (safe/unsafe pairs, benign anchors, held-out captions) and their loaders.

`load_probe_corpus` loads the source-side probe corpus (`xsteer.data.probe_corpus`: labelled
unsafe prompts of many styles and benign prompts; source side only).

Also: `xsteer.data.heldout` (the second held-out set and the lexica-style third, written apart;
evaluation only) and
`xsteer.data.scale` (a deterministic 20k benign-anchor build from packaged sources).

What does not live here: benchmark files for the sweep harness (`xsteer.evaluate.harness`)."""

from xsteer.data.loaders import (
    BENIGN_KINDS,
    DataFormatError,
    Pair,
    data_record,
    dedupe,
    load_benign,
    load_pairs,
    pair_texts,
    pairs_by_category,
    split_pairs,
    split_texts,
)
from xsteer.data.probe_corpus import ProbeCorpus, load_probe_corpus

__all__ = [
    "BENIGN_KINDS",
    "DataFormatError",
    "Pair",
    "ProbeCorpus",
    "data_record",
    "dedupe",
    "load_benign",
    "load_pairs",
    "load_probe_corpus",
    "pair_texts",
    "pairs_by_category",
    "split_pairs",
    "split_texts",
]
