"""`SourceGate`: the source-side gate at inference — a `SourceProbe` with its source model loaded.

The prompt's text goes to the source LLM (the model the safety directions were estimated in, which
may see unsafe data), the per-category probe decides which categories fire, and the caller steers
the target site with the transported directions of those categories. The source model loads once
per `SourceGate`; scoring holds a lock, so threads may share one gate (the source tokenizer is not
thread-safe by itself).

Before anything is scored, `check_source` compares the probe's recorded source identity with the
loaded encoder (model id, architecture digest, weight probe, layers, width) and fails with one
line naming the mismatch. Empty or whitespace-only prompts never fire (they are the
unconditional branch of classifier-free guidance).

>>> gate = SourceGate.from_pretrained("runs/probe")                      # doctest: +SKIP
>>> gate.score(["a cat on a mat"])[0]["fires"]                             # doctest: +SKIP
False
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from xsteer.categories import GLOBAL
from xsteer.errors import DimensionMismatchError, XSteerError
from xsteer.steer.probe import SourceProbe, stack_layers

COMBINES = ("source", "target", "or", "and")


class SourceIdentityError(XSteerError):
    """The probe was made for another source model, other layers or another width."""


def source_identity(encoder: Any, layers: Sequence[int], pooling: str = "mean",
                    name: str | None = None) -> dict[str, Any]:
    """What a probe records about its source model: ``name`` is how to load it again (the alias
    or folder the user gave; default the model id), the rest identifies it."""
    from xsteer.encoders.identity import config_digest, weights_probe

    # the weights are read (loaded if need be): a probe is only as checkable as its identity
    model = getattr(encoder, "model", None) if hasattr(type(encoder), "model") else None
    probe = weights_probe(model) if isinstance(model, torch.nn.Module) else None
    return {"name": name or encoder.model_id, "model_id": encoder.model_id,
            "revision": encoder.revision,
            "config_sha": config_digest(getattr(encoder, "config", None)),
            "weight_probe": probe, "layers": [int(k) for k in layers], "pooling": pooling,
            "drop_bos": bool(getattr(encoder, "drop_bos", False)), "dim": int(encoder.dim),
            "num_layers": int(encoder.num_layers)}


def check_source(probe: SourceProbe, encoder: Any, *, weights: bool = True) -> None:
    """Refuse a probe made for another source model, other layers or another width (one line)."""
    rec = probe.source or {"model_id": probe.model_id}
    where = f"probe for {rec.get('model_id') or probe.model_id!r}"
    if rec.get("model_id") and rec["model_id"] != encoder.model_id:
        raise SourceIdentityError(f"{where} cannot score with {encoder.model_id!r}: the probe was "
                                  "fitted on another source model")
    bad = [k for k in probe.layers if not 0 <= int(k) <= int(encoder.num_layers)]
    if bad:
        raise SourceIdentityError(f"{where}: layers {bad} do not exist in {encoder.model_id} "
                                  f"(hidden-state layers 0..{encoder.num_layers})")
    width = int(encoder.dim) * len(probe.layers)
    fitted = None if probe.coef_ is None else int(probe.coef_.shape[1])
    if fitted is not None and fitted != width:
        raise DimensionMismatchError(f"{where}: fitted width", fitted,
                                     f"{encoder.model_id} width {encoder.dim} x "
                                     f"{len(probe.layers)} layers", width)
    from xsteer.encoders.identity import config_digest, same_weights, weights_probe

    digest = config_digest(getattr(encoder, "config", None))
    if rec.get("config_sha") and digest and rec["config_sha"] != digest:
        raise SourceIdentityError(f"{where}: {encoder.model_id} has another architecture "
                                  f"(config digest {digest} != recorded {rec['config_sha']})")
    if weights and rec.get("weight_probe") is not None:
        same = same_weights(rec["weight_probe"], weights_probe(encoder.model))
        if same is False:
            raise SourceIdentityError(f"{where}: the loaded {encoder.model_id} has other weights "
                                      "than the ones the probe was fitted on (weight probe "
                                      "differs)")


class SourceGate:
    """A fitted, calibrated `SourceProbe` plus the source `Encoder` that feeds it.

    Args:
        probe: a `SourceProbe` with a threshold.
        encoder: the source model's `xsteer.encoders.Encoder` (same model, layers, width).
        check: compare the probe's recorded identity with the encoder first (loads the weights).
    """

    def __init__(self, probe: SourceProbe, encoder: Any, *, check: bool = True) -> None:
        if probe.threshold_ is None:
            raise XSteerError(f"source probe for {probe.model_id!r} has no threshold: calibrate "
                              "it on held-apart benign texts first (xsteer gate calibrate "
                              "--source)")
        if check:
            check_source(probe, encoder)
        self.probe = probe
        self.encoder = encoder
        self._lock = threading.RLock()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, device: str = "cpu",
                        dtype: str | torch.dtype = "float32", encoder: Any = None,
                        trust_remote_code: bool = False) -> SourceGate:
        """Load the probe folder and its source model (once). ``encoder`` overrides the model."""
        probe = SourceProbe.from_pretrained(str(path))
        if probe.threshold_ is None:
            raise XSteerError(f"{path}: the source probe has no threshold; recalibrate it with "
                              "xsteer gate calibrate --source")
        if encoder is None:
            encoder = load_source_encoder(probe.source.get("name") or probe.model_id,
                                          device=device, dtype=dtype,
                                          trust_remote_code=trust_remote_code)
        return cls(probe, encoder)

    @property
    def names(self) -> tuple[str, ...]:
        """The probe's categories plus ``global``."""
        return tuple(dict.fromkeys([*self.probe.names_, GLOBAL]))

    def features(self, texts: Sequence[str]) -> torch.Tensor:
        """Stacked pooled source features ``(n, dim · layers)`` of ``texts``."""
        with self._lock:
            by = self.encoder.encode_layers(list(texts), list(self.probe.layers),
                                            self.probe.pooling, progress=False)
        return stack_layers(by, self.probe.layers)

    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        """``(n, len(probe.names_))``; empty prompts get ``-inf`` (they never fire)."""
        texts = list(texts)
        out = torch.full((len(texts), len(self.probe.names_)), float("-inf"))
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if keep:
            out[keep] = self.probe.logits(self.features([texts[i] for i in keep]))
        return out

    def decide(self, texts: Sequence[str], half: bool = False) -> dict[str, torch.Tensor]:
        """Per category (and ``global`` = any), a boolean ``(n,)``: does the source model read
        each prompt as unsafe. ``half``: the ``(q/2, delta/2)`` threshold, for an OR."""
        return self.probe.decide_logits(self.logits(texts), half)

    def score(self, texts: Sequence[str], half: bool = False) -> list[dict[str, Any]]:
        """One record per prompt, in input order:
        ``{"prompt", "fires", "categories": {name: {"score", "fires"}}}`` (score = the logit;
        ``global`` scores the largest logit, the probe's gate score)."""
        texts = list(texts)
        tau = self.probe._tau(half)
        L = self.logits(texts)
        out = []
        for i, t in enumerate(texts):
            cats = {name: {"score": float(L[i, j]), "fires": bool(L[i, j] > tau)}
                    for j, name in enumerate(self.probe.names_)}
            top = float(L[i].max()) if L.shape[1] else float("-inf")
            cats[GLOBAL] = {"score": top, "fires": bool(top > tau)}
            out.append({"prompt": t, "fires": bool(top > tau), "categories": cats})
        return out

    def timed_decide(self, texts: Sequence[str]) -> tuple[dict[str, torch.Tensor], float]:
        """`decide` plus its wall-clock cost in milliseconds per prompt (encoding included)."""
        t0 = time.perf_counter()
        out = self.decide(texts)
        return out, 1000.0 * (time.perf_counter() - t0) / max(len(list(texts)), 1)

    def __repr__(self) -> str:
        return (f"SourceGate(model={self.encoder.model_id!r}, layers={list(self.probe.layers)}, "
                f"names={list(self.names)}, threshold={self.probe.threshold_:.4g})")


def load_source_encoder(model: str, *, device: str = "cpu", dtype: str | torch.dtype = "float32",
                        trust_remote_code: bool = False) -> Any:
    """The source model as an uncached `Encoder` (prompts at inference are not worth caching),
    with one-line errors for a model that cannot be reached."""
    from xsteer.encoders import get_encoder

    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if not isinstance(torch_dtype, torch.dtype):
        raise XSteerError(f"unknown dtype {dtype!r} for the source model")
    try:
        enc = get_encoder(model, cache=False, device=device, dtype=torch_dtype,
                          trust_remote_code=trust_remote_code)
        getattr(enc, "tokenizer", None)  # load now: an unreachable model fails here, in one line
    except XSteerError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise XSteerError(f"source model {model!r} cannot be loaded: "
                          f"{' '.join(str(exc).split())[:300]}") from exc
    return enc


def is_source_gate_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a source-probe folder (``probe.json``) rather than target gates."""
    return (Path(path).expanduser() / "probe.json").is_file()
