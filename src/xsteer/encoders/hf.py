"""`HFEncoder`: hidden states of transformers models (causal LMs, BERT-like, T5 and CLIP text).

Hidden states are indexed as transformers returns them with ``output_hidden_states=True``:
0 = token embeddings, ``num_layers`` = the model's output ``last_hidden_state`` (after a final
norm where the model has one: for a CLIP text encoder this is the pipelines' ``prompt_embeds``). Texts are batched sorted by
token length (less padding, restored order), padded on the right, and run under
``torch.inference_mode``; the model loads only when a result is not in the cache.

Defaults, and why:
- encoder models (MiniLM, T5, CLIP text): the last layer, mean pooling over all real tokens
  including [CLS]/[SEP] — what sentence-transformers does, so MiniLM matches it;
- causal LMs: layer ``num_layers // 3`` (6 of Gemma-3-270M's 18), mean pooling, BOS dropped.
  Gemma's BOS is an activation sink whose huge state would dominate any mean. Layer 6 is where
  a benign-only ridge map carries the safety direction best — the pipeline's central product.
  Measured here (shipped data, 1,200 benign anchors, 5 random halvings of the 366 pairs):
  cos(transported, native MiniLM direction) 0.73 at layer 2-4, 0.75 ± 0.01 at 6, 0.71 at 9,
  0.69 at 12-13, 0.68 at 15, 0.72 at 18 (native half vs half: 0.94); an earlier measurement with
  templated benign anchors saw the same ordering (ridge best from early layers, cos 0.47 at 6). Safe/unsafe separation in Gemma itself peaks later (pair AUROC 0.90 at 12-14 vs 0.73
  at 6), so a source-side gate should read a later layer: pass ``layer=`` or use `select_layer`.

>>> enc = HFEncoder.from_model(model, tokenizer, model_id="tiny")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from xsteer.encoders.base import Encoder, check_texts, show_progress
from xsteer.encoders.cache import EmbeddingCache
from xsteer.encoders.pooling import pool, pooled_mask
from xsteer.errors import XSteerError
from xsteer.models.registry import ModelSpec, hub_kwargs, kind_from_config, load_hf

# Truncation length of pooled encoding when the tokenizer declares none (or an absurd one).
DEFAULT_MAX_LENGTH = 512


def text_module(model: Any) -> Any:
    """The module that maps token ids to hidden states: the decoder body of a causal LM (no LM
    head, whose 262k-vocab logits would cost more than Gemma's blocks), a T5 encoder stack, a
    CLIP text transformer, or a plain encoder model itself."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()
    if hasattr(model, "text_model"):
        return model.text_model
    return model.base_model


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if getter is not None else config


class HFEncoder(Encoder):
    """Pooled hidden states of a transformers model at any layer, with optional BOS dropping.

    Build it with `get_encoder` (lazy: the model loads on first real use) or, for a model you
    already hold, `HFEncoder.from_model`.
    """

    def __init__(self, spec: ModelSpec | None = None, *, model: Any = None, tokenizer: Any = None,
                 config: Any = None, model_id: str | None = None, revision: str | None = None,
                 causal: bool | None = None, drop_bos: bool | None = None,
                 default_layer: int | None = None, default_pooling: str = "mean",
                 max_length: int | None = None, cache: EmbeddingCache | None = None,
                 dtype: torch.dtype = torch.float32, device: str | None = None,
                 trust_remote_code: bool = False) -> None:
        if spec is None and model is None:
            raise XSteerError("HFEncoder needs a ModelSpec or a loaded model")
        self.spec = spec
        self._model = model
        self._tokenizer = tokenizer
        self._module: Any = None
        self._dtype = dtype
        if device is None:  # a model handed in stays where it is; loaded ones go to the CPU
            first = next(iter(model.parameters()), None) if model is not None else None
            device = str(first.device) if first is not None else "cpu"
        self.device = device
        self.trust_remote_code = trust_remote_code
        if config is None:
            if model is not None:
                config = model.config
            else:
                from transformers import AutoConfig

                assert spec is not None
                config = AutoConfig.from_pretrained(spec.path, trust_remote_code=trust_remote_code,
                                                    **hub_kwargs(spec))
        self.config = config
        text_cfg = _text_config(config)
        self.dim = int(text_cfg.hidden_size)
        self.num_layers = int(text_cfg.num_hidden_layers)
        if causal is None:
            if spec is not None:
                causal = spec.kind == "causal-lm"
            else:  # in-memory models have no `architectures` until saved: use the class name
                cfg = config.to_dict()
                if not cfg.get("architectures") and model is not None:
                    cfg["architectures"] = [type(model).__name__]
                causal = kind_from_config(cfg) == "causal-lm"
        self.causal = bool(causal)
        self.model_id = model_id or (spec.model_id if spec is not None else
                                     str(getattr(config, "_name_or_path", "") or "unnamed"))
        self.revision = revision if revision is not None else (
            spec.revision if spec is not None else None)
        self.drop_bos = self.causal if drop_bos is None else bool(drop_bos)
        self.default_pooling = default_pooling
        self.default_layer = self.num_layers  # placeholder so resolve_site can validate
        self.default_layer = self.resolve_site(
            default_layer if default_layer is not None else
            (max(1, self.num_layers // 3) if self.causal else self.num_layers),
            default_pooling)[0]
        self._max_length = max_length
        self.cache = cache

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, model_id: str,
                   revision: str | None = None, **kw: Any) -> HFEncoder:
        """Wrap an already loaded model and tokenizer (``model_id``/``revision`` are recorded)."""
        return cls(None, model=model, tokenizer=tokenizer, model_id=model_id, revision=revision,
                   **kw)

    # -- lazy loading -------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._model is None:
            assert self.spec is not None
            self._model, tok = load_hf(self.spec, dtype=self._dtype,
                                       trust_remote_code=self.trust_remote_code,
                                       device=self.device)
            self._tokenizer = self._tokenizer or tok
        if self._tokenizer is None:
            raise XSteerError(f"{self.model_id}: no tokenizer given")
        if self._module is None:
            self._model.eval()
            self._module = text_module(self._model)
            accepted = inspect.signature(self._module.forward).parameters
            self._accepts = set(accepted)
            self._var_kw = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
            tok = self._tokenizer
            if tok.pad_token is None:  # GPT-2-like: any id works, padded positions are masked
                tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token

    @property
    def model(self) -> Any:
        self._ensure_loaded()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._ensure_loaded()
        return self._tokenizer

    @property
    def max_length(self) -> int:
        """Truncation length for pooled encoding: explicit, else the tokenizer's, capped at 512."""
        if self._max_length is not None:
            return self._max_length
        if self._tokenizer is None:
            return DEFAULT_MAX_LENGTH
        declared = getattr(self._tokenizer, "model_max_length", None) or DEFAULT_MAX_LENGTH
        return int(min(declared, DEFAULT_MAX_LENGTH))

    def cache_settings(self) -> dict[str, Any]:
        model_dtype = getattr(self._model, "dtype", None) if self._model is not None else None
        dtype = str(model_dtype or self._dtype).replace("torch.", "")
        return {"encoder": "HFEncoder", "max_length": self.max_length, "dtype": dtype}

    # -- forward ------------------------------------------------------------------------------
    def _tokenize(self, texts: list[str], max_length: int, padding: bool | str) -> Any:
        return self._tokenizer(texts, padding=padding, truncation=True, max_length=max_length,
                               padding_side="right", return_tensors="pt")

    def _hidden_states(self, batch: Any) -> tuple[torch.Tensor, ...]:
        inputs = {k: v.to(self.device) for k, v in batch.items()
                  if k in ("input_ids", "attention_mask", "token_type_ids")
                  and (k in self._accepts or self._var_kw)}
        if "use_cache" in self._accepts:
            inputs["use_cache"] = False  # no KV cache: we never generate here
        out = self._module(**inputs, output_hidden_states=True, return_dict=True)
        hs = out.hidden_states
        if hs is None or len(hs) != self.num_layers + 1:
            raise XSteerError(f"{self.model_id}: expected {self.num_layers + 1} hidden states, "
                              f"got {None if hs is None else len(hs)}")
        hs = list(hs)
        last = getattr(out, "last_hidden_state", None)
        if last is not None:
            # The top layer is the model's output: CLIP's hidden_states[-1] precedes its final
            # LayerNorm, but pipelines condition on last_hidden_state (their prompt_embeds).
            # For BERT, T5, Llama and Gemma the two are the same tensor.
            hs[-1] = last
        return tuple(hs)

    def _batches(self, texts: list[str], batch_size: int) -> list[list[int]]:
        """Index batches sorted by token length, so each batch pads little."""
        lengths = [len(ids) for ids in self._tokenizer(texts, truncation=True,
                                                       max_length=self.max_length)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def _compute(self, texts: list[str], layers: list[int], pooling: str, batch_size: int,
                 progress: bool | None) -> dict[int, torch.Tensor]:
        from tqdm.auto import tqdm

        self._ensure_loaded()
        out = {layer: torch.empty(len(texts), self.dim) for layer in layers}
        batches = self._batches(texts, batch_size)
        bos = self._tokenizer.bos_token_id
        for idx in tqdm(batches, desc=f"encode {self.model_id}", unit="batch",
                        disable=not show_progress(progress, len(batches))):
            batch = self._tokenize([texts[i] for i in idx], self.max_length, padding=True)
            mask = pooled_mask(batch["input_ids"], batch["attention_mask"], bos, self.drop_bos)
            with torch.inference_mode():
                hs = self._hidden_states(batch)
                pooled = {layer: pool(hs[layer].float().cpu(), mask, pooling) for layer in layers}
            rows = torch.tensor(idx)
            for layer in layers:  # writing into a normal tensor leaves no inference tensors out
                out[layer][rows] = pooled[layer]
        return out

    def encode_tokens(self, texts: Sequence[str], layer: int | None = None,
                      max_length: int = 77, batch_size: int = 32,
                      progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from tqdm.auto import tqdm

        texts = check_texts(texts)
        layer, _ = self.resolve_site(layer, None)
        self._ensure_loaded()
        states = torch.zeros(len(texts), max_length, self.dim)
        masks = torch.zeros(len(texts), max_length, dtype=torch.bool)
        starts = range(0, len(texts), batch_size)
        bos = self._tokenizer.bos_token_id
        for s in tqdm(starts, desc=f"tokens {self.model_id}", unit="batch",
                      disable=not show_progress(progress, len(starts))):
            batch = self._tokenize(texts[s:s + batch_size], max_length, padding="max_length")
            with torch.inference_mode():
                h = self._hidden_states(batch)[layer].float().cpu()
            states[s:s + batch_size] = h
            masks[s:s + batch_size] = pooled_mask(batch["input_ids"], batch["attention_mask"],
                                                  bos, self.drop_bos)
        return states, masks
