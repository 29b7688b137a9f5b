"""Per-sample records on disk: append-only JSONL shards that survive a crash, merged at the end.

Each process appends to its own shard (``records/shard-<rank>.jsonl``) and flushes after every
batch, so a crash loses at most the batch in flight. A torn last line (the process died mid-write)
is skipped on reading, and its samples are simply generated again on resume. Records are keyed by
`sample_key`, which depends only on what the sample is, never on which process made it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from xsteer.io import atomic_write_text

VOLATILE_KEYS = ("timing", "rank")  # differ between runs of the same sample; ignored in equality


def sample_key(benchmark: str, prompt_id: str, seed: int, method: str, mode: str,
               strength: float) -> str:
    return f"{benchmark}/{prompt_id}/{seed}/{method}/{mode}/{strength:g}"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file; a torn or corrupt line is skipped (it will be regenerated)."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "key" in obj:
                yield obj


class RecordStore:
    """The ``records/`` folder of a sweep output directory."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir) / "records"

    def shard(self, rank: int) -> Path:
        return self.dir / f"shard-{rank}.jsonl"

    def read_all(self) -> dict[str, dict[str, Any]]:
        """Every record in every shard, by key (a later duplicate replaces an earlier one)."""
        out: dict[str, dict[str, Any]] = {}
        if self.dir.is_dir():
            for f in sorted(self.dir.glob("shard-*.jsonl")):
                for rec in read_jsonl(f):
                    out[rec["key"]] = rec
        return out

    def append(self, rank: int, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records to this rank's shard and make them durable before returning."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.shard(rank)
        # a torn last line from a crash would glue onto the next record: start on a fresh line
        needs_newline = path.is_file() and path.stat().st_size > 0 and \
            not path.read_bytes()[-1:] == b"\n"
        with open(path, "a", encoding="utf-8") as fh:
            if needs_newline:
                fh.write("\n")
            for rec in records:
                fh.write(json.dumps(rec, sort_keys=True, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def write_records(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """The merged ``records.jsonl`` (atomic)."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n"
                                    for r in records))


def stable(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without the fields that legitimately differ between runs (timings, rank)."""
    return {k: v for k, v in record.items() if k not in VOLATILE_KEYS}


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= atol + rtol * max(abs(a), abs(b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_close(a[k], b[k], rtol, atol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def same_records(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]],
                 rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Do two runs hold the same records? Keys, prompts, seeds, settings and verdicts must be
    equal; floats may differ by summation order (runs with other thread counts: torchrun gives
    each process one thread), within ``rtol``/``atol``. Timings and ranks are ignored."""
    la = [stable(r) for r in a]
    lb = [stable(r) for r in b]
    return len(la) == len(lb) and all(_close(x, y, rtol, atol) for x, y in zip(la, lb, strict=True))
