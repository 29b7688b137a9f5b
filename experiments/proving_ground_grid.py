"""A compact grid of one proving-ground sweep for docs: one row per (method, mode, strength), one
column per harm category (its first unsafe prompt) plus benign captions; clips show every frame
side by side. Reads the sweep's own saved images (``images/…png`` and, for clips, ``.gif``).

    python experiments/proving_ground_grid.py runs/pg-mmdit-minilm/run docs/pg_mmdit_minilm.png \
        --rows none/none/0 native-gated/gated/4 ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image, ImageDraw, ImageSequence

app = typer.Typer(add_completion=False)


def _frames(path: Path) -> list[np.ndarray]:
    gif = path.with_suffix(".gif")
    if gif.is_file():
        with Image.open(gif) as im:
            return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    with Image.open(path) as im:
        return [np.asarray(im.convert("RGB"))]


def pick_columns(records: list[dict], n_benign: int = 2) -> list[str]:
    """Prompt ids: the first unsafe prompt of each category (in record order), then benign ones."""
    seen: dict[str, str] = {}
    benign: list[str] = []
    for r in records:
        if r["benchmark"] == "unsafe" and r["categories"]:
            seen.setdefault(r["categories"][0], r["prompt_id"])
        elif r["benchmark"] == "benign" and r["prompt_id"] not in benign and len(benign) < n_benign:
            benign.append(r["prompt_id"])
    return [*seen.values(), *benign]


def grid(run: Path, rows: list[str], scale: int = 2, n_benign: int = 2) -> Image.Image:
    """``rows``: ``method/mode/strength`` settings, in order."""
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    cols = pick_columns(records, n_benign)
    cell: dict[tuple[str, str], dict] = {}
    for r in records:
        key = f"{r['method']}/{r['mode']}/{float(r['strength']):g}"
        cell.setdefault((key, r["prompt_id"]), r)
    missing = [k for k in rows if not any((k, c) in cell for c in cols)]
    if missing:
        raise typer.BadParameter(f"no records for {missing}")
    first = next(cell[(rows[0], c)] for c in cols if (rows[0], c) in cell)
    n_frames = len(_frames(run / first["image"]))
    side = 32 * scale
    label_w, head, pad = 150, 14, 2
    w = label_w + len(cols) * (n_frames * side + pad)
    h = head + len(rows) * (side + pad)
    out = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(out)
    for j, c in enumerate(cols):
        r = next((cell[(k, c)] for k in rows if (k, c) in cell), None)
        tag = (r["categories"][0] if r and r["categories"] else "benign") if r else c
        draw.text((label_w + j * (n_frames * side + pad) + 2, 1), tag[:12], fill="black")
    for i, k in enumerate(rows):
        y = head + i * (side + pad)
        draw.text((2, y + side // 2 - 5), k.replace("/", " "), fill="black")
        for j, c in enumerate(cols):
            r = cell.get((k, c))
            if r is None or not r.get("image"):
                continue
            for t, f in enumerate(_frames(run / r["image"])):
                tile = Image.fromarray(f).resize((side, side), Image.Resampling.NEAREST)
                out.paste(tile, (label_w + j * (n_frames * side + pad) + t * side, y))
    return out


@app.command()
def main(run: Path, out: Path,
         rows: Annotated[list[str], typer.Option(help="method/mode/strength, repeated")],
         scale: int = 2, n_benign: int = 2) -> None:
    """Write the grid PNG."""
    img = grid(run, rows, scale, n_benign)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.quantize(256).save(out, optimize=True)  # a palette PNG: a fraction of the size
    typer.echo(f"wrote {out} ({img.size[0]}x{img.size[1]})")


if __name__ == "__main__":
    app()
