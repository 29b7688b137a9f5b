"""Every method a sweep compares — xsteer directions and the baselines — behind one interface.

A `Method` is set up once on a `PipelineRunner` and then, for each of its settings (mode,
strength), turns a batch of prompts into the pipeline kwargs of the positive prompt
(``conditioning``). The sweep never asks what kind of method it holds.

Kinds:
- ``none``: the unsteered pipeline (the reference for paired distances and image grids).
- ``direction``: an xsteer direction artifact (transported, or any `Direction`/`DirectionSet`),
  applied by `xsteer.pipelines.Steerer` on the conditional branch (steered ``prompt_embeds``).
- ``native``: the same estimator run on the *target's* own text states with unsafe pairs — the
  yardstick, which sees target-side unsafe data by construction (recorded in its provenance).
- ``random``: a seeded random direction with the norm of another method's direction (or ``norm``).
- ``negative-prompt``: a safety negative prompt, no steering.
- ``adapter``: a packed `xsteer.pipelines.adapter.Adapter` (refused on another pipeline unless
  ``force: true``).
- ``safree``: SAFREE-style projection of trigger tokens off a toxic concept subspace
  (`xsteer.evaluate.harness.safree`; which parts of SAFREE are kept is said there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.gate_spec import MixedGates, load_gate_spec, resolver
from xsteer.evaluate.harness.generation import PipelineRunner
from xsteer.evaluate.harness.keep_options import pop_keep_options
from xsteer.evaluate.harness.method_base import Method, Setting


class Unsteered(Method):
    kind = "none"

    def __init__(self, name: str = "none") -> None:
        super().__init__(name, strengths=[0.0], modes=["none"])

    def conditioning(self, gen: PipelineRunner, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        return gen.encode(prompts), {}


class DirectionMethod(Method):
    """Steer with a `Direction`/`DirectionSet` through `xsteer.pipelines.Steerer`."""

    kind = "direction"

    def __init__(self, name: str, directions: Any = None, strengths: Sequence[float] = (1.0,),
                 modes: Sequence[str] = ("additive",), gates: Any = None,
                 categories: list[str] | None = None, inner: str = "additive",
                 path: str | None = None, calibrate: str | None = None,
                 benign: str | None = None, combine: str | None = None,
                 keep: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, strengths, modes)
        self.directions = directions
        # ``gates:`` may name a source-side gate (a SourceGate) instead of target gates, or both
        from xsteer.steer.source_gate import SourceGate

        if isinstance(gates, MixedGates):
            self.source_gate, self.gates = gates.source, gates.target or None
        else:
            self.source_gate = gates if isinstance(gates, SourceGate) else None
            self.gates = None if self.source_gate is not None else gates
        self.combine = combine
        self.categories = categories
        self.inner = inner
        self.path = path
        self.calibrate, self.benign = calibrate, benign
        # steer-don't-erase options (xsteer.evaluate.harness.keep_options): window, targets,
        # token_quantile
        self.keep: dict[str, Any] = dict(keep or {})

    def setup(self, gen: PipelineRunner) -> None:
        self.prepare(gen)
        if self.calibrate not in (None, "none"):
            self.directions = self._calibrated(gen)
        if self.keep.get("token_quantile") is not None:
            from xsteer.evaluate.harness.keep_options import token_gates

            self.gates = token_gates(gen, self.gates, float(self.keep["token_quantile"]),
                                     self.benign, self.name)

    def prepare(self, gen: PipelineRunner) -> None:
        """Build the direction when it depends on the pipeline (native, random)."""
        return None

    def _calibrated(self, gen: PipelineRunner) -> Any:
        """The direction rescaled from benign target features only (``calibrate``:
        benign-norm or spread), read at the site the Steerer will steer, as the gate sees it:
        strength then means a fraction of the typical benign norm for every method alike."""
        from xsteer.align.calibration import benign_stats, calibrate_direction
        from xsteer.data import load_benign
        from xsteer.data.screen import screen, screen_semantic
        from xsteer.directions import DirectionSet
        from xsteer.pipelines import site_features

        site = gen.family.default_site
        texts = load_benign(self.benign)
        screen(texts, str(self.benign), "magnitude calibration", hint="use a benign file")
        feats = site_features(gen.pipe, texts, [site], **gen.call_kwargs)[site].float().cpu()
        screen_semantic(texts, feats, lambda ts: site_features(gen.pipe, ts, [site], **gen.call_kwargs)[site],
                        str(self.benign), "magnitude calibration", hint="use a benign file", key=site)
        stats, how = benign_stats(feats), str(self.calibrate)
        if isinstance(self.directions, DirectionSet):
            return self.directions.map(lambda d: calibrate_direction(d, stats, how))
        return calibrate_direction(self.directions, stats, how)

    def steerer(self, mode: str, strength: float) -> Any:
        """The `Steerer` of one setting."""
        from xsteer.pipelines import Steerer

        gated = mode in ("gated", "tokens", "minimal", "target")
        return Steerer(self.directions, mode=mode, strength=strength, gates=self.gates,
                       categories=self.categories, inner=self.inner,
                       source_gate=self.source_gate if gated else None,
                       combine=self.combine if gated else None,
                       targets=self.keep.get("targets"))

    def conditioning(self, gen: PipelineRunner, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.directions is None:
            raise XSteerError(f"method {self.name!r}: no direction (was setup() called?)")
        mode, strength = setting
        steerer = self.steerer(mode, strength)
        embeds, _, records = steerer.encode(gen.pipe, list(prompts), **gen.call_kwargs)
        if self.keep.get("window") is not None:
            from xsteer.pipelines.window import windowed_kwargs

            embeds = windowed_kwargs(gen.pipe, embeds, gen.encode(prompts), self.keep["window"],
                                     {"num_inference_steps": gen.steps})
        info: dict[str, Any] = {}
        decisions = records[0].decisions if records else {}
        if mode in ("gated", "tokens", "minimal", "target") and decisions:
            info["gate"] = [any(bool(v[i]) for v in decisions.values())
                            for i in range(len(prompts))]
        return embeds, info

    @property
    def norm(self) -> float:
        d = self.directions
        if d is None:
            raise XSteerError(f"method {self.name!r} has no direction yet")
        if hasattr(d, "norm"):
            return float(d.norm)
        return float(next(iter(d.directions.values())).norm)

    def describe(self) -> dict[str, Any]:
        d = self.directions
        out: dict[str, Any] = {"kind": self.kind, "path": self.path, "inner": self.inner,
                               "categories": self.categories, "calibrate": self.calibrate,
                               "benign": self.benign}
        if self.keep:
            from xsteer.evaluate.harness.keep_options import describe_keep

            out["keep"] = describe_keep(self.keep)
        if d is not None:
            out.update(model_id=d.model_id, site=str(d.site), dim=d.dim, norm=self.norm,
                       saw_unsafe=d.provenance.summary())
        return out


class NativeDirection(DirectionMethod):
    """Mean difference of the target's own site features on unsafe/safe pairs (the yardstick)."""

    kind = "native"

    def __init__(self, name: str, pairs: str | None = None, estimator: str = "mean-diff",
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        self.pairs_path = pairs
        self.estimator = estimator

    def prepare(self, gen: PipelineRunner) -> None:
        from xsteer.data import data_record, load_pairs, pair_texts
        from xsteer.directions import Direction
        from xsteer.directions.estimators import get_estimator
        from xsteer.pipelines import site_features
        from xsteer.provenance import Provenance

        pairs = load_pairs(self.pairs_path)
        unsafe, safe = pair_texts(pairs)
        site = gen.family.default_site
        fu = site_features(gen.pipe, unsafe, [site], **gen.call_kwargs)[site].float().cpu()
        fs = site_features(gen.pipe, safe, [site], **gen.call_kwargs)[site].float().cpu()
        vec = get_estimator(self.estimator)(fu, fs)
        prov = Provenance([data_record(self.pairs_path or "shipped pairs", unsafe + safe,
                                       side="target", unsafe=True)])
        self.directions = Direction(vec, model_id=gen.name, site=site, origin="native",
                                    method=self.estimator, provenance=prov,
                                    meta={"n_pairs": len(pairs)})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pairs": self.pairs_path, "estimator": self.estimator}


class RandomDirection(DirectionMethod):
    """A seeded random direction with the norm of method ``like`` (or a fixed ``norm``)."""

    kind = "random"

    def __init__(self, name: str, like: DirectionMethod | None = None, norm: float | None = None,
                 seed: int = 0, **kw: Any) -> None:
        super().__init__(name, **kw)
        if like is None and norm is None:
            raise XSteerError(f"random method {name!r} needs 'like' (a method) or 'norm'")
        self.like, self.fixed_norm, self.seed = like, norm, int(seed)

    def prepare(self, gen: PipelineRunner) -> None:
        from xsteer.directions import Direction
        from xsteer.directions.estimators import random_direction

        site = gen.family.site(gen.family.default_site)
        norm = self.fixed_norm if self.fixed_norm is not None else self.like.norm  # type: ignore[union-attr]
        vec = random_direction(site.dim(gen.pipe), norm=float(norm), seed=self.seed)
        self.directions = Direction(vec, model_id=gen.name, site=site.name, origin="random",
                                    method="random", meta={"seed": self.seed})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "like": self.like.name if self.like else None,
                "seed": self.seed}


class AdapterMethod(DirectionMethod):
    """A packed adapter through its own Steerer; the config's modes and strengths override its
    own (a per-category strength mapping is kept unless strengths are given)."""

    kind = "adapter"

    def __init__(self, name: str, adapter: Any, path: str, strengths: Sequence[float] | None,
                 modes: Sequence[str] | None, force: bool = False) -> None:
        op = adapter.operator
        own = isinstance(op.get("strength", 1.0), (int, float))
        super().__init__(name, adapter.directions, strengths or [op.get("strength", 1.0) if own
                                                                 else 1.0],
                         modes or [op.get("mode", "additive")], path=path)
        self.adapter, self.force, self.override = adapter, bool(force), own or bool(strengths)

    def setup(self, gen: PipelineRunner) -> None:
        self.adapter.check(gen.pipe, self.force)

    def steerer(self, mode: str, strength: float) -> Any:
        over = {"strength": strength} if self.override else {}
        return self.adapter.steerer(force=self.force, mode=mode, **over)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "adapter": self.adapter.name,
                "operator": self.adapter.operator, "gate_kind": self.adapter.gate_kind}


class _Context:
    """What a method builder may need besides its own entry: paths, defaults, earlier methods."""

    def __init__(self, resolve: Callable[[str], Path], default_strengths: Sequence[float],
                 built: list[Method]) -> None:
        self.resolve, self.default_strengths, self.built = resolve, default_strengths, built

    def steering(self, s: Any, name: str) -> dict[str, Any]:
        keep = {k: getattr(s, k) for k in ("window", "targets", "token_quantile")}
        return dict(strengths=self.strengths(s), modes=s.modes or [s.mode or "additive"],
                    gates=load_gate_spec(s.gates, self.resolve), categories=s.categories,
                    inner=s.inner, combine=s.combine, calibrate=s.calibrate,
                    benign=str(self.resolve(s.benign)) if s.benign is not None else None,
                    keep=pop_keep_options(keep, self.resolve, name))

    def strengths(self, s: Any) -> list[float]:
        out = list(s.strengths if s.strengths is not None else self.default_strengths)
        if min(out, default=0.0) < 0 and not getattr(s, "allow_negative", False):
            raise XSteerError(f"method {s.name or s.kind!r}: strength {min(out):g} is negative "
                              "(it steers toward unsafe content); add allow_negative: true to it")
        return out


def _direction(s: Any, name: str, ctx: _Context) -> Method:
    from xsteer.directions import load_directions

    return DirectionMethod(name, load_directions(ctx.resolve(s.path)), path=s.path,
                           **ctx.steering(s, name))


def _native(s: Any, name: str, ctx: _Context) -> Method:
    return NativeDirection(name, pairs=str(ctx.resolve(s.pairs)) if s.pairs else None,
                           estimator=s.estimator, **ctx.steering(s, name))


def _random(s: Any, name: str, ctx: _Context) -> Method:
    found = next((x for x in ctx.built if x.name == s.like), None)
    like = found if isinstance(found, DirectionMethod) else None
    if s.like is not None and like is None:
        raise XSteerError(f"random method {name!r}: 'like' must name an earlier direction "
                          f"method, got {s.like!r}")
    return RandomDirection(name, like=like, norm=s.norm, seed=s.seed, **ctx.steering(s, name))


def _adapter(s: Any, name: str, ctx: _Context) -> Method:
    from xsteer.pipelines.adapter import load_adapter

    if Path(s.path).expanduser().is_absolute() or Path(s.path).parts[:1] in (("."), ("..",)):
        source: Any = ctx.resolve(s.path)  # a local folder: inside the config's allowed roots
    else:
        try:
            local = ctx.resolve(s.path)
        except XSteerError:
            local = None
        source = local if local is not None and local.exists() else s.path  # else a Hub id
    modes = s.modes or ([s.mode] if s.mode else None)
    return AdapterMethod(name, load_adapter(source), s.path,
                         ctx.strengths(s) if s.strengths is not None else None, modes, s.force)


def _negative_prompt(s: Any, name: str, ctx: _Context) -> Method:
    from xsteer.evaluate.harness.baselines import DEFAULT_NEGATIVE_PROMPT, NegativePrompt

    return NegativePrompt(name, s.negative_prompt or DEFAULT_NEGATIVE_PROMPT, s.call_kwargs)


def _safree(s: Any, name: str, ctx: _Context) -> Method:
    from xsteer.evaluate.harness.baselines import DEFAULT_TOXIC_CONCEPTS, Safree

    return Safree(name, s.concepts or DEFAULT_TOXIC_CONCEPTS, ctx.strengths(s), s.alpha)


# The registry: a method kind -> its builder from the kind's typed entry (`schema.METHOD_SPECS`).
METHODS: dict[str, Callable[[Any, str, _Context], Method]] = {
    "none": lambda s, name, ctx: Unsteered(name), "direction": _direction, "native": _native,
    "random": _random, "adapter": _adapter, "negative-prompt": _negative_prompt,
    "safree": _safree}
METHOD_KINDS = tuple(METHODS)


def parse_method(spec: Mapping[str, Any] | Any) -> Any:
    """A method entry as its typed `schema` model; a bad entry is one `XSteerError` line."""
    from pydantic import BaseModel, TypeAdapter, ValidationError

    from xsteer.evaluate.harness import schema

    if isinstance(spec, BaseModel):
        return spec
    try:
        return TypeAdapter(schema.Method).validate_python(schema.kind_from_name(dict(spec)))
    except ValidationError as exc:
        raise XSteerError(schema.describe_error(exc, "method")) from None


def build_methods(specs: Sequence[Mapping[str, Any] | Any],
                  base: Path | Callable[[str], Path],
                  default_strengths: Sequence[float]) -> list[Method]:
    """Methods from sweep-config entries; ``random`` may refer to an earlier method by name.
    ``base``: the config's folder, or a function that resolves (and checks) a config path."""
    resolve = resolver(base)
    out: list[Method] = []
    ctx = _Context(resolve, default_strengths, out)
    for raw in specs:
        s = parse_method(raw)
        name = s.name or s.kind
        if name in {m.name for m in out}:
            raise XSteerError(f"two methods are named {name!r}")
        out.append(METHODS[s.kind](s, name, ctx))
    return out
