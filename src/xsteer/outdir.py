"""Where a command may write: one rule for every ``--out``, and a lock per output folder.

`claim` decides whether ``--out`` may be written, before anything is loaded or computed:

- a symbolic link is refused (a swap would move the link, not the folder it names);
- an input of the same command is refused (the folder itself, a folder holding it, or one
  inside it): ``gate calibrate --direction D --out D`` would replace what it reads;
- a missing or empty folder is taken (but not one inside an artifact folder);
- a folder holding an output of the same kind is replaced only with ``overwrite=True``
  (``--overwrite``), or taken as it is where the command resumes (a sweep, a training run);
- anything else is refused: another kind of artifact, a pipeline's ``text_encoder``, the
  user's own files, a read-only folder.

Each refusal is one `OutputError` line naming the folder and what it holds. `lock` holds an
advisory lock beside the folder while a command writes it, so a second run on the same folder
fails at once naming the first one's pid; the kernel drops the lock when its process dies, so a
stale lock is simply taken over. `writing` does both; `hold` does both until the command ends.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "notes.txt").write_text("mine")
4
>>> claim(d, "direction")
Traceback (most recent call last):
...
xsteer.errors.OutputError: refusing --out ...: it holds files that are not an xsteer output ('notes.txt'); choose a new --out
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from xsteer.artifact_files import artifact_contents
from xsteer.errors import OutputError

# artifact names that are one kind of output: a direction may replace a direction set
FAMILIES = {"direction_set": "direction"}
TRAIN_RECORD = "proving_ground_training.json"  # beside a proving-ground pipeline's weights


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _is_gate_folder(p: Path) -> bool:
    return p.is_dir() and not p.is_symlink() and artifact_contents(p) == ({"gate": "gate"}, [])


# Folder outputs, recognised by the files their command writes: kind -> (test, description)
FOLDER_KINDS: dict[str, tuple[Callable[[Path, set[str]], bool], str]] = {
    "sweep": (lambda d, n: "config.json" in n and isinstance(_json(d / "config.json"), dict)
              and "digest" in _json(d / "config.json"), "the records of a sweep"),
    "pipeline": (lambda d, n: {"model_index.json", TRAIN_RECORD} <= n,
                 "a proving-ground pipeline"),
    "generator": (lambda d, n: "proving_ground.json" in n and "unet" in n,
                  "a proving-ground UNet generator"),
    "benchmarks": (lambda d, n: {"manifest.json", "unsafe.jsonl", "benign.jsonl"} <= n,
                   "proving-ground benchmark files"),
    "demo": (lambda d, n: {"metrics.json", "report.md"} <= n, "a demo run"),
    "samples": (lambda d, n: bool(n) and all(x.isdigit() and (d / x / "manifest.json").is_file()
                                             for x in n), "samples from `xsteer generate`"),
    "gates": (lambda d, n: bool(n) and all(_is_gate_folder(d / x) for x in n),
              "per-category gates"),
}


def holds(folder: str | os.PathLike[str]) -> tuple[str | None, str]:
    """What an existing folder holds: ``(kind, words)``; kind is None for anything that no
    xsteer command wrote (an empty folder is ``("empty", ...)``)."""
    d = Path(folder)
    names = {p.name for p in d.iterdir()} - {".DS_Store"}
    if not names:
        return "empty", "nothing"
    found, foreign = artifact_contents(d)
    if found and not foreign:
        name, kind = next(iter(sorted(found.items())))
        kind = str(kind or name)
        words = kind.replace("_", " ")
        return FAMILIES.get(kind, kind), f"{'an' if words[0] in 'aeiou' else 'a'} {words} artifact"
    for kind, (test, words) in FOLDER_KINDS.items():
        if test(d, names):
            return kind, words
    if {"model_index.json"} & names or {"config.json", "model.safetensors"} <= names:
        return None, "model weights (a diffusers pipeline or one of its components)"
    shown = ", ".join(repr(n) for n in sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
    return None, f"files that are not an xsteer output ({shown})"


def _read_only(p: Path) -> bool:
    # root passes every os.access check, so look at the permission bits themselves
    return not (p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def claim(out: str | os.PathLike[str], kind: str, *,
          inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
          overwrite: bool = False, resume: bool = False, option: str = "--out") -> Path:
    """Check that a command writing ``kind`` may write ``out``; return it, or raise
    `OutputError` naming the folder and what it holds (see the module doc for the rule).

    ``inputs`` maps the command's input options to their paths (``{"--direction": D}``);
    ``resume`` takes a folder of the same kind as it is (the command continues it).
    """
    path = Path(out).expanduser()
    where = f"refusing {option} {path}"
    if path.is_symlink():
        raise OutputError(f"{where}: it is a symbolic link (to {os.readlink(path)}); give the "
                          "folder itself")
    for name, given in (inputs or {}).items():
        if given is None or not Path(given).expanduser().exists():
            continue
        if _overlap(path.resolve(), Path(given).expanduser().resolve()):
            raise OutputError(f"{where}: it is {name} {given}, an input of this command; "
                              f"choose another {option}")
    if not path.exists():
        parent = next((q for q in path.absolute().parents if q.is_dir()), None)
        if parent is not None and artifact_contents(parent)[0]:
            raise OutputError(f"{where}: it is inside {parent}, an xsteer artifact folder (a "
                              f"folder there would spoil it); choose another {option}")
        return path
    if not path.is_dir():
        raise OutputError(f"{where}: it is a file, not a folder")
    found, words = holds(path)
    if found == "empty":
        return path
    if found != kind:
        hint = "" if found is None else f" (this command writes {kind.replace('_', ' ')} output)"
        raise OutputError(f"{where}: it holds {words}{hint}; choose a new {option}")
    if _read_only(path):
        raise OutputError(f"{where}: it holds {words} and is read-only")
    if not (overwrite or resume):
        raise OutputError(f"{where}: it holds {words}; pass --overwrite to replace it")
    return path


def lock_path(out: str | os.PathLike[str], rank: int = 0) -> Path:
    """The lock file of output folder ``out`` (beside it, so a swap of the folder keeps it);
    process ``rank`` of a multi-process run has its own."""
    p = Path(out).expanduser()
    return p.parent / (f".{p.name}.xsteer-lock" + (f"-{rank}" if rank else ""))


@contextlib.contextmanager
def lock(out: str | os.PathLike[str], rank: int = 0) -> Iterator[Path]:
    """Hold the lock of ``out`` for this process while the block runs, or raise `OutputError`
    naming the pid that holds it. Where ``fcntl`` is missing (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield Path(out)
        return
    path = lock_path(out, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"refusing --out {Path(out)}: another xsteer run (pid {holder}) "
                              "is writing it; wait for it to finish or choose another --out"
                              ) from None
        try:  # the holder before us may have removed the file between our open and flock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)  # closing drops the lock


def launch_rank() -> int:
    """This process's rank in an accelerate / torchrun launch (0 when alone)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


_HELD = contextlib.ExitStack()
_HELD_PATHS: set[Path] = set()


def hold(out: str | os.PathLike[str], kind: str, *,
         inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
         overwrite: bool = False, resume: bool = False) -> Path:
    """`writing` for a command: claim and lock ``out`` until `release_held` (which ``xsteer``
    calls when the command ends, however it ends); returns ``out``. A folder this process
    already holds is only claimed again."""
    key = Path(out).expanduser().absolute()
    if key in _HELD_PATHS:
        return claim(out, kind, inputs=inputs, overwrite=overwrite, resume=resume)
    path = _HELD.enter_context(writing(out, kind, inputs=inputs, overwrite=overwrite,
                                       resume=resume))
    _HELD_PATHS.add(key)
    return path


def release_held() -> None:
    """Release every lock `hold` took (the CLI calls this after each command)."""
    _HELD_PATHS.clear()
    _HELD.close()


@contextlib.contextmanager
def writing(out: str | os.PathLike[str], kind: str, *,
            inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
            overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """`claim` ``out`` for ``kind`` and hold its `lock` while the block writes it.

    The claim runs once before the lock (so a refusal leaves nothing behind, not even the
    folder's parent) and again under it (another run may have written it meanwhile).
    """
    claim(out, kind, inputs=inputs, overwrite=overwrite, resume=resume)
    with lock(out, launch_rank()):
        yield claim(out, kind, inputs=inputs, overwrite=overwrite, resume=resume)
