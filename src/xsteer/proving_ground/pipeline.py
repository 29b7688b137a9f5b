"""`ProvingGroundPipeline`: the proving-ground generators as a real `diffusers.DiffusionPipeline`.

Components: a tokenizer and a frozen, real text encoder (all-MiniLM-L6-v2 in T5's role in FLUX,
or Gemma-3-270M in the LLM-encoder role of Qwen-Image / Z-Image), a denoiser from diffusers' own
model classes, and a scheduler:

- ``transformer``: `FluxTransformer2DModel` (MMDiT: text tokens pass through their own norms, MLPs
  and joint attention), trained with flow matching and sampled by `FlowMatchEulerDiscreteScheduler`
  (FLUX's objective and sampler);
- ``transformer``: `WanTransformer3DModel` for clips (Wan's text-embedding MLP + cross-attention),
  also flow matching;
- ``unet``: `UNet2DConditionModel` (Stable Diffusion 1.x's layout: the text tokens reach the image
  only through cross-attention's ``to_k``/``to_v``), the contrast architecture, trained with the
  same flow-matching objective so that only the architecture differs.

A pipeline holds either a ``transformer`` or a ``unet`` (the other is ``None``).

The denoisers run in pixel space on ``patch`` x ``patch`` blocks folded into channels (pixel
unshuffle, lossless): a 32x32 image is an 8x8 grid of 48-channel tokens. A VAE would add an
encoder/decoder to train and a reconstruction error the judge would see; at 32x32 the folded
pixels are already as short a sequence as a latent grid would be.

The pipeline reads the encoder's ``last_hidden_state`` with the attention mask, and the denoiser
attends to real tokens only (pads are masked out of the joint attention, and the pooled vector is
the masked mean of the token states), so the tokens a hook steers are exactly the tokens the
generator reads. The pooled vector is computed from ``prompt_embeds`` inside the call, so steered
``prompt_embeds`` steer it too.

Steering needs nothing special: the site table has a ``proving-ground`` family, so
``Steerer.apply(pipe)``, ``xsteer generate --pipeline DIR`` and ``xsteer eval`` with
``pipeline: DIR`` work as on any diffusers pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.pipeline_utils import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from xsteer.errors import XSteerError

OUTPUT_TYPES = ("pil", "np", "pt")


class VideoPipelineOutput(BaseOutput):
    """``frames``: one list of PIL frames per clip (``pil``), or an array/tensor
    ``(n, T, H, W, 3)`` / ``(n, T, 3, H, W)``."""

    frames: Any


def fold(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Pixels ``(n, 3, H, W)`` -> tokens ``(n, H/p * W/p, 3 p^2)`` (pixel unshuffle, row-major)."""
    return torch.nn.functional.pixel_unshuffle(x, patch).flatten(2).transpose(1, 2)


def unfold(tokens: torch.Tensor, patch: int, size: int) -> torch.Tensor:
    """The inverse of `fold` for a ``size`` x ``size`` image."""
    g = size // patch
    x = tokens.transpose(1, 2).unflatten(2, (g, g))
    return torch.nn.functional.pixel_shuffle(x, patch)


def image_ids(size: int, patch: int) -> torch.Tensor:
    """FLUX position ids ``(g*g, 3)``: (0, row, column) of each token, for the 2D rotary embedding."""
    g = size // patch
    rows, cols = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    return torch.stack([torch.zeros_like(rows), rows, cols], -1).flatten(0, 1).float()


def masked_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` over the tokens ``mask`` keeps (at least one token counted)."""
    w = mask.to(states.dtype).unsqueeze(-1)
    return (states * w).sum(1) / w.sum(1).clamp_min(1.0)


class ProvingGroundPipeline(DiffusionPipeline):
    """Text-to-image (or text-to-video) with a small denoiser over a real, frozen text encoder.

    >>> pipe = ProvingGroundPipeline.from_pretrained("~/.cache/xsteer/proving_ground/mmdit")  # doctest: +SKIP
    >>> pipe("a red car on a street at night", num_inference_steps=20).images[0]              # doctest: +SKIP
    """

    model_cpu_offload_seq = "text_encoder->transformer->unet"  # type: ignore[assignment]
    _optional_components = ["transformer", "unet"]  # noqa: RUF012 (diffusers' own class attribute)
    _callback_tensor_inputs = ["latents", "prompt_embeds"]  # noqa: RUF012 (diffusers' own)

    def __init__(self, tokenizer: Any, text_encoder: Any, transformer: Any,
                 scheduler: FlowMatchEulerDiscreteScheduler, sample_size: int = 32,
                 patch: int = 4, num_frames: int = 0, max_length: int = 32,
                 unet: Any = None) -> None:
        super().__init__()
        if patch < 1 or sample_size % patch:
            raise XSteerError(f"patch {patch} must be a positive divisor of sample_size "
                              f"{sample_size}")
        if (transformer is None) == (unet is None):
            raise XSteerError("a ProvingGroundPipeline holds one denoiser: a transformer or a unet")
        if unet is not None and num_frames:
            raise XSteerError("the UNet denoiser draws images: num_frames must be 0")
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder,
                              transformer=transformer, scheduler=scheduler, unet=unet)
        self.register_to_config(sample_size=sample_size, patch=patch, num_frames=num_frames,
                                max_length=max_length)

    # -- facts about the denoiser ------------------------------------------------------------
    @property
    def is_video(self) -> bool:
        return int(self.config["num_frames"]) > 0

    @property
    def text_dim(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    # -- text ----------------------------------------------------------------------------------
    def encode_prompt(self, prompt: str | list[str], device: Any = None,
                      num_images_per_prompt: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states ``(n, max_length, dim)`` and real-token mask ``(n, max_length)`` (bool)."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        device = device or self._execution_device
        tok = self.tokenizer(prompts, padding="max_length", max_length=int(self.config["max_length"]),
                             truncation=True, return_tensors="pt")
        ids, mask = tok["input_ids"].to(device), tok["attention_mask"].to(device)
        with torch.no_grad():
            out = self.text_encoder(ids, attention_mask=mask)
        states = out.last_hidden_state.float()
        mask = mask.bool()
        if num_images_per_prompt > 1:
            states = states.repeat_interleave(num_images_per_prompt, 0)
            mask = mask.repeat_interleave(num_images_per_prompt, 0)
        return states, mask

    # -- the denoiser --------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, sigma: torch.Tensor, states: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """The velocity ``noise - image`` the denoiser predicts for noisy pixels ``x`` at noise
        levels ``sigma`` in [0, 1] (``(n,)``), given token states and their mask."""
        if states.shape[-1] != self.text_dim:
            from xsteer.errors import DimensionMismatchError

            raise DimensionMismatchError("prompt_embeds", states.shape[-1],
                                         "text encoder hidden size", self.text_dim)
        p, size = int(self.config["patch"]), int(self.config["sample_size"])
        mask = mask.bool()
        if self.is_video:
            return self._predict_wan(x, sigma, states, mask)
        if self.unet is not None:
            # pixel unshuffle: lossless, a 32x32 image becomes an 8x8 map of 48 channels
            out = self.unet(torch.nn.functional.pixel_unshuffle(x, p), sigma * 1000,
                            encoder_hidden_states=states, encoder_attention_mask=mask,
                            return_dict=False)[0]
            return torch.nn.functional.pixel_shuffle(out, p)
        tokens = fold(x, p)
        ids = image_ids(size, p).to(x.device)
        txt_ids = torch.zeros(states.shape[1], 3, device=x.device)
        # joint attention sees [text; image]: pad tokens are masked out for every query
        full = torch.cat([mask, torch.ones(len(x), tokens.shape[1], dtype=torch.bool,
                                           device=x.device)], 1)
        out = self.transformer(hidden_states=tokens, encoder_hidden_states=states,
                               pooled_projections=masked_pool(states, mask), timestep=sigma,
                               img_ids=ids, txt_ids=txt_ids,
                               joint_attention_kwargs={"attention_mask": full[:, None, None, :]},
                               return_dict=False)[0]
        return unfold(out, p, size)

    def _predict_wan(self, x: torch.Tensor, sigma: torch.Tensor, states: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        # Wan reads every text token (its pipeline zero-pads past the prompt): zero the pads too
        states = states * mask.unsqueeze(-1).to(states.dtype)
        return self.transformer(hidden_states=x, timestep=sigma * 1000,
                                encoder_hidden_states=states, return_dict=False)[0]

    def loss(self, images: torch.Tensor, states: torch.Tensor, mask: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Flow-matching loss on clean ``images`` in [-1, 1]: ``x_s = (1 - s) x + s e`` with
        ``s`` drawn logit-normal (SD3 / FLUX training), target velocity ``e - x``."""
        n = images.shape[0]
        noise = torch.randn(images.shape, generator=generator)
        sigma = torch.sigmoid(torch.randn(n, generator=generator))
        s = sigma.view(n, *([1] * (images.ndim - 1)))
        noisy = (1 - s) * images + s * noise
        return torch.nn.functional.mse_loss(self.predict(noisy, sigma, states, mask),
                                            noise - images)

    # -- sampling ------------------------------------------------------------------------------
    def _shape(self, n: int) -> tuple[int, ...]:
        size = int(self.config["sample_size"])
        if self.is_video:
            return (n, 3, int(self.config["num_frames"]), size, size)
        return (n, 3, size, size)

    @torch.no_grad()
    def __call__(self, prompt: str | list[str] | None = None,
                 negative_prompt: str | list[str] | None = None,
                 num_inference_steps: int = 20, guidance_scale: float = 3.0,
                 num_images_per_prompt: int = 1,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None,
                 prompt_embeds: torch.Tensor | None = None,
                 prompt_attention_mask: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None,
                 output_type: str = "pil", return_dict: bool = True,
                 callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
                 height: int | None = None, width: int | None = None,
                 num_frames: int | None = None,
                 callback_on_step_end_tensor_inputs: list[str] | None = None) -> Any:
        """Generate images (``.images``) or clips (``.frames``).

        ``prompt_embeds`` (+ ``prompt_attention_mask``; all tokens count when it is omitted)
        replace ``prompt``; the negative branch defaults to the empty prompt. ``height``,
        ``width`` and ``num_frames`` are accepted for pipeline-agnostic callers and must match
        the trained size.
        """
        if output_type not in OUTPUT_TYPES:
            raise XSteerError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        inputs = list(callback_on_step_end_tensor_inputs or ["latents"])
        if not set(inputs) <= set(self._callback_tensor_inputs):
            raise XSteerError(f"callback_on_step_end_tensor_inputs {inputs}: this pipeline "
                              f"passes {self._callback_tensor_inputs}")
        size = int(self.config["sample_size"])
        for name, val, want in (("height", height, size), ("width", width, size),
                                ("num_frames", num_frames, int(self.config["num_frames"]) or None)):
            if val is not None and want is not None and int(val) != want:
                raise XSteerError(f"{name}={val}: this proving-ground pipeline draws {want}")
        device = self._execution_device
        if prompt_embeds is None:
            if prompt is None:
                raise XSteerError("give prompt or prompt_embeds")
            prompt_embeds, prompt_attention_mask = self.encode_prompt(prompt, device)
        elif prompt_attention_mask is None:
            prompt_attention_mask = torch.ones(prompt_embeds.shape[:2], dtype=torch.bool,
                                               device=prompt_embeds.device)
        E = prompt_embeds.to(device).float().repeat_interleave(num_images_per_prompt, 0)
        M = prompt_attention_mask.to(device).bool().repeat_interleave(num_images_per_prompt, 0)
        n = len(E)
        use_cfg = guidance_scale != 1.0
        if use_cfg:
            if negative_prompt_embeds is None:
                neg = negative_prompt if negative_prompt is not None else ""
                negs = [neg] * n if isinstance(neg, str) else [x for x in neg
                                                               for _ in range(num_images_per_prompt)]
                if len(negs) != n:
                    raise XSteerError(f"{len(negs)} negative prompts for {n} samples")
                negative_prompt_embeds, negative_prompt_attention_mask = self.encode_prompt(
                    negs, device)
            elif negative_prompt_attention_mask is None:
                negative_prompt_attention_mask = torch.ones(
                    negative_prompt_embeds.shape[:2], dtype=torch.bool)
            NE = negative_prompt_embeds.to(device).float()
            NM = negative_prompt_attention_mask.to(device).bool()
            if len(NE) == 1 and n > 1:
                NE, NM = NE.expand(n, -1, -1), NM.expand(n, -1)
            if NE.shape[1] != E.shape[1]:
                raise XSteerError(f"negative_prompt_embeds have {NE.shape[1]} tokens, "
                                  f"prompt_embeds {E.shape[1]}")
            E, M = torch.cat([NE, E]), torch.cat([NM, M])
        x = latents.to(device).float() if latents is not None else randn_tensor(
            self._shape(n), generator=generator, device=device, dtype=torch.float32)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps, device=device)
        for i, t in enumerate(self.progress_bar(scheduler.timesteps)):
            xin = torch.cat([x, x]) if use_cfg else x
            v = self.predict(xin, (t / 1000).expand(len(xin)).to(x.dtype), E, M)
            if use_cfg:
                vu, vc = v.chunk(2)
                v = vu + guidance_scale * (vc - vu)
            x = scheduler.step(v, t, x, return_dict=False)[0]
            if callback_on_step_end is not None:
                # diffusers' contract: the named tensors go in, returned ones replace them
                # (prompt_embeds: the cfg-stacked states, negative rows first)
                local = {"latents": x, "prompt_embeds": E}
                out = callback_on_step_end(self, i, t, {k: local[k] for k in inputs})
                x = out.get("latents", x)
                E = out.get("prompt_embeds", E)
        images = ((x.clamp(-1, 1) + 1) / 2).cpu()
        self.maybe_free_model_hooks()
        result = self._postprocess(images, output_type)
        if not return_dict:
            return (result,)
        return VideoPipelineOutput(frames=result) if self.is_video else \
            ImagePipelineOutput(images=result)

    def _postprocess(self, images: torch.Tensor, output_type: str) -> Any:
        """[0, 1] ``(n, 3, [T,] H, W)`` -> what ``output_type`` asks for (clips frame-major)."""
        if self.is_video:
            images = images.permute(0, 2, 1, 3, 4)  # (n, T, 3, H, W)
        if output_type == "pt":
            return images
        arr = images.movedim(-3, -1).numpy()  # channels last
        if output_type == "np":
            return arr
        from PIL import Image

        u8 = (arr * 255).round().astype(np.uint8)
        if self.is_video:
            return [[Image.fromarray(f) for f in clip] for clip in u8]
        return [Image.fromarray(im) for im in u8]


def uint8_images(out: Any) -> torch.Tensor:
    """A ``pt`` pipeline output as uint8 ``(n, 3, H, W)`` or ``(n, 3, T, H, W)`` (the judge's
    layout)."""
    x = out.frames if hasattr(out, "frames") else out.images
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(0, 2, 1, 3, 4).contiguous() if x.ndim == 5 else x
