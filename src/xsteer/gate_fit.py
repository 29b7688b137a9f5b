"""Gates fitted from files, the way ``xsteer gate calibrate`` makes them: one call per kind.

- `calibrate_source_gate`: the source-side probe (the source LLM reads the prompt's text; unsafe
  prompts are allowed, it is the source side), fitted by `xsteer.probe_fit.fit_source_gate` on
  the shipped data plus the user's files.
- `calibrate_target_gates`: target-side gates on benign prompts read where the direction lives,
  at a pipeline site exactly as the pipeline reads it (``target_pipeline``) or in a target
  encoder (``target``); the benign texts are screened for unsafe content first.

>>> gates = calibrate_target_gates("runs/dirs", target="all-minilm-l6-v2")  # doctest: +SKIP
>>> gates.save("runs/gate")                                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsteer.directions import Direction, DirectionSet, load_directions
from xsteer.errors import XSteerError
from xsteer.provenance import Side

PathLike = str | os.PathLike[str]


def calibrate_source_gate(source: str, *, benign: Sequence[PathLike] = (),
                          layers: Sequence[int] | None = None, q: float = 0.01,
                          delta: float = 0.05, pairs: PathLike | None = None,
                          unsafe: Sequence[PathLike] = (), seed: int = 0, device: str = "cpu",
                          dtype: str = "float32", pooling: str = "mean") -> Any:
    """A fitted `SourceProbe` on ``source``'s pooled states at ``layers`` (default: four middle
    layers): the shipped pairs, probe corpus and benign styles plus ``pairs``/``unsafe``/``benign``
    files; threshold conformal at false-trigger budget ``q`` with probability ``1 - delta``.
    ``pooling``: ``mean`` (the default: on Gemma-3-270M, ``last`` caught 60% of the second set's
    unsafe prompts against 92%, docs/source_gate.md)."""
    import torch

    from xsteer.encoders import get_encoder
    from xsteer.probe_fit import default_probe_data, fit_source_gate

    data = default_probe_data(pairs, unsafe, benign)
    enc = get_encoder(source, device=device, dtype=getattr(torch, dtype))
    return fit_source_gate(enc, data, layers=layers, q=q, delta=delta, seed=seed, name=source,
                           pooling=pooling)


@dataclass
class TargetGates:
    """Target-side gates, one per direction member (``global`` only unless ``per_category``)."""

    gates: dict[str, Any]
    side: Side
    benign_sha256: str
    per_category: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: PathLike) -> list[Path]:
        """Write each gate: to ``out`` itself, or to ``out/<category>/`` with ``per_category``."""
        written = []
        for cat, gate in self.gates.items():
            folder = Path(out) / cat if self.per_category else Path(out)
            gate.save_pretrained(folder)
            written.append(folder)
        return written


def calibrate_target_gates(direction: PathLike | Direction | DirectionSet, *,
                           benign: PathLike | None = None, target_pipeline: str | None = None,
                           site: str | None = None, target: str | None = None,
                           quantile: float = 0.99, delta: float | None = None,
                           holdout: float = 0.2, allow_flagged: bool = False,
                           per_category: bool = False, seed: int = 0,
                           max_sequence_length: int | None = None, dtype: str = "float32",
                           device: str = "cpu", force: bool = False,
                           token_quantile: float | None = None,
                           echo: Callable[[str], None] | None = print) -> TargetGates:
    """Gates for ``direction`` on the ``benign`` file (default: the shipped anchors), read at
    ``site`` of ``target_pipeline`` (text encoders only) or in ``target``: threshold at the
    benign ``quantile`` of a seeded ``1 - holdout`` share (conformal with ``delta``), false-trigger
    rate on the rest, the file's sha256 and what the unsafe screen flagged in ``gate.meta``.
    ``token_quantile`` (pipelines only) also records the per-token threshold of ``tokens`` mode."""
    from xsteer.data import load_benign
    from xsteer.data.screen import screen, screen_semantic
    from xsteer.io import sha256_bytes
    from xsteer.workflow import (
        calibrate_gate,
        check_target,
        parse_site,
        pipeline_site_features,
    )

    if sum(x is not None for x in (target_pipeline, target)) != 1:
        raise XSteerError("give exactly one of --target-pipeline, --target or --source")
    if site is not None and target_pipeline is None:
        raise XSteerError("--site needs --target-pipeline")
    if delta is not None and not 0.0 < delta < 1.0:
        raise XSteerError(f"--delta must be in (0, 1), got {delta}")
    if token_quantile is not None and (target_pipeline is None or not 0 < token_quantile < 1):
        raise XSteerError("--token-quantile needs --target-pipeline and a value in (0, 1)")
    dirs = direction if isinstance(direction, Direction | DirectionSet) else \
        load_directions(direction)
    path = Path(benign) if benign is not None else None
    texts = load_benign(path) if path is not None else load_benign(kind="anchors")
    benign_name = path.name if path is not None else "xsteer:anchors"
    # the target side never sees unsafe text; a source-side gate may (it is the source's data)
    flagged = screen(texts, benign_name, "gate calibration", allow_flagged)
    # a user file: its bytes; the shipped set: its prompts joined by newlines
    sha = sha256_bytes(path.read_bytes() if path is not None else
                       "\n".join(texts).encode("utf-8"))
    members = dict(dirs.items()) if isinstance(dirs, DirectionSet) else {dirs.category: dirs}
    if not per_category:
        key = "global" if "global" in members else next(iter(members))
        members = {key: members[key]}
    first = next(iter(members.values()))
    extra: dict[str, object] = {"benign_file": str(path) if path else benign_name,
                                "flagged": flagged}
    if target_pipeline is not None:
        from xsteer.pipelines import Steerer
        from xsteer.pipelines.components import load_text_side

        pipe = load_text_side(target_pipeline, dtype=dtype, device=device, echo=echo)
        (b,) = Steerer({site: first} if site else first, force=force).binding(pipe)
        kw = {} if max_sequence_length is None else {"max_sequence_length": max_sequence_length}
        feats = pipeline_site_features(pipe, texts, b.site.name, **kw)
        if token_quantile is not None:
            from xsteer.pipelines.tokens import site_token_states

            tokens = site_token_states(pipe, texts, b.site.name, **kw)
        extra["flagged"] = flagged + screen_semantic(  # the encoder's own reading, too
            texts, feats, lambda ts: pipeline_site_features(pipe, ts, b.site.name, **kw),
            benign_name, "gate calibration", allow_flagged, key=b.site.name)
        extra.update(pipeline=target_pipeline, pipeline_class=type(pipe).__name__,
                     site=b.site.name, binding=b.check, call_kwargs=kw)
    else:
        from xsteer.encoders import get_encoder

        assert target is not None
        enc = get_encoder(target)
        check_target(first, enc)
        layer, pooling = parse_site(first.site)
        feats = enc.encode(texts, layer, pooling)
        extra["flagged"] = flagged + screen_semantic(  # the encoder's own reading, too
            texts, feats, lambda ts: enc.encode(list(ts), layer, pooling), benign_name,
            "gate calibration", allow_flagged, key=f"{enc.model_id}:{first.site}")
        extra.update(model=enc.model_id, site=str(first.site))
    side: Side = "target"
    gates = {}
    for cat, d in members.items():
        gate = calibrate_gate(feats, d, quantile=quantile, holdout=holdout, seed=seed,
                              side=side, benign_name=benign_name, texts=texts, benign_sha256=sha,
                              extra=extra, delta=delta)
        if token_quantile is not None:
            from xsteer.steer.selective import token_threshold

            gate.meta.update(token_quantile=token_quantile, token_threshold=token_threshold(
                tokens[0], gate.direction, gate.center, token_quantile, tokens[1]))
        gates[cat] = gate
    return TargetGates(gates, side, sha, per_category, {"quantile": quantile})
