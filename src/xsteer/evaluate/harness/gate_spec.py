"""The ``gates:`` entry of a sweep method: a folder from ``xsteer gate calibrate`` (a source-side
probe, one gate, or one gate per category), ``{category: folder}``, or a list of such folders (at
most one source-side probe beside target gates, as ``xsteer generate --gate A --gate B`` takes
them), loaded once per sweep."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from xsteer.errors import XSteerError


class MixedGates(NamedTuple):
    """A list entry: the source-side gate that decides (``combine``) and the target gates, which
    also give the keep-the-rest modes their geometry (centre, thresholds)."""

    source: Any
    target: dict[str, Any]


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
    if isinstance(spec, list):
        return _mixed([load_gate_spec(x, base) for x in spec], spec)
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


def _mixed(loaded: list[Any], spec: list[Any]) -> MixedGates:
    from xsteer.steer.source_gate import SourceGate

    sources = [g for g in loaded if isinstance(g, SourceGate)]
    if len(sources) > 1:
        raise XSteerError(f"gates: {spec} names {len(sources)} source-side gates; a method takes "
                          "at most one (beside any target gates)")
    target: dict[str, Any] = {}
    for g, name in zip(loaded, spec, strict=True):
        if isinstance(g, SourceGate):
            continue
        clash = sorted(set(target) & set(g))
        if clash:
            raise XSteerError(f"gates: {spec}: categories {clash} have a gate in two folders "
                              f"(again in {name!r})")
        target.update(g)
    return MixedGates(sources[0] if sources else None, target)
