"""`Steerer`: apply transported directions to a diffusers pipeline's text conditioning at inference.

Two paths, both through official extension points and both fully reversible:

- **hooks** (``patch`` / ``apply``): forward hooks on the text encoders steer every encoder call,
  so the negative/unconditional branch is steered too (when the pipeline encodes one; SDXL's
  default zeroes it instead).
- **prompt_embeds** (``encode`` / ``generate(branch="conditional")``, the default): the hooks are
  on only while the pipeline's own ``encode_prompt`` encodes the positive prompt; the steered
  ``prompt_embeds`` (and pooled embeds) are passed to the call and the pipeline encodes the
  negative prompt itself, unsteered.

The math lives in `xsteer.steer.Steering`; this module only finds the sites and moves tensors.

Who decides which prompts a gated steering touches: the target gates on the site's own states
(``combine="target"``), or a source-side gate (``source_gate=SourceGate``, ``combine="source"``,
the default when one is given) that reads the prompt's text with the source LLM, or both
(``"or"``: each side calibrated at half the false-trigger budget; ``"and"``). How the text reaches
the source gate on each path: `xsteer.pipelines.source`. With a source gate only the positive
prompt's encode is ever steered.

>>> from xsteer.pipelines import Steerer                                # doctest: +SKIP
>>> steerer = Steerer(direction, mode="additive", strength=0.5)         # doctest: +SKIP
>>> with steerer.apply(pipe):                                           # doctest: +SKIP
...     image = pipe("a photo of ...").images[0]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from xsteer.directions import Direction, DirectionSet
from xsteer.errors import DimensionMismatchError, XSteerError
from xsteer.pipelines.binding import Binding, bind_site
from xsteer.pipelines.families import (
    EncodeFn,
    Family,
    SiteSpec,
    UnknownPipelineError,
    custom_family,
    table_family,
)
from xsteer.pipelines.generic import family_for
from xsteer.pipelines.hooks import (
    CallRecord,
    activate,
    capture_hook,
    encode_lock,
    prefix_of,
    steering_hook,
)
from xsteer.pipelines.window import check_window, windowed_kwargs
from xsteer.steer import Gate, Steering
from xsteer.steer.source_gate import SourceGate

BRANCHES = ("conditional", "both")
# Steering only the conditional branch is amplified by the guidance scale and keeps the user's
# negative prompt intact; see docs/pipelines.md ("Which branch") for the measurement.
DEFAULT_BRANCH = "conditional"

SiteValue = Direction | DirectionSet | Steering
GateSpec = Gate | Mapping[str, Gate] | Mapping[str, Mapping[str, Gate]] | None


class SteeringHandle:
    """Returned by `Steerer.patch`: ``remove()`` takes every hook off (idempotent).

    ``records`` holds one `CallRecord` per steered encoder call, in call order.
    """

    def __init__(self, hooks: list[Any], records: list[CallRecord], family: Family) -> None:
        self._hooks = hooks
        self.records = records
        self.family = family

    @property
    def active(self) -> bool:
        return bool(self._hooks)

    def remove(self) -> None:
        while self._hooks:
            self._hooks.pop().remove()

    def decisions(self) -> dict[str, dict[str, list[bool]]]:
        """Gate decisions of the first call per site (the positive prompt in every family)."""
        return first_decisions(self.records)

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def first_decisions(records: Sequence[CallRecord]) -> dict[str, dict[str, list[bool]]]:
    out: dict[str, dict[str, list[bool]]] = {}
    for r in records:
        out.setdefault(r.site, r.decisions)
    return out


@dataclass
class GenerationResult:
    """What `Steerer.generate` returns: the pipeline output, the branch used, the gate records."""

    output: Any
    branch: str
    records: list[CallRecord] = field(default_factory=list)

    def decisions(self) -> dict[str, dict[str, list[bool]]]:
        return first_decisions(self.records)


def _is_site_map(obj: object) -> bool:
    return isinstance(obj, Mapping) and not isinstance(obj, DirectionSet)


class Steerer:
    """Steer a pipeline's text conditioning with a direction per text-encoder site.

    Args:
        directions: a `Direction`/`DirectionSet` (steers exactly the site it records, see
            `xsteer.pipelines.binding`), or a mapping ``{site name: Direction | DirectionSet |
            Steering}`` (each direction must be for that site).
        mode, strength, categories, inner: passed to `xsteer.steer.Steering` for every site not
            given as a ready `Steering`.
        gates: for ``mode="gated"``: a `Gate`, ``{category: Gate}`` (same for every site), or
            ``{site: {category: Gate}}``. Gates score the masked mean of the site's states; build
            them with `site_features` on benign prompts so they see the same pooling.
        sites: hand-written `SiteSpec` list for pipelines the table does not know (or to
            override it, e.g. a ``clip_skip`` layer).
        encode: the positive-prompt encode adapter for such pipelines (conditional branch).
        source_gate: a `SourceGate` (source LLM + per-category probe) deciding from the prompt's
            text which categories fire (``mode="gated"``).
        combine: ``target``, ``source``, ``or`` or ``and`` (default: ``source`` with a source
            gate, else ``target``).
        window: ``(start, end)`` fractions of the denoising steps to steer (conditional branch,
            `generate`); the other steps use the unsteered ``prompt_embeds``
            (`xsteer.pipelines.window`). ``None``: every step.
    """

    def __init__(self, directions: SiteValue | Mapping[str, SiteValue], *,
                 mode: str = "additive", strength: float = 1.0, gates: GateSpec = None,
                 categories: list[str] | None = None, inner: str = "additive",
                 sites: Sequence[SiteSpec] | None = None, encode: EncodeFn | None = None,
                 force: bool = False, source_gate: SourceGate | None = None,
                 combine: str | None = None, window: tuple[float, float] | None = None,
                 targets: Mapping[str, torch.Tensor] | None = None) -> None:
        self.mode, self.strength, self.inner = mode, float(strength), inner
        self.window = None if window is None else check_window(window)
        self.source_gate = source_gate
        self.combine = combine or ("source" if source_gate is not None else "target")
        if self.combine != "target" and source_gate is None:
            raise XSteerError(f"combine={self.combine!r} needs a source_gate (a SourceGate)")
        if source_gate is not None and self.combine == "target":
            raise XSteerError("a source_gate was given but combine='target' ignores it")
        self.force = bool(force)
        self.sites = list(sites) if sites is not None else None
        self.encode_fn = encode
        items = dict(directions) if _is_site_map(directions) else {None: directions}  # type: ignore[arg-type]
        gate_map = self._gate_map(gates, [k for k in items if k is not None])
        self._items: dict[str | None, Steering] = {}
        for key, val in items.items():
            if isinstance(val, Steering):
                self._items[key] = val
            elif isinstance(val, (Direction, DirectionSet)):
                g = gate_map.get(key, gate_map.get(None, {}))
                self._items[key] = Steering(val, mode=mode, strength=strength, gates=dict(g),
                                            categories=categories, inner=inner,
                                            combine=self.combine,
                                            targets=dict(targets or {}))
            else:
                raise XSteerError(f"site {key!r}: expected a Direction, DirectionSet or Steering, "
                                  f"got {type(val).__name__}")
        if source_gate is not None:
            names = set(source_gate.names)
            for key, st in self._items.items():
                missing = [c for c in st.active_categories() if c not in names]
                if missing:
                    raise XSteerError(f"the source gate decides {sorted(names)}, not "
                                      f"{missing} (steered at {key or 'the default site'})")

    @staticmethod
    def _gate_map(gates: GateSpec, site_names: list[str]) -> dict[str | None, dict[str, Gate]]:
        if gates is None:
            return {}
        if isinstance(gates, Gate):
            return {None: {gates.category: gates}}
        if site_names and set(gates) <= set(site_names):
            out: dict[str | None, dict[str, Gate]] = {}
            for site, g in gates.items():
                out[site] = {g.category: g} if isinstance(g, Gate) else dict(g)
            return out
        flat: dict[str, Gate] = {}
        for cat, g in gates.items():
            if not isinstance(g, Gate):
                raise XSteerError(f"gates[{cat!r}] is not a Gate; per-site gates need keys that "
                                  f"are site names ({site_names})")
            flat[cat] = g
        return {None: flat}

    # -- resolving sites ------------------------------------------------------------------------
    def family(self, pipe: Any) -> Family:
        """The site table used for ``pipe``: hand-written sites win over the built-in table."""
        if self.sites is None:
            fam = family_for(pipe)
            return fam if self.encode_fn is None else Family(
                fam.name, fam.classes, fam.sites, fam.default_site, fam.video, self.encode_fn)
        try:  # hand-written sites take the table's adapter, or the one passed
            known = table_family(pipe).encode
        except UnknownPipelineError:
            known = None
        return custom_family(pipe, self.sites, self.encode_fn or known)

    def binding(self, pipe: Any) -> list[Binding]:
        """Bind each direction to the exact site it records (`bind_site`; a mismatch of site or
        encoder raises `SiteBindingError` unless ``force``) and check hidden sizes."""
        fam = self.family(pipe)
        bound: list[Binding] = []
        for key, steering in self._items.items():
            b = bind_site(fam, pipe, key, steering, force=self.force)
            site = b.site
            dim = site.dim(pipe)
            if steering.dim != dim:
                same = [s.name for s in fam.sites if _safe_dim(s, pipe) == steering.dim]
                hint = (f"sites of that size: {same}" if same else "no site of this pipeline has "
                        "that size: transport the direction into this encoder first")
                raise DimensionMismatchError(
                    f"direction for site {site.name!r} ({steering.directions.model_id})",
                    steering.dim, f"{type(pipe).__name__} site {site.name!r} "
                    f"({site.component}.{site.output}) hidden size", dim, hint=hint)
            bound.append(b)
        return bound

    def bind(self, pipe: Any) -> list[tuple[SiteSpec, Steering]]:
        """``(site, steering)`` per direction, as `binding` resolves them."""
        return [(b.site, b.steering) for b in self.binding(pipe)]

    # -- hook path --------------------------------------------------------------------------------
    def patch(self, pipe: Any) -> SteeringHandle:
        """Steer ``pipe``'s text encoders in this thread until ``.remove()``.

        The hooks are scoped to the calling thread (or asyncio task): other threads calling the
        same pipeline meanwhile are not steered (`xsteer.pipelines.hooks.activate`).
        """
        fam = self.family(pipe)
        records: list[CallRecord] = []
        hooks: list[Any] = []
        try:
            decider = None
            if self.source_gate is not None:
                from xsteer.pipelines.source import SourceDecider

                decider = SourceDecider(self.source_gate, pipe, half=self.combine == "or")
            for site, steering in self.bind(pipe):
                src = decider.for_site(site) if decider is not None else None
                hook = steering_hook(site, steering, records, prefix_of(pipe, site), src)
                hooks.append(activate(site.module(pipe), hook))
            if decider is not None:
                hooks.extend(decider.denoiser_hooks())
        except BaseException:
            for h in hooks:
                h.remove()
            raise
        return SteeringHandle(hooks, records, fam)

    @contextlib.contextmanager
    def apply(self, pipe: Any) -> Iterator[SteeringHandle]:
        """``with steerer.apply(pipe): ...`` — `patch` undone on exit, also after an exception."""
        handle = self.patch(pipe)
        try:
            yield handle
        finally:
            handle.remove()

    # -- prompt_embeds path -----------------------------------------------------------------------
    def encode(self, pipe: Any, prompt: str | list[str],
               **call_kwargs: Any) -> tuple[dict[str, Any], set[str], list[CallRecord]]:
        """Steered ``prompt_embeds`` (+ pooled) of the positive prompt, for ``pipe(**embeds)``.

        Returns ``(embeds, consumed, records)``: the pipeline kwargs, the call kwargs the adapter
        used up (``prompt_2`` ...; drop them from the call), and the gate records.
        """
        fam = self.family(pipe)
        if fam.encode is None:
            raise XSteerError(f"{type(pipe).__name__}: no encode adapter, so the conditional "
                              "branch cannot be steered alone; pass encode=... or use "
                              "branch='both' (hooks)")
        from xsteer.pipelines.source import given_prompts

        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        with encode_lock(pipe), given_prompts(prompts), self.apply(pipe) as handle, \
                torch.no_grad():
            embeds, consumed = fam.encode(pipe, prompts, dict(call_kwargs))
        return embeds, consumed, handle.records

    def generate(self, pipe: Any, prompt: str | list[str], *, branch: str = DEFAULT_BRANCH,
                 **call_kwargs: Any) -> GenerationResult:
        """Call ``pipe`` with steering on ``branch`` (``conditional`` or ``both``)."""
        if branch not in BRANCHES:
            raise XSteerError(f"branch must be one of {BRANCHES}, got {branch!r}")
        if branch == "both":
            if self.window is not None:
                raise XSteerError("a steering window works on the conditional branch "
                                  "(prompt_embeds); use branch='conditional'")
            from xsteer.pipelines.source import given_prompts

            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
            with given_prompts(prompts), self.apply(pipe) as handle:
                out = pipe(prompt=prompt, **call_kwargs)
            return GenerationResult(out, branch, handle.records)
        embeds, consumed, records = self.encode(pipe, prompt, **call_kwargs)
        rest = {k: v for k, v in call_kwargs.items() if k not in consumed}
        if self.window is not None:  # steered for part of the steps only
            plain = self.unsteered_embeds(pipe, prompt, **call_kwargs)
            kw = windowed_kwargs(pipe, embeds, plain, self.window, rest)
            return GenerationResult(pipe(**{**rest, **kw}), branch, records)
        return GenerationResult(pipe(**embeds, **rest), branch, records)

    def unsteered_embeds(self, pipe: Any, prompt: str | list[str],
                         **call_kwargs: Any) -> dict[str, Any]:
        """The positive prompt's pipeline kwargs as the family's adapter encodes them, unsteered
        (the other half of windowed steering)."""
        fam = self.family(pipe)
        if fam.encode is None:
            raise XSteerError(f"{type(pipe).__name__}: no encode adapter")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        with encode_lock(pipe), torch.no_grad():
            return fam.encode(pipe, prompts, dict(call_kwargs))[0]

    def __repr__(self) -> str:
        keys = ", ".join("<default>" if k is None else k for k in self._items)
        gate = f", combine={self.combine!r}" if self.source_gate is not None else ""
        return (f"Steerer(sites=[{keys}], mode={self.mode!r}, strength={self.strength}{gate})")


def _safe_dim(site: SiteSpec, pipe: Any) -> int | None:
    try:
        return site.dim(pipe)
    except XSteerError:
        return None


def site_features(pipe: Any, prompts: Sequence[str], sites: Sequence[str] | None = None, *,
                  site_specs: Sequence[SiteSpec] | None = None, encode: EncodeFn | None = None,
                  **call_kwargs: Any) -> dict[str, torch.Tensor]:
    """Masked-mean features ``(n, dim)`` per site, as the gates see them, for gate calibration.

    Runs the pipeline's own encode of ``prompts`` (positive branch) with capture-only hooks. Use it
    on BENIGN prompts only, then ``Gate.calibrate(features[site], direction.vector)``.
    """
    fam = family_for(pipe) if site_specs is None else custom_family(pipe, site_specs, encode)
    enc = encode or fam.encode
    if enc is None:
        raise XSteerError(f"{type(pipe).__name__}: no encode adapter; pass encode=...")
    chosen = [fam.site(s) for s in sites] if sites is not None else list(fam.sites)
    stores: dict[str, list[torch.Tensor]] = {s.name: [] for s in chosen}
    with encode_lock(pipe):
        hooks = [activate(s.module(pipe), capture_hook(s, stores[s.name], prefix_of(pipe, s)))
                 for s in chosen]
        try:
            with torch.no_grad():
                enc(pipe, list(prompts), dict(call_kwargs))
        finally:
            for h in hooks:
                h.remove()
    return {name: torch.cat(v) for name, v in stores.items() if v}
