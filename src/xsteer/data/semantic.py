"""The semantic half of the unsafe screen: does a text read, to the target encoder, like one of
the shipped unsafe prompts?

A keyword list misses a paraphrase ("a woman wearing only her birthday suit"). Where the target
encoder is at hand (alignment anchors, gate and magnitude calibration read the texts through it
anyway) `SemanticScreen` compares each text with the shipped pairs' unsafe prompts and with a
seeded sample of the shipped benign anchors, by the encoder's own cosine on features centred by
the benign mean: the score is the mean cosine to the ``k`` nearest unsafe prompts minus the mean
cosine to the ``k`` nearest benign anchors (a text near benign text scores low even when some
unsafe prompt shares its scene). A text is flagged when it scores above every anchor of the
sample (each scored against the others), so the sample itself has no false alarm. The screen
reads the unsafe prompts only to compare; nothing is fitted on them, and no artifact value
depends on them. ``experiments/screen_study.py`` measures its recall and false alarms.

>>> import torch
>>> def embed(texts):  # a toy encoder: unsafe words point one way
...     return torch.tensor([[1.0 + 5 * ("gore" in t or "blood" in t), len(t) % 3 + 1.0]
...                          for t in texts])
>>> s = SemanticScreen.fit(embed, benign=["a cat", "a dog", "a mug"],
...                        unsafe=["gore everywhere", "blood on walls"], k=1)
>>> [i for i, _, _ in s.flags(embed(["a cow", "gore in the hall"]))]
[1]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from xsteer.errors import EmptyDataError

Embed = Callable[[Sequence[str]], torch.Tensor]
N_BENIGN = 1000  # shipped anchors the threshold is set on (a seeded sample, to bound the cost)
K = 5  # neighbours on each side


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass
class SemanticScreen:
    """Reference unsafe prompts as centred unit vectors, and the benign-set threshold."""

    center: torch.Tensor
    unsafe: torch.Tensor
    benign: torch.Tensor
    unsafe_texts: list[str]
    threshold: float
    k: int = K

    @classmethod
    def fit(cls, embed: Embed, *, benign: Sequence[str] | None = None,
            unsafe: Sequence[str] | None = None, n_benign: int = N_BENIGN, k: int = K,
            seed: int = 0) -> SemanticScreen:
        """Read ``unsafe`` (default: the shipped pairs' unsafe prompts) and ``benign`` (default:
        a seeded sample of ``n_benign`` shipped anchors) with ``embed``; the threshold is the
        highest score of a benign text against the others."""
        from xsteer.data.loaders import load_benign, load_pairs

        if unsafe is None:
            unsafe = [p.unsafe for p in load_pairs()]
        if benign is None:
            pool = load_benign(kind="anchors")
            benign = random.Random(seed).sample(pool, min(n_benign, len(pool)))
        if len(unsafe) < k or len(benign) <= k:
            raise EmptyDataError(f"the semantic screen needs more than {k} unsafe and benign "
                                 "reference texts")
        B = torch.as_tensor(embed(list(benign))).detach().float().cpu()
        U = torch.as_tensor(embed(list(unsafe))).detach().float().cpu()
        center = B.mean(0)
        screen = cls(center=center, unsafe=_unit(U - center), benign=_unit(B - center),
                     unsafe_texts=list(unsafe), threshold=0.0, k=k)
        screen.threshold = float(screen.scores(B, leave_one_out=True)[0].max())
        return screen

    def scores(self, features: torch.Tensor,
               leave_one_out: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, index of the nearest unsafe prompt) per row of ``features`` (n, dim);
        ``leave_one_out``: the rows are the benign references themselves."""
        F = _unit(torch.as_tensor(features).detach().float().cpu() - self.center)
        to_unsafe = F @ self.unsafe.T
        to_benign = F @ self.benign.T
        if leave_one_out:
            to_benign.fill_diagonal_(-2.0)
        score = (to_unsafe.topk(self.k, dim=1).values.mean(1)
                 - to_benign.topk(self.k, dim=1).values.mean(1))
        return score, to_unsafe.argmax(dim=1)

    def flags(self, features: torch.Tensor) -> list[tuple[int, float, str]]:
        """``(row, score, nearest unsafe prompt)`` for each row above the threshold."""
        best, idx = self.scores(features)
        return [(i, float(best[i]), self.unsafe_texts[int(idx[i])])
                for i in range(len(best)) if float(best[i]) > self.threshold]
