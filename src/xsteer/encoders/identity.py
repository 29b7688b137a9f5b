"""Which encoder a representation came from, as a value artifacts record and binding compares.

A model id alone does not identify an encoder: the same T5-XXL is ``google/t5-v1_1-xxl`` in one
place and ``black-forest-labs/FLUX.1-schnell/text_encoder_2`` in another, and a local folder can
move. So artifacts record an *architecture digest* (`config_digest`: the keys that fix the shape of
the representation, nothing that names a path or a dtype) and, where the weights are at hand, a
*weight probe* (`weights_probe`: a few values strided through the first, middle and last
parameter). Two encoders are the same when the digests are equal and the probes agree within a
tolerance wide enough for a bf16 copy of fp32 weights (`same_weights`).

>>> from types import SimpleNamespace
>>> a = SimpleNamespace(to_dict=lambda: {"model_type": "t5", "d_model": 8, "_name_or_path": "/x"})
>>> b = SimpleNamespace(to_dict=lambda: {"model_type": "t5", "d_model": 8, "_name_or_path": "/y"})
>>> config_digest(a) == config_digest(b)
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch

# The config keys that fix what a hidden state means (searched at top level and in text_config).
ARCH_KEYS = ("model_type", "hidden_size", "d_model", "num_hidden_layers", "num_layers",
             "intermediate_size", "d_ff", "num_attention_heads", "num_heads", "vocab_size",
             "projection_dim", "max_position_embeddings", "feed_forward_proj")
PROBE_PER_TENSOR = 4
# a bf16 copy of fp32 weights differs by < 2^-8 relative; fine-tunes differ by far more
PROBE_RTOL, PROBE_ATOL = 1e-2, 1e-4


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    to_dict = getattr(config, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(vars(config))


def config_digest(config: Any) -> str | None:
    """A short sha256 of the architecture keys of a transformers config (None without any)."""
    d = _config_dict(config)
    picked: dict[str, Any] = {k: d[k] for k in ARCH_KEYS if k in d}
    text = d.get("text_config")
    if isinstance(text, dict) or hasattr(text, "to_dict"):
        td = _config_dict(text)
        picked["text_config"] = {k: td[k] for k in ARCH_KEYS if k in td}
    if not picked:
        return None
    blob = json.dumps(picked, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def weights_probe(module: torch.nn.Module) -> list[float] | None:
    """A few weight values (first, middle, last parameter), or None if they are not readable
    (offloaded to the meta device, or no parameters)."""
    params = [p for _, p in module.named_parameters()]
    if not params:
        return None
    out: list[float] = []
    for p in (params[0], params[len(params) // 2], params[-1]):
        if p.device.type == "meta":
            return None
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // PROBE_PER_TENSOR)
        out.extend(float(x) for x in flat[::step][:PROBE_PER_TENSOR].float().cpu())
    return out


def same_weights(a: Sequence[float] | None, b: Sequence[float] | None) -> bool | None:
    """Whether two weight probes agree (None when either is missing: unverifiable)."""
    if a is None or b is None:
        return None
    if len(a) != len(b):
        return False
    return bool(torch.allclose(torch.tensor(list(a)), torch.tensor(list(b)), rtol=PROBE_RTOL,
                               atol=PROBE_ATOL))
