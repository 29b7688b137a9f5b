"""`native_adapter`: an adapter estimated on the pipeline itself, for demos and tests only.

Its directions are the mean difference of the pipeline's own site features on the shipped unsafe
and safe pairs (the *native* yardstick: it sees target-side unsafe data, and its provenance says
so), one per category plus a global one; its gates are calibrated on the shipped benign anchors.
The page falls back to it when no transported adapter is at hand, and says so. A real adapter
comes from ``estimate → align --target-pipeline → transport → gate calibrate → pack``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from xsteer.adapter.pack import pack
from xsteer.categories import GLOBAL
from xsteer.pipelines.adapter import Adapter

NATIVE_NOTE = ("native demo adapter: directions estimated on this pipeline's own encoder with "
               "unsafe pairs (the yardstick, not a transported direction)")


def native_adapter(pipe: Any, *, site: str | None = None, strength: float = 4.0,
                   mode: str = "gated", inner: str = "projection", quantile: float = 0.95,
                   categories: Sequence[str] | None = None, n_benign: int = 256,
                   name: str = "xsteer-native-demo", pipeline_id: str | None = None,
                   **call_kwargs: Any) -> Adapter:
    """A gated adapter for ``pipe`` built in seconds from the shipped data (see the module);
    ``call_kwargs`` go to the pipeline's encode (e.g. ``max_sequence_length``)."""
    from xsteer.data import data_record, load_benign, load_pairs, pair_texts
    from xsteer.directions import Direction, DirectionSet
    from xsteer.directions.estimators import mean_difference
    from xsteer.pipelines import family_for
    from xsteer.pipelines.binding import site_identity
    from xsteer.provenance import Provenance
    from xsteer.workflow import calibrate_gate, pipeline_site_features

    fam = family_for(pipe)
    spec = fam.site(site or fam.default_site)
    pairs = load_pairs(categories=categories)
    by_cat: dict[str, tuple[list[str], list[str]]] = {GLOBAL: pair_texts(pairs)}
    for c in dict.fromkeys(p.category for p in pairs):
        by_cat[c] = pair_texts([p for p in pairs if p.category == c])
    unsafe, safe = by_cat[GLOBAL]
    fu = pipeline_site_features(pipe, unsafe, spec.name, **call_kwargs)
    fs = pipeline_site_features(pipe, safe, spec.name, **call_kwargs)
    index = {t: i for i, t in enumerate(unsafe)}
    enc = site_identity(pipe, spec, ref=pipeline_id)
    members = {}
    for c, (u, s) in by_cat.items():
        rows = torch.tensor([index[t] for t in u])
        prov = Provenance([data_record("shipped pairs", u + s, side="target", unsafe=True)])
        members[c] = Direction(mean_difference(fu[rows], fs[rows]), model_id=enc["model_id"],
                               site=spec.name, category=c, origin="native", method="mean-diff",
                               provenance=prov, meta={"encoder": enc, "n_pairs": len(u)})
    directions = DirectionSet(members)
    benign = load_benign(kind="anchors")[:n_benign]
    fb = pipeline_site_features(pipe, benign, spec.name, **call_kwargs)
    gates = {c: calibrate_gate(fb, d, quantile=quantile, benign_name="xsteer:anchors",
                               texts=benign) for c, d in directions.items()}
    op = {"mode": mode, "strength": strength, "inner": inner, "branch": "conditional",
          "site": spec.name, "categories": [c for c in directions.categories if c != GLOBAL]}
    return pack(directions, operator=op, gates=gates, pipe=pipe, pipeline_id=pipeline_id,
                name=name, meta={"note": NATIVE_NOTE})
