"""Which text-to-image and text-to-video pipelines of the installed diffusers xsteer can steer.

`coverage` lists every pipeline class of the installed diffusers that turns a text prompt into
images or clips (a ``prompt`` argument and no image, video, mask or control input, not audio or
3D) and says for each: ``table`` (a family of `xsteer.pipelines.families.FAMILIES`), ``generic``
(the generic adapter drives it: ``encode_prompt`` + ``prompt_embeds``; its sites are found when
it is loaded) or ``unsupported`` with the reason. ``python -m xsteer.pipelines.coverage`` prints
the Markdown table that docs/pipelines.md carries; ``xsteer sites`` prints the families.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from xsteer.errors import require
from xsteer.pipelines.families import class_family
from xsteer.pipelines.generic import generic_support

# Inputs that make a pipeline image-, video- or control-conditioned rather than text-to-X.
VISUAL_INPUTS = frozenset({
    "video", "mask_image", "control_image", "control_video", "init_image",
    "ref_image", "reference_image", "conditioning_frames", "image_reference", "control_images",
    "input_video", "video_frames", "image_embeds", "cond_image", "source_image", "mask",
    "control_image_embeds", "image_latents", "subject_image", "image_prompt", "last_image",
    "prompt_image", "audio", "ip_adapter_image_embeds_only", "condition_image", "frames"})
NON_VISUAL_OUTPUT = ("audio_length_in_s", "audio_end_in_s", "frame_size", "duration")
NAME_EXCLUDES = ("Img2Img", "Image2Image", "Inpaint", "ImageToVideo", "Image2Video",
                 "VideoToVideo", "Video2Video", "ControlNet", "Controlnet", "Edit", "Upscale",
                 "Depth2Img", "InstructPix2Pix", "Adapter", "Prior", "Redux", "Fill", "Kontext",
                 "Refiner", "ShapE", "Audio", "Music", "Speech", "Auto", "Omni", "Reference",
                 "I2I", "I2V", "SuperResolution", "Cycle", "ConsisID", "PIAPipeline", "Layered",
                 "DualGuided", "UniDiffuser", "LLaDA", "DiffusionGemma", "AceStep")
STATUSES = ("table", "generic", "unsupported")


@dataclass(frozen=True)
class Coverage:
    """One pipeline class: ``t2i`` or ``t2v``, its status, and the family or the reason."""

    name: str
    task: str
    status: str
    detail: str


def text_to_visual_classes() -> list[type]:
    """Every text-to-image / text-to-video pipeline class of the installed diffusers."""
    diffusers = require("diffusers", "diffusers")
    base = diffusers.DiffusionPipeline
    out = []
    for name in sorted(n for n in dir(diffusers) if n.endswith("Pipeline")):
        if any(x in name for x in NAME_EXCLUDES):
            continue
        try:
            cls = getattr(diffusers, name)
        except Exception:  # an optional backend missing: not installed here, so not listed
            continue
        if not (isinstance(cls, type) and issubclass(cls, base)) or cls is base:
            continue
        params = inspect.signature(cls.__call__).parameters
        if "prompt" not in params or VISUAL_INPUTS & set(params) or \
                any(p in params for p in NON_VISUAL_OUTPUT):
            continue
        if any(p in params and params[p].default is inspect.Parameter.empty
               for p in ("image", "images")):
            continue  # an image it cannot do without: image-to-X
        out.append(cls)
    return out


def classify(cls: type) -> Coverage:
    """Table, generic or unsupported (with the reason) for one pipeline class."""
    task = "t2v" if "num_frames" in inspect.signature(cls.__call__).parameters else "t2i"
    fam = class_family(cls)
    if fam is not None:
        return Coverage(cls.__name__, task, "table", fam.name)
    ok, why = generic_support(cls)
    return Coverage(cls.__name__, task, "generic" if ok else "unsupported", why)


def coverage() -> list[Coverage]:
    """`classify` for every class of `text_to_visual_classes`."""
    return [classify(c) for c in text_to_visual_classes()]


def markdown(rows: list[Coverage]) -> str:
    """The Markdown table docs/pipelines.md carries, with the counts above it."""
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    head = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    lines = [f"{len(rows)} text-to-image / text-to-video pipeline classes: {head}.", "",
             "| pipeline class | task | status | family or reason |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.task} | {r.status} | {r.detail} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(coverage()))
