"""Fit the source-side gate from texts: what ``xsteer gate calibrate --source MODEL`` runs.

The source model may see unsafe data, so the probe learns from unsafe prompts of every category
(the shipped pairs, the shipped source-side probe corpus, any ``--unsafe`` file) against the
pairs' safe twins and benign prompts. Benign texts come in *styles* (short captions, near-miss
prompts, lexica-style prompts with artists and tags, a user's own file); each style is split, with
a seed, into three parts:

* **fit** — negatives of the logistic probes;
* **calibration** — held apart from the fit; the conformal threshold is set on all styles'
  calibration scores together (`SourceProbe.calibrate`: false triggers ≤ ``q`` with probability
  ≥ ``1 - delta`` on benign prompts exchangeable with them);
* **test** — neither fitted nor calibrated on: the false-trigger rate per style, with its exact
  (Clopper-Pearson) interval, recorded in the artifact.

A seeded share of the unsafe prompts is held out the same way for a recall per category. The
artifact records the source model's identity, the layers, q and δ, and the sha256 of every file
used.

>>> from xsteer.probe_fit import default_probe_layers
>>> default_probe_layers(18)  # Gemma-3-270M: the middle of its 18 layers
(6, 9, 12, 15)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xsteer.categories import normalize_category
from xsteer.errors import EmptyDataError, XSteerError
from xsteer.io import sha256_bytes

SPLIT = (0.5, 0.35, 0.15)  # fit / calibration / test share of each benign style


@dataclass
class ProbeData:
    """Texts for a source probe.

    Attributes:
        unsafe: ``(category, text)`` per unsafe prompt.
        negatives: non-unsafe texts used only as fit negatives (the pairs' safe twins).
        benign: ``{style: texts}``, each split into fit / calibration / test.
        files: ``{name: sha256}`` of every file the texts came from.
    """

    unsafe: list[tuple[str, str]]
    negatives: list[str] = field(default_factory=list)
    benign: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def _file_sha(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def _shipped_sha(name: str) -> str:
    from importlib.resources import files

    return sha256_bytes((files("xsteer.data") / name).read_bytes())


def default_probe_data(pairs: str | os.PathLike[str] | None = None,
                       unsafe: Sequence[str | os.PathLike[str]] = (),
                       benign: Sequence[str | os.PathLike[str]] = (),
                       shipped_benign: bool = True, corpus: bool = True) -> ProbeData:
    """The shipped source-side data, plus the user's files.

    ``pairs``: a pairs JSONL (default: the shipped pairs). ``unsafe``: JSONL files of
    ``{"category", "prompt"}`` lines. ``benign``: text files, one style each (named by the file's
    stem). ``shipped_benign``: also the shipped benign anchors and near-miss prompts.
    ``corpus``: also the shipped source-side probe corpus (`xsteer.data.probe_corpus`): its unsafe
    prompts of every style, its benign prompts as one style each (``corpus:<style>``), and its
    keyword-flagged benign prompts as fit negatives only.
    """
    from xsteer.data import load_benign, load_pairs
    from xsteer.data.probe_corpus import load_probe_corpus

    ps = load_pairs(pairs)
    files = {("pairs.jsonl" if pairs is None else str(pairs)):
             _shipped_sha("pairs.jsonl") if pairs is None else _file_sha(Path(pairs))}
    data = ProbeData(unsafe=[(p.category, p.unsafe) for p in ps],
                     negatives=[p.safe for p in ps], files=files)
    if corpus:
        pc = load_probe_corpus()
        data.unsafe += [(c, t) for c, _, t in pc.unsafe]
        for style, text in pc.benign:
            data.benign.setdefault(f"corpus:{style}", []).append(text)
        data.negatives += [t for _, t in pc.benign_flagged]
        for name in ("probe_unsafe.jsonl", "probe_benign.jsonl", "probe_benign_flagged.jsonl"):
            data.files[name] = _shipped_sha(name)
    for path in unsafe:
        data.unsafe += load_labelled_prompts(path)
        data.files[str(path)] = _file_sha(Path(path))
    if shipped_benign:
        data.benign["captions"] = load_benign(kind="generic")
        data.benign["nearmiss"] = load_benign(kind="nearmiss")
        data.files["benign.txt"] = _shipped_sha("benign.txt")
        data.files["benign_nearmiss.txt"] = _shipped_sha("benign_nearmiss.txt")
    for path in benign:
        p = Path(path)
        style = p.stem
        if style in data.benign:
            style = f"{style}:{len(data.benign)}"
        data.benign[style] = load_benign(p)
        data.files[str(p)] = _file_sha(p)
    if not data.benign:
        raise EmptyDataError("a source probe needs benign texts (the shipped ones or --benign)")
    return data


def load_labelled_prompts(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(category, prompt)`` from JSONL lines ``{"category": ..., "prompt": ...}``."""
    from xsteer.data.loaders import DataFormatError, _json_objects, _read_user

    name, text = _read_user(path)
    out = []
    for where, obj in _json_objects(name, text):
        try:
            cat, prompt = obj["category"], obj["prompt"]
        except KeyError as exc:
            raise DataFormatError(f"{where}: missing key {exc}") from exc
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFormatError(f"{where}: 'prompt' must be a non-empty string")
        out.append((normalize_category(cat, allow_global=False), prompt.strip()))
    if not out:
        raise EmptyDataError(f"{name}: no unsafe prompts")
    return out


def default_probe_layers(num_layers: int) -> tuple[int, ...]:
    """Four middle layers, at 2/6 … 5/6 of the depth (fixed before any evaluation)."""
    picked = dict.fromkeys(max(1, min(num_layers, round(num_layers * k / 6)))
                           for k in (2, 3, 4, 5))
    return tuple(picked)


def three_way(n: int, seed: int, split: tuple[float, float, float] = SPLIT
              ) -> tuple[list[int], list[int], list[int]]:
    """Seeded fit / calibration / test indices of ``n`` items in the ``split`` shares."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    a = round(split[0] * n)
    b = a + round(split[1] * n)
    return perm[:a], perm[a:b], perm[b:]


def rate(k: int, n: int) -> dict[str, Any]:
    """A rate with its exact 95% (Clopper-Pearson) interval; ``None`` rate for ``n = 0``."""
    if n == 0:
        return {"rate": None, "lo": None, "hi": None, "k": 0, "n": 0}
    from xsteer.evaluate.metrics import proportion_ci  # xsteer's one interval rule for rates

    lo, hi = proportion_ci(k, n)
    return {"rate": k / n, "lo": lo, "hi": hi, "k": k, "n": n}


def fit_source_gate(encoder: Any, data: ProbeData, *, layers: Sequence[int] | None = None,
                    q: float = 0.01, delta: float = 0.05, C: float = 0.1, seed: int = 0,
                    split: tuple[float, float, float] = SPLIT, pooling: str = "mean",
                    progress: bool | None = None, name: str | None = None) -> Any:
    """Fit and calibrate a `SourceProbe` on ``encoder`` (see the module docstring). ``name``:
    how the gate should load the source model again (an alias or folder; default its id).
    ``pooling``: how each layer's token states become one feature (``mean``, or ``last``: the
    last real token, which in a decoder has read the whole prompt)."""
    from xsteer.data import data_record
    from xsteer.steer.conformal import min_calibration_size
    from xsteer.steer.probe import SourceProbe, stack_layers
    from xsteer.steer.source_gate import source_identity

    if not data.unsafe:
        raise EmptyDataError("a source probe needs unsafe prompts")
    layers = tuple(layers) if layers else default_probe_layers(encoder.num_layers)
    layers = tuple(encoder.resolve_site(k, None)[0] for k in layers)

    def feats(texts: Sequence[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, encoder.dim * len(layers))
        by = encoder.encode_layers(list(texts), list(layers), pooling, progress=progress)
        return stack_layers(by, layers)

    # encode whole lists (cache-friendly: a refit with another seed reads them back), then slice
    U = feats([t for _, t in data.unsafe])
    N = feats(data.negatives)
    B = {style: feats(texts) for style, texts in data.benign.items()}
    u_fit, _, u_test = three_way(len(data.unsafe), seed + 1, (split[0] + split[1], 0.0, split[2]))
    parts: dict[str, tuple[list[int], list[int], list[int]]] = {
        style: three_way(len(texts), seed + 2 + k, split)
        for k, (style, texts) in enumerate(data.benign.items())}
    n_calib = sum(len(p[1]) for p in parts.values())
    need = min_calibration_size(q, delta)
    if n_calib < need:
        raise EmptyDataError(f"a conformal threshold at q={q}, delta={delta} needs at least "
                             f"{need} benign calibration texts; the {split[1]:.0%} calibration "
                             f"share of the benign texts holds {n_calib}")

    def pick(kind: int) -> tuple[torch.Tensor, list[str]]:
        rows = [B[s][parts[s][kind]] for s in parts]
        texts = [data.benign[s][i] for s in parts for i in parts[s][kind]]
        return torch.cat(rows), texts

    Bfit, bfit_texts = pick(0)
    Bcal, bcal_texts = pick(1)
    unsafe_fit = [data.unsafe[i] for i in u_fit]
    X = torch.cat([U[u_fit], N, Bfit])
    neg = list(data.negatives) + bfit_texts
    y = [True] * len(u_fit) + [False] * len(neg)
    cats = [c for c, _ in unsafe_fit] + ["global"] * len(neg)
    records = [data_record("probe unsafe (fit)", [t for _, t in unsafe_fit], side="source",
                           unsafe=True),
               data_record("probe negatives (fit)", neg, side="source", unsafe=False)]
    probe = SourceProbe(C=C, model_id=encoder.model_id, layers=layers,
                        pooling=pooling).fit(X, y, cats, records)
    probe.calibrate(Bcal, q=q, delta=delta,
                    data=data_record("probe benign (calibration)", bcal_texts, side="source",
                                     unsafe=False))
    probe.source = source_identity(encoder, layers, pooling, name=name)
    calib = bcal_texts
    # held-out rates: per benign style, and per category of the held-out unsafe prompts
    tau = probe.threshold_
    assert tau is not None
    heldout: dict[str, Any] = {"false_triggers": {}, "recall": {}}
    for style, (_, _, test) in parts.items():
        fired = int((probe.scores(B[style][test]) > tau).sum()) if test else 0
        heldout["false_triggers"][style] = rate(fired, len(test))
    test_unsafe = [data.unsafe[i] for i in u_test]
    if test_unsafe:
        hit = (probe.scores(U[u_test]) > tau).tolist()
        for cat in sorted({c for c, _ in test_unsafe}):
            ks = [h for (c, _), h in zip(test_unsafe, hit, strict=True) if c == cat]
            heldout["recall"][cat] = rate(sum(ks), len(ks))
        heldout["recall"]["all"] = rate(sum(hit), len(hit))
    probe.meta = {"files": dict(data.files), "seed": seed, "split": list(split),
                  "n": {"unsafe_fit": len(unsafe_fit), "unsafe_test": len(test_unsafe),
                        "negatives_fit": len(neg), "calibration": len(calib),
                        "benign_by_style": {s: len(t) for s, t in data.benign.items()}},
                  "heldout": heldout}
    return probe


def summary_line(probe: Any) -> str:
    """One line for the CLI: threshold, guarantee and held-out rates."""
    h = probe.meta.get("heldout", {})
    ftr = ", ".join(f"{s} {_pct(r)}" for s, r in h.get("false_triggers", {}).items())
    rec = h.get("recall", {}).get("all")
    return (f"threshold {probe.threshold_:.4g} (false triggers <= {probe.calibration_['q']} with "
            f"probability {1 - probe.calibration_['delta']:.2f}); held-out recall "
            f"{_pct(rec) if rec else 'n/a'}; held-out false triggers: {ftr}")


def _pct(r: Mapping[str, Any] | None) -> str:
    if not r or r.get("rate") is None:
        return "n/a"
    return f"{100 * r['rate']:.1f}% ({r['k']}/{r['n']})"


def check_layers(text: str | None) -> tuple[int, ...] | None:
    """``"6,9,12"`` → ``(6, 9, 12)``; None stays None."""
    if text is None or not text.strip():
        return None
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise XSteerError(f"--layers must be comma-separated integers, got {text!r}") from exc
    if not out:
        raise XSteerError("--layers names no layer")
    return out
