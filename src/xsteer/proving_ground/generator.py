"""The proving-ground generators: small pixel-space diffusion UNets from diffusers building blocks
that cross-attend to the token states of a frozen, real text encoder (default all-MiniLM-L6-v2).

`build_unet` makes a `UNet2DConditionModel` (T2I) or `UNet3DConditionModel` (T2V); `Generator`
holds the UNet, the noise scheduler and a config, samples with DDIM and classifier-free guidance,
and saves/loads a diffusers-style folder (``unet/`` and ``scheduler/`` via ``save_pretrained`` in
safetensors, plus ``proving_ground.json``).

Steering acts on the conditional token states only (the unconditional branch of guidance keeps
the empty prompt's states), the same choice as passing steered ``prompt_embeds`` to a pipeline.

>>> g = Generator.tiny(cross_attention_dim=8)
>>> g.sample(torch.zeros(2, 4, 8), torch.ones(2, 4, dtype=torch.bool), steps=2).shape
torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from xsteer.errors import ArtifactError, DimensionMismatchError, XSteerError, require
from xsteer.steer import masked_mean

CONFIG_NAME = "proving_ground.json"
FORMAT = "xsteer-proving-ground/1"
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
VIDEO_UNETS = ("motion", "unet3d")
POOLED_TIME_DIM = 8  # "text_time" also embeds time ids; ours is one constant id


@dataclass
class GeneratorConfig:
    """What a generator was built and trained with (saved as ``proving_ground.json``)."""

    encoder: str = "all-minilm-l6-v2"
    encoder_layer: int | None = None
    max_length: int = 32
    cross_attention_dim: int = 384
    size: int = 32
    frames: int = 0  # 0: images (UNet2D); >= 4: clips (UNetMotionModel or UNet3D)
    block_out_channels: tuple[int, ...] = (64, 128)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    # what the UNet predicts: "epsilon" (the noise), "v_prediction" or "sample" (the clean image)
    prediction_type: str = "sample"
    # clips: "motion" = an image UNet inflated with AnimateDiff motion modules (diffusers
    # `UNetMotionModel`, can start from a trained T2I), or "unet3d" (`UNet3DConditionModel`)
    video_unet: str = "motion"
    # cross-attention ignores pad tokens (an encoder mask); off, the UNet reads pad-token states
    # too, as Stable Diffusion does with CLIP's 77 tokens (video UNets take no mask)
    mask_padding: bool = False
    # SDXL-style pooled conditioning: the mean of the (steered) token states is added to the
    # timestep embedding (diffusers ``addition_embed_type="text_time"``) besides cross-attention
    pooled_text: bool = True
    # the UNet runs on ``patch`` x ``patch`` pixel blocks folded into channels (pixel unshuffle:
    # lossless, so diffusion is still over pixels, but a 32x32 image is an 8x8 grid at patch 4)
    patch: int = 4
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise XSteerError(f"unknown prediction type {self.prediction_type!r}; "
                              f"known: {PREDICTION_TYPES}")
        if self.video_unet not in VIDEO_UNETS:
            raise XSteerError(f"unknown video UNet {self.video_unet!r}; known: {VIDEO_UNETS}")
        if self.patch < 1 or self.size % self.patch:
            raise XSteerError(f"patch {self.patch} must be a positive divisor of size {self.size}")
        if self.video and self.video_unet == "unet3d" and self.pooled_text:
            raise XSteerError("UNet3DConditionModel takes no pooled text: set pooled_text off")
        if self.video and self.mask_padding:
            raise XSteerError("video UNets take no encoder attention mask: mask_padding must be off")

    @property
    def unet_channels(self) -> int:
        return 3 * self.patch * self.patch

    @property
    def video(self) -> bool:
        return self.frames > 0

    @property
    def motion(self) -> bool:
        """Clips drawn by an image UNet with AnimateDiff motion modules (`UNetMotionModel`)."""
        return self.video and self.video_unet == "motion"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        d["format"] = FORMAT
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        if d.get("format") != FORMAT:
            raise ArtifactError(f"not a proving-ground generator config (format {d.get('format')!r})")
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["block_out_channels"] = tuple(kw.get("block_out_channels", (32, 64, 64)))
        # generators saved before these fields existed: images masked pad tokens, clips were 3D
        kw.setdefault("mask_padding", not d.get("frames"))
        kw.setdefault("video_unet", "unet3d")
        kw.setdefault("pooled_text", False)
        kw.setdefault("prediction_type", "epsilon")
        kw.setdefault("patch", 1)
        return cls(**kw)


def build_unet(cfg: GeneratorConfig) -> torch.nn.Module:
    """A small pixel-space UNet (2D for images, 3D for clips) conditioned by cross-attention."""
    diffusers = require("diffusers", "diffusers")
    ch = tuple(cfg.block_out_channels)
    groups = min(8, ch[0])
    if cfg.motion:
        image = build_unet(replace(cfg, frames=0, mask_padding=False))
        return inflate_unet(image, cfg)
    if cfg.video:
        return diffusers.UNet3DConditionModel(
            sample_size=cfg.size // cfg.patch, in_channels=cfg.unet_channels,
            out_channels=cfg.unet_channels, block_out_channels=ch,
            layers_per_block=cfg.layers_per_block, cross_attention_dim=cfg.cross_attention_dim,
            attention_head_dim=cfg.attention_head_dim, norm_num_groups=groups,
            down_block_types=("DownBlock3D",) + ("CrossAttnDownBlock3D",) * (len(ch) - 1),
            up_block_types=("CrossAttnUpBlock3D",) * (len(ch) - 1) + ("UpBlock3D",))
    pooled: dict[str, Any] = {}
    if cfg.pooled_text:
        pooled = {"addition_embed_type": "text_time", "addition_time_embed_dim": POOLED_TIME_DIM,
                  "projection_class_embeddings_input_dim": cfg.cross_attention_dim + POOLED_TIME_DIM}
    return diffusers.UNet2DConditionModel(
        sample_size=cfg.size // cfg.patch, in_channels=cfg.unet_channels,
        out_channels=cfg.unet_channels, block_out_channels=ch,
        layers_per_block=cfg.layers_per_block, cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim, norm_num_groups=groups,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (len(ch) - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (len(ch) - 1) + ("UpBlock2D",), **pooled)


def inflate_unet(image_unet: torch.nn.Module, cfg: GeneratorConfig) -> torch.nn.Module:
    """An image UNet + fresh AnimateDiff motion modules = a `UNetMotionModel` for clips.

    The image weights are copied; each motion module's output projection starts at zero (as in
    AnimateDiff), so the inflated model first draws every frame as the image model would, and
    training on clips only has to add the motion.
    """
    diffusers = require("diffusers", "diffusers")
    ch = tuple(cfg.block_out_channels)
    adapter = diffusers.MotionAdapter(
        block_out_channels=ch, motion_layers_per_block=cfg.layers_per_block,
        motion_num_attention_heads=tuple(max(1, c // cfg.attention_head_dim) for c in ch),
        motion_norm_num_groups=min(8, ch[0]), motion_max_seq_length=max(32, cfg.frames),
        use_motion_mid_block=True)
    unet = diffusers.UNetMotionModel.from_unet2d(image_unet, adapter)
    with torch.no_grad():
        if cfg.pooled_text:  # from_unet2d leaves the pooled-text projection out
            source: Any = image_unet.add_embedding
            unet.add_embedding.load_state_dict(source.state_dict())
        for name, module in unet.named_modules():
            if "motion_modules" in name and name.endswith("proj_out"):
                module.weight.zero_()
                module.bias.zero_()
    return unet


def build_scheduler(prediction_type: str = "epsilon") -> Any:
    diffusers = require("diffusers", "diffusers")
    return diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                   prediction_type=prediction_type, clip_sample=True)


class Generator:
    """A text-conditional pixel diffusion model over token states ``(n, L, dim)`` + mask."""

    def __init__(self, unet: torch.nn.Module, scheduler: Any, config: GeneratorConfig) -> None:
        self.unet, self.scheduler, self.config = unet, scheduler, config

    @classmethod
    def create(cls, config: GeneratorConfig, seed: int = 0) -> Generator:
        torch.manual_seed(seed)
        return cls(build_unet(config), build_scheduler(config.prediction_type), config)

    @classmethod
    def tiny(cls, cross_attention_dim: int = 8, frames: int = 0, size: int = 16,
             encoder: str = "test") -> Generator:
        """A minute generator for tests (seeded, random weights, 16x16 by default)."""
        cfg = GeneratorConfig(encoder=encoder, cross_attention_dim=cross_attention_dim,
                              frames=frames, size=size, block_out_channels=(8, 16),
                              attention_head_dim=4, patch=1)
        return cls.create(cfg)

    @classmethod
    def video_from(cls, image: Generator, frames: int = 4) -> Generator:
        """A T2V generator that starts from a trained T2I one (AnimateDiff-style inflation): the
        image weights are kept and zero-initialised motion modules are added (`inflate_unet`)."""
        if image.config.video:
            raise XSteerError("video_from needs an image generator, got a video one")
        if image.config.mask_padding:
            raise XSteerError("this image generator masks pad tokens, which a video UNet cannot: "
                              "train the image generator without mask_padding to inflate it")
        if frames < 2:
            raise XSteerError(f"clips need at least 2 frames, got {frames}")
        cfg = replace(image.config, frames=frames, video_unet="motion", train={})
        unet = inflate_unet(image.unet, cfg)
        return cls(unet, build_scheduler(cfg.prediction_type), cfg)

    def freeze_image_layers(self) -> int:
        """Train only the motion modules of an inflated T2V UNet (the AnimateDiff recipe): the
        image layers keep what the T2I learned. Returns the number of trainable parameters."""
        if not self.config.motion:
            raise XSteerError("only a motion-module video generator has image layers to freeze")
        self.unet.freeze_unet2d_params()  # type: ignore[operator]
        return sum(p.numel() for p in self.unet.parameters() if p.requires_grad)

    # -- the denoiser -------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, t: torch.Tensor, states: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """The UNet's output (noise, velocity or clean image, per ``prediction_type``) for noisy
        pixels ``x`` at timesteps ``t`` given token states."""
        if states.shape[-1] != self.config.cross_attention_dim:
            raise DimensionMismatchError("token states", states.shape[-1], "generator cross-attention",
                                         self.config.cross_attention_dim)
        extra: dict[str, Any] = {}
        if self.config.pooled_text:
            pooled = masked_mean(states, mask)
            extra["added_cond_kwargs"] = {"text_embeds": pooled,
                                          "time_ids": torch.zeros(len(pooled), 1)}
        if self.config.motion:
            # UNetMotionModel runs the frames as a batch of images: one copy of the text per frame
            states = states.repeat_interleave(x.shape[2], dim=0)
        if self.config.mask_padding:
            extra["encoder_attention_mask"] = mask.float()
        # (without the mask, pad-token states are read like any other: the same ones in training
        # and sampling)
        p = self.config.patch
        out = self.unet(_fold(x, p), t, encoder_hidden_states=states, return_dict=False, **extra)[0]
        return _unfold(out, p)

    def loss(self, images: torch.Tensor, states: torch.Tensor, mask: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising loss on clean ``images`` in [-1, 1] (``(n,3,H,W)`` or ``(n,3,T,H,W)``)."""
        n = images.shape[0]
        noise = torch.randn(images.shape, generator=generator)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (n,), generator=generator)
        noisy = self.scheduler.add_noise(images, noise, t)
        kind = self.config.prediction_type
        target = (noise if kind == "epsilon" else images if kind == "sample"
                  else self.scheduler.get_velocity(images, noise, t))
        return torch.nn.functional.mse_loss(self.predict(noisy, t, states, mask), target)

    @torch.no_grad()
    def sample(self, states: torch.Tensor, mask: torch.Tensor, steps: int = 20,
               guidance: float = 3.0, uncond: tuple[torch.Tensor, torch.Tensor] | None = None,
               seed: int = 0, batch_size: int = 128) -> torch.Tensor:
        """Generate ``(n, 3, H, W)`` (or ``(n, 3, T, H, W)``) images in [-1, 1] with DDIM.

        ``uncond`` is the empty prompt's (states, mask), used for classifier-free guidance; each
        sample's starting noise depends only on ``seed`` and its row, so runs are comparable.
        """
        diffusers = require("diffusers", "diffusers")
        if states.ndim != 3 or mask.shape != states.shape[:2]:
            raise XSteerError(f"sample expects states (n, L, dim) and mask (n, L); got "
                              f"{tuple(states.shape)} and {tuple(mask.shape)}")
        self.unet.eval()
        c = self.config
        shape = (3, c.frames, c.size, c.size) if c.video else (3, c.size, c.size)
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn((states.shape[0], *shape), generator=g)
        ddim = diffusers.DDIMScheduler.from_config(self.scheduler.config, clip_sample=True,
                                                   set_alpha_to_one=True)
        ddim.set_timesteps(steps)
        outs = []
        for s in range(0, states.shape[0], batch_size):
            E, M, x = states[s:s + batch_size], mask[s:s + batch_size], noise[s:s + batch_size]
            use_cfg = uncond is not None and guidance != 1.0
            if use_cfg:
                assert uncond is not None
                ue, um = uncond
                L = E.shape[1]
                ue, um = _fit_length(ue, um, L)
                E = torch.cat([ue.expand(len(x), -1, -1), E])
                M = torch.cat([um.expand(len(x), -1), M])
            for t in ddim.timesteps:
                xin = torch.cat([x, x]) if use_cfg else x
                eps = self.predict(xin, t.expand(len(xin)), E, M)
                if use_cfg:
                    eu, ec = eps.chunk(2)  # guidance is linear in any of the parametrisations
                    eps = eu + guidance * (ec - eu)
                x = ddim.step(eps, t, x).prev_sample
            outs.append(x.clamp(-1, 1))
        return torch.cat(outs)

    # -- save / load --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        from xsteer.io import atomic_write_json

        d = Path(directory)
        self.unet.save_pretrained(d / "unet", safe_serialization=True)  # type: ignore[operator]
        self.scheduler.save_pretrained(d / "scheduler")
        atomic_write_json(d / CONFIG_NAME, self.config.to_dict())
        return d

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> Generator:
        diffusers = require("diffusers", "diffusers")
        d = Path(directory)
        if not (d / CONFIG_NAME).is_file():
            raise ArtifactError(f"{d}: no {CONFIG_NAME}; train one with `xsteer proving-ground train`")
        config = GeneratorConfig.from_dict(json.loads((d / CONFIG_NAME).read_text()))
        klass = (diffusers.UNet2DConditionModel if not config.video
                 else diffusers.UNetMotionModel if config.motion
                 else diffusers.UNet3DConditionModel)
        unet = klass.from_pretrained(d / "unet", use_safetensors=True)
        scheduler = diffusers.DDPMScheduler.from_pretrained(d / "scheduler")
        return cls(unet.eval(), scheduler, config)


def _per_frame(op: Any, x: torch.Tensor, patch: int) -> torch.Tensor:
    """Apply an image op ``(n, c, H, W) -> (n, c', H', W')`` to images or, frame by frame, clips."""
    if patch == 1:
        return x
    if x.ndim == 5:
        frames = op(x.transpose(1, 2).flatten(0, 1), patch)
        return frames.unflatten(0, (x.shape[0], -1)).transpose(1, 2)
    return op(x, patch)


def _fold(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Pixels ``(n, 3, [T,] H, W)`` -> ``(n, 3 p^2, [T,] H/p, W/p)`` (pixel unshuffle)."""
    return _per_frame(torch.nn.functional.pixel_unshuffle, x, patch)


def _unfold(x: torch.Tensor, patch: int) -> torch.Tensor:
    """The inverse of `_fold`."""
    return _per_frame(torch.nn.functional.pixel_shuffle, x, patch)


def _fit_length(states: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad or cut ``(1, L, d)`` states and mask to ``length`` tokens."""
    L = states.shape[1]
    if L >= length:
        return states[:, :length], mask[:, :length]
    pad = length - L
    return (torch.nn.functional.pad(states, (0, 0, 0, pad)),
            torch.nn.functional.pad(mask, (0, pad)))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
