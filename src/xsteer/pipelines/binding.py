"""Binding a direction to the exact pipeline site it was made for, or saying why not.

A direction records where it lives (`xsteer.site.Site`: a pipeline site such as
``text_encoder_2``, or an encoder layer such as ``layer:6/mean``) and, when it went through an
alignment, which encoder (``meta["encoder"]``: model id, revision, architecture digest, weight
probe; see `xsteer.encoders.identity`). `bind_site` finds the one site of a pipeline that reads
exactly that representation:

- a pipeline site binds to the site of that name;
- an encoder-layer site binds to the token site whose output field is that hidden layer of an
  encoder with the same architecture, read with mean pooling (what the gate's masked mean is);
- the encoder the direction records must be the one the pipeline holds at that site.

Anything else is a `SiteBindingError` naming both sides, unless ``force=True``: then the
direction goes to the site it names (else the family's default site) and the binding records
what was forced, which `xsteer generate` writes into every manifest. Nothing falls back silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xsteer.encoders.identity import config_digest, same_weights, weights_probe
from xsteer.errors import XSteerError
from xsteer.pipelines.families import Family, SiteSpec
from xsteer.site import Site, SiteError
from xsteer.steer import Steering


class SiteBindingError(XSteerError, ValueError):
    """A direction was made for another site or another encoder than the pipeline's."""


@dataclass
class Binding:
    """One direction bound to one site; ``check`` is what manifests record about the binding."""

    site: SiteSpec
    steering: Steering
    check: dict[str, Any]


def pipeline_ref(pipe: Any) -> str | None:
    """The Hub id or absolute folder a pipeline was loaded from (None if built in code)."""
    ref = getattr(pipe, "name_or_path", None)
    if not ref:
        cfg = getattr(pipe, "config", None)
        ref = cfg.get("_name_or_path") if cfg is not None and hasattr(cfg, "get") else None
    if not ref:
        return None
    p = Path(str(ref)).expanduser()
    return str(p.resolve()) if p.is_dir() else str(ref)


def _num_layers(config: Any) -> int | None:
    text = getattr(config, "text_config", None) if not isinstance(config, dict) else None
    for cfg in (text, config):
        for key in ("num_hidden_layers", "num_layers"):
            v = getattr(cfg, key, None) if cfg is not None else None
            if isinstance(v, int):
                return v
    return None


def layer_read(site: SiteSpec, module: Any) -> int | None:
    """The hidden-state layer (0 = embeddings) a token site reads, numbered as `HFEncoder` does;
    None for pooled sites or fields that are no layer."""
    if site.kind != "tokens":
        return None
    n = _num_layers(getattr(module, "config", None))
    key, idx = site.field()
    if n is None:
        return None
    if key == "last_hidden_state" or (key == 0 and idx is None):
        return n
    if key == "hidden_states" and idx is not None:
        return n + 1 + idx if idx < 0 else idx
    return None


def site_identity(pipe: Any, site: SiteSpec, ref: str | None = None) -> dict[str, Any]:
    """What identifies the encoder a pipeline site reads: recorded by ``align --target-pipeline``
    and compared when binding."""
    module = site.module(pipe)
    cfg = getattr(module, "config", None)
    ref = ref if ref is not None else pipeline_ref(pipe)
    name = getattr(cfg, "_name_or_path", None)
    return {
        "model_id": f"{ref}/{site.component}" if ref else (name or type(module).__name__),
        "revision": getattr(cfg, "_commit_hash", None),
        "pipeline": ref, "pipeline_class": type(pipe).__name__, "site": site.name,
        "component": site.component, "output": site.output, "kind": site.kind,
        "encoder_class": type(module).__name__, "config_sha": config_digest(cfg),
        "weights_probe": weights_probe(module) if hasattr(module, "named_parameters") else None,
    }


def _encoder_record(steering: Steering) -> dict[str, Any]:
    d = steering.directions
    first = next(iter(d.directions.values())) if hasattr(d, "directions") else d
    meta = dict(getattr(first, "meta", {}) or {})
    enc = meta.get("encoder")
    if isinstance(enc, dict):
        return enc
    return {k: meta[k] for k in ("config_sha", "revision", "num_layers") if k in meta}


def _site_for(fam: Family, pipe: Any, key: str | None, named: Site | None,
              problems: list[str]) -> SiteSpec | None:
    names = [s.name for s in fam.sites]
    if key is not None:
        spec = fam.site(key)
        if named is not None and named.kind == "component" and str(named) != key:
            problems.append(f"the direction is for site {str(named)!r} but was given to steer "
                            f"site {key!r}")
        elif named is not None and named.kind != "component" and not _reads(spec, pipe, named):
            problems.append(f"the direction lives at encoder site {named}, which site {key!r} "
                            f"({spec.component}.{spec.output}) does not read")
        return spec
    if named is not None and named.kind == "component":
        if str(named) in names:
            return fam.site(str(named))
        problems.append(f"the direction is for site {str(named)!r}, which "
                        f"{type(pipe).__name__} does not have (its sites: {names})")
        return None
    if named is not None:
        hits = [s for s in fam.sites if _reads(s, pipe, named)]
        if hits:
            return hits[0]
        reads = {s.name: f"{s.component}.{s.output}" for s in fam.sites}
        problems.append(f"the direction lives at encoder site {named}, which no site of "
                        f"{type(pipe).__name__} reads ({reads}); align it to the pipeline with "
                        "`xsteer align --target-pipeline`")
        return None
    problems.append(f"the direction's site is none of the site forms, so it names no site of "
                    f"{type(pipe).__name__} (its sites: {names})")
    return None


def _reads(spec: SiteSpec, pipe: Any, named: Site) -> bool:
    if named.kind != "layer" or named.pooling != "mean":
        return False
    module = getattr(pipe, spec.component, None)
    return module is not None and layer_read(spec, module) == named.layer


def bind_site(fam: Family, pipe: Any, key: str | None, steering: Steering, *,
              force: bool = False) -> Binding:
    """Bind ``steering``'s direction to the site ``key`` names (None: the site the direction
    records); raises `SiteBindingError` naming both sides on any mismatch unless ``force``."""
    d = steering.directions
    problems: list[str] = []
    try:
        named: Site | None = Site.parse(d.site)
    except SiteError:
        named = None
    spec = _site_for(fam, pipe, key, named, problems)
    if spec is None and force:
        spec = fam.site(fam.default_site)
    model_check = "unverified: the direction records no encoder digest"
    pipe_enc: dict[str, Any] = {}
    if spec is not None:
        pipe_enc = site_identity(pipe, spec)
        rec = _encoder_record(steering)
        theirs, ours = rec.get("config_sha"), pipe_enc["config_sha"]
        same = same_weights(rec.get("weights_probe"), pipe_enc["weights_probe"])
        other_arch = bool(theirs and ours and theirs != ours)
        if other_arch or same is False:
            what = "architecture" if other_arch else "weights"
            problems.append(
                f"the direction was made in encoder {d.model_id} "
                f"({rec.get('encoder_class', '?')}, config {theirs}) but {type(pipe).__name__} "
                f"site {spec.name!r} reads {pipe_enc['model_id']} ({pipe_enc['encoder_class']}, "
                f"config {ours}): another {what}")
        elif theirs and ours:
            model_check = "match" if same else "architecture match (weights unverified)"
    if problems and not force:
        raise SiteBindingError("; ".join(problems) + ". Pass force=True (CLI: --force) to "
                               "bind anyway; the manifest then records it")
    assert spec is not None
    check = {"direction_model": d.model_id, "direction_site": str(d.site), "site": spec.name,
             "pipeline_encoder": pipe_enc.get("model_id"), "model_check": model_check,
             "forced": problems or None}
    return Binding(spec, steering, check)
