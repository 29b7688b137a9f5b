"""Directions estimated on real packaged models separate held-out pairs (AUROC well above chance)."""

import pytest

from xsteer.data import load_pairs, pair_texts, split_pairs
from xsteer.directions import mean_difference
from xsteer.evaluate import auroc

pytestmark = pytest.mark.real


@pytest.mark.parametrize(("model", "layer", "floor"),
                         [("all-minilm-l6-v2", 6, 0.85), ("gemma-3-270m", 6, 0.75)])
def test_direction_separates_held_out_pairs(model, layer, floor):
    from xsteer.encoders import get_encoder

    enc = get_encoder(model)
    train, test = split_pairs(load_pairs(), test_fraction=0.5, seed=0)
    u_tr, s_tr = pair_texts(train)
    u_te, s_te = pair_texts(test)
    feats = enc.encode(u_tr + s_tr + u_te + s_te, layer)
    n, m = len(u_tr), len(u_te)
    U_tr, S_tr = feats[:n], feats[n:2 * n]
    U_te, S_te = feats[2 * n:2 * n + m], feats[2 * n + m:]
    d = mean_difference(U_tr, S_tr)
    # harm score: projection on -d; unsafe prompts should score higher than their safe pairs
    score = auroc(-(U_te @ d), -(S_te @ d))
    assert score > floor, f"{model} layer {layer}: held-out AUROC {score:.3f}"
