"""Building `ProvingGroundPipeline`s: the seed's denoiser architectures in tiny configs, from
diffusers' own model classes, over a real text encoder.

- ``mmdit``: `FluxTransformer2DModel` (double-stream joint-attention blocks, then single-stream
  blocks; the pooled text vector modulates every block through AdaLN, as FLUX's CLIP pooled
  vector does).
- ``wan``: `WanTransformer3DModel` (Wan 2.x: a text-embedding MLP, self-attention over the
  space-time patches, cross-attention to the text tokens).
- ``unet``: `UNet2DConditionModel` (Stable Diffusion 1.x: the text reaches the image only through
  cross-attention), the contrast architecture; ``hidden`` is its widest block, the first is half.

>>> cfg = DenoiserConfig(arch="mmdit", hidden=32, heads=2, double_layers=1, single_layers=1)
>>> cfg.attention_head_dim, cfg.axes_dims_rope
(16, (4, 6, 6))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from xsteer.errors import XSteerError, require

ARCHS = ("mmdit", "wan", "unet")


@dataclass(frozen=True)
class DenoiserConfig:
    """Size of a proving-ground denoiser (the text dim comes from the encoder)."""

    arch: str = "mmdit"
    hidden: int = 128
    heads: int = 2
    double_layers: int = 2
    single_layers: int = 2
    patch: int = 4
    sample_size: int = 32
    num_frames: int = 0
    max_length: int = 32

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise XSteerError(f"unknown denoiser architecture {self.arch!r}; known: {ARCHS}")
        if self.hidden % self.heads:
            raise XSteerError(f"hidden {self.hidden} is not divisible by {self.heads} heads")
        if self.arch == "mmdit" and self.attention_head_dim % 4:
            raise XSteerError("mmdit: the head dim must be a multiple of 4 (2D rotary axes)")
        if self.arch == "wan" and self.num_frames < 1:
            raise XSteerError("wan draws clips: set num_frames >= 1")
        if self.arch != "wan" and self.num_frames:
            raise XSteerError(f"{self.arch} draws images: num_frames must be 0")

    @property
    def attention_head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def axes_dims_rope(self) -> tuple[int, int, int]:
        """FLUX splits each head's rotary dims over (text index, row, column)."""
        d = self.attention_head_dim
        side = (d // 4) * 3 // 2 // 2 * 2
        first = d - 2 * side
        return (first, side, side)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_denoiser(cfg: DenoiserConfig, text_dim: int) -> Any:
    """A freshly initialised denoiser (seed torch first for reproducible weights)."""
    diffusers = require("diffusers", "diffusers")
    channels = 3 * cfg.patch * cfg.patch
    if cfg.arch == "unet":
        width = (cfg.hidden // 2, cfg.hidden)
        return diffusers.UNet2DConditionModel(
            sample_size=cfg.sample_size // cfg.patch, in_channels=channels, out_channels=channels,
            block_out_channels=width, layers_per_block=1, cross_attention_dim=text_dim,
            attention_head_dim=cfg.attention_head_dim, norm_num_groups=min(8, width[0]),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    if cfg.arch == "mmdit":
        return diffusers.FluxTransformer2DModel(
            patch_size=1, in_channels=channels, out_channels=channels,
            num_layers=cfg.double_layers, num_single_layers=cfg.single_layers,
            attention_head_dim=cfg.attention_head_dim, num_attention_heads=cfg.heads,
            joint_attention_dim=text_dim, pooled_projection_dim=text_dim, guidance_embeds=False,
            axes_dims_rope=cfg.axes_dims_rope)
    return diffusers.WanTransformer3DModel(
        patch_size=(1, cfg.patch, cfg.patch), num_attention_heads=cfg.heads,
        attention_head_dim=cfg.attention_head_dim, in_channels=3, out_channels=3,
        text_dim=text_dim, freq_dim=64, ffn_dim=cfg.hidden * 4,
        num_layers=cfg.double_layers + cfg.single_layers, rope_max_seq_len=64)


def load_text_encoder(name: str, trust_remote_code: bool = False) -> tuple[Any, Any, str]:
    """(tokenizer, base text model, model id) for an alias, folder or hub id.

    The base model (``AutoModel``: BertModel for MiniLM, Gemma3TextModel for Gemma), frozen, in
    eval mode: the pipeline reads its ``last_hidden_state``.
    """
    from transformers import AutoModel, AutoTokenizer

    from xsteer.models.registry import hub_kwargs, resolve_model

    spec = resolve_model(name)
    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code, **hub_kwargs(spec)}
    tokenizer = AutoTokenizer.from_pretrained(spec.path, **kw)
    model = AutoModel.from_pretrained(spec.path, **kw)
    model.requires_grad_(False)
    return tokenizer, model.eval(), spec.model_id


def make_pipeline(tokenizer: Any, text_encoder: Any, cfg: DenoiserConfig, seed: int = 0) -> Any:
    """A `ProvingGroundPipeline` with a seeded, untrained denoiser."""
    import torch

    from xsteer.proving_ground.pipeline import ProvingGroundPipeline

    diffusers = require("diffusers", "diffusers")
    torch.manual_seed(seed)
    denoiser = build_denoiser(cfg, int(text_encoder.config.hidden_size))
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0)
    unet = denoiser if cfg.arch == "unet" else None
    return ProvingGroundPipeline(tokenizer, text_encoder, None if unet is not None else denoiser,
                                 scheduler, sample_size=cfg.sample_size, patch=cfg.patch,
                                 num_frames=cfg.num_frames, max_length=cfg.max_length, unet=unet)


def _tiny_vocab() -> str:
    """A character-level WordPiece vocabulary in a temporary file (no download)."""
    import functools
    import string
    import tempfile
    from pathlib import Path

    @functools.lru_cache(maxsize=1)
    def path() -> str:
        chars = string.ascii_lowercase + string.digits + ",.-'"
        tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
        f = Path(tempfile.mkdtemp(prefix="xsteer-tiny-bert-")) / "vocab.txt"
        f.write_text("\n".join(tokens) + "\n", encoding="utf-8")
        return str(f)

    return path()


def tiny_pipeline(arch: str = "mmdit", seed: int = 0, text_dim: int = 16,
                  max_length: int = 16) -> Any:
    """A seeded `ProvingGroundPipeline` with random tiny weights (tests, docs): a 2-layer BERT
    over a character-level tokenizer and a minute denoiser (16x16 pixels, 4 frames for ``wan``).
    Two calls with one seed give bit-identical pipelines."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    tokenizer = BertTokenizer(_tiny_vocab(), model_max_length=max_length)
    torch.manual_seed(seed)
    text = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=text_dim,
                                num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=2 * text_dim, max_position_embeddings=64),
                     add_pooling_layer=False).eval()
    text.requires_grad_(False)
    cfg = DenoiserConfig(arch=arch, hidden=32, heads=2, double_layers=1, single_layers=1,
                         sample_size=16, num_frames=4 if arch == "wan" else 0,
                         max_length=max_length)
    return make_pipeline(tokenizer, text, cfg, seed=seed)
