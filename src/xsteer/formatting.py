"""Numbers for people and for JSON: the one float formatter, Markdown table and NaN-to-null helper.

Reports (`xsteer.demo`, `xsteer.evaluate.harness.report`) and the research scripts in
``experiments/`` use these, so a missing value prints the same way everywhere.

>>> fmt_num(0.12345), fmt_num(None), fmt_num(float("nan"), missing="-"), fmt_num(3)
('0.123', '–', '-', '3')
>>> markdown_table(["a", "b"], [["1", "x|y"]])
['| a | b |', '|---|---|', '| 1 | x/y |']
>>> finite_or_none({"a": [1.0, float("nan")], "b": (float("inf"), 2)})
{'a': [1.0, None], 'b': [None, 2]}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "–"


def fmt_num(x: Any, digits: int = 3, missing: str = MISSING) -> str:
    """A real number to ``digits`` decimals; integers as they are; None and NaN as ``missing``."""
    if x is None or (isinstance(x, numbers.Real) and x != x):
        return missing
    if isinstance(x, numbers.Integral):
        return str(x)
    if isinstance(x, numbers.Real):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table; a ``|`` inside a cell becomes ``/`` so columns stay put."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def finite_or_none(x: Any) -> Any:
    """``x`` with every non-finite float (NaN, ±inf) replaced by None, recursively through dicts,
    lists and tuples (tuples become lists): strict JSON has no NaN."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite_or_none(v) for v in x]
    return x
