"""`pack`: gather a direction set, gates and an operator config into an `Adapter`, bound (and
checked) against the pipeline it is made for.

>>> from xsteer.adapter import pack                                      # doctest: +SKIP
>>> adapter = pack(directions, gates=gates, operator={"mode": "gated", "strength": 4.0},
...                pipe=pipe, pipeline_id="black-forest-labs/FLUX.1-schnell")  # doctest: +SKIP
>>> adapter.save_pretrained("adapters/flux-safety")                      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xsteer.directions import Direction, DirectionSet
from xsteer.errors import ArtifactError, XSteerError
from xsteer.pipelines.adapter import PROBE_FILES, Adapter, check_operator
from xsteer.pipelines.binding import site_identity
from xsteer.pipelines.generic import family_for
from xsteer.steer import Gate

# what a direction's alignment records about the pipeline site (``meta["encoder"]``)
IDENTITY_KEYS = ("pipeline", "pipeline_class", "site", "component", "output", "kind",
                 "encoder_class", "model_id", "revision", "config_sha", "weights_probe")


def _first(d: Direction | DirectionSet) -> Direction:
    return d if isinstance(d, Direction) else next(iter(d.directions.values()))


def pipeline_identity(directions: Direction | DirectionSet, pipe: Any = None,
                      pipeline_id: str | None = None, site: str | None = None) -> dict[str, Any]:
    """The identity of the pipeline an adapter is for: read off ``pipe`` at the site the
    directions bind to (a mismatch raises there, so nothing wrong gets packed), else what the
    directions' alignment recorded (``xsteer align --target-pipeline``)."""
    if pipe is not None:
        from xsteer.pipelines.steerer import Steerer

        (b,) = Steerer({site: directions} if site else directions).binding(pipe)
        ident = site_identity(pipe, b.site, ref=pipeline_id)
        ident["family"] = family_for(pipe).name
        if pipeline_id:
            ident["pipeline"] = pipeline_id
        return ident
    enc = _first(directions).meta.get("encoder")
    if not isinstance(enc, Mapping) or not enc.get("pipeline_class"):
        raise XSteerError("the directions record no pipeline (they were not aligned with "
                          "--target-pipeline): give the pipeline to pack for (--pipeline)")
    ident = {k: enc.get(k) for k in IDENTITY_KEYS}
    if pipeline_id:
        ident["pipeline"] = pipeline_id
    return ident


def source_identity(directions: Direction | DirectionSet, source_gate_dir: Path | None,
                    given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The source model the directions were estimated in (and a source gate reads)."""
    out: dict[str, Any] = dict(given or {})
    src = _first(directions).meta.get("source_direction")
    if isinstance(src, Mapping):
        out.setdefault("model_id", src.get("model_id"))
        out.setdefault("site", src.get("site"))
    elif _first(directions).origin == "source":
        out.setdefault("model_id", _first(directions).model_id)
        out.setdefault("site", str(_first(directions).site))
    if source_gate_dir is not None:
        import json

        probe = json.loads((source_gate_dir / "probe.json").read_text(encoding="utf-8"))
        out["gate"] = {k: probe.get(k) for k in ("model_id", "layers", "source") if k in probe}
        out.setdefault("model_id", probe.get("model_id"))
    return out


def pack(directions: Direction | DirectionSet, *, operator: Mapping[str, Any],
         gates: Mapping[str, Gate] | None = None, pipe: Any = None,
         pipeline_id: str | None = None, source_gate: str | os.PathLike[str] | None = None,
         source_model: Mapping[str, Any] | None = None, name: str = "xsteer-adapter",
         card: str | None = None, meta: Mapping[str, Any] | None = None) -> Adapter:
    """An `Adapter` from its pieces. ``pipe`` (or the directions' own record) fixes the pipeline
    identity; ``source_gate`` is a folder with a source-side gate (``probe.*``)."""
    op = check_operator(operator)
    if source_gate is not None and op.get("mode") == "gated":
        op.setdefault("combine", "source")  # as the Steerer: a source gate decides by default
    gate_dir = None
    if source_gate is not None:
        gate_dir = Path(source_gate)
        missing = [fn for fn in PROBE_FILES if not (gate_dir / fn).is_file()]
        if missing:
            raise ArtifactError(f"{gate_dir}: not a source-side gate folder (no {missing[0]})")
        from xsteer.steer.probe import SourceProbe

        SourceProbe.from_pretrained(str(gate_dir))  # checked whole before it is embedded
    ident = pipeline_identity(directions, pipe, pipeline_id, op.get("site"))
    return Adapter(directions=directions, operator=op, pipeline=ident, gates=dict(gates or {}),
                   source_gate_dir=gate_dir,
                   source_model=source_identity(directions, gate_dir, source_model), name=name,
                   card=card, meta=dict(meta or {}))


def pack_files(*, operator: Mapping[str, Any], direction: str | os.PathLike[str] | None = None,
               adapter: str | os.PathLike[str] | None = None,
               gates: Sequence[str | os.PathLike[str]] = (),
               source_gate: str | os.PathLike[str] | None = None, pipeline: str | None = None,
               sweep: str | os.PathLike[str] | None = None, method: str | None = None,
               name: str = "xsteer-adapter", base_model: str | None = None,
               license: str = "apache-2.0", dtype: str = "float32",
               echo: Callable[[str], None] | None = print,
               ) -> tuple[Adapter, dict[str, Any] | None]:
    """``xsteer pack`` as one call: an `Adapter` from artifact folders (``direction`` with its
    ``gates`` folders, ``source_gate`` and ``operator``; or an existing ``adapter`` to re-card),
    checked against ``pipeline``'s text side when given, with a model card whose results come
    from the finished ``sweep`` folder (returned too, None without one). Not yet saved."""
    from xsteer.adapter.card import model_card, sweep_results
    from xsteer.pipelines.adapter import load_adapter

    if (direction is None) == (adapter is None):
        raise XSteerError("give exactly one of --direction or --adapter")
    results = sweep_results(sweep, method) if sweep is not None else None
    if adapter is not None:
        ad = load_adapter(adapter)
    else:
        from xsteer.directions import load_directions
        from xsteer.steer import load_gates

        loaded = {c: g for p in gates for c, g in load_gates(p).items()}
        pipe = None
        if pipeline is not None:
            from xsteer.pipelines.components import load_text_side

            pipe = load_text_side(pipeline, dtype=dtype, echo=echo)
        assert direction is not None
        ad = pack(load_directions(direction), operator=operator, gates=loaded, pipe=pipe,
                  pipeline_id=pipeline, source_gate=source_gate, name=name)
    ad.card = model_card(ad, results, base_model=base_model, license=license)
    return ad, results
