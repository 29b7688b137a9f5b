"""Tiny seeded text-to-video pipelines built in code (ModelScope T2V, Wan 2.1 / 2.2, CogVideoX,
HunyuanVideo), one factory per family; `xsteer.pipelines.tiny` lists them with the image ones.

Every factory returns a fresh pipeline on CPU in float32 whose weights depend only on the seed.
"""

from __future__ import annotations

from typing import Any

import torch

from xsteer.pipelines import tiny_parts as parts


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
    return TextToVideoSDPipeline(vae=parts.vae(seed), text_encoder=parts.text_clip(seed + 1),
                                 tokenizer=parts.clip_tokenizer(), unet=unet, scheduler=parts.ddim())


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
    return WanPipeline(tokenizer=parts.clip_tokenizer(64), text_encoder=parts.text_t5(seed + 1, 32, umt5=True),
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
    return CogVideoXPipeline(tokenizer=parts.clip_tokenizer(16), text_encoder=parts.text_t5(seed + 1, 32),
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
    llama = LlamaModel(LlamaConfig(vocab_size=parts.VOCAB, hidden_size=16, intermediate_size=37,
                                   num_hidden_layers=3, num_attention_heads=2,
                                   num_key_value_heads=2, max_position_embeddings=512,
                                   pad_token_id=513)).eval()
    return HunyuanVideoPipeline(text_encoder=llama, tokenizer=parts.clip_tokenizer(64), transformer=tr,
                                vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                                text_encoder_2=parts.text_clip(seed + 3, hidden=8),
                                tokenizer_2=parts.clip_tokenizer())
