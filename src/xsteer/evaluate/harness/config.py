"""Sweep configuration: one YAML or TOML file says what to generate, judge and measure.

Relative paths in the file are resolved against the file's folder. See docs/evaluation.md for every
key; `SweepConfig.from_file` validates the shape and names the offending key on error.

>>> cfg = SweepConfig.from_dict({"pipeline": "tiny-sd", "methods": [{"kind": "none"}],
...     "benchmarks": [{"format": "inline", "prompts": ["a cat"]}], "judges": []})
>>> cfg.generation["steps"], cfg.images_per_prompt
(50, 1)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError, require


class ConfigError(XSteerError, ValueError):
    """A sweep configuration is malformed; the message names the key."""


_TOP_KEYS = {"name", "pipeline", "pipeline_kwargs", "device", "dtype", "generation", "seeds",
             "default_seed", "images_per_prompt", "strengths", "methods", "benchmarks", "judges",
             "metrics", "save_images", "batch_size", "call_kwargs", "cache_dir",
             "prompt_settings", "threads"}
PROMPT_SETTINGS = ("seed", "guidance", "size")
_GEN_DEFAULTS: dict[str, Any] = {"steps": 50, "guidance": 7.5, "height": None, "width": None}
# pipeline_kwargs that make diffusers import and run Python named by the config
CODE_KWARGS = ("trust_remote_code", "custom_pipeline")


def _number(value: Any, where: str) -> float:
    """``value`` as a finite float, or `ConfigError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be finite, got {value!r}")
    return float(value)


def _count(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _numbers(values: Any, where: str) -> list[float]:
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where} must be a non-empty list of numbers, got {values!r}")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(values)]


def _check_types(cfg: SweepConfig) -> None:
    """Every value's type, before anything uses it (one ConfigError naming the key)."""
    for key in ("pipeline", "name", "device", "dtype"):
        if not isinstance(getattr(cfg, key), str):
            raise ConfigError(f"{key} must be a string, got {getattr(cfg, key)!r}")
    for key in ("pipeline_kwargs", "generation", "call_kwargs", "metrics"):
        value = getattr(cfg, key)
        if value is None:  # `key:` with nothing after it in YAML
            setattr(cfg, key, {})
        elif not isinstance(value, Mapping):  # an empty list or string too, not only truthy ones
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
    for key in ("methods", "benchmarks", "judges", "prompt_settings"):
        if not isinstance(getattr(cfg, key), list):
            raise ConfigError(f"{key} must be a list, got {getattr(cfg, key)!r}")
    cfg.strengths = _numbers(cfg.strengths, "strengths")
    for i, m in enumerate(cfg.methods):
        if isinstance(m, Mapping) and "strengths" in m:
            _numbers(m["strengths"], f"methods[{i}].strengths")
    if cfg.seeds is not None:
        if not isinstance(cfg.seeds, list):
            raise ConfigError(f"seeds must be a list of integers, got {cfg.seeds!r}")
        for i, seed in enumerate(cfg.seeds):
            _count(seed, f"seeds[{i}]", minimum=0)
    _count(cfg.default_seed, "default_seed", minimum=0)
    _count(cfg.images_per_prompt, "images_per_prompt")
    _count(cfg.batch_size, "batch_size")
    if cfg.threads is not None:
        _count(cfg.threads, "threads")
    if not isinstance(cfg.save_images, bool):
        raise ConfigError(f"save_images must be true or false, got {cfg.save_images!r}")
    if cfg.cache_dir is not None and not isinstance(cfg.cache_dir, str):
        raise ConfigError(f"cache_dir must be a string, got {cfg.cache_dir!r}")


@dataclass
class SweepConfig:
    """A validated sweep (the shape of the YAML/TOML file)."""

    pipeline: str
    methods: list[dict[str, Any]]
    benchmarks: list[dict[str, Any]]
    judges: list[dict[str, Any]]
    name: str = "sweep"
    device: str = "auto"
    dtype: str = "float32"
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None
    default_seed: int = 0
    images_per_prompt: int = 1
    strengths: list[float] = field(default_factory=lambda: [1.0])
    metrics: dict[str, Any] = field(default_factory=dict)
    save_images: bool = True
    batch_size: int = 1
    cache_dir: str | None = None
    prompt_settings: list[str] = field(default_factory=lambda: list(PROMPT_SETTINGS))
    threads: int | None = None
    base_dir: str = "."

    def __post_init__(self) -> None:
        _check_types(self)
        self.generation = {**_GEN_DEFAULTS, **(self.generation or {})}
        unknown = set(self.generation) - set(_GEN_DEFAULTS)
        if unknown:
            raise ConfigError(f"generation: unknown key(s) {sorted(unknown)}; known: "
                              f"{sorted(_GEN_DEFAULTS)}")
        _count(self.generation["steps"], "generation.steps")
        _number(self.generation["guidance"], "generation.guidance")
        for key in ("height", "width"):
            if self.generation[key] is not None:
                _count(self.generation[key], f"generation.{key}")
        if not self.methods:
            raise ConfigError("methods: list at least one method")
        if not self.benchmarks:
            raise ConfigError("benchmarks: list at least one benchmark")
        for key in ("methods", "benchmarks", "judges"):
            for i, item in enumerate(getattr(self, key)):
                if not isinstance(item, Mapping):
                    raise ConfigError(f"{key}[{i}] must be a mapping, got {item!r}")
        bad = {str(x) for x in self.prompt_settings} - set(PROMPT_SETTINGS)
        if bad:
            raise ConfigError(f"prompt_settings: unknown {sorted(bad)}; known: "
                              f"{list(PROMPT_SETTINGS)} (which per-prompt benchmark settings "
                              "override the generation defaults)")
        if self.seeds is not None and not self.seeds:
            raise ConfigError("seeds: give a non-empty list, or omit it for per-prompt seeds")
        names = [str(b.get("name", b.get("path", "inline"))) for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ConfigError(f"benchmarks need distinct names, got {names}")

    def check_trust(self, trust_remote_code: bool = False, allow_callables: bool = False) -> None:
        """Refuse a config that would run code it names, unless the caller allowed it.

        ``pipeline_kwargs`` ``trust_remote_code`` / ``custom_pipeline`` make diffusers execute a
        model folder's Python; a judge of ``kind: callable`` imports and calls ``module:function``.
        """
        if not trust_remote_code:
            code = [k for k in CODE_KWARGS if self.pipeline_kwargs.get(k)]
            if code:
                raise ConfigError(f"pipeline_kwargs.{code[0]} would run code named by the config; "
                                  "pass --trust-remote-code if you trust it")
        if not allow_callables:
            for i, j in enumerate(self.judges):
                if j.get("kind", j.get("name")) == "callable":
                    raise ConfigError(f"judges[{i}] is kind 'callable' ({j.get('target')!r}): it "
                                      "imports and runs code; pass --allow-callables to allow it")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | os.PathLike[str] = ".") -> SweepConfig:
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {sorted(unknown)}; known: "
                              f"{sorted(_TOP_KEYS)}")
        if "pipeline" not in data:
            raise ConfigError("missing key 'pipeline' (an alias such as tiny-sd, a folder or an "
                              "HF id)")
        kw = dict(data)
        kw.setdefault("judges", [])
        kw.setdefault("methods", [])
        kw.setdefault("benchmarks", [])
        try:
            return cls(base_dir=str(base_dir), **kw)
        except (TypeError, AttributeError) as exc:
            raise ConfigError(f"bad sweep config: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SweepConfig:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"sweep config not found: {p}")
        suffix = p.suffix.lower()
        if suffix not in (".toml", ".yaml", ".yml", ".json"):
            raise ConfigError(f"{p}: config must be .yaml, .yml, .toml or .json")
        yaml = require("yaml", "eval") if suffix in (".yaml", ".yml") else None
        try:
            text = p.read_text(encoding="utf-8")
            if suffix == ".toml":
                import tomllib

                data: Any = tomllib.loads(text)
            elif yaml is not None:
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:  # JSON/TOML errors are ValueErrors
            raise ConfigError(f"{p}: cannot parse: {' '.join(str(exc).split())}") from exc
        except Exception as exc:  # yaml.YAMLError has no common base with the others
            if yaml is None or not isinstance(exc, yaml.YAMLError):
                raise
            raise ConfigError(f"{p}: cannot parse: {' '.join(str(exc).split())}") from exc
        if not isinstance(data, Mapping):
            raise ConfigError(f"{p}: the top level must be a mapping")
        return cls.from_dict(data, base_dir=p.parent.resolve())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("base_dir")
        return d

    def digest(self) -> str:
        """Hash of everything that changes the records (not the run's folder or thread count)."""
        d = self.to_dict()
        d.pop("threads")
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def path(self, p: str) -> Path:
        """A config-relative path resolved."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else Path(self.base_dir) / q
