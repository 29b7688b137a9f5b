"""Run every benchmark in ``bench/`` in turn (``make bench``); each prints its own ratios."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("bench_*.py"))
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.argv = [str(HERE / f"{name}.py")]  # each bench parses its own defaults
        mod.main()


if __name__ == "__main__":
    main()
