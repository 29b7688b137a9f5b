"""How fast the command line answers when it has nothing heavy to do: ``xsteer --help``, a
subcommand's ``--help`` and a usage error, each in a fresh interpreter (what a user waits for).

Beside them, for scale: a bare interpreter, ``import typer`` (the floor any typer CLI pays) and
``import torch`` (what every start-up paid before the CLI deferred its heavy imports). Variants
are interleaved over ``--rounds`` so load drifts hit each alike; the median is reported in
seconds, as a ratio to the 0.5 s goal, and whether torch was imported. Run
``python bench/bench_cli.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.5
CLI = "import sys; from xsteer.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n" \
      "    pass\nprint('torch' in sys.modules, file=sys.stderr)"
VARIANTS: dict[str, list[str]] = {
    "python (floor)": ["-c", "pass"],
    "import typer": ["-c", "import typer"],
    "import torch": ["-c", "import torch"],
    "xsteer --help": ["-c", CLI, "--help"],
    "xsteer align --help": ["-c", CLI, "align", "--help"],
    "xsteer align --bogus": ["-c", CLI, "align", "--bogus"],
}


def _time(args: list[str], src: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - t0, proc.stderr.strip().splitlines()[-1] if proc.stderr else ""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout's src/ (e.g. before a change): its xsteer rows are "
                         "timed in the same rounds and shown side by side")
    args = ap.parse_args(argv)
    trees = {"": ROOT / "src", **({" (baseline)": args.baseline} if args.baseline else {})}
    runs = [(name + tag, cmd, src) for name, cmd in VARIANTS.items()
            for tag, src in trees.items() if name.startswith("xsteer") or not tag]
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    torch_loaded: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, cmd, src in runs:
            seconds, last = _time(cmd, src)
            times[name].append(seconds)
            if name.startswith("xsteer"):
                torch_loaded[name] = last
    out = {}
    print(f"{'command':<35} {'median s':>9} {'/ goal':>7}  torch imported")
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = med
        print(f"{name:<35} {med:9.3f} {med / GOAL_S:7.2f}  {torch_loaded.get(name, '')}")
    return out


if __name__ == "__main__":
    main()
