"""Steering overhead at real size: FLUX.1-schnell and Wan 2.2 A14B, random weights, bf16, CUDA.

The models are built in code from their published configs (written out below; nothing is
downloaded), with random weights created directly on the device in bf16: the cost of steering
does not depend on the weights. Tokenizers are xsteer's offline byte-level BPE (`tiny_tokenizer`),
padded to the real ``max_sequence_length``, so every encoder reads a full-length sequence.

For each pipeline, interleaved, medians of ``--reps`` calls after a warm-up:

- ``unsteered``: ``pipe(prompt=...)``;
- ``hooks``: the same call inside ``Steerer.apply`` (both branches steered);
- ``conditional``: ``Steerer.generate`` (the default: positive prompt encoded with the hooks on,
  passed as ``prompt_embeds``);
- ``gated``: the conditional path with a benign-calibrated gate per call;
- ``source-gated`` (FLUX only): the conditional path decided by a source-side gate whose source
  model is an 8B LLM (the Llama-3.1-8B config, random bf16 weights, four probe layers) on the
  same device; its decision alone (``source decision``) is timed too and reported as a share
  of the unsteered call (target: <= 2%);

reported as ratios to ``unsteered`` (target: <= 1.01), plus the peak-memory delta of each
variant over the unsteered call. ``--tiny`` runs the same code with tiny configs on the CPU
(float32) to check the script; its ratios say nothing about real size.

    python bench/gpu_overhead.py                # CUDA, real configs (needs ~90 GB for Wan A14B)
    python bench/gpu_overhead.py --tiny         # CPU smoke run
    python bench/gpu_overhead.py --only flux --reps 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

# -- published configs (FLUX.1-schnell, Wan 2.2 T2V A14B), as diffusers/transformers take them --
FLUX_TRANSFORMER = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                        attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                        pooled_projection_dim=768, guidance_embeds=False,
                        axes_dims_rope=(16, 56, 56))
FLUX_VAE = dict(in_channels=3, out_channels=3, latent_channels=16,
                block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2,
                norm_num_groups=32, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
                use_quant_conv=False, use_post_quant_conv=False)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
              projection_dim=768, bos_token_id=0, eos_token_id=2, pad_token_id=1)
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              relative_attention_num_buckets=32, relative_attention_max_distance=128,
              feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.0)
UMT5_XXL = {**T5_XXL, "vocab_size": 256384}
LLAMA_31_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                   num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                   max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192},
                   bos_token_id=128000, eos_token_id=128001)
WAN22_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128,
                         in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
                         ffn_dim=13824, num_layers=40, cross_attn_norm=True,
                         qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
WAN_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
               temperal_downsample=[False, True, True], latents_mean=[0.0] * 16,
               latents_std=[1.0] * 16)
REAL_CALLS = {"flux": dict(height=1024, width=1024, num_inference_steps=4, guidance_scale=0.0,
                           max_sequence_length=256),
              "wan22": dict(height=480, width=832, num_frames=17, num_inference_steps=4,
                            guidance_scale=4.0, max_sequence_length=512)}

# -- tiny stand-ins for --tiny (same classes, same code path) ------------------------------------
TINY = {
    "flux_transformer": dict(FLUX_TRANSFORMER, num_layers=1, num_single_layers=1,
                             attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                             pooled_projection_dim=32, in_channels=4, axes_dims_rope=(4, 4, 8)),
    "flux_vae": dict(FLUX_VAE, latent_channels=1, block_out_channels=(4,),
                     down_block_types=("DownEncoderBlock2D",),
                     up_block_types=("UpDecoderBlock2D",), layers_per_block=1,
                     norm_num_groups=2),
    "clip": dict(CLIP_L, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                 num_attention_heads=4, projection_dim=32, vocab_size=1000),
    "t5": dict(T5_XXL, vocab_size=1000, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
               relative_attention_num_buckets=8),
    "wan_transformer": dict(WAN22_TRANSFORMER, num_attention_heads=2, attention_head_dim=12,
                            text_dim=32, ffn_dim=32, num_layers=1, rope_max_seq_len=32),
    "wan_vae": dict(WAN_VAE, base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1),
    "llama": dict(LLAMA_31_8B, vocab_size=1000, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                  bos_token_id=1, eos_token_id=2),
}
TINY_CALLS = {"flux": dict(height=16, width=16, num_inference_steps=2, guidance_scale=0.0,
                           max_sequence_length=16),
              "wan22": dict(height=16, width=16, num_frames=5, num_inference_steps=2,
                            guidance_scale=4.0, max_sequence_length=16)}


def _make(factory: Callable[[], Any], device: str, dtype: torch.dtype) -> Any:
    """Create a model's parameters directly on ``device`` (float32, the dtype every init supports;
    rotary tables and complex buffers need it), then cast to ``dtype`` before the next model is
    built, so the float32 copy of only one model exists at a time."""
    with torch.device(device):
        model = factory()
    return model.to(dtype)


def build_flux(tiny: bool, device: str, dtype: torch.dtype) -> Any:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from xsteer.pipelines.tiny import tiny_tokenizer

    t = TINY if tiny else {}
    tr = _make(lambda: FluxTransformer2DModel(**t.get("flux_transformer", FLUX_TRANSFORMER)),
               device, dtype)
    vae = _make(lambda: AutoencoderKL(**t.get("flux_vae", FLUX_VAE)), device, dtype)
    clip = _make(lambda: CLIPTextModel(CLIPTextConfig(**t.get("clip", CLIP_L))), device, dtype)
    t5 = _make(lambda: T5EncoderModel(T5Config(**t.get("t5", T5_XXL))), device, dtype)
    n = (TINY_CALLS if tiny else REAL_CALLS)["flux"]["max_sequence_length"]
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip,
                        tokenizer=tiny_tokenizer(77), text_encoder_2=t5,
                        tokenizer_2=tiny_tokenizer(n), transformer=tr)


def build_wan22(tiny: bool, device: str, dtype: torch.dtype) -> Any:
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    from xsteer.pipelines.tiny import tiny_tokenizer

    t = TINY if tiny else {}
    def expert() -> Any:
        return WanTransformer3DModel(**t.get("wan_transformer", WAN22_TRANSFORMER))

    high, low = _make(expert, device, dtype), _make(expert, device, dtype)
    vae = _make(lambda: AutoencoderKLWan(**t.get("wan_vae", WAN_VAE)), device, dtype)
    umt5 = _make(lambda: UMT5EncoderModel(UMT5Config(**t.get("t5", UMT5_XXL))), device, dtype)
    n = (TINY_CALLS if tiny else REAL_CALLS)["wan22"]["max_sequence_length"]
    return WanPipeline(tokenizer=tiny_tokenizer(n), text_encoder=umt5, vae=vae,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=high,
                       transformer_2=low, boundary_ratio=0.875)


BUILDERS: dict[str, tuple[Callable[..., Any], str]] = {"flux": (build_flux, "text_encoder_2"),
                                                       "wan22": (build_wan22, "text_encoder")}
PROMPT = "a photo of a red fox in a snowy forest at dawn"
BENIGN = ["a bowl of fruit on a table", "a dog in a park", "a red bicycle by a wall",
          "a bridge over a river", "a cup of coffee", "mountains under snow",
          "a train at a station", "a vase of tulips"]


def build_source_gate(tiny: bool, device: str, dtype: torch.dtype) -> Any:
    """A `SourceGate` on an 8B Llama (random weights) with a random four-layer probe."""
    from transformers import LlamaConfig, LlamaModel

    from xsteer.encoders import HFEncoder
    from xsteer.pipelines.tiny import tiny_tokenizer
    from xsteer.probe_fit import default_probe_layers
    from xsteer.steer.probe import SourceProbe
    from xsteer.steer.source_gate import SourceGate

    cfg = LlamaConfig(**(TINY["llama"] if tiny else LLAMA_31_8B))
    model = _make(lambda: LlamaModel(cfg), device, dtype)
    enc = HFEncoder.from_model(model, tiny_tokenizer(77), model_id="random/llama-3.1-8b",
                               device=device, dtype=dtype, causal=True)
    layers = default_probe_layers(cfg.num_hidden_layers)
    g = torch.Generator().manual_seed(0)
    width = cfg.hidden_size * len(layers)
    cats = ("violence", "sexual", "global")
    probe = SourceProbe(model_id=enc.model_id, layers=layers, mean_=torch.zeros(width),
                        scale_=torch.ones(width),
                        coef_=torch.randn(len(cats), width, generator=g) / width ** 0.5,
                        intercept_=torch.zeros(len(cats)), names_=cats, threshold_=0.0)
    return SourceGate(probe, enc, check=False)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(name: str, tiny: bool, device: str, dtype: torch.dtype, reps: int) -> dict[str, Any]:
    """Median seconds, ratio to unsteered and peak-memory delta for each variant."""
    from xsteer.directions import Direction
    from xsteer.pipelines import Steerer, site_features
    from xsteer.steer import Gate

    build, site = BUILDERS[name]
    t0 = time.perf_counter()
    pipe = build(tiny, device, dtype)
    pipe.set_progress_bar_config(disable=True)
    built_s = time.perf_counter() - t0
    call = dict((TINY_CALLS if tiny else REAL_CALLS)[name])
    n = call["max_sequence_length"]
    feats = site_features(pipe, BENIGN, [site], max_sequence_length=n)[site]
    g = torch.Generator().manual_seed(0)
    d = Direction(torch.randn(feats.shape[1], generator=g) * feats.norm(dim=1).mean()
                  / feats.shape[1] ** 0.5, "random", site)
    gate = Gate.calibrate(feats, d.vector, quantile=0.9)
    additive, gated = Steerer(d, strength=0.5), Steerer(d, mode="gated", strength=0.5, gates=gate)
    source = build_source_gate(tiny, device, dtype) if name == "flux" else None
    by_source = (Steerer(d, mode="gated", strength=0.5, source_gate=source)
                 if source is not None else None)

    def run(kind: str) -> None:
        kw = dict(call, output_type="latent", generator=torch.Generator("cpu").manual_seed(0))
        if kind == "unsteered":
            pipe(prompt=PROMPT, **kw)
        elif kind == "hooks":
            with additive.apply(pipe):
                pipe(prompt=PROMPT, **kw)
        elif kind == "conditional":
            additive.generate(pipe, PROMPT, **kw)
        elif kind == "source decision":
            assert source is not None
            source.decide([PROMPT])
        elif kind == "source-gated":
            assert by_source is not None
            by_source.generate(pipe, PROMPT, **kw)
        else:
            gated.generate(pipe, PROMPT, **kw)
        _sync(device)

    kinds: tuple[str, ...] = ("unsteered", "hooks", "conditional", "gated")
    if source is not None:
        kinds += ("source decision", "source-gated")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    peaks: dict[str, int] = {}
    for k in kinds:  # warm-up, and the peak memory of each variant on its own
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        run(k)
        peaks[k] = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    for _ in range(reps):  # interleaved, so drift hits every variant alike
        for k in kinds:
            t = time.perf_counter()
            run(k)
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"pipeline": name, "device": device, "dtype": str(dtype), "tiny": tiny,
            "reps": reps, "call": call, "built_s": round(built_s, 2),
            "median_s": {k: round(v, 5) for k, v in med.items()},
            "ratio": {k: round(med[k] / med["unsteered"], 4) for k in kinds},
            "peak_memory_delta_mib": {k: round((peaks[k] - peaks["unsteered"]) / 2**20, 1)
                                      for k in kinds},
            "peak_memory_unsteered_gib": round(peaks["unsteered"] / 2**30, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny configs on the CPU (smoke run)")
    ap.add_argument("--only", choices=sorted(BUILDERS), action="append")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()  # truncation notices, once per call
    transformers.logging.set_verbosity_error()
    if args.tiny:
        device, dtype = "cpu", torch.float32
        torch.set_num_threads(1)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --tiny for the CPU smoke run")
        device, dtype = "cuda", torch.bfloat16
    results = []
    for name in args.only or list(BUILDERS):
        r = measure(name, args.tiny, device, dtype, args.reps)
        print(json.dumps(r), flush=True)
        results.append(r)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
