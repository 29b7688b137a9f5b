"""Which data touched an artifact, and the check that keeps target-side unsafe data out.

xsteer's invariant: the target side never sees unsafe data in estimate/align/transport/calibrate.
Every artifact carries a list of `DataRecord`s; benign-only steps call `require_benign(...)`.

>>> rec = DataRecord.from_texts("pairs", ["a nude figure"], side="source", unsafe=True)
>>> Provenance([rec]).saw_unsafe("source"), Provenance([rec]).saw_unsafe("target")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from xsteer.errors import ArtifactError, UnsafeDataError
from xsteer.io import hash_texts

Side = Literal["source", "target"]
SIDES: tuple[str, ...] = ("source", "target")


@dataclass(frozen=True)
class DataRecord:
    """One data set that touched an artifact: its name, side, whether it held unsafe text, hash."""

    name: str
    side: Side
    unsafe: bool
    n: int
    sha256: str
    flagged: int = 0  # texts the unsafe screen flagged but the user allowed (--allow-flagged)

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ArtifactError(f"data record side must be one of {SIDES}, got {self.side!r}")

    @classmethod
    def from_texts(cls, name: str, texts: Sequence[str], *, side: Side, unsafe: bool,
                   flagged: int = 0) -> DataRecord:
        return cls(name=name, side=side, unsafe=unsafe, n=len(texts), sha256=hash_texts(texts),
                   flagged=flagged)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "side": self.side, "unsafe": self.unsafe,
                             "n": self.n, "sha256": self.sha256}
        if self.flagged:  # only when some were allowed, so older artifacts read the same
            d["flagged"] = self.flagged
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataRecord:
        try:
            return cls(name=str(d["name"]), side=d["side"], unsafe=bool(d["unsafe"]),
                       n=int(d["n"]), sha256=str(d["sha256"]), flagged=int(d.get("flagged", 0)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"corrupt data record {d!r}: {exc}") from exc


@dataclass
class Provenance:
    """The data records of an artifact (a list, merged when artifacts combine)."""

    data: list[DataRecord] = field(default_factory=list)

    def saw_unsafe(self, side: Side) -> bool:
        return any(r.unsafe and r.side == side for r in self.data)

    def merged(self, *others: Provenance | Iterable[DataRecord]) -> Provenance:
        out = list(self.data)
        for o in others:
            recs = o.data if isinstance(o, Provenance) else list(o)
            for r in recs:
                if r not in out:
                    out.append(r)
        return Provenance(out)

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.data]

    @classmethod
    def from_list(cls, items: Iterable[dict[str, Any]] | None) -> Provenance:
        return cls([DataRecord.from_dict(d) for d in (items or [])])

    def summary(self) -> dict[str, bool]:
        return {side: self.saw_unsafe(side) for side in SIDES}  # type: ignore[arg-type]


def require_benign(step: str, *records: DataRecord | Provenance, side: Side = "target") -> None:
    """Raise `UnsafeDataError` if any record is unsafe data on ``side``.

    Called by alignment fitting, transport and calibration, which must only see benign target data.
    """
    for r in records:
        recs = r.data if isinstance(r, Provenance) else [r]
        for rec in recs:
            if rec.side == side and rec.unsafe:
                raise UnsafeDataError(
                    f"{step} must only see benign {side}-side data, but data set '{rec.name}' "
                    f"({rec.n} texts, sha256 {rec.sha256[:12]}) is marked unsafe on the {side} side"
                )
