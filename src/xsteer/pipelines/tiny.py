"""Tiny seeded models built in code, so the harness runs end to end offline on a CPU.

They have random weights: their images, CLIP scores and FIDs mean nothing about steering. They
exist to exercise the plumbing (the ``tiny-sd``, ``tiny-clip`` and ``tiny`` feature aliases of a
sweep config) before anyone spends GPU hours.

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

from xsteer.errors import require


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


def _parts(seed: int, sample_size: int) -> tuple[Any, Any, Any, Any]:
    """(tokenizer, CLIP text encoder of width 32, tiny VAE, DDIM scheduler), seeded."""
    diffusers = require("diffusers", "diffusers")
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = tiny_tokenizer()
    torch.manual_seed(seed + 1)
    vae = diffusers.AutoencoderKL(
        block_out_channels=(4, 8), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=2,
        sample_size=sample_size)
    torch.manual_seed(seed + 2)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)).eval()
    sched = diffusers.DDIMScheduler(beta_start=0.00085, beta_end=0.012,
                                    beta_schedule="scaled_linear", clip_sample=False,
                                    set_alpha_to_one=False, steps_offset=1)
    return tok, text, vae, sched


def tiny_sd_pipeline(seed: int = 0, sample_size: int = 32) -> Any:
    """A seeded tiny ``StableDiffusionPipeline`` (CLIP text width 32, 2-level UNet, tiny VAE).

    2 steps at 32x32 take ~0.05 s on a CPU. (The pipelines' test factories live in
    ``tests/pipelines/tiny.py``, outside the package, so the CLI alias needs its own builder.)
    """
    diffusers = require("diffusers", "diffusers")
    tok, text, vae, sched = _parts(seed, sample_size)
    torch.manual_seed(seed)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=sample_size // 4,
        in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        norm_num_groups=2, attention_head_dim=2)
    pipe = diffusers.StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text, tokenizer=tok, scheduler=sched,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_t2v_pipeline(seed: int = 0, sample_size: int = 32) -> Any:
    """A seeded tiny ``TextToVideoSDPipeline`` (ModelScope layout): the same text encoder and
    VAE as `tiny_sd_pipeline`, a tiny 3D UNet. Pass ``num_frames`` in ``call_kwargs``."""
    diffusers = require("diffusers", "diffusers")
    tok, text, vae, sched = _parts(seed, sample_size)
    torch.manual_seed(seed)
    unet = diffusers.UNet3DConditionModel(
        block_out_channels=(8, 8), layers_per_block=1, sample_size=sample_size // 4,
        in_channels=4, out_channels=4, norm_num_groups=2,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=32,
        attention_head_dim=4)
    pipe = diffusers.TextToVideoSDPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                           scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    return pipe
