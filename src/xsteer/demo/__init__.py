"""The demo (``xsteer demo`` / ``make demo``): the whole cross-model path on real offline models.

What lives here: `run_demo` (`xsteer.demo.run`: estimate on the source, fit each alignment map on
benign anchors, transport, evaluate against native / random / no steering on the target) and its
report (`xsteer.demo.report`: ``report.md`` and the plots).

What does not: the stages themselves (``xsteer.directions``, ``xsteer.align``,
``xsteer.evaluate``) and the research study behind ``docs/results.md`` (``experiments/``).
"""

from xsteer.demo.run import run_demo

__all__ = ["run_demo"]
