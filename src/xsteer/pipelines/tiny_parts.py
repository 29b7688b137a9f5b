"""Parts of the tiny seeded pipelines: a byte-level CLIP tokenizer, seeded text encoders (CLIP,
T5/UMT5), a tiny VAE, UNet and DDIM scheduler, and the tiny CLIP model and feature net that the
``tiny-clip`` / ``tiny`` aliases of a sweep config use.

Random weights: what they produce means nothing about steering; they exercise the plumbing.

>>> model, processor = tiny_clip()
>>> model.config.projection_dim
16
"""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

VOCAB = 1000  # >= 514 byte-level tokens; every tiny text encoder uses this vocabulary size


@lru_cache(maxsize=1)
def _byte_vocab_dir() -> str:
    """A CLIP BPE vocabulary of the 256 byte-level characters (+ ``</w>`` forms), no merges.

    Every prompt tokenizes into characters, which is all a tiny random text encoder needs.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    d = Path(tempfile.mkdtemp(prefix="xsteer-tiny-tok-"))
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return str(d)


def tiny_tokenizer(max_length: int = 77) -> Any:
    from transformers import CLIPTokenizer

    d = Path(_byte_vocab_dir())
    return CLIPTokenizer(vocab=str(d / "vocab.json"), merges=str(d / "merges.txt"),
                         model_max_length=max_length)


def tiny_clip(seed: int = 0, image_size: int = 32) -> tuple[Any, Any]:
    """A seeded random ``CLIPModel`` (width 32, projection 16) and a matching ``CLIPProcessor``."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPVisionConfig,
    )

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=77,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                              num_hidden_layers=2, image_size=image_size, patch_size=8)
    cfg = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                     projection_dim=16)
    gen = torch.Generator().manual_seed(seed)
    model = CLIPModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # re-seed explicitly: init order must not change results
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        # a shared component in both towers' outputs, so image-text cosines are mostly positive
        # and the CLIP score (torchmetrics clamps negative cosines to 0) is not always 0
        shared = torch.randn(32, generator=gen) * 0.05
        model.vision_model.post_layernorm.bias.copy_(shared)
        model.text_model.final_layer_norm.bias.copy_(shared)
        model.text_projection.weight.copy_(model.visual_projection.weight)
    proc = CLIPImageProcessor(size={"shortest_edge": image_size},
                              crop_size={"height": image_size, "width": image_size})
    return model, CLIPProcessor(image_processor=proc, tokenizer=tok)


class TinyFeatures(nn.Module):
    """A seeded random conv net mapping images to ``num_features`` features (FID / distances).

    Accepts uint8 ``(n, 3, H, W)`` in [0, 255] (torchmetrics' probe) or floats in [0, 1].
    """

    def __init__(self, num_features: int = 16, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.num_features = num_features
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, num_features, 3, stride=2, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = nn.functional.interpolate(x.float(), size=(32, 32), mode="bilinear",
                                      align_corners=False)
        h = torch.tanh(self.conv2(torch.tanh(self.conv1(x * 2 - 1))))
        return h.mean(dim=(-1, -2)).double()


def clip_tokenizer(max_length: int = 16) -> Any:
    """The library's byte-level CLIP tokenizer (one token per character), built offline."""
    return tiny_tokenizer(max_length=max_length)


def text_clip(seed: int, hidden: int = 32, projection: int | None = None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=hidden,
                         intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
                         num_hidden_layers=2, vocab_size=VOCAB, max_position_embeddings=77,
                         projection_dim=projection or hidden, hidden_act="gelu")
    model = CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)
    return model.eval()


def text_t5(seed: int, d_model: int = 32, umt5: bool = False) -> Any:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    kw: dict[str, Any] = dict(vocab_size=VOCAB, d_model=d_model, d_kv=8, d_ff=37, num_layers=2,
                              num_heads=4,
                              relative_attention_num_buckets=8, dropout_rate=0.0,
                              pad_token_id=513, decoder_start_token_id=0)
    if umt5:
        return UMT5EncoderModel(UMT5Config(**kw)).eval()
    return T5EncoderModel(T5Config(**kw)).eval()


def vae(seed: int, latent_channels: int = 4, blocks: tuple[int, ...] = (4, 8), **kw: Any) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    n = len(blocks)
    return AutoencoderKL(block_out_channels=blocks, in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, latent_channels=latent_channels,
                         norm_num_groups=2 if min(blocks) >= 2 else 1, layers_per_block=1, **kw)


def ddim() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def unet(seed: int, cross: int, **kw: Any) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, norm_num_groups=2,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=cross, attention_head_dim=2, **kw)
