"""The ``gates:`` entry of a sweep method: a folder from ``xsteer gate calibrate`` (a source-side
probe, one gate, or one gate per category) or ``{category: folder}``, loaded once per sweep."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def resolver(base: Path | Callable[[str], Path]) -> Callable[[str], Path]:
    """A config path resolver: ``base`` itself, or paths joined to the folder ``base``."""
    if callable(base):
        return base
    return lambda p: Path(base) / Path(p).expanduser()


def load_gate_spec(spec: Any, base: Path | Callable[[str], Path]) -> Any:
    """``gates:`` of a method: one folder from ``xsteer gate calibrate`` (a source-side probe, a
    gate, or one gate per category) or ``{category: folder}``; ``base`` resolves the paths."""
    from xsteer.steer import Gate, load_gates
    from xsteer.steer.source_gate import is_source_gate_dir

    resolve = resolver(base)
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return {k: Gate.from_pretrained(str(resolve(v))) for k, v in spec.items()}
    if is_source_gate_dir(resolve(spec)):
        return _source_gate(str(resolve(spec).resolve()))
    return load_gates(resolve(spec))


@functools.lru_cache(maxsize=4)
def _source_gate(path: str) -> Any:
    """One loaded source model per probe folder, shared by the methods of a sweep."""
    from xsteer.steer.source_gate import SourceGate

    return SourceGate.from_pretrained(path)
