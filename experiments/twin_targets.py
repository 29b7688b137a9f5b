"""Per-category target points for ``mode: target`` (steer toward the safe twin), as artifacts.

Two estimates, written with `xsteer.steer.targets.save_targets`:

- transported (what xsteer ships): the SOURCE model's features of the pairs' safe twins, mapped
  into the target site by a fitted alignment and averaged per category. The target model sees
  no pair data at all.
- native (the yardstick only): the pipeline's own site features of the safe twins, averaged.

    python experiments/twin_targets.py --source gemma-3-270m --layer 6 \\
        --alignment runs/pg-directions/align_gemma_minilm_ridge --out runs/pg-directions/targets_ridge
    python experiments/twin_targets.py --pipeline ~/.cache/xsteer/proving_ground/mmdit-minilm \\
        --out runs/pg-directions/targets_native

The source features are read as ``xsteer estimate`` reads them (unsafe then safe texts in one
call), so its embedding cache answers them without loading the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xsteer.align import Alignment
from xsteer.data import load_pairs, pair_texts
from xsteer.steer.targets import mean_targets, save_targets, transported_targets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", default=None, help="pairs JSONL (default: the shipped pairs)")
    p.add_argument("--source", help="source model (transported targets)")
    p.add_argument("--layer", type=int, default=None)
    p.add_argument("--alignment", help="fitted alignment folder (source -> target site)")
    p.add_argument("--pipeline", help="pipeline folder (native targets: the yardstick)")
    args = p.parse_args()
    pairs = load_pairs(args.pairs)
    unsafe, safe = pair_texts(pairs)
    cats = [p.category for p in pairs]
    if args.pipeline:
        from xsteer.pipelines import load_pipeline, site_features

        pipe = load_pipeline(str(Path(args.pipeline).expanduser()))
        feats = next(iter(site_features(pipe, safe).values()))
        targets = mean_targets(feats, cats)
        meta: dict[str, Any] = {"how": "native: mean of the pipeline's own site features of the safe twins",
                "side": "target", "texts": "safe twins of the pairs (target side: yardstick)"}
    else:
        from xsteer.encoders import get_encoder

        if not (args.source and args.alignment):
            raise SystemExit("give --pipeline, or --source and --alignment")
        enc = get_encoder(args.source)
        layer, pool = enc.resolve_site(args.layer, None)
        feats = enc.encode(unsafe + safe, layer, pool)[len(unsafe):]
        targets = transported_targets(Alignment.load(args.alignment), feats, cats)
        meta = {"how": "transported: source features of the safe twins through the alignment",
                "side": "source", "source": args.source, "layer": layer,
                "alignment": str(args.alignment)}
    print(save_targets(args.out, targets, {**meta, "pairs": args.pairs or "shipped"}))


if __name__ == "__main__":
    main()
