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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from xsteer.errors import XSteerError, require
from xsteer.evaluate.harness.schema import (
    PROMPT_SETTINGS,
    SweepSpec,
    describe_error,
    validate_spec,
)


class ConfigError(XSteerError, ValueError):
    """A sweep configuration is malformed; the message names the file and the key."""


_TOP_KEYS = set(SweepSpec.model_fields)
# pipeline_kwargs that make diffusers import and run Python named by the config
CODE_KWARGS = ("trust_remote_code", "custom_pipeline")
# written in a path, these stand for xsteer's cache (`models.cache.cache_dir`), set or not
CACHE_VARS = ("${XSTEER_CACHE}", "$XSTEER_CACHE")


def _paths_read(spec: SweepSpec) -> list[tuple[str, str]]:
    """(key, path) of every file or folder the config makes the sweep read (not the pipeline,
    which may be an alias or a hub id, and not ``cache_dir``, which it writes)."""
    out: list[tuple[str, str]] = []
    for i, b in enumerate(spec.benchmarks):
        if b.path is not None:
            out.append((f"benchmarks[{i}].path", b.path))
    for i, m in enumerate(spec.methods):
        for key in ("path", "benign", "pairs", "targets"):
            value = getattr(m, key, None)
            if value is not None:
                out.append((f"methods[{i}].{key}", value))
        gates = getattr(m, "gates", None)
        if isinstance(gates, str):
            out.append((f"methods[{i}].gates", gates))
        elif isinstance(gates, list):
            out += [(f"methods[{i}].gates[{k}]", v) for k, v in enumerate(gates)]
        elif gates:
            out += [(f"methods[{i}].gates.{k}", v) for k, v in gates.items()]
    for i, j in enumerate(spec.judges):
        for key in ("path", "prompts"):
            value = getattr(j, key, None)
            if value is not None:
                out.append((f"judges[{i}].{key}", value))
    fid = spec.metrics.fid
    if fid is not None:
        if fid.reference != "unsteered":
            out.append(("metrics.fid.reference", fid.reference))
        if isinstance(fid.feature, str) and fid.feature.startswith("proving-ground:"):
            out.append(("metrics.fid.feature", fid.feature.split(":", 1)[1]))
    return out


@dataclass
class SweepConfig:
    """A validated sweep (the shape of the YAML/TOML file; the schema is `schema.SweepSpec`).

    ``base_dir`` is the config's folder: relative paths resolve against it, and every path the
    sweep reads must stay inside it, inside xsteer's cache, or inside one of ``allow_paths``
    (symlinks are followed before the check). ``source`` names the file in error messages.
    """

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
    source: str = "sweep config"
    allow_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        raw = {k: v for k, v in self._fields().items() if v is not None or k == "metrics"}
        try:
            self.spec = validate_spec(raw)
        except ValidationError as exc:
            raise ConfigError(f"{self.source}: {describe_error(exc)}") from None
        for key in ("pipeline_kwargs", "call_kwargs", "metrics"):
            setattr(self, key, dict(getattr(self, key) or {}))
        self.generation = self.spec.generation.model_dump()
        self.strengths = list(self.spec.strengths)
        names = [str(b.get("name", b.get("path", "inline"))) for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.source}: benchmarks need distinct names, got {names}")
        for key, value in _paths_read(self.spec):
            self.owned(value, key)

    def _fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _TOP_KEYS}

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
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | os.PathLike[str] = ".",
                  source: str = "sweep config",
                  allow_paths: Sequence[str | os.PathLike[str]] = ()) -> SweepConfig:
        """A config from parsed data; ``base_dir`` is the folder its relative paths live in."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: the top level must be a mapping")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}; known: "
                              f"{sorted(_TOP_KEYS)}")
        if "pipeline" not in data:
            raise ConfigError(f"{source}: missing key 'pipeline' (an alias such as tiny-sd, a "
                              "folder or an HF id)")
        kw = {"judges": [], "methods": [], "benchmarks": [], **data}
        return cls(base_dir=str(base_dir), source=source,
                   allow_paths=tuple(str(p) for p in allow_paths), **kw)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str],
                  allow_paths: Sequence[str | os.PathLike[str]] = ()) -> SweepConfig:
        """Read a .yaml/.yml/.toml/.json sweep file (duplicate keys are errors)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"sweep config not found: {p}")
        suffix = p.suffix.lower()
        if suffix not in (".toml", ".yaml", ".yml", ".json"):
            raise ConfigError(f"{p}: config must be .yaml, .yml, .toml or .json")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
        data = parse_config_text(text, suffix, str(p))
        return cls.from_dict(data, base_dir=p.parent.resolve(), source=str(p),
                             allow_paths=allow_paths)

    def to_dict(self) -> dict[str, Any]:
        """The config as written (defaults filled in), without where it was read from."""
        d = asdict(self)
        for key in ("base_dir", "source", "allow_paths"):
            d.pop(key)
        return d

    def digest(self) -> str:
        """Hash of everything that changes the records (not the run's folder or thread count)."""
        d = self.to_dict()
        d.pop("threads")
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def path(self, p: str) -> Path:
        """A config-relative path resolved (``${XSTEER_CACHE}`` is xsteer's cache, ``~`` home)."""
        for var in CACHE_VARS:
            if p.startswith(var):
                from xsteer.models.cache import cache_dir

                p = str(cache_dir()) + p[len(var):]
        q = Path(p).expanduser()
        return q if q.is_absolute() else Path(self.base_dir) / q

    def roots(self) -> list[Path]:
        """The folders the sweep may read from: the config's, xsteer's cache, ``allow_paths``."""
        from xsteer.models.cache import cache_dir

        roots: list[str | Path] = [self.base_dir, cache_dir(), *self.allow_paths]
        return [Path(r).expanduser().resolve() for r in roots]

    def owned(self, p: str, key: str) -> Path:
        """``p`` resolved (symlinks followed), or `ConfigError` when it leaves every root."""
        real = self.path(p).resolve()
        if not any(real.is_relative_to(r) for r in self.roots()):
            raise ConfigError(f"{self.source}: {key} {p!r} resolves to {real}, outside the "
                              f"config's folder {Path(self.base_dir).resolve()} and xsteer's "
                              "cache; pass --allow-path DIR to let the sweep read under DIR")
        return real


def yaml_load(text: str) -> Any:
    """YAML with PyYAML's safe loader, except that a key given twice in one mapping is a
    `ConfigError` (PyYAML would keep the last value silently)."""
    yaml = require("yaml", "eval")

    class UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[name-defined]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
                seen.add(key)
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=UniqueKeyLoader)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ConfigError(f"duplicate key {dup!r}")
    return dict(pairs)


def parse_config_text(text: str, suffix: str, source: str) -> Any:
    """Parse a sweep file's text by its suffix; a syntax error or a duplicate key is one
    `ConfigError` line naming ``source``."""
    try:
        if suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_pairs)
        return yaml_load(text)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except Exception as exc:  # JSON/TOML errors are ValueErrors; yaml.YAMLError has no shared base
        if not isinstance(exc, ValueError) and type(exc).__module__.split(".")[0] != "yaml":
            raise
        raise ConfigError(f"{source}: cannot parse: {' '.join(str(exc).split())}") from None
