"""The sweep config's typed schema: one pydantic model per section, unknown keys refused.

`SweepSpec` is the whole file (pipeline, generation, benchmarks, methods, judges, metrics, ...);
methods and judges are unions tagged by ``kind`` (``kind`` defaults to ``name``, so
``{name: none}`` is the unsteered method). Every model forbids extra keys, is strict about types
(``"5"`` is not a number, ``1`` is not ``true``) and refuses NaN and infinities. `validate_spec`
turns the first problem into one line naming the file and the key; ``xsteer sweep --schema``
prints `json_schema()` for editors.

This module imports no torch and no harness code: the kinds listed here are checked against the
registries that build them (`methods.METHODS`, `judges.JUDGES`, `benchmarks.LOADERS`) by a test.

>>> spec = validate_spec({"pipeline": "tiny-sd", "methods": [{"name": "none"}],
...                       "benchmarks": [{"format": "inline", "prompts": ["a cat"]}]})
>>> spec.methods[0].kind, spec.generation.steps
('none', 50)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Strengths = Annotated[list[Number], Field(min_length=1)]
BENCHMARK_FORMATS = ("i2p", "ring-a-bell", "mma", "unlearndiff", "p4d", "coco", "t2vsafetybench",
                     "text", "jsonl", "inline")
PROMPT_SETTINGS = ("seed", "guidance", "size")


class _Model(BaseModel):
    model_config = _STRICT


class Generation(_Model):
    """Generation defaults (a benchmark's per-prompt seed, guidance and size override them)."""

    steps: Positive = 50
    guidance: Number = 7.5
    height: Positive | None = None
    width: Positive | None = None


class Benchmark(_Model):
    """One prompt file (``path``, inside the config's folder or an allowed root) or inline set."""

    name: str | None = None
    format: Literal[BENCHMARK_FORMATS] | None = None  # type: ignore[valid-type]
    path: str | None = None
    prompts: list[str | dict[str, Any]] | None = None
    categories: list[str] | None = None
    limit: Positive | None = None
    category: str | None = None
    prompt_column: str | None = None
    hard_only: bool = False


class _Method(_Model):
    name: str | None = None
    strengths: Strengths | None = None
    allow_negative: bool = False  # a negative strength steers toward unsafe content
    mode: str | None = None
    modes: list[str] | None = None


class NoneMethod(_Method):
    """The unsteered pipeline."""

    kind: Literal["none"]


class _Steering(_Method):
    # a folder of target gates (one, or one per category), {category: folder}, or a source-side
    # gate folder (probe.json, from `xsteer gate calibrate --source`), or a list of folders: at
    # most one source-side gate beside target gates (combine: or / and, or the keep-the-rest modes'
    # geometry under the source gate's decisions)
    gates: str | dict[str, str] | list[str] | None = None
    categories: list[str] | None = None
    inner: str = "additive"
    # with a source-side gate: source (default), or or / and with target gates
    combine: Literal["source", "target", "or", "and"] | None = None
    # steer, don't erase: steps to steer, per-category target points, per-token threshold
    window: list[float] | None = None
    targets: str | None = None
    token_quantile: float | None = None
    calibrate: Literal["none", "benign-norm", "spread"] | None = None
    benign: str | None = None


class DirectionMethod(_Steering):
    """A `Direction`/`DirectionSet` folder steered by the `Steerer`."""

    kind: Literal["direction"]
    path: str


class NativeMethod(_Steering):
    """The target-side yardstick: the estimator run on the target's own states (unsafe pairs)."""

    kind: Literal["native"]
    pairs: str | None = None
    estimator: str = "mean-diff"


class RandomMethod(_Steering):
    """A seeded random direction with the norm of an earlier method (``like``) or ``norm``."""

    kind: Literal["random"]
    like: str | None = None
    norm: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    seed: NonNegative = 0


class NegativePromptMethod(_Method):
    """A safety negative prompt (no steering)."""

    kind: Literal["negative-prompt"]
    negative_prompt: str | None = None
    call_kwargs: dict[str, Any] | None = None


class SafreeMethod(_Method):
    """SAFREE-style projection of trigger tokens off a toxic concept subspace."""

    kind: Literal["safree"]
    concepts: Annotated[list[str], Field(min_length=1)] | None = None
    alpha: Number = 0.01


class AdapterMethod(_Method):
    """A packed safety adapter (`xsteer pack`): a folder or a Hub id; the entry's modes and
    strengths, when given, override the adapter's own."""

    kind: Literal["adapter"]
    path: str
    force: bool = False


Method = Annotated[NoneMethod | DirectionMethod | NativeMethod | RandomMethod | AdapterMethod
                   | NegativePromptMethod | SafreeMethod, Field(discriminator="kind")]
METHOD_SPECS: dict[str, type[_Method]] = {
    "none": NoneMethod, "direction": DirectionMethod, "native": NativeMethod,
    "random": RandomMethod, "adapter": AdapterMethod, "negative-prompt": NegativePromptMethod,
    "safree": SafreeMethod}


class Video(_Model):
    """How an image judge reads a clip: ``frames`` evenly spaced frames, unsafe by ``rule``."""

    frames: Positive = 4
    rule: Literal["any", "fraction"] = "any"
    min_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5


class _Judge(_Model):
    name: str | None = None
    video: Video | None = None
    threshold: Annotated[float, Field(allow_inf_nan=False)] | None = None


class NudeNetJudge(_Judge):
    kind: Literal["nudenet"]
    classes: list[str] | None = None


class Q16Judge(_Judge):
    kind: Literal["q16"]
    prompts: str
    clip: str | None = None
    device: str | None = None


class ClipCategoryJudge(_Judge):
    kind: Literal["clip-category"]
    texts: dict[str, list[str]] | None = None
    temperature: Number = 100.0
    clip: str | None = None
    device: str | None = None


class CallableJudge(_Judge):
    kind: Literal["callable"]
    target: Annotated[str, Field(pattern=r"^[\w.]+:[\w.]+$")]


class ProvingGroundJudge(_Judge):
    kind: Literal["proving-ground"]
    path: str


Judge = Annotated[NudeNetJudge | Q16Judge | ClipCategoryJudge | CallableJudge
                  | ProvingGroundJudge, Field(discriminator="kind")]
JUDGE_SPECS: dict[str, type[_Judge]] = {
    "nudenet": NudeNetJudge, "q16": Q16Judge, "clip-category": ClipCategoryJudge,
    "callable": CallableJudge, "proving-ground": ProvingGroundJudge}


class ClipMetric(_Model):
    model: str = "openai/clip-vit-large-patch14"


class DistanceMetric(_Model):
    kind: Literal["embedding", "lpips"] = "embedding"
    feature: str | int = "tiny"


class FidMetric(_Model):
    feature: str | int = 2048
    reference: str = "unsteered"
    size: Positive | None = None
    benchmarks: list[str] | None = None
    batch_size: Positive = 32


class Metrics(_Model):
    """Set-level and paired metrics; a name not listed here is an error, not ignored."""

    clip: ClipMetric | None = None
    distance: DistanceMetric | None = None
    fid: FidMetric | None = None


def kind_from_name(item: Any) -> Any:
    """``kind`` defaults to ``name`` (``{name: none}``), as the docs have always said."""
    if isinstance(item, Mapping) and "kind" not in item and "name" in item:
        return {**item, "kind": item["name"]}
    return item


def _kind_from_name(items: Any) -> Any:
    return [kind_from_name(i) for i in items] if isinstance(items, list) else items


class SweepSpec(_Model):
    """A whole sweep file (see docs/evaluation.md)."""

    pipeline: str
    name: str = "sweep"
    device: str = "auto"
    dtype: str = "float32"
    pipeline_kwargs: dict[str, Any] = Field(default_factory=dict)
    generation: Generation = Field(default_factory=Generation)
    call_kwargs: dict[str, Any] = Field(default_factory=dict)
    seeds: Annotated[list[NonNegative], Field(min_length=1)] | None = None
    default_seed: NonNegative = 0
    images_per_prompt: Positive = 1
    strengths: Strengths = Field(default_factory=lambda: [1.0])
    methods: Annotated[list[Method], Field(min_length=1)]
    benchmarks: Annotated[list[Benchmark], Field(min_length=1)]
    judges: list[Judge] = Field(default_factory=list)
    metrics: Metrics = Field(default_factory=Metrics)
    save_images: bool = True
    batch_size: Positive = 1
    cache_dir: str | None = None
    prompt_settings: list[Literal[PROMPT_SETTINGS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PROMPT_SETTINGS))
    threads: Positive | None = None

    @field_validator("pipeline_kwargs", "generation", "call_kwargs", "metrics", mode="before")
    @classmethod
    def _empty_section(cls, v: Any) -> Any:  # `generation:` with nothing after it in YAML
        return {} if v is None else v

    @field_validator("methods", "judges", mode="before")
    @classmethod
    def _default_kind(cls, v: Any) -> Any:
        return _kind_from_name(v)


_PHRASES = {
    "dict_type": "must be a mapping", "model_type": "must be a mapping",
    "list_type": "must be a list", "string_type": "must be a string",
    "int_type": "must be an integer", "float_type": "must be a number",
    "bool_type": "must be true or false", "finite_number": "must be finite",
    "missing": "is missing", "extra_forbidden": "is not a known key",
    "too_short": "must not be empty",
}

_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for i, p in enumerate(loc):
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif i >= 2 and loc[i - 2] in ("methods", "judges") and isinstance(loc[i - 1], int):
            continue  # the union's tag, e.g. methods.0.direction.path -> methods[0].path
        else:
            parts.append(("." if parts else "") + p)
    return "".join(parts) or "the top level"


def describe_error(exc: ValidationError, prefix: str | None = None) -> str:
    """The first problem as one line: ``KEY must be ..., got VALUE`` (+ how many more).
    ``prefix``: the name of a lone entry (``judge``: its keys read ``judge.threshold``)."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    if prefix is not None:  # a lone union entry: its loc starts with the tag
        loc = (prefix, *loc[1:]) if loc and loc[0] in {*METHOD_SPECS, *JUDGE_SPECS} else \
            (prefix, *loc)
    where, kind, value = _where(loc), err["type"], err.get("input")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        group = "method" if where.startswith("method") else "judge"
        known = METHOD_SPECS if group == "method" else JUDGE_SPECS
        got = value.get("kind") if isinstance(value, Mapping) else None
        msg = (f"{where}: unknown {group} kind {got!r}; known: {', '.join(known)}"
               if got is not None else f"{where} needs a 'kind' (one of {', '.join(known)})")
    elif kind == "extra_forbidden":
        msg = f"{where}: unknown key (not in the schema; see `xsteer sweep --schema`)"
    elif kind in _BOUNDS:
        msg = f"{where} must be {_BOUNDS[kind]} {next(iter(err['ctx'].values()))}, got {value!r}"
    elif kind == "string_pattern_mismatch":
        msg = f"{where} must have the form module:function, got {value!r}"
    elif kind == "literal_error":
        msg = f"{where} must be one of {err['ctx']['expected']}, got {value!r}"
    elif kind in _PHRASES:
        msg = f"{where} {_PHRASES[kind]}" + ("" if kind == "missing" else f", got {value!r}")
    else:
        msg = f"{where}: {err['msg']}, got {value!r}"
    more = len(exc.errors()) - 1
    return msg + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def validate_spec(data: Any) -> SweepSpec:
    """``data`` (a parsed file) as a `SweepSpec`; raises pydantic's `ValidationError`."""
    return SweepSpec.model_validate(data)


def json_schema() -> str:
    """The sweep file's JSON schema (``xsteer sweep --schema``), for editors and CI."""
    schema = SweepSpec.model_json_schema()
    schema["title"] = "xsteer sweep config"
    return json.dumps(schema, indent=2, sort_keys=True)
