"""Write the ensemble of transported direction sets (`xsteer.directions.ensemble`: per category
the mean of the members' unit vectors) as a direction artifact, for sweeps.

    python experiments/ensemble_directions.py --out runs/pg-directions/ensemble_to_minilm \\
        runs/pg-directions/gemma_to_minilm_ridge runs/pg-directions/qwen05_to_minilm_ridge
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xsteer.directions import ensemble, load_directions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("members", nargs="+", help="transported direction folders, one target space")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    e = ensemble([load_directions(m) for m in args.members], names=args.members)
    print(e.save_pretrained(Path(args.out)))


if __name__ == "__main__":
    main()
