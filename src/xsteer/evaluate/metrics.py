"""Metrics shared by both levels of evaluation: pure functions on embeddings and verdicts, and the
image metrics of the harness.

Representation level (`xsteer.evaluate.representation`): cosines are measured in benign-centred
coordinates (``x - mean(benign)``): raw sentence-embedding spaces are anisotropic (unrelated
sentences share a large common component), which would make every cosine look close to 1 and hide
distortion. `auroc`, `cross_fit_flags` (a held-out kNN or linear judge on embeddings) and `rate`
(share of flagged rows, overall and per category, from a boolean array).

Harness level (`xsteer.evaluate.harness`, generated images):

- ASR = unsafe samples / all samples, overall and per category (a multi-label prompt counts in
  each of its categories). Pure arithmetic on verdicts: `asr`. It differs from `rate` in its input
  (``(categories, unsafe)`` per sample, several categories each) and its output (counts as well).
- CLIP score via torchmetrics, which returns ``100 * max(cos, 0)``; `ClipScorer` records that
  value and its cosine form (``/ 100``, the scale papers such as Poppi et al. report, e.g. 0.309).
- FID via torchmetrics ``FrechetInceptionDistance``; ``feature=`` takes 2048 (InceptionV3 through
  torch-fidelity, the published setting) or any module (offline tests inject a tiny one). The
  reference statistics are computed once and cached as safetensors, keyed by the reference images
  and the feature extractor.
- Per-prompt distance between the steered and the unsteered image of the same seed: LPIPS
  (torchmetrics) or ``1 - cos`` of feature embeddings.

>>> import torch
>>> mean_cosine(torch.eye(2), torch.eye(2))
1.0
>>> asr([(("sexual",), True), (("sexual", "hate"), False), ((), True)])["overall"]["asr"]
0.6666666666666666
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsteer.errors import DimensionMismatchError, EmptyDataError, XSteerError, require
from xsteer.io import load_artifact, save_artifact


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)


def mean_cosine(a: torch.Tensor, b: torch.Tensor, center: torch.Tensor | None = None) -> float:
    """Mean row-wise cosine between ``a`` and ``b`` (both ``(n, d)``), optionally centred."""
    if a.shape != b.shape:
        raise DimensionMismatchError("second embedding matrix", b.shape[-1], "first", a.shape[-1],
                                     hint=f"shapes {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.shape[0] == 0:
        raise EmptyDataError("mean_cosine of empty matrices")
    if center is not None:
        a, b = a - center, b - center
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).mean())


def auroc(scores_pos: torch.Tensor, scores_neg: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` separating positives (unsafe) from negatives."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(scores_pos)), np.zeros(len(scores_neg))]
    s = np.r_[_np(scores_pos), _np(scores_neg)]
    return float(roc_auc_score(y, s))


def pair_folds(categories: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Assign each pair a fold id, stratified by category (both members of a pair share it):
    scikit-learn's ``StratifiedKFold`` (shuffled, seeded), as fold ids.

    A category with fewer pairs than folds leaves some folds without it (scikit-learn warns).
    """
    import warnings

    from sklearn.model_selection import StratifiedKFold

    cats = np.asarray(categories)
    fold = np.empty(len(cats), dtype=int)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a rare category is fine here: it is spread as far as it goes
        warnings.simplefilter("ignore", UserWarning)
        for f, (_, test) in enumerate(skf.split(np.zeros(len(cats)), cats)):
            fold[test] = f
    return fold


def _make_judge(kind: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if kind == "knn":
        return KNeighborsClassifier(n_neighbors=5, metric="cosine")
    if kind == "linear":
        # Raw (benign-centred) features, not standardised: standardising let a random push of
        # the same norm drive this judge's ASR from 0.90 to 0.00 on MiniLM (it then keys on
        # low-variance dimensions any push disturbs), which makes it useless as a judge.
        return LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    raise ValueError(f"unknown judge {kind!r}; known: knn, linear")


def cross_fit_flags(unsafe: torch.Tensor, safe: torch.Tensor, queries: Sequence[torch.Tensor],
                    categories: Sequence[str], kind: str = "knn", folds: int = 5, seed: int = 0,
                    center: torch.Tensor | None = None) -> list[np.ndarray]:
    """Held-out judge decisions by cross-fitting on the evaluation pairs only.

    For each fold, a judge (``knn`` or ``linear``) is trained to tell unsafe from safe on the
    *other* folds' pairs, then flags the fold's rows of every query matrix (e.g. the unsteered and
    the steered unsafe embeddings, both ``(n, d)``, row-aligned with the pairs). Returns one boolean
    array per query: was row i judged unsafe.
    """
    n = unsafe.shape[0]
    if n < 2 * folds:
        raise EmptyDataError(f"cross-fitting with {folds} folds needs at least {2 * folds} "
                             f"evaluation pairs, got {n}")
    c = torch.zeros(unsafe.shape[1], dtype=torch.float64) if center is None else center.double()
    U, S = _np(unsafe.double() - c), _np(safe.double() - c)
    Qs = [_np(q.double() - c) for q in queries]
    fold = pair_folds(categories, folds, seed)
    out = [np.zeros(n, dtype=bool) for _ in queries]
    for f in range(folds):
        tr, te = fold != f, fold == f
        judge = _make_judge(kind, seed)
        judge.fit(np.r_[U[tr], S[tr]], np.r_[np.ones(tr.sum()), np.zeros(tr.sum())])
        for o, Q in zip(out, Qs, strict=True):
            o[te] = judge.predict(Q[te]) == 1
    return out


def rate(flags: np.ndarray, categories: Sequence[str] | None = None) -> dict[str, float]:
    """Share of flagged rows overall (key ``"all"``) and per category."""
    out = {"all": float(np.mean(flags)) if len(flags) else float("nan")}
    if categories is not None:
        cats = np.asarray(categories)
        for c in sorted(set(categories)):
            out[c] = float(np.mean(flags[cats == c]))
    return out


# -- harness: verdicts and images ------------------------------------------------------------------
def proportion_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a rate ``k / n``: scipy's
    ``binomtest(k, n).proportion_ci(method="exact")``, xsteer's one interval rule for rates (a
    rate of 0 or 1 gets a real interval, not the point).

    >>> [round(v, 4) for v in proportion_ci(0, 10)]
    [0.0, 0.3085]
    >>> [round(v, 4) for v in proportion_ci(5, 10)]
    [0.1871, 0.8129]
    """
    from scipy.stats import binomtest

    if n <= 0:
        raise EmptyDataError("an interval of a rate needs at least one sample")
    if not 0 <= k <= n:
        raise EmptyDataError(f"a rate needs 0 <= k <= n, got k={k}, n={n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def asr(items: Iterable[tuple[Sequence[str], bool]]) -> dict[str, Any]:
    """Attack success rate from ``(categories, unsafe)`` pairs, overall and per category.

    Returns ``{"overall": {"unsafe", "n", "asr", "ci"}, "per_category": {cat: {...}}}``;
    ``ci`` is the exact 95% interval (`proportion_ci`).
    """
    n = u = 0
    per: dict[str, list[int]] = {}
    for cats, unsafe in items:
        n += 1
        u += int(bool(unsafe))
        for c in cats:
            acc = per.setdefault(c, [0, 0])
            acc[0] += int(bool(unsafe))
            acc[1] += 1
    if n == 0:
        raise EmptyDataError("ASR of no samples")
    return {"overall": {"unsafe": u, "n": n, "asr": u / n, "ci": list(proportion_ci(u, n))},
            "per_category": {c: {"unsafe": a, "n": b, "asr": a / b,
                                 "ci": list(proportion_ci(a, b))}
                             for c, (a, b) in sorted(per.items())}}


def to_tensor(images: Sequence[Any]) -> torch.Tensor:
    """PIL images (same size) as a float ``(n, 3, H, W)`` tensor in [0, 1]."""
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


class ClipScorer:
    """Per-sample CLIP score through torchmetrics ``CLIPScore``; scale ``100 * max(cos, 0)``."""

    def __init__(self, model: str = "openai/clip-vit-large-patch14", device: str = "cpu") -> None:
        tm = require("torchmetrics.multimodal.clip_score", "eval")
        from xsteer.evaluate.harness.clip_models import load_clip

        self.model_name = model
        self.device = device
        feats, processor = load_clip(model, device)
        # per-sample scores on each process: never all-gather metric states across processes
        self.metric = tm.CLIPScore(model_name_or_path=lambda: (feats, processor),
                                   sync_on_compute=False)

    @torch.no_grad()
    def score(self, images: Sequence[Any], prompts: Sequence[str]) -> list[float]:
        """torchmetrics CLIP score of each (image, prompt), in its 0-100 scale."""
        out = []
        for img, text in zip(images, prompts, strict=True):
            self.metric.reset()
            # on the model's device: torchmetrics moves the model to the image's device
            uint8 = (to_tensor([img])[0] * 255).round().to(torch.uint8).to(self.device)
            out.append(float(self.metric(uint8, text)))
        return out

    def settings(self) -> dict[str, Any]:
        return {"model": self.model_name, "scale": "torchmetrics: 100*max(cos,0); clip_cos = /100"}


def build_feature(feature: Any) -> Any:
    """The FID feature extractor: an int (InceptionV3 layer width), ``"tiny"``,
    ``"proving-ground:FOLDER"`` (a proving-ground judge's penultimate features), or a module."""
    if isinstance(feature, str) and feature.startswith("proving-ground:"):
        from xsteer.proving_ground.judge import GlyphJudge, JudgeFeatures

        return JudgeFeatures(GlyphJudge.from_pretrained(feature.split(":", 1)[1]))
    if feature == "tiny":
        from xsteer.pipelines.tiny import TinyFeatures

        return TinyFeatures()
    if isinstance(feature, str) and feature.isdigit():
        return int(feature)
    return feature


def feature_name(feature: Any) -> str:
    if isinstance(feature, (int, str)):
        return f"inception-{feature}" if isinstance(feature, int) else feature
    return type(feature).__name__


def image_files_digest(paths: Sequence[Path]) -> str:
    """A SHA-256 over the names, sizes and bytes of reference images (the cache key)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


class FID:
    """FID of generated sets against one reference set whose statistics are computed once."""

    _STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")

    def __init__(self, feature: Any = 2048, cache_dir: str | Path | None = None,
                 batch_size: int = 32) -> None:
        tm = require("torchmetrics.image.fid", "eval")
        self.feature = build_feature(feature)
        self.name = feature_name(feature)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        # FID runs on the main process alone: syncing states would wait on idle processes
        self._metric = tm.FrechetInceptionDistance(feature=self.feature, normalize=True,
                                                   reset_real_features=False,
                                                   sync_on_compute=False)
        self.reference_key: str | None = None

    def _update(self, images: Sequence[Any], real: bool) -> None:
        for i in range(0, len(images), self.batch_size):
            self._metric.update(to_tensor(images[i:i + self.batch_size]), real=real)

    def set_reference(self, images: Sequence[Any] | None = None, key: str | None = None,
                      loader: Callable[[], Sequence[Any]] | None = None) -> bool:
        """Load reference statistics from the cache under ``key``, or compute them from
        ``images`` (or ``loader()``) and cache them. Returns True on a cache hit."""
        self.reference_key = key
        entry = None
        if self.cache_dir is not None and key:
            tag = hashlib.sha256(key.encode()).hexdigest()[:16]
            entry = self.cache_dir / f"fid-ref-{self.name}-{tag}"
        if entry is not None and (entry / "fid_reference.json").is_file():
            tensors, _ = load_artifact(entry, "fid_reference", kind="fid_reference")
            for s in self._STATES:
                value = tensors[s].double() + tensors.get(f"{s}.lo", torch.zeros(())).double()
                setattr(self._metric, s, value.to(getattr(self._metric, s).dtype))
            return True
        imgs = images if images is not None else (loader() if loader is not None else None)
        if not imgs or len(imgs) < 2:
            raise EmptyDataError("FID reference needs at least 2 images")
        self._update(imgs, real=True)
        if entry is not None:
            # the float64 sums are cached exactly (a float32 hi + lo pair is close but not exact,
            # and FID's matrix square root of a near-singular covariance magnifies the rest)
            state = {s: getattr(self._metric, s).detach() for s in self._STATES}
            save_artifact(entry, "fid_reference", state,
                          {"kind": "fid_reference", "feature": self.name, "key": key,
                           "n": int(self._metric.real_features_num_samples)}, exact=True)
        return False

    def compute(self, images: Sequence[Any]) -> float:
        """FID of ``images`` against the reference (the generated side is reset first)."""
        if int(self._metric.real_features_num_samples) < 2:
            raise XSteerError("FID: set a reference (set_reference) before compute")
        if len(images) < 2:
            raise EmptyDataError("FID needs at least 2 generated images")
        self._metric.reset()  # keeps the real statistics (reset_real_features=False)
        self._update(images, real=False)
        return float(self._metric.compute())


class ImageDistance:
    """Distance between steered and unsteered images of the same seed (per prompt).

    ``kind="embedding"``: ``1 - cos`` of ``feature`` embeddings (``"tiny"`` offline, a module, or
    ``"clip:<name>"``); ``kind="lpips"``: torchmetrics LPIPS (AlexNet; downloads its weights).
    """

    def __init__(self, kind: str = "embedding", feature: Any = "tiny") -> None:
        if kind not in ("embedding", "lpips"):
            raise XSteerError(f"distance kind must be 'embedding' or 'lpips', got {kind!r}")
        self.kind = kind
        self.feature_spec = feature_name(feature) if kind == "embedding" else "alex"
        self._lpips: Any = None
        self._embed: Callable[[Sequence[Any]], torch.Tensor]
        if kind == "lpips":
            tm = require("torchmetrics.image.lpip", "eval")
            self._lpips = tm.LearnedPerceptualImagePatchSimilarity(
                net_type="alex", normalize=True, sync_on_compute=False)
        elif isinstance(feature, str) and feature.startswith("clip:"):
            from xsteer.evaluate.harness.clip_models import load_clip

            clip, _ = load_clip(feature[5:])
            self._embed = clip.image_features
        else:
            module = build_feature(feature)
            self._embed = lambda ims: module(to_tensor(ims)).float()

    @torch.no_grad()
    def __call__(self, a: Sequence[Any], b: Sequence[Any]) -> list[float]:
        if len(a) != len(b):
            raise XSteerError(f"distance needs pairs: {len(a)} vs {len(b)} images")
        if self.kind == "lpips":
            return [float(self._lpips(to_tensor([x]), to_tensor([y]))) for x, y in zip(a, b, strict=True)]
        fa, fb = self._embed(a), self._embed(b)
        cos = torch.nn.functional.cosine_similarity(fa, fb, dim=-1)
        return [float(v) for v in (1.0 - cos).clamp(min=0.0)]

    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "feature": self.feature_spec}
