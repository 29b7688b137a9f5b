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
        self.generation = {**_GEN_DEFAULTS, **(self.generation or {})}
        unknown = set(self.generation) - set(_GEN_DEFAULTS)
        if unknown:
            raise ConfigError(f"generation: unknown key(s) {sorted(unknown)}; known: "
                              f"{sorted(_GEN_DEFAULTS)}")
        if not self.methods:
            raise ConfigError("methods: list at least one method")
        if not self.benchmarks:
            raise ConfigError("benchmarks: list at least one benchmark")
        for key in ("methods", "benchmarks", "judges"):
            for i, item in enumerate(getattr(self, key)):
                if not isinstance(item, Mapping):
                    raise ConfigError(f"{key}[{i}] must be a mapping, got {item!r}")
        bad = set(self.prompt_settings) - set(PROMPT_SETTINGS)
        if bad:
            raise ConfigError(f"prompt_settings: unknown {sorted(bad)}; known: "
                              f"{list(PROMPT_SETTINGS)} (which per-prompt benchmark settings "
                              "override the generation defaults)")
        if self.images_per_prompt < 1 or self.batch_size < 1:
            raise ConfigError("images_per_prompt and batch_size must be >= 1")
        if self.seeds is not None and not self.seeds:
            raise ConfigError("seeds: give a non-empty list, or omit it for per-prompt seeds")
        names = [str(b.get("name", b.get("path", "inline"))) for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ConfigError(f"benchmarks need distinct names, got {names}")

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
        except TypeError as exc:
            raise ConfigError(f"bad sweep config: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SweepConfig:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"sweep config not found: {p}")
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            yaml = require("yaml", "eval")
            data = yaml.safe_load(text)
        elif p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{p}: config must be .yaml, .yml, .toml or .json")
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
