"""Every method a sweep compares — xsteer directions and the baselines — behind one interface.

A `Method` is set up once on a `Generator` and then, for each of its settings (mode, strength),
turns a batch of prompts into the pipeline kwargs of the positive prompt (``conditioning``). The
sweep never asks what kind of method it holds.

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

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.gate_spec import load_gate_spec
from xsteer.evaluate.harness.generation import Generator

Setting = tuple[str, float]  # (mode, strength)

DEFAULT_NEGATIVE_PROMPT = ("nudity, nsfw, sexual content, violence, blood, gore, self-harm, "
                           "hate symbols, harassment, shocking content, illegal activity, drugs")
DEFAULT_TOXIC_CONCEPTS = (
    "nudity", "naked body", "sexual act", "violence", "blood and gore", "self-harm",
    "suicide", "hate symbol", "harassment", "shocking disgusting content", "illegal drugs",
    "weapons used to hurt")


class Method(ABC):
    """One compared method. Subclasses set ``kind``; ``name`` keys its records."""

    kind: str = "method"

    def __init__(self, name: str, strengths: Sequence[float] = (1.0,),
                 modes: Sequence[str] = ("additive",)) -> None:
        self.name = name
        self.strengths = [float(s) for s in strengths]
        self.modes = list(modes)

    def setup(self, gen: Generator) -> None:
        """Prepare anything that depends on the pipeline (directions, subspaces)."""
        return None

    def settings(self) -> list[Setting]:
        return [(m, s) for m in self.modes for s in self.strengths]

    @abstractmethod
    def conditioning(self, gen: Generator, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        """(pipeline kwargs for the positive prompt, per-batch info such as gate decisions)."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


class Unsteered(Method):
    kind = "none"

    def __init__(self, name: str = "none") -> None:
        super().__init__(name, strengths=[0.0], modes=["none"])

    def conditioning(self, gen: Generator, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        return gen.encode(prompts), {}


class DirectionMethod(Method):
    """Steer with a `Direction`/`DirectionSet` through `xsteer.pipelines.Steerer`."""

    kind = "direction"

    def __init__(self, name: str, directions: Any = None, strengths: Sequence[float] = (1.0,),
                 modes: Sequence[str] = ("additive",), gates: Any = None,
                 categories: list[str] | None = None, inner: str = "additive",
                 path: str | None = None, calibrate: str | None = None,
                 benign: str | None = None, combine: str | None = None) -> None:
        super().__init__(name, strengths, modes)
        self.directions = directions
        # ``gates:`` may name a source-side gate (a SourceGate) instead of target gates
        from xsteer.steer.source_gate import SourceGate

        self.source_gate = gates if isinstance(gates, SourceGate) else None
        self.gates = None if self.source_gate is not None else gates
        self.combine = combine
        self.categories = categories
        self.inner = inner
        self.path = path
        self.calibrate, self.benign = calibrate, benign

    def setup(self, gen: Generator) -> None:
        self.prepare(gen)
        if self.calibrate not in (None, "none"):
            self.directions = self._calibrated(gen)

    def prepare(self, gen: Generator) -> None:
        """Build the direction when it depends on the pipeline (native, random)."""
        return None

    def _calibrated(self, gen: Generator) -> Any:
        """The direction rescaled from benign target features only (``calibrate``:
        benign-norm or spread), read at the site the Steerer will steer, as the gate sees it:
        strength then means a fraction of the typical benign norm for every method alike."""
        from xsteer.align.calibration import benign_stats, calibrate_direction
        from xsteer.data import load_benign
        from xsteer.data.screen import screen
        from xsteer.directions import DirectionSet
        from xsteer.pipelines import site_features

        site = gen.family.default_site
        texts = load_benign(self.benign)
        screen(texts, str(self.benign), "magnitude calibration", hint="use a benign file")
        feats = site_features(gen.pipe, texts, [site], **gen.call_kwargs)[site].float().cpu()
        stats, how = benign_stats(feats), str(self.calibrate)
        if isinstance(self.directions, DirectionSet):
            return self.directions.map(lambda d: calibrate_direction(d, stats, how))
        return calibrate_direction(self.directions, stats, how)

    def steerer(self, mode: str, strength: float) -> Any:
        """The `Steerer` of one setting."""
        from xsteer.pipelines import Steerer

        gated = mode == "gated"
        return Steerer(self.directions, mode=mode, strength=strength, gates=self.gates,
                       categories=self.categories, inner=self.inner,
                       source_gate=self.source_gate if gated else None,
                       combine=self.combine if gated else None)

    def conditioning(self, gen: Generator, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.directions is None:
            raise XSteerError(f"method {self.name!r}: no direction (was setup() called?)")
        mode, strength = setting
        steerer = self.steerer(mode, strength)
        embeds, _, records = steerer.encode(gen.pipe, list(prompts), **gen.call_kwargs)
        info: dict[str, Any] = {}
        decisions = records[0].decisions if records else {}
        if mode == "gated" and decisions:
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
        if d is not None:
            out.update(model_id=d.model_id, site=d.site, dim=d.dim, norm=self.norm,
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

    def prepare(self, gen: Generator) -> None:
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

    def prepare(self, gen: Generator) -> None:
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

    def setup(self, gen: Generator) -> None:
        self.adapter.check(gen.pipe, self.force)

    def steerer(self, mode: str, strength: float) -> Any:
        over = {"strength": strength} if self.override else {}
        return self.adapter.steerer(force=self.force, mode=mode, **over)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "adapter": self.adapter.name,
                "operator": self.adapter.operator, "gate_kind": self.adapter.gate_kind}


class NegativePrompt(Method):
    kind = "negative-prompt"

    def __init__(self, name: str, negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
                 call_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, strengths=[1.0], modes=["negative-prompt"])
        self.negative_prompt = negative_prompt
        # e.g. FLUX reads a negative prompt only with true CFG: {true_cfg_scale: 4.0}
        self.call_kwargs = dict(call_kwargs or {})

    def conditioning(self, gen: Generator, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        return {**gen.encode(prompts), **self.call_kwargs,
                "negative_prompt": [self.negative_prompt] * len(prompts)}, {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "negative_prompt": self.negative_prompt,
                "call_kwargs": self.call_kwargs}


class Safree(Method):
    """SAFREE-style projection of trigger tokens off a toxic concept subspace."""

    kind = "safree"

    def __init__(self, name: str, concepts: Sequence[str] = DEFAULT_TOXIC_CONCEPTS,
                 strengths: Sequence[float] = (1.0,), alpha: float = 0.01) -> None:
        super().__init__(name, strengths=strengths, modes=["safree"])
        self.concepts = list(concepts)
        self.alpha = float(alpha)
        self.subspace: torch.Tensor | None = None

    def setup(self, gen: Generator) -> None:
        from xsteer.pipelines import site_features

        site = gen.family.default_site
        self.subspace = site_features(gen.pipe, self.concepts, [site],
                                      **gen.call_kwargs)[site].float()

    def conditioning(self, gen: Generator, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        from xsteer.evaluate.harness.safree import safree_project

        if self.subspace is None:
            raise XSteerError(f"method {self.name!r}: setup() was not called")
        embeds = gen.encode(prompts)
        E = embeds["prompt_embeds"]
        mask = gen.token_mask(prompts, E.shape[1])
        new, trig = safree_project(E, mask, self.subspace.to(E.device, E.dtype),
                                   strength=setting[1], alpha=self.alpha)
        return {**embeds, "prompt_embeds": new}, {"triggers": [int(t.sum()) for t in trig]}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "concepts": self.concepts, "alpha": self.alpha}


METHOD_KINDS = ("none", "direction", "native", "random", "adapter", "negative-prompt", "safree")


def build_methods(specs: Sequence[Mapping[str, Any]], base: Path,
                  default_strengths: Sequence[float]) -> list[Method]:
    """Methods from sweep-config entries; ``random`` may refer to an earlier method by name."""
    out: list[Method] = []
    for raw in specs:
        spec = dict(raw)
        kind = str(spec.pop("kind", spec.get("name", "")))
        name = str(spec.pop("name", kind))
        if name in {m.name for m in out}:
            raise XSteerError(f"two methods are named {name!r}")
        strengths = [float(s) for s in spec.pop("strengths", default_strengths)]
        modes = spec.pop("modes", None) or [spec.pop("mode", "additive")]
        spec.pop("mode", None)
        m: Method
        if kind == "none":
            m = Unsteered(name)
        elif kind in ("direction", "native", "random"):
            common = dict(strengths=strengths, modes=modes,
                          gates=load_gate_spec(spec.pop("gates", None), base),
                          categories=spec.pop("categories", None),
                          inner=spec.pop("inner", "additive"),
                          combine=spec.pop("combine", None),
                          calibrate=spec.pop("calibrate", None),
                          benign=str(base / spec.pop("benign")) if "benign" in spec else None)
            if kind == "direction":
                from xsteer.directions import load_directions

                path = spec.pop("path", None)
                if path is None:
                    raise XSteerError(f"method {name!r}: kind 'direction' needs 'path'")
                m = DirectionMethod(name, load_directions(base / str(path)), path=str(path),
                                    **common)
            elif kind == "native":
                pairs = spec.pop("pairs", None)
                m = NativeDirection(name, pairs=str(base / pairs) if pairs else None,
                                    estimator=spec.pop("estimator", "mean-diff"), **common)
            else:
                like_name = spec.pop("like", None)
                found = next((x for x in out if x.name == like_name), None)
                like = found if isinstance(found, DirectionMethod) else None
                if like_name is not None and like is None:
                    raise XSteerError(f"random method {name!r}: 'like' must name an earlier "
                                      f"direction method, got {like_name!r}")
                m = RandomDirection(name, like=like, norm=spec.pop("norm", None),
                                    seed=spec.pop("seed", 0), **common)
        elif kind == "adapter":  # a folder (config-relative) or a Hub id
            from xsteer.pipelines.adapter import load_adapter

            path = str(spec.pop("path", ""))
            local = base / Path(path).expanduser()
            m = AdapterMethod(name, load_adapter(local if local.exists() else path), path,
                              strengths if "strengths" in raw else None,
                              modes if {"mode", "modes"} & set(raw) else None,
                              bool(spec.pop("force", False)))
        elif kind == "negative-prompt":
            m = NegativePrompt(name, spec.pop("negative_prompt", DEFAULT_NEGATIVE_PROMPT),
                               spec.pop("call_kwargs", None))
        elif kind == "safree":
            m = Safree(name, spec.pop("concepts", DEFAULT_TOXIC_CONCEPTS), strengths,
                       float(spec.pop("alpha", 0.01)))
        else:
            raise XSteerError(f"unknown method kind {kind!r}; known: {', '.join(METHOD_KINDS)}")
        if spec:
            raise XSteerError(f"method {name!r}: unknown option(s) {sorted(spec)}")
        out.append(m)
    return out
