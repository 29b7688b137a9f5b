"""Advanced transport: more ways to carry a source direction into a target space.

Every method is an `xsteer.align.AlignmentMap`, found by name through `xsteer.align.get_map_class`
(``make_map("whiten-ridge")``, ``Alignment.fit(X, Y, method=DirectionAwareMap(d))``), fitted on
benign anchors only:

=================== =================================================================
``whiten-ridge``    `WhitenRidgeMap`: ridge from whitened (shrunk covariance) source states
``direction-aware`` `DirectionAwareMap`: anchors weighted by, or subspace chosen from, the
                    source direction
``relative``        `RelativeMap`: anchor-similarity (relative) coordinates
``anchor-knn``      `AnchorMap`: kNN regression; directions by anchor contrast
=================== =================================================================

Plus `transport_pairs` (a pair set's difference structure through any map) and `select_site`
(benign-only layer/pooling choice). The MLP with Jacobian transport is
``MLPMap(transport_mode="jvp")`` in `xsteer.align`.
"""

from xsteer.transport.anchors import AnchorMap, transport_pairs
from xsteer.transport.linear_maps import DirectionAwareMap, RelativeMap, WhitenRidgeMap
from xsteer.transport.select import heldout_fidelity, select_site

TRANSPORT_MAPS = {c.name: c for c in (WhitenRidgeMap, DirectionAwareMap, RelativeMap, AnchorMap)}

__all__ = [
    "TRANSPORT_MAPS",
    "AnchorMap",
    "DirectionAwareMap",
    "RelativeMap",
    "WhitenRidgeMap",
    "heldout_fidelity",
    "select_site",
    "transport_pairs",
]
