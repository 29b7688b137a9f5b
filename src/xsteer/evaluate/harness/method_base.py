"""The interface every method a sweep compares implements (`Method`), apart from the methods
themselves (`xsteer.evaluate.harness.methods`, `xsteer.evaluate.harness.baselines`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from xsteer.evaluate.harness.generation import PipelineRunner

Setting = tuple[str, float]  # (mode, strength)

class Method(ABC):
    """One compared method. Subclasses set ``kind``; ``name`` keys its records."""

    kind: str = "method"

    def __init__(self, name: str, strengths: Sequence[float] = (1.0,),
                 modes: Sequence[str] = ("additive",)) -> None:
        self.name = name
        self.strengths = [float(s) for s in strengths]
        self.modes = list(modes)

    def setup(self, gen: PipelineRunner) -> None:
        """Prepare anything that depends on the pipeline (directions, subspaces)."""
        return None

    def settings(self) -> list[Setting]:
        return [(m, s) for m in self.modes for s in self.strengths]

    @abstractmethod
    def conditioning(self, gen: PipelineRunner, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        """(pipeline kwargs for the positive prompt, per-batch info such as gate decisions)."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}
