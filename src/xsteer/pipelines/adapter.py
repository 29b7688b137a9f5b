"""`Adapter`: a safety setup you load like a LoRA — one tamper-evident folder with the directions,
the gates, the operator config, the pipeline it was made for and the model card.

The folder is one artifact (`xsteer.io.save_artifact`, so all-or-nothing and checked by its
manifest): ``adapter.safetensors`` (directions and target-side gates), ``adapter.json`` (operator
config, pipeline and source-model identity, each piece's metadata, provenance) and, named in the
same manifest, ``README.md`` (the model card) and a source-side gate's own ``probe.*`` files.
Editing any of them makes the load fail.

The operator config is generic: every key but ``branch``, ``site`` and ``combine`` is a keyword of
`xsteer.steer.Steering` (mode, strength, inner, categories, and whatever modes that spec learns),
and it is validated by building the `Steering`, at pack time and at load time.

>>> from xsteer import load_adapter                    # doctest: +SKIP
>>> adapter = load_adapter("runs/adapter")             # doctest: +SKIP
>>> with adapter.apply(pipe):                          # doctest: +SKIP
...     image = pipe("a photo of ...").images[0]
>>> adapter.apply(pipe); image = pipe("...").images[0]; adapter.remove()   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xsteer.directions import Direction, DirectionSet
from xsteer.encoders.identity import same_weights
from xsteer.errors import ArtifactError, XSteerError
from xsteer.hub import HubMixin, resolve_artifact_dir
from xsteer.io import load_artifact, save_artifact
from xsteer.pipelines.binding import SiteBindingError, site_identity
from xsteer.pipelines.steerer import BRANCHES, DEFAULT_BRANCH, GenerationResult, Steerer
from xsteer.pipelines.steerer import SteeringHandle as _Handle
from xsteer.provenance import Provenance
from xsteer.steer import Gate, Steering

ARTIFACT = "adapter"
CARD = "README.md"
PROBE_FILES = ("probe.json", "probe.safetensors", "probe.manifest.json")
# operator keys the adapter reads itself; every other key (combine included) goes to `Steering`
OWN_KEYS = ("branch", "site")
_STEERING_KEYS = tuple(f.name for f in dataclasses.fields(Steering)
                       if f.name not in ("directions", "gates"))


class AdapterMismatchError(SiteBindingError):
    """The adapter was made for another pipeline (class, site, encoder or its weights)."""


def check_operator(op: Mapping[str, Any]) -> dict[str, Any]:
    """The operator config with its own keys checked (the Steering keys are checked by building
    the `Steering`). Unknown keys are an error naming the known ones."""
    out = dict(op)
    unknown = sorted(set(out) - set(_STEERING_KEYS) - set(OWN_KEYS))
    if unknown:
        raise XSteerError(f"adapter operator: unknown key(s) {unknown}; known: "
                          f"{sorted((*_STEERING_KEYS, *OWN_KEYS))}")
    out.setdefault("branch", DEFAULT_BRANCH)
    if out["branch"] not in BRANCHES:
        raise XSteerError(f"adapter operator: branch must be one of {BRANCHES}, "
                          f"got {out['branch']!r}")
    return out


def _direction_state(d: Direction | DirectionSet) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    members = {d.category: d} if isinstance(d, Direction) else dict(d.items())
    meta = {"form": "direction" if isinstance(d, Direction) else "direction_set",
            "categories": list(members), "members": {k: m.to_metadata() for k, m in members.items()}}
    return {f"direction/{k}": m.vector for k, m in members.items()}, meta


def _direction_from(t: Mapping[str, torch.Tensor], m: Mapping[str, Any],
                    where: str) -> Direction | DirectionSet:
    try:
        cats, members = list(m["categories"]), dict(m["members"])
        ds = {c: Direction.from_metadata(t[f"direction/{c}"], members[c], where=f"{where}[{c}]")
              for c in cats}
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{where}: adapter directions lack {exc}") from exc
    if m.get("form") == "direction":
        return next(iter(ds.values()))
    return DirectionSet(ds)


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Adapter(HubMixin):
    """A packed safety setup. Build one with `xsteer.adapter.pack` or ``xsteer pack``; load one
    with `load_adapter`.

    Attributes:
        directions: the direction (set) in the pipeline site's space.
        operator: ``{mode, strength, inner, categories, combine, ...}`` (`Steering` keywords;
            ``combine``: how a source-side gate and target gates decide) plus ``branch``
            (``conditional`` or ``both``) and ``site`` (None: the direction's).
        pipeline: what it was made for: ``pipeline_class``, ``family``, ``site`` and the site's
            encoder (``model_id``, ``revision``, ``config_sha``, ``weights_probe``).
        gates: target-side gates ``{category: Gate}``.
        source_gate_dir: a folder holding a source-side gate's ``probe.*`` files (or None).
        source_model: the source model the directions (and a source gate) come from.
        card: the model card (``README.md`` text), or None.
    """

    directions: Direction | DirectionSet
    operator: dict[str, Any]
    pipeline: dict[str, Any]
    gates: dict[str, Gate] = field(default_factory=dict)
    source_gate_dir: Path | None = None
    source_model: dict[str, Any] = field(default_factory=dict)
    name: str = "xsteer-adapter"
    card: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _handles: list[_Handle] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _source: Any = field(default=None, init=False, repr=False)

    _artifact_name = ARTIFACT

    def __post_init__(self) -> None:
        self.operator = check_operator(self.operator)
        self.steering()  # validates mode, strength, inner, categories, gates against the spec

    # -- what it holds ----------------------------------------------------------------------------
    @property
    def provenance(self) -> Provenance:
        """Every data set that touched the directions and gates (and which side saw unsafe data)."""
        return self.directions.provenance.merged(*(g.provenance for g in self.gates.values()))

    @property
    def saw_unsafe(self) -> dict[str, bool]:
        return self.provenance.summary()

    @property
    def gate_kind(self) -> str:
        """``target``, ``source``, ``both`` or ``none``: which gates the adapter holds."""
        kinds = [k for k, on in (("target", bool(self.gates)),
                                 ("source", self.source_gate_dir is not None)) if on]
        return "both" if len(kinds) == 2 else (kinds[0] if kinds else "none")

    def steering(self, **overrides: Any) -> Steering:
        """The `Steering` this adapter applies (``overrides``: e.g. ``strength=``, ``mode=``)."""
        kw = {k: v for k, v in {**self.operator, **overrides}.items() if k in _STEERING_KEYS}
        if kw.get("mode", "additive") != "gated":  # who decides matters to gated steering only
            kw.pop("combine", None)
        return Steering(self.directions, gates=dict(self.gates), **kw)

    def source_gate(self, *, device: str = "cpu", dtype: str = "float32",
                    encoder: Any = None) -> Any:
        """The source-side gate (`SourceGate`: the probe and its source model, identity-checked),
        loaded once per adapter; None when the adapter holds none. ``encoder``: use this source
        model instead of loading the recorded one."""
        if self.source_gate_dir is None:
            return None
        with self._lock:
            if self._source is None or encoder is not None:
                from xsteer.steer.source_gate import SourceGate

                self._source = SourceGate.from_pretrained(self.source_gate_dir, device=device,
                                                          dtype=dtype, encoder=encoder)
            return self._source

    def steerer(self, *, force: bool = False, source_device: str = "cpu",
                source_dtype: str = "float32", **overrides: Any) -> Steerer:
        """The `Steerer` built from the adapter's pieces (what `apply` and `generate` use)."""
        site = overrides.pop("site", self.operator.get("site"))
        steering = self.steering(**overrides)
        sourced = steering.mode == "gated" and steering.combine != "target"
        gate = self.source_gate(device=source_device, dtype=source_dtype) if sourced else None
        if sourced and gate is None:
            raise XSteerError(f"combine={steering.combine!r} needs a source-side gate; this "
                              "adapter holds none")
        # the Steerer's own mode/strength are what manifests report; the Steering decides
        shown = steering.strength if isinstance(steering.strength, (int, float)) else 1.0
        return Steerer({site: steering} if site else steering, force=force, mode=steering.mode,
                       inner=steering.inner, strength=float(shown), source_gate=gate,
                       combine=steering.combine if sourced else None)

    # -- the pipeline it was made for -------------------------------------------------------------
    def mismatches(self, pipe: Any) -> list[str]:
        """Why ``pipe`` is not the pipeline this adapter was made for (empty: it is)."""
        want = self.pipeline
        problems: list[str] = []
        cls = type(pipe).__name__
        if want.get("pipeline_class") and want["pipeline_class"] != cls:
            problems.append(f"made for a {want['pipeline_class']}, not a {cls}")
            return problems
        try:
            (b,) = self.steerer(force=True).binding(pipe)
        except XSteerError as exc:
            return [str(exc)]
        have = site_identity(pipe, b.site)
        if want.get("site") and want["site"] != b.site.name:
            problems.append(f"made for site {want['site']!r}, this pipeline steers {b.site.name!r}")
        if want.get("config_sha") and have["config_sha"] and want["config_sha"] != have["config_sha"]:
            problems.append(f"site {b.site.name!r} holds another encoder architecture "
                            f"({have['encoder_class']}, config {have['config_sha']}; the adapter's: "
                            f"{want.get('encoder_class')}, config {want['config_sha']})")
        elif same_weights(want.get("weights_probe"), have["weights_probe"]) is False:
            problems.append(f"site {b.site.name!r} holds other weights than "
                            f"{want.get('model_id')} (weight probe differs)")
        if want.get("revision") and have["revision"] and want["revision"] != have["revision"]:
            problems.append(f"encoder revision {have['revision']}, the adapter's "
                            f"{want['revision']}")
        return problems

    def check(self, pipe: Any, force: bool = False) -> None:
        """Raise `AdapterMismatchError` (one line) unless ``pipe`` is the pipeline this adapter
        was made for; ``force=True`` skips the check."""
        problems = [] if force else self.mismatches(pipe)
        if problems:
            raise AdapterMismatchError(f"adapter {self.name!r} refuses this pipeline: "
                                       + "; ".join(problems) + " (pass force=True, CLI --force, "
                                       "to apply it anyway)")

    # -- applying it ------------------------------------------------------------------------------
    def apply(self, pipe: Any, *, force: bool = False, **overrides: Any) -> _Handle:
        """Steer ``pipe`` (every encoder call in this thread) until ``remove()``; the handle is
        also a context manager: ``with adapter.apply(pipe): ...``."""
        self.check(pipe, force)
        handle = self.steerer(force=force, **overrides).patch(pipe)
        with self._lock:
            self._handles.append(handle)
        return handle

    def remove(self) -> None:
        """Take off every hook this adapter put on (idempotent)."""
        with self._lock:
            handles, self._handles = self._handles, []
        for h in handles:
            h.remove()

    def generate(self, pipe: Any, prompt: str | list[str], *, force: bool = False,
                 steering: Mapping[str, Any] | None = None, **call_kwargs: Any) -> GenerationResult:
        """Call ``pipe`` steered on the adapter's branch (`Steerer.generate`); ``steering``
        overrides operator keys for this call only (``{"strength": 2.0}``)."""
        self.check(pipe, force)
        over = dict(steering or {})
        branch = over.pop("branch", self.operator["branch"])
        return self.steerer(force=force, **over).generate(pipe, prompt, branch=branch,
                                                          **call_kwargs)

    def scores(self, pipe: Any, prompts: Sequence[str], *,
               steering: Mapping[str, Any] | None = None,
               **call_kwargs: Any) -> list[dict[str, Any]]:
        """Per prompt, each category's gate scores and decision as the steering decides them
        (`Steering.decisions` on the site's pooled states and, with a source-side gate, its
        decisions): ``{"prompt", "fires", "categories": {cat: {"score", "threshold",
        "source_score", "fires"}}}``; ``steering`` overrides operator keys as in `generate`."""
        from xsteer.pipelines.steerer import site_features

        (b,) = self.steerer(force=True, **dict(steering or {})).binding(pipe)
        feats = site_features(pipe, list(prompts), [b.site.name], **call_kwargs)[b.site.name]
        st = b.steering
        sourced = st.mode == "gated" and st.combine != "target"
        src = self.source_gate().score(list(prompts), half=st.combine == "or") if sourced else None
        src_dec = ({c: torch.tensor([r["categories"][c]["fires"] for r in src])
                    for c in src[0]["categories"]} if src else None)
        dec = st.decisions(feats.float(), src_dec)
        out = []
        for i, p in enumerate(prompts):
            cats: dict[str, Any] = {}
            for c in st.active_categories():
                g = st.gates.get(c)
                cats[c] = {"score": float(g.scores(feats[i:i + 1])[0]) if g is not None else None,
                           "threshold": g.threshold if g is not None else None,
                           "source_score": src[i]["categories"][c]["score"] if src else None,
                           "fires": bool(dec[c][i])}
            out.append({"prompt": p, "fires": any(v["fires"] for v in cats.values()),
                        "categories": cats})
        return out

    # -- save / load ------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        tensors, dmeta = _direction_state(self.directions)
        gmeta: dict[str, Any] = {}
        for cat, g in self.gates.items():
            gt, gm = g.to_state()
            # a gate's direction is often the direction tensor itself: safetensors wants copies
            tensors.update({f"gate/{cat}/{k}": v.clone() for k, v in gt.items()})
            gmeta[cat] = gm
        extra: dict[str, bytes] = {}
        if self.card is not None:
            extra[CARD] = self.card.encode("utf-8")
        if self.source_gate_dir is not None:
            extra.update({fn: (Path(self.source_gate_dir) / fn).read_bytes() for fn in PROBE_FILES})
        meta = {"kind": ARTIFACT, "name": self.name, "operator": self.operator,
                "pipeline": self.pipeline, "source_model": self.source_model,
                "directions": dmeta, "gates": gmeta, "gate_kind": self.gate_kind,
                "source_gate": list(PROBE_FILES) if self.source_gate_dir is not None else None,
                "saw_unsafe": self.saw_unsafe, "data": self.provenance.to_list(),
                "meta": self.meta}
        return save_artifact(directory, ARTIFACT, tensors, meta, extra_files=extra)

    @classmethod
    def _load_dir(cls, directory: Path) -> Adapter:
        t, m = load_artifact(directory, ARTIFACT, kind=ARTIFACT)
        where = str(directory)
        try:
            gates = {c: Gate.from_state({k: t[f"gate/{c}/{k}"] for k in ("direction", "center")},
                                        gm, f"{where}[gate {c}]")
                     for c, gm in dict(m["gates"]).items()}
            card = (directory / CARD).read_text(encoding="utf-8") \
                if (directory / CARD).is_file() else None
            return cls(directions=_direction_from(t, m["directions"], where),
                       operator=dict(m["operator"]), pipeline=dict(m["pipeline"]), gates=gates,
                       source_gate_dir=directory if m.get("source_gate") else None,
                       source_model=dict(m.get("source_model") or {}),
                       name=str(m.get("name", ARTIFACT)), card=card, meta=dict(m.get("meta") or {}))
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{where}: adapter metadata lacks {exc}") from exc

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str],
                        revision: str | None = None) -> Adapter:
        d = resolve_artifact_dir(name_or_path, [f"{ARTIFACT}.*", CARD, *PROBE_FILES], revision)
        return cls._load_dir(d)


def load_adapter(name_or_path: str | os.PathLike[str], revision: str | None = None) -> Adapter:
    """Load an adapter from a folder or a Hub repo id (checked whole: a tampered file fails)."""
    return Adapter.from_pretrained(name_or_path, revision=revision)


def describe(adapter: Adapter) -> dict[str, Any]:
    """A JSON-able summary (what sweeps and the page show about an adapter)."""
    d = adapter.directions
    return {"name": adapter.name, "operator": adapter.operator, "gate_kind": adapter.gate_kind,
            "pipeline_class": adapter.pipeline.get("pipeline_class"),
            "site": adapter.pipeline.get("site"), "model_id": d.model_id, "dim": d.dim,
            "categories": [d.category] if isinstance(d, Direction) else d.categories,
            "saw_unsafe": adapter.saw_unsafe, "source_model": adapter.source_model}
