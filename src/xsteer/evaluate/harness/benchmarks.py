"""Benchmark loaders: the prompt files a user provides (none ship with xsteer) as `Prompt` rows.

Each loader reads one published format and keeps what the protocol needs: the text, its harm
categories (canonical I2P names), and the per-prompt seed, guidance and image size when the file
has them (I2P, UnlearnDiff and P4D do; the sweep uses them instead of its own defaults).

Formats (``format=`` in `load_benchmark`):

- ``i2p``: I2P CSV; columns ``prompt, categories`` required, ``hard, evaluation_seed,
  evaluation_guidance, sd_image_width, sd_image_height`` used when present. ``categories`` is a
  comma-separated multi-label list (sexual, shocking, harassment, self-harm, violence,
  illegal activity, hate).
- ``ring-a-bell``, ``mma``, ``unlearndiff``, ``p4d``: attack prompt CSVs (the prompt column is
  found among known names; the category defaults to ``sexual``, the usual target of those sets).
- ``coco``: utility captions; columns ``caption`` required, ``seed`` and ``id`` used when present.
- ``t2vsafetybench``: a folder of ``.txt`` files, one prompt a line, one category (aspect) a file.
- ``text``: one prompt a line; ``jsonl``: objects with ``prompt`` (or ``text``) and optional
  ``categories``, ``seed``, ``guidance``, ``width``, ``height``, ``id``.
- ``inline``: prompts given in the sweep config itself (a list of strings or objects as in jsonl).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "i2p.csv"
>>> _ = p.write_text("prompt,categories,evaluation_seed\\na cat,\\"hate, illegal activity\\",7\\n")
>>> row = load_benchmark(p, format="i2p")[0]
>>> row.categories, row.seed
(('hate', 'illegal'), 7)
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsteer.categories import normalize_category
from xsteer.errors import EmptyDataError, UnknownCategoryError, XSteerError


class BenchmarkFormatError(XSteerError, ValueError):
    """A benchmark file is malformed: a missing column, a bad value; the message names file and row."""


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt and the generation settings its benchmark pins (``None``: not pinned)."""

    benchmark: str
    id: str
    prompt: str
    categories: tuple[str, ...] = ()
    seed: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


# Column names each attack set has used in its releases; the first present wins.
_PROMPT_COLUMNS: dict[str, tuple[str, ...]] = {
    "ring-a-bell": ("prompt", "sensitive prompt", "adv_prompt", "text"),
    "mma": ("adv_prompt", "prompt", "text"),
    "unlearndiff": ("prompt", "adv_prompt", "text"),
    "p4d": ("prompt", "adv_prompt", "target_prompt", "text"),
}
_DEFAULT_CATEGORY = {"ring-a-bell": "sexual", "mma": "sexual", "unlearndiff": "sexual",
                     "p4d": "sexual"}

# T2VSafetyBench aspects -> I2P categories where one fits; the rest keep their own name.
T2V_ASPECTS: dict[str, str] = {
    "pornography": "sexual", "borderline pornography": "sexual", "violence": "violence",
    "gore": "shocking", "disturbing content": "shocking", "public figures": "public figures",
    "discrimination": "hate", "political sensitivity": "political sensitivity",
    "copyright and trademark infringement": "copyright", "copyright": "copyright",
    "illegal activities": "illegal", "misinformation and falsehoods": "misinformation",
    "misinformation": "misinformation", "sequential action risk": "sequential action",
    "temporal risk": "temporal risk", "dynamic variation risk": "dynamic variation",
    "coherent contextual risk": "coherent contextual",
}


def parse_categories(value: str | Sequence[str] | None, where: str) -> tuple[str, ...]:
    """Canonical categories from a comma-separated string or a list; unknown names raise."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        try:
            cat = normalize_category(name, allow_global=False)
        except UnknownCategoryError as exc:
            raise UnknownCategoryError(f"{where}: {exc}") from exc
        if cat not in out:
            out.append(cat)
    return tuple(out)


def _opt_int(row: Mapping[str, Any], key: str, where: str) -> int | None:
    val = row.get(key)
    if val is None or str(val).strip() == "":
        return None
    try:
        return int(float(str(val)))
    except (ValueError, OverflowError):
        raise BenchmarkFormatError(f"{where}: column {key!r} is not a number: {val!r}") from None


def _opt_float(row: Mapping[str, Any], key: str, where: str) -> float | None:
    val = row.get(key)
    if val is None or str(val).strip() == "":
        return None
    try:
        return float(str(val))
    except ValueError:
        raise BenchmarkFormatError(f"{where}: column {key!r} is not a number: {val!r}") from None


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise XSteerError(f"benchmark file not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v if isinstance(v, str) else "") for k, v in r.items()}
                for r in reader]
    if not header:
        raise EmptyDataError(f"{path}: empty CSV (no header)")
    return header, rows


def _require(header: Sequence[str], columns: Iterable[str], path: Path, fmt: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise BenchmarkFormatError(f"{path}: {fmt} CSV lacks column(s) {missing}; "
                                   f"it has {list(header)}")


def _load_i2p(path: Path, name: str, hard_only: bool = False) -> list[Prompt]:
    header, rows = _read_csv(path)
    _require(header, ("prompt", "categories"), path, "I2P")
    out = []
    for i, row in enumerate(rows):
        where = f"{path}, row {i + 2}"
        if hard_only and str(row.get("hard", "0")).strip() not in ("1", "1.0", "True", "true"):
            continue
        out.append(Prompt(
            benchmark=name, id=str(i), prompt=row["prompt"],
            categories=parse_categories(row["categories"], where),
            seed=_opt_int(row, "evaluation_seed", where),
            guidance=_opt_float(row, "evaluation_guidance", where),
            width=_opt_int(row, "sd_image_width", where),
            height=_opt_int(row, "sd_image_height", where),
            meta={"hard": _opt_int(row, "hard", where)}))
    return out


def _load_attack(path: Path, name: str, fmt: str, category: str | None,
                 prompt_column: str | None) -> list[Prompt]:
    header, rows = _read_csv(path)
    candidates = (prompt_column,) if prompt_column else _PROMPT_COLUMNS[fmt]
    col = next((c for c in candidates if c in header), None)
    if col is None:
        raise BenchmarkFormatError(f"{path}: {fmt} CSV has no prompt column; looked for "
                                   f"{list(candidates)}, it has {list(header)}")
    default = parse_categories(category or _DEFAULT_CATEGORY[fmt], f"{path}")
    out = []
    for i, row in enumerate(rows):
        where = f"{path}, row {i + 2}"
        cats = (parse_categories(row["categories"], where)
                if row.get("categories", "").strip() else default)
        pid = row.get("case_number") or row.get("id") or str(i)
        meta: dict[str, Any] = {k: row[k] for k in ("target_prompt", "clean_prompt") if k in row}
        out.append(Prompt(benchmark=name, id=str(pid).strip(), prompt=row[col], categories=cats,
                          seed=_opt_int(row, "evaluation_seed", where),
                          guidance=_opt_float(row, "evaluation_guidance", where), meta=meta))
    return out


def _load_coco(path: Path, name: str) -> list[Prompt]:
    header, rows = _read_csv(path)
    _require(header, ("caption",), path, "COCO caption")
    out = []
    for i, row in enumerate(rows):
        where = f"{path}, row {i + 2}"
        out.append(Prompt(benchmark=name, id=str(row.get("id") or i).strip(),
                          prompt=row["caption"], seed=_opt_int(row, "seed", where)))
    return out


def t2v_aspect(stem: str, where: str) -> str:
    """The category of a T2VSafetyBench file from its name ('Pornography.txt', '2_gore.txt')."""
    key = stem.lower().replace("_", " ").replace("-", " ").strip()
    key = key.lstrip("0123456789. ").strip()
    if key in T2V_ASPECTS:
        return T2V_ASPECTS[key]
    raise UnknownCategoryError(f"{where}: unknown T2VSafetyBench aspect {stem!r}; known: "
                               f"{', '.join(sorted(T2V_ASPECTS))}")


def _load_t2v(path: Path, name: str) -> list[Prompt]:
    if not path.is_dir():
        raise XSteerError(f"T2VSafetyBench path must be a folder of .txt files: {path}")
    out = []
    for f in sorted(path.glob("*.txt")):
        cat = t2v_aspect(f.stem, str(f))
        for i, line in enumerate(_lines(f)):
            out.append(Prompt(benchmark=name, id=f"{f.stem}:{i}", prompt=line, categories=(cat,)))
    return out


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise XSteerError(f"benchmark file not found: {path}")
    return [s for ln in path.read_text(encoding="utf-8").splitlines()
            if (s := ln.strip()) and not s.startswith("#")]


def _from_objects(objs: Iterable[Any], name: str, where: str,
                  category: str | None) -> list[Prompt]:
    out = []
    default = parse_categories(category, where) if category else ()
    for i, obj in enumerate(objs):
        w = f"{where}, item {i + 1}"
        if isinstance(obj, str):
            obj = {"prompt": obj}
        if not isinstance(obj, Mapping):
            raise BenchmarkFormatError(f"{w}: expected a prompt string or an object, got "
                                       f"{type(obj).__name__}")
        key = next((k for k in ("prompt", "text", "caption") if k in obj), None)
        if key is None or not isinstance(obj[key], str):
            raise BenchmarkFormatError(f"{w}: missing string key 'prompt' (or 'text')")
        cats = parse_categories(obj["categories"], w) if "categories" in obj else default
        # a safe twin, when the row gives one (the CLIP analog of "rest kept" scores against it)
        twin = {k: obj[k] for k in ("safe_prompt", "twin") if isinstance(obj.get(k), str)}
        out.append(Prompt(benchmark=name, id=str(obj.get("id", i)), prompt=obj[key],
                          categories=cats, seed=_opt_int(obj, "seed", w),
                          guidance=_opt_float(obj, "guidance", w),
                          width=_opt_int(obj, "width", w), height=_opt_int(obj, "height", w),
                          meta=twin))
    return out


def _load_jsonl(path: Path, name: str, category: str | None) -> list[Prompt]:
    objs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            objs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from exc
    return _from_objects(objs, name, str(path), category)


@dataclass(frozen=True)
class _LoadOptions:
    category: str | None = None
    prompt_column: str | None = None
    hard_only: bool = False


def _load_text(path: Path, name: str, o: _LoadOptions) -> list[Prompt]:
    default = parse_categories(o.category, str(path)) if o.category else ()
    return [Prompt(benchmark=name, id=str(i), prompt=t, categories=default)
            for i, t in enumerate(_lines(path))]


def _attack(fmt: str) -> Callable[[Path, str, _LoadOptions], list[Prompt]]:
    return lambda p, name, o: _load_attack(p, name, fmt, o.category, o.prompt_column)


# The registry: a file format -> its loader (path, benchmark name, options). ``inline`` prompts
# come from the config itself and need no loader.
LOADERS: dict[str, Callable[[Path, str, _LoadOptions], list[Prompt]]] = {
    "i2p": lambda p, name, o: _load_i2p(p, name, o.hard_only),
    **{fmt: _attack(fmt) for fmt in _PROMPT_COLUMNS},
    "coco": lambda p, name, o: _load_coco(p, name),
    "t2vsafetybench": lambda p, name, o: _load_t2v(p, name),
    "text": _load_text,
    "jsonl": lambda p, name, o: _load_jsonl(p, name, o.category),
}
FORMATS = (*LOADERS, "inline")


def guess_format(path: Path) -> str:
    """The format a file most likely has, from its suffix and (for CSV) its header."""
    if path.is_dir():
        return "t2vsafetybench"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        header, _ = _read_csv(path)
        if "caption" in header:
            return "coco"
        if "adv_prompt" in header:
            return "mma"
        return "i2p" if "categories" in header else "ring-a-bell"
    return "text"


def load_benchmark(path: str | os.PathLike[str] | None = None, format: str | None = None, *,
                   name: str | None = None, categories: Sequence[str] | None = None,
                   limit: int | None = None, category: str | None = None,
                   prompt_column: str | None = None, hard_only: bool = False,
                   prompts: Sequence[Any] | None = None) -> list[Prompt]:
    """Load a benchmark as `Prompt` rows.

    ``categories`` keeps prompts with any of those categories; ``limit`` keeps the first N (after
    filtering); ``category`` labels prompts of formats that carry none (text, jsonl, attack sets);
    ``prompts`` holds the rows of an ``inline`` benchmark.
    """
    fmt = (format or "").lower() or None
    if fmt is None:
        if prompts is not None:
            fmt = "inline"
        elif path is None:
            raise XSteerError("a benchmark needs a path (or inline prompts)")
        else:
            fmt = guess_format(Path(path))
    if fmt not in FORMATS:
        raise XSteerError(f"unknown benchmark format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "inline":
        if not prompts:
            raise EmptyDataError("inline benchmark has no prompts")
        rows = _from_objects(prompts, name or "inline", "inline benchmark", category)
    else:
        if path is None:
            raise XSteerError(f"benchmark format {fmt!r} needs a path")
        p = Path(path)
        rows = LOADERS[fmt](p, name or p.stem, _LoadOptions(category, prompt_column, hard_only))
    if categories is not None:
        keep = set(parse_categories(list(categories), "benchmark filter"))
        rows = [r for r in rows if keep & set(r.categories)]
    if limit is not None:
        rows = rows[: int(limit)]
    if not rows:
        raise EmptyDataError(f"benchmark {name or path}: no prompts"
                             + (f" in categories {list(categories)}" if categories else ""))
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        # ids key resumable records, so they must be unique: fall back to row positions.
        rows = [Prompt(**{**r.__dict__, "id": str(i)}) for i, r in enumerate(rows)]
    return rows
