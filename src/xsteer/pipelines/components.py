"""Load only a pipeline's text side: its tokenizers and text encoders, never the denoiser.

``xsteer align --target-pipeline`` and ``xsteer gate calibrate --target-pipeline`` read benign
prompts at a site exactly as the pipeline does (its own ``encode_prompt``, the same output field,
attention mask, template prefix and pooling: `site_features`). That needs the text encoders but
not the transformer/UNet or VAE, which are most of the download and memory (FLUX.1's transformer
alone is 24 GB in bf16). `load_text_side` reads ``model_index.json``, loads every ``text_encoder*``
and ``tokenizer*`` entry with transformers from its subfolder, says what it loads, and builds the
pipeline class with ``None`` for everything else, so ``encode_prompt`` runs unchanged.

>>> text_components({"_class_name": "FluxPipeline", "text_encoder": ["transformers", "CLIPTextModel"],
...                  "vae": ["diffusers", "AutoencoderKL"], "tokenizer": ["transformers", "CLIPTokenizer"]})
['text_encoder', 'tokenizer']
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xsteer.errors import UnknownModelError, XSteerError, require

TEXT_PREFIXES = ("text_encoder", "tokenizer")


def text_components(index: dict[str, Any]) -> list[str]:
    """The ``model_index.json`` entries that are tokenizers or text encoders (transformers)."""
    return [k for k, v in index.items() if k.startswith(TEXT_PREFIXES)
            and isinstance(v, list) and len(v) == 2 and v[0] == "transformers"]


def _folder(spec: str, revision: str | None) -> Path:
    p = Path(spec).expanduser()
    if p.is_dir():
        return p.resolve()
    hub = require("huggingface_hub", "diffusers")
    try:
        index = json.loads(Path(hub.hf_hub_download(spec, "model_index.json",
                                                    revision=revision)).read_text())
        patterns = ["model_index.json", *(f"{c}/*" for c in text_components(index))]
        return Path(hub.snapshot_download(spec, revision=revision, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, gated repo: no common base class
        raise UnknownModelError(f"could not fetch the text encoders of pipeline {spec!r}: "
                                f"{exc}") from exc


def _size_on_disk(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**30


def load_text_side(spec: str, *, revision: str | None = None, dtype: str = "float32",
                   device: str = "cpu", echo: Callable[[str], None] | None = print) -> Any:
    """The pipeline ``spec`` (Hub id or folder) with its text encoders and tokenizers loaded and
    every other component ``None``; ``pipe.name_or_path`` is ``spec`` (a folder: its absolute
    path), so artifacts name the pipeline they were made for."""
    import torch
    import transformers

    from xsteer.pipelines.builtin import BUILTIN_CLASSES
    from xsteer.pipelines.generate import DTYPES

    if dtype not in DTYPES:
        raise XSteerError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    folder = _folder(spec, revision)
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise UnknownModelError(f"{spec}: no model_index.json, so it is not a diffusers pipeline")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    name = str(index.get("_class_name"))
    if name in BUILTIN_CLASSES:
        # xsteer's own pipelines are small and need their denoiser to be built: load them whole
        from xsteer.pipelines.generate import load_pipeline

        if echo is not None:
            echo(f"loading {name} from {folder} whole (xsteer's own pipeline)")
        pipe = load_pipeline(str(folder), dtype=dtype, device=device)
        return pipe
    else:
        cls = getattr(require("diffusers", "diffusers"), name, None)
        if cls is None:
            raise UnknownModelError(f"{spec}: pipeline class {name!r} is not in the installed "
                                    "diffusers")
    wanted = text_components(index)
    if not any(c.startswith("text_encoder") for c in wanted):
        raise XSteerError(f"{spec} ({name}) has no transformers text encoder in model_index.json")
    kwargs: dict[str, Any] = {}
    params = inspect.signature(cls.__init__).parameters
    for key, p in params.items():
        if key == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        entry = index.get(key)
        if key in wanted:
            lib_cls = getattr(transformers, entry[1], None)
            if lib_cls is None:
                raise UnknownModelError(f"{spec}: transformers has no class {entry[1]!r} "
                                        f"for {key}")
            if echo and key.startswith("text_encoder"):
                echo(f"loading {key} ({entry[1]}, {_size_on_disk(folder / key):.2f} GiB on "
                     f"disk) from {folder / key}")
            extra = {"dtype": DTYPES[dtype]} if key.startswith("text_encoder") else {}
            obj = lib_cls.from_pretrained(str(folder), subfolder=key, **extra)
            kwargs[key] = obj.to(device).eval() if isinstance(obj, torch.nn.Module) else obj
        elif isinstance(entry, list) or entry is None:
            if p.default is inspect.Parameter.empty or isinstance(entry, list):
                kwargs[key] = None  # a component we do not load (denoiser, VAE, scheduler...)
        else:
            kwargs[key] = entry  # a config value (force_zeros_for_empty_prompt, boundary_ratio)
    try:
        pipe = cls(**kwargs)
    except Exception as exc:  # a constructor that needs its denoiser: name it
        raise XSteerError(f"{name} cannot be built from its text encoders alone ({exc}); load "
                          "the whole pipeline instead") from exc
    ref = str(folder) if Path(spec).expanduser().is_dir() else spec
    pipe.register_to_config(_name_or_path=ref)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    if echo:
        skipped = [k for k, v in index.items() if isinstance(v, list) and k not in wanted]
        echo(f"{name}: loaded {', '.join(wanted)}; not loaded: {', '.join(skipped) or 'nothing'}")
    return pipe
