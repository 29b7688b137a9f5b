"""The xsteer stages as plain functions over encoders and prompt lists (the CLI and demo call these).

>>> from xsteer.encoders import get_encoder            # doctest: +SKIP
>>> from xsteer.data import load_pairs, load_benign    # doctest: +SKIP
>>> src, tgt = get_encoder("gemma-3-270m"), get_encoder("all-minilm-l6-v2")  # doctest: +SKIP
>>> dirs = estimate(src, load_pairs(), layer=6)                         # doctest: +SKIP
>>> al = fit_alignment(src, tgt, load_benign(kind="anchors"), source_layer=6)  # doctest: +SKIP
>>> moved = al.transport(dirs)      # a DirectionSet in MiniLM space     # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, overload

import torch

from xsteer.align import Alignment
from xsteer.align.layers import select_layer
from xsteer.categories import GLOBAL
from xsteer.data import Pair, data_record, pair_texts, pairs_by_category
from xsteer.directions import Direction, DirectionSet, get_estimator
from xsteer.encoders import Encoder, encoder_meta
from xsteer.errors import EmptyDataError, ProvenanceError, XSteerError
from xsteer.evaluate import DirectionEvaluation, EvalData, evaluate_direction
from xsteer.provenance import Provenance, Side
from xsteer.site import FORMS, Site


def parse_site(site: str | Site) -> tuple[int, str]:
    """``"layer:6/mean"`` → ``(6, "mean")``: the layer and pooling of an encoder-layer site."""
    s = Site.parse(site)
    if s.kind != "layer" or s.layer is None or s.pooling is None:
        raise XSteerError(f"cannot read a layer and pooling from site {str(site)!r}: it is a "
                          f"{s.kind} site (expected 'layer:N/pooling'; sites take the forms {FORMS})")
    return s.layer, s.pooling


def resolve_layer(encoder: Encoder, layer: int | str | None, pairs: Sequence[Pair] | None = None,
                  benign: Sequence[str] | None = None) -> tuple[int, dict[int, float] | None]:
    """An explicit layer, the encoder default (None), or ``"auto"`` (pair separability when
    pairs are given — the source side may use unsafe pairs — else a benign-only criterion).

    None is THE default layer rule: `estimate` and `fit_alignment` both use it, so a direction
    estimated without a layer and an alignment fitted without one read the same source layer
    (``Encoder.default_layer``: the last layer of an encoder model, ``num_layers // 3`` of a
    causal LM) and ``estimate -> align -> transport`` composes with no layer flags.
    """
    if layer is None:
        return encoder.resolve_site(None, None)[0], None
    if isinstance(layer, str) and layer != "auto":
        layer = int(layer)
    if layer == "auto":
        if pairs:
            u, s = pair_texts(pairs)
            chosen, scores = select_layer(encoder, unsafe=u, safe=s)
        elif benign:
            chosen, scores = select_layer(encoder, benign=benign)
        else:
            raise EmptyDataError("layer 'auto' needs pairs or benign prompts to choose from")
        return chosen, scores
    return encoder.resolve_site(int(layer), None)[0], None


def estimate(encoder: Encoder, pairs: Sequence[Pair], *, layer: int | str | None = None,
             pooling: str | None = None, method: str = "mean-diff", native: bool = False,
             per_category: bool = True, pairs_name: str = "pairs") -> DirectionSet:
    """Estimate a global direction and one per category from safe/unsafe pairs.

    ``layer=None`` is the default layer rule `fit_alignment` shares (`resolve_layer`); ``"auto"``
    picks the layer that separates the pairs best (then pass the same layer to the alignment).
    ``native=True`` marks the result as a target-side yardstick (its pairs count as target-side
    unsafe data, so it can never be passed off as a benign-only transported direction).
    """
    if not pairs:
        raise EmptyDataError("estimate needs at least one safe/unsafe pair")
    est = get_estimator(method)
    chosen, scores = resolve_layer(encoder, layer, pairs)
    layer_i, pool = encoder.resolve_site(chosen, pooling)
    u_texts, s_texts = pair_texts(pairs)
    feats = encoder.encode(u_texts + s_texts, layer_i, pool)
    n = len(u_texts)
    U, S = feats[:n], feats[n:]
    side: Side = "target" if native else "source"
    origin = "native" if native else "source"
    meta: dict[str, Any] = {**encoder_meta(encoder, layer_i, pool), "estimator": method}
    if scores is not None:
        meta["layer_scores"] = {str(k): v for k, v in scores.items()}
    groups: dict[str, list[int]] = {GLOBAL: list(range(n))}
    if per_category:
        idx = {id(p): i for i, p in enumerate(pairs)}
        for cat, ps in pairs_by_category(pairs).items():
            groups[cat] = [idx[id(p)] for p in ps]
    out: dict[str, Direction] = {}
    for cat, rows in groups.items():
        sub = [pairs[i] for i in rows]
        su, ss = pair_texts(sub)
        rec = data_record(pairs_name if cat == GLOBAL else f"{pairs_name}[{cat}]", su + ss,
                          side=side, unsafe=True)
        vec = est(U[rows], S[rows])
        if float(vec.norm()) <= 1e-6 * max(float(feats.norm(dim=-1).mean()), 1e-30):
            raise EmptyDataError(f"the {cat} direction is zero: the safe and unsafe texts of its "
                                 f"{len(rows)} pair(s) read the same at {encoder.model_id} "
                                 f"layer {layer_i}")
        out[cat] = Direction(vec, encoder.model_id, encoder.site(layer_i, pool), category=cat,
                             origin=origin, method=method, provenance=Provenance([rec]),
                             meta={**meta, "n_pairs": len(rows)})
    return DirectionSet(out)


def _screen_anchors(benign: Sequence[str], name: str, allow_flagged: bool) -> int:
    """The lexical screen of an alignment's anchors, before any model reads them: flagged
    prompts raise `UnsafeDataError` unless ``allow_flagged``; returns their count."""
    from xsteer.data.screen import screen

    if not benign:
        raise EmptyDataError("alignment needs benign prompts")
    return screen(benign, name, "alignment", allow_flagged)


def _alignment_records(benign: Sequence[str], name: str, allow_flagged: bool, flagged: int,
                       Y: torch.Tensor, embed: Callable[[Sequence[str]], torch.Tensor],
                       key: str) -> list[Any]:
    """The provenance of an alignment's anchors (both sides read them), after the semantic
    screen on the target's reading ``Y`` (`xsteer.data.screen.screen_semantic`); every flagged
    count goes on the target side."""
    from xsteer.data.screen import screen_semantic

    flagged += screen_semantic(benign, Y, embed, name, "alignment", allow_flagged, key=key)
    return [data_record(name, benign, side="source", unsafe=False),
            data_record(name, benign, side="target", unsafe=False, flagged=flagged)]


def fit_alignment(source: Encoder, target: Encoder, benign: Sequence[str], *,
                  method: str = "ridge", source_layer: int | str | None = None,
                  target_layer: int | None = None, holdout: float = 0.2, seed: int = 0,
                  benign_name: str = "benign", allow_flagged: bool = False,
                  **params: Any) -> Alignment:
    """Fit a source→target map on benign prompts read by both models (never unsafe data).

    The prompts are screened first (`xsteer.data.screen`): flagged ones raise `UnsafeDataError`
    unless ``allow_flagged``, and their count goes into the target-side provenance record."""
    flagged = _screen_anchors(benign, benign_name, allow_flagged)
    s_layer, _ = resolve_layer(source, source_layer, benign=benign)
    t_layer = target.resolve_site(target_layer, None)[0]
    if (source.model_id, source.site(s_layer)) == (target.model_id, target.site(t_layer)):
        warnings.warn(f"source and target are both {source.model_id} at {source.site(s_layer)}: "
                      "the map is an identity, and a transported direction is just the source "
                      "one", stacklevel=2)
    X = source.encode(list(benign), s_layer)
    Y = target.encode(list(benign), t_layer)
    records = _alignment_records(benign, benign_name, allow_flagged, flagged, Y,
                                 lambda ts: target.encode(list(ts), t_layer),
                                 f"{target.model_id}:{target.site(t_layer)}")
    return Alignment.fit(X, Y, method, source=(source.model_id, source.site(s_layer)),
                         target=(target.model_id, target.site(t_layer)), data=records,
                         holdout=holdout, seed=seed, target_encoder=encoder_meta(target, t_layer),
                         source_encoder=encoder_meta(source, s_layer), **params)


def evaluation_data(target: Encoder, site: str | Site, pairs: Sequence[Pair],
                    benign: Sequence[str], calibration: Sequence[str]) -> EvalData:
    """Encode held-out pairs, held-out benign text and benign calibration text on the target."""
    layer, pool = parse_site(site)
    u, s = pair_texts(pairs)
    feats = target.encode(u + s, layer, pool)
    n = len(u)
    return EvalData(unsafe=feats[:n], safe=feats[n:], categories=[p.category for p in pairs],
                    benign=target.encode(list(benign), layer, pool),
                    calibration=target.encode(list(calibration), layer, pool))


def check_target(direction: Direction | DirectionSet, target: Encoder) -> None:
    if direction.model_id != target.model_id:
        raise ProvenanceError(f"direction lives in {direction.model_id} but the target is "
                              f"{target.model_id}: transport it first (xsteer transport)")


@overload
def calibrated(direction: Direction, stats: dict[str, torch.Tensor],
               method: str = ...) -> Direction: ...


@overload
def calibrated(direction: DirectionSet, stats: dict[str, torch.Tensor],
               method: str = ...) -> DirectionSet: ...


def calibrated(direction: Direction | DirectionSet, stats: dict[str, torch.Tensor],
               method: str = "benign-norm") -> Direction | DirectionSet:
    """Rescale a direction (or each member) from benign target statistics."""
    from xsteer.align.calibration import calibrate_direction

    if method == "none":
        return direction
    if isinstance(direction, DirectionSet):
        return direction.map(lambda d: calibrate_direction(d, stats, method))
    return calibrate_direction(direction, stats, method)


def evaluate(target: Encoder, direction: Direction | DirectionSet, pairs: Sequence[Pair],
             benign: Sequence[str], calibration: Sequence[str], *, mode: str = "additive",
             strength: float = 0.5, calibrate: str = "benign-norm",
             native: Direction | DirectionSet | None = None, allow_flagged: bool = False,
             **kw: Any) -> DirectionEvaluation:
    """Representation-level evaluation of ``direction`` on the target (see `evaluate_direction`).

    The direction is first rescaled from the benign ``calibration`` texts (``calibrate``), so
    every direction compared is pushed equally hard.
    """
    from xsteer.align.calibration import benign_stats
    from xsteer.data.screen import screen, screen_semantic

    flagged = screen(calibration, "the calibration set", "gate and magnitude calibration",
                     allow_flagged)
    check_target(direction, target)
    data = evaluation_data(target, direction.site, pairs, benign, calibration)
    layer, pool = parse_site(direction.site)
    flagged += screen_semantic(calibration, data.calibration,
                               lambda ts: target.encode(list(ts), layer, pool),
                               "the calibration set", "gate and magnitude calibration",
                               allow_flagged, key=f"{target.model_id}:{direction.site}")
    d = calibrated(direction, benign_stats(data.calibration), calibrate)
    result = evaluate_direction(d, data, mode=mode, native=native, strength=strength, **kw)
    result.calibration = calibrate
    result.calibration_flagged = flagged
    return result


def pipeline_site_features(pipe: Any, texts: Sequence[str], site: str, *, batch_size: int = 32,
                           **call_kwargs: Any) -> torch.Tensor:
    """Features ``(n, dim)`` of benign ``texts`` at a pipeline ``site``, as the pipeline reads
    them and the gate pools them (`xsteer.pipelines.site_features`), in batches."""
    from xsteer.pipelines import site_features

    if not texts:
        raise EmptyDataError("no texts to read at the pipeline site")
    parts = [site_features(pipe, list(texts[i:i + batch_size]), [site], **call_kwargs)[site]
             for i in range(0, len(texts), batch_size)]
    return torch.cat(parts).float()


def fit_pipeline_alignment(source: Encoder, pipe: Any, site: str | None, benign: Sequence[str], *,
                           method: str = "ridge", source_layer: int | str | None = None,
                           holdout: float = 0.2, seed: int = 0, benign_name: str = "benign",
                           revision: str | None = None, call_kwargs: dict[str, Any] | None = None,
                           allow_flagged: bool = False, **params: Any) -> Alignment:
    """Fit a source→pipeline-site map on benign prompts: the target features are the pipeline's
    own reading of the site (`pipeline_site_features`). The alignment, and every direction
    transported through it, records the pipeline class, the site and the encoder's identity.
    The prompts are screened first, as in `fit_alignment`."""
    from xsteer.pipelines.binding import site_identity
    from xsteer.pipelines.generic import family_for

    flagged = _screen_anchors(benign, benign_name, allow_flagged)
    fam = family_for(pipe)
    spec = fam.site(site or fam.default_site)
    s_layer, _ = resolve_layer(source, source_layer, benign=benign)
    X = source.encode(list(benign), s_layer)
    Y = pipeline_site_features(pipe, benign, spec.name, **(call_kwargs or {}))
    records = _alignment_records(
        benign, benign_name, allow_flagged, flagged, Y,
        lambda ts: pipeline_site_features(pipe, ts, spec.name, **(call_kwargs or {})),
        f"{type(pipe).__name__}:{spec.name}")
    ident = site_identity(pipe, spec)
    if revision is not None:
        ident["revision"] = revision
    ident["call_kwargs"] = dict(call_kwargs or {})
    return Alignment.fit(X, Y, method, source=(source.model_id, source.site(s_layer)),
                         target=(ident["model_id"], spec.name), data=records, holdout=holdout,
                         seed=seed, target_encoder=ident,
                         source_encoder=encoder_meta(source, s_layer), **params)


def align_models(source: str, *, target: str | None = None, target_pipeline: str | None = None,
                 site: str | None = None, benign: str | os.PathLike[str] | None = None,
                 method: str = "ridge", source_layer: int | str | None = None,
                 target_layer: int | None = None,
                 like: str | os.PathLike[str] | None = None, holdout: float = 0.2,
                 seed: int = 0, allow_flagged: bool = False,
                 max_sequence_length: int | None = None, revision: str | None = None,
                 dtype: str = "float32", device: str = "cpu", source_dtype: str = "float32",
                 echo: Callable[[str], None] | None = print) -> Alignment:
    """``xsteer align`` as one call: load the models by name and the ``benign`` file (default: the
    shipped anchors), then `fit_pipeline_alignment` (``target_pipeline``: its text side only,
    read at ``site``) or `fit_alignment` (``target``: a model). ``like``: take the source layer
    from that direction artifact. ``source_dtype``: the source model's dtype (``estimate`` the
    source direction in the same one)."""
    from xsteer.data import load_benign
    from xsteer.directions import load_directions
    from xsteer.encoders import get_encoder
    from xsteer.pipelines.generate import DTYPES

    if source_dtype not in DTYPES:
        raise XSteerError(f"unknown source dtype {source_dtype!r}; known: {', '.join(DTYPES)}")
    if (target is None) == (target_pipeline is None):
        raise XSteerError("give exactly one of --target (a model) or --target-pipeline "
                          "(a diffusers pipeline)")
    if site is not None and target_pipeline is None:
        raise XSteerError("--site needs --target-pipeline")
    path = Path(benign) if benign is not None else None
    texts = load_benign(path, kind="anchors") if path is None else load_benign(path)
    layer = source_layer
    if like is not None:
        layer = parse_site(load_directions(like).site)[0]
    name = path.name if path else "xsteer:anchors"
    src = get_encoder(source, dtype=DTYPES[source_dtype])
    if target_pipeline is not None:
        from xsteer.pipelines.components import load_text_side

        pipe = load_text_side(target_pipeline, revision=revision, dtype=dtype, device=device,
                              echo=echo)
        kw = {} if max_sequence_length is None else {"max_sequence_length": max_sequence_length}
        return fit_pipeline_alignment(src, pipe, site, texts, method=method,
                                      source_layer=layer, holdout=holdout, seed=seed,
                                      benign_name=name, revision=revision, call_kwargs=kw,
                                      allow_flagged=allow_flagged)
    assert target is not None
    return fit_alignment(src, get_encoder(target), texts, method=method,
                         source_layer=layer, target_layer=target_layer, holdout=holdout,
                         seed=seed, benign_name=name, allow_flagged=allow_flagged)


def calibrate_gate(features: torch.Tensor, direction: Direction, *, quantile: float,
                   holdout: float = 0.2, seed: int = 0, side: Side = "target",
                   benign_name: str = "benign", texts: Sequence[str] = (),
                   benign_sha256: str | None = None, extra: dict[str, Any] | None = None,
                   delta: float | None = None) -> Any:
    """A `Gate` on benign ``features`` ``(n, dim)`` (read where ``direction`` lives) whose
    threshold is set on a seeded ``1 - holdout`` share and whose false-trigger rate is measured
    on the held-out rest; both, the quantile and the benign set's sha256 go in ``gate.meta``.

    ``delta``: set the threshold by conformal calibration instead of the plain quantile
    (`xsteer.steer.conformal`): false triggers on new benign prompts like these stay at most
    ``1 - quantile`` with probability at least ``1 - delta``."""
    from xsteer.steer import Gate
    from xsteer.steer.gate import empirical_quantile

    n = int(features.shape[0])
    if not 0.0 <= holdout < 1.0:
        raise XSteerError(f"--holdout must be in [0, 1), got {holdout}")
    n_hold = round(holdout * n)
    if n - n_hold < 2:
        raise EmptyDataError(f"gate calibration needs at least 2 benign prompts to set the "
                             f"threshold on; got {n} with holdout {holdout}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    hold, fit = perm[:n_hold], perm[n_hold:]
    rec = data_record(benign_name, [texts[int(i)] for i in fit] if texts else [], side=side,
                      unsafe=False)
    rule: Any = empirical_quantile
    if delta is not None:
        from xsteer.steer.conformal import conformal_threshold

        def conformal(scores: torch.Tensor, q: float) -> float:
            return conformal_threshold(scores, 1.0 - q, delta)

        rule = conformal
    gate = Gate.calibrate(features[fit], direction.vector, quantile=quantile,
                          category=direction.category, data=rec, threshold_fn=rule)
    ftr = float(gate.fires(features[hold]).float().mean()) if n_hold else None
    gate.meta.update({
        "quantile": quantile, "benign_sha256": benign_sha256, "benign_name": benign_name,
        "n_calibration": int(fit.numel()), "n_heldout": n_hold, "holdout_seed": seed,
        "heldout_false_trigger_rate": ftr, "side": side,
        "guarantee": None if delta is None else {"false_trigger_at_most": 1.0 - quantile,
                                                  "with_probability": 1.0 - delta},
        "direction": {"model_id": direction.model_id, "site": str(direction.site),
                      "category": direction.category, "origin": direction.origin},
        **(extra or {})})
    return gate
