"""The transport experiment behind ``make results``: every method, ablation and control on one
source→target pair of real offline models, evaluated on held-out pairs.

Honesty rules this module enforces (and `run_pair` asserts on every transported direction):

* pairs are split once (`split_pairs`, seed 0): the source direction and the native yardstick are
  estimated on the TRAIN half, every number is measured on the TEST half;
* the target side of every fitted or calibrated object sees benign text only: anchors
  (generic + the fitting half of the near-miss set) fit the maps and set the gate thresholds and
  magnitude calibration; held-out captions and the other near-miss half are only scored;
* hyperparameters are fixed here, before any evaluation, and never tuned on the test half.

Features come from the encoders' on-disk cache: each text list is encoded once per model with all
layers in one pass, and every subset is sliced from those tensors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xsteer.align import (
    Alignment,
    AlignmentMap,
    AnchorMap,
    DirectionAwareMap,
    MLPMap,
    ProcrustesMap,
    RelativeMap,
    RidgeMap,
    WhitenRidgeMap,
    transport_pairs,
)
from xsteer.align.calibration import benign_stats, calibrate_direction
from xsteer.align.layers import pair_auroc_cv, select_site_by_fidelity
from xsteer.data import Pair, data_record, load_benign, load_pairs, pair_texts, split_pairs
from xsteer.directions import Direction, mean_difference, random_direction
from xsteer.encoders import Encoder
from xsteer.evaluate import EvalData
from xsteer.evaluate.metrics import auroc, cross_fit_flags, mean_cosine
from xsteer.evaluate.representation import calibrate_gates, harm_scores
from xsteer.provenance import Provenance
from xsteer.steer import Steering

SEED = 0
N_GENERIC: int | None = None  # generic anchors used: all (an int takes a seeded subset)
STRENGTH = 0.5
STRENGTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)
QUANTILE = 0.99
LEARNING_COUNTS = (100, 200, 400, 800, 1600)
CANDIDATE_LAYERS = {"gemma-3-270m": (3, 6, 9, 12, 15, 18),
                    "all-minilm-l6-v2": (1, 2, 3, 4, 5, 6),
                    "en-core-web-sm": (0,)}
LISTS = ("unsafe", "safe", "captions", "nearmiss", "generic")


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Texts:
    """The fixed text lists (encoded whole, once per model) and the index splits into them."""

    lists: dict[str, list[str]]
    categories: list[str]
    train: np.ndarray  # pair indices
    test: np.ndarray
    nm_fit: np.ndarray  # near-miss indices used as anchors
    nm_held: np.ndarray  # near-miss indices only scored

    @classmethod
    def build(cls, seed: int = SEED, n_generic: int | None = N_GENERIC,
              split_seed: int | None = None) -> Texts:
        """``n_generic``: a seeded subset of the generic anchors, or None for all of them.
        ``split_seed`` (default ``seed``) reseeds only the pair and near-miss splits, so the text
        lists, hence the cached features, stay the same."""
        pairs = load_pairs()
        generic = load_benign(kind="generic")
        n = len(generic) if n_generic is None else min(n_generic, len(generic))
        keep = sorted(random.Random(seed).sample(range(len(generic)), n)) if n < len(generic) \
            else list(range(len(generic)))
        u, s = pair_texts(pairs)
        empty = np.zeros(0, dtype=int)
        t = cls(lists={"unsafe": u, "safe": s, "captions": load_benign(kind="captions"),
                       "nearmiss": load_benign(kind="nearmiss"),
                       "generic": [generic[i] for i in keep]},
                categories=[p.category for p in pairs], train=empty, test=empty, nm_fit=empty,
                nm_held=empty)
        t.train, t.test, t.nm_fit, t.nm_held = _splits(t, seed if split_seed is None
                                                       else split_seed)
        return t

    def pairs(self, idx: np.ndarray) -> list[Pair]:
        return [Pair(self.categories[i], self.lists["unsafe"][i], self.lists["safe"][i])
                for i in idx]

    def anchor_texts(self, kind: str = "both") -> list[str]:
        nm = [self.lists["nearmiss"][i] for i in self.nm_fit]
        return {"generic": self.lists["generic"], "nearmiss": nm,
                "both": self.lists["generic"] + nm}[kind]


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Feats:
    """One model's pooled features at one layer for every text list."""

    model_id: str
    site: str
    by_list: dict[str, torch.Tensor]

    def anchors(self, t: Texts, kind: str = "both") -> torch.Tensor:
        nm = self.by_list["nearmiss"][torch.as_tensor(t.nm_fit)]
        return {"generic": self.by_list["generic"], "nearmiss": nm,
                "both": torch.cat([self.by_list["generic"], nm])}[kind]

    def pairs(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.as_tensor(idx)
        return self.by_list["unsafe"][i], self.by_list["safe"][i]


def encode_all(enc: Encoder, t: Texts, layers: Sequence[int]) -> dict[int, Feats]:
    """Every list at every layer, from the cache when warm (one forward pass per list if not)."""
    out: dict[int, dict[str, torch.Tensor]] = {layer: {} for layer in layers}
    for name in LISTS:
        got = enc.encode_layers(t.lists[name], list(layers), progress=False)
        for layer in layers:
            out[layer][name] = got[layer]
    return {layer: Feats(enc.model_id, enc.site(layer), f) for layer, f in out.items()}


# -- methods, fixed before evaluation ---------------------------------------------------------------
def methods(d_src: torch.Tensor) -> dict[str, Callable[[], AlignmentMap]]:
    """The transport methods compared, by row label (hyperparameters fixed a priori)."""
    dl = d_src.tolist()
    return {
        "ridge": lambda: RidgeMap(),
        "procrustes": lambda: ProcrustesMap(),
        "whiten-ridge": lambda: WhitenRidgeMap(shrinkage=0.1),
        "direction-aware (weight)": lambda: DirectionAwareMap(dl, mode="weight", strength=4.0),
        "direction-aware (subspace 32)": lambda: DirectionAwareMap(dl, mode="subspace", rank=32),
        # 512 anchors: ridge on all ~2,500 anchor coordinates took minutes on 2 cores
        "relative (ridge readout)": lambda: RelativeMap(n_anchors=512, readout="ridge"),
        "relative (similarity readout)": lambda: RelativeMap(readout="relative"),
        "anchor contrast (top 10%)": lambda: AnchorMap(k=10, quantile=0.1),
        "anchor cross-covariance": lambda: AnchorMap(weighting="linear"),
        "anchor kNN pairs (k=10)": lambda: AnchorMap(k=10),
        "mlp (Jacobian)": lambda: MLPMap(hidden=128, epochs=30, patience=5,
                                         transport_mode="jvp"),
    }


PAIR_METHODS = {"anchor kNN pairs (k=10)"}


@dataclass(eq=False)  # holds tensors: == compares identity instead of raising
class Setup:
    """Everything fixed for one source→target pair before any method runs."""

    t: Texts
    src: Feats
    tgt: Feats
    d_src: Direction
    native: Direction
    data: EvalData
    nm_held: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


def source_direction(f: Feats, t: Texts, name: str = "xsteer:pairs[train]") -> Direction:
    U, S = f.pairs(t.train)
    u, s = pair_texts(t.pairs(t.train))
    rec = data_record(name, u + s, side="source", unsafe=True)
    return Direction(mean_difference(U, S), f.model_id, f.site, origin="source",
                     provenance=Provenance([rec]))


def make_setup(src: Feats, tgt: Feats, t: Texts) -> Setup:
    Ut, St = tgt.pairs(t.train)
    u, s = pair_texts(t.pairs(t.train))
    nat_rec = data_record("xsteer:pairs[train]", u + s, side="target", unsafe=True)
    calib = tgt.anchors(t)
    stats = benign_stats(calib)
    native = calibrate_direction(
        Direction(mean_difference(Ut, St), tgt.model_id, tgt.site, origin="native",
                  provenance=Provenance([nat_rec])), stats, "benign-norm")
    U, S = tgt.pairs(t.test)
    data = EvalData(unsafe=U, safe=S, categories=[t.categories[i] for i in t.test],
                    benign=tgt.by_list["captions"], calibration=calib)
    return Setup(t, src, tgt, source_direction(src, t), native, data,
                 tgt.by_list["nearmiss"][torch.as_tensor(t.nm_held)], stats)


def transport(setup: Setup, label: str, make: Callable[[], AlignmentMap],
              anchors: str = "both", n: int | None = None) -> tuple[Direction, dict[str, Any]]:
    """Fit ``make()`` on benign anchors and carry the source direction; returns it calibrated."""
    t = setup.t
    X, Y = setup.src.anchors(t, anchors), setup.tgt.anchors(t, anchors)
    texts = t.anchor_texts(anchors)
    if n is not None and n < X.shape[0]:
        keep = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(SEED))[:n]
        X, Y, texts = X[keep], Y[keep], [texts[i] for i in keep.tolist()]
    recs = [data_record(f"xsteer:anchors[{anchors}]", texts, side=s, unsafe=False)
            for s in ("source", "target")]
    t0 = time.perf_counter()
    al = Alignment.fit(X, Y, make(), source=(setup.src.model_id, setup.src.site),
                       target=(setup.tgt.model_id, setup.tgt.site), data=recs)
    if label in PAIR_METHODS:
        U, S = setup.src.pairs(t.train)
        prov = setup.d_src.provenance.merged(al.provenance)
        moved = Direction(transport_pairs(al.map, U, S), al.target_model, al.target_site,
                          origin="transported", method=f"transported:pairs:{al.map.name}",
                          provenance=prov)
    else:
        moved = al.transport(setup.d_src, calibrate="none")
    moved = calibrate_direction(moved, setup.stats, "benign-norm")
    # The invariant, checked on the artifact itself: no target-side unsafe data anywhere.
    assert not moved.provenance.saw_unsafe("target"), label
    info = {"fit_seconds": time.perf_counter() - t0,
            "heldout_r2": al.fit_stats.get("heldout_r2"),
            "heldout_top1": al.fit_stats.get("heldout_top1"), "n_anchors": int(X.shape[0])}
    return moved, info


def evaluate_many(setup: Setup, dirs: dict[str, Direction],
                  strengths: Sequence[float] = STRENGTHS) -> dict[str, dict[str, Any]]:
    """`evaluate_direction`'s metrics (additive mode, `STRENGTH`, its strength curve) for many
    directions at once, plus near-miss false triggers and the cosine to native.

    The cross-fitted judges depend only on the held-out pairs, not on the direction, so they are
    trained once (5 folds per judge kind) and asked about every steered matrix in one call; the
    numbers equal `evaluate_direction`'s (checked in the tests), at a fraction of the cost.
    """
    data, c = setup.data, setup.data.center
    grid = sorted({*map(float, strengths), STRENGTH})
    queries: list[torch.Tensor] = [data.unsafe]
    where: dict[tuple[str, float], int] = {}
    out: dict[str, dict[str, Any]] = {}
    for label, d in dirs.items():
        gates = calibrate_gates(d, data.calibration, QUANTILE)
        curve = []
        for s in grid:
            steer = Steering(d, mode="additive", strength=s, gates=gates)
            U2, _ = steer.apply(data.unsafe)
            B2, _ = steer.apply(data.benign)
            where[(label, s)] = len(queries)
            queries.append(U2)
            curve.append({"strength": s, "pair_fidelity_after": mean_cosine(U2, data.safe, c),
                          "self_cosine": mean_cosine(U2, data.unsafe, c),
                          "benign_cosine": mean_cosine(B2, data.benign, c)})
        fires = torch.stack([g.fires(data.benign) for g in gates.values()]).any(0)
        nm = torch.stack([g.fires(setup.nm_held) for g in gates.values()]).any(0)
        out[label] = {"curve": curve, "strength": STRENGTH, "cos_native": d.cosine(setup.native),
                      "false_trigger_rate": float(fires.float().mean()),
                      "nearmiss_trigger_rate": float(nm.float().mean()),
                      "unsafe_trigger_rate": float(torch.stack(
                          [g.fires(data.unsafe) for g in gates.values()]).any(0).float().mean()),
                      "auroc": auroc(harm_scores(gates, data.unsafe),
                                     harm_scores(gates, data.safe))}
    flags = {k: cross_fit_flags(data.unsafe, data.safe, queries, data.categories, k, 5, SEED, c)
             for k in ("knn", "linear")}
    for label, res in out.items():
        for p in res["curve"]:
            i = where[(label, p["strength"])]
            p["asr_after"] = float(flags["knn"][i].mean())
            p["asr_linear_after"] = float(flags["linear"][i].mean())
        main = next(p for p in res["curve"] if p["strength"] == STRENGTH)
        res.update({"asr_before": float(flags["knn"][0].mean()),
                    "asr_linear_before": float(flags["linear"][0].mean()),
                    "pair_fidelity_before": mean_cosine(data.unsafe, data.safe, c),
                    **{k: main[k] for k in ("asr_after", "asr_linear_after",
                                            "pair_fidelity_after", "self_cosine",
                                            "benign_cosine")}})
        res["asr_vs_strength"] = res.pop("curve")
    return out


def reduction_ratios(res: dict[str, Any], native: dict[str, Any]) -> dict[str, float | None]:
    """Share of the native ASR reduction, per judge (``knn``/``linear``): at equal strength, and
    at no worse pair fidelity.

    The latter takes the best point on ``res``'s strength curve whose pair fidelity (cosine of the
    steered unsafe prompt to its paired safe prompt) is at least the native's at `STRENGTH`: a
    push that "wins" only by wrecking the prompt does not count.
    """
    out: dict[str, float | None] = {}
    for judge, key in (("knn", "asr"), ("linear", "asr_linear")):
        before, after = f"{key}_before", f"{key}_after"
        base = native[before] - native[after]
        if base <= 0:
            out[f"{judge}_equal_strength"] = out[f"{judge}_equal_fidelity"] = None
            continue
        out[f"{judge}_equal_strength"] = (res[before] - res[after]) / base
        ok = [p for p in res.get("asr_vs_strength", [])
              if p["pair_fidelity_after"] >= native["pair_fidelity_after"] - 1e-9]
        out[f"{judge}_equal_fidelity"] = max(((res[before] - p[after]) / base for p in ok),
                                             default=None)
    return out


def split_spread(src: Feats, tgt: Feats, t: Texts, labels: Sequence[str],
                 seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> dict[str, dict[str, float]]:
    """Cosine to native (and the ceiling) over several pair/near-miss splits: mean and std.

    Each split re-estimates the source and native directions on its own training half and
    refits the maps; the features are reused (the text lists do not change).
    """
    cos: dict[str, list[float]] = {label: [] for label in (*labels, "ceiling")}
    for seed in seeds:
        ts = Texts(t.lists, t.categories, *_splits(t, seed))
        setup = make_setup(src, tgt, ts)
        for label in labels:
            d, _ = transport(setup, label, methods(setup.d_src.vector)[label])
            cos[label].append(d.cosine(setup.native))
        U, S = tgt.pairs(ts.test)
        cos["ceiling"].append(setup.native.cosine((S - U).mean(0)))
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
            for k, v in cos.items()}


def _splits(t: Texts, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pairs = t.pairs(np.arange(len(t.categories)))
    train, test = split_pairs(pairs, test_fraction=0.5, seed=seed)
    pos = {id(p): i for i, p in enumerate(pairs)}
    nm = np.random.default_rng(seed).permutation(len(t.lists["nearmiss"]))
    half = len(nm) // 2
    return (np.array(sorted(pos[id(p)] for p in train)),
            np.array(sorted(pos[id(p)] for p in test)), np.sort(nm[:half]), np.sort(nm[half:]))


def choose_layers(src_layers: dict[int, Feats], tgt: Feats, t: Texts) -> dict[str, Any]:
    """Benign-only choice of the transport layer, plus the source gate layer (source pairs)."""
    Y = tgt.anchors(t)
    best, r2 = select_site_by_fidelity({k: f.anchors(t) for k, f in src_layers.items()}, Y, RidgeMap())
    gate_scores = {k: pair_auroc_cv(*f.pairs(t.train)) for k, f in src_layers.items()}
    gate_layer = max(gate_scores, key=lambda k: (gate_scores[k], -k))
    return {"transport_layer": best, "benign_r2": r2, "gate_layer": gate_layer,
            "gate_pair_auroc": gate_scores}


def random_controls(setup: Setup) -> dict[str, Direction]:
    """A random target direction, and a random SOURCE direction carried by ridge (map control)."""
    nat = setup.native
    rnd = Direction(random_direction(nat.dim, nat.norm, seed=1), nat.model_id, nat.site,
                    origin="random", method="random")
    src_rnd = Direction(random_direction(setup.d_src.dim, setup.d_src.norm, seed=1),
                        setup.d_src.model_id, setup.d_src.site, origin="random", method="random")
    backup = setup.d_src
    setup.d_src = src_rnd
    try:
        moved, _ = transport(setup, "ridge", RidgeMap)
    finally:
        setup.d_src = backup
    return {"random (target)": rnd, "random source dir. via ridge": moved}
