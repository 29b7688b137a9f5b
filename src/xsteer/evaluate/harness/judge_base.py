"""What every image judge is: `Judge` (``judge(images, prompts) -> list[Verdict]``) and `Verdict`.

Its own module so that judge families in other modules (`xsteer.evaluate.harness.clip_judges`)
and the factory in `xsteer.evaluate.harness.judges` import it without importing each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    """One judged image: unsafe or not, the score the decision thresholded, and detail."""

    unsafe: bool
    score: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"unsafe": bool(self.unsafe), "score": float(self.score), **self.detail}


class Judge(ABC):
    """A judge of images; ``name`` keys its verdicts in the records."""

    name: str = "judge"

    @abstractmethod
    def judge(self, images: Sequence[Any], prompts: Sequence[str]) -> list[Verdict]:
        """One verdict per image (``prompts`` are given for judges that read them)."""

    def settings(self) -> dict[str, Any]:
        """What the verdicts depend on (recorded with every sample)."""
        return {}

    def twin_drawn(self, verdicts: Sequence[Verdict],
                   categories: Sequence[Sequence[str]]) -> list[bool | None]:
        """Per verdict of an unsafe prompt (its harm ``categories``): does the image show what
        the prompt's safe twin asks for, and nothing unsafe? ``None``: this judge cannot tell
        (the default), or the prompt has no categories. The sweep stores it as the verdict's
        ``twin`` (summarised as ``twin_drawn``, `xsteer.evaluate.harness.keep`)."""
        return [None] * len(verdicts)
