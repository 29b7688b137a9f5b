"""The Gradio page: prompt and seed in; unsteered and steered outputs side by side, the
difference, and each category's gate score and decision out; strength and operator controls;
held-out example prompts, benign and unsafe.

The one endpoint (``api_name="run"``) is the page's button and the HTTP API `gradio_client`
calls: ``Client(url).predict(prompt, seed, strength, mode, inner, api_name="/run")`` returns
(unsteered, steered, difference, decision table, details).

>>> demo = build_page(AppSession.default())          # doctest: +SKIP
>>> demo.launch()                                     # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from xsteer.app.session import AppSession, Result
from xsteer.errors import require

GATE_HEADERS = ["category", "target gate score", "threshold", "source gate score", "decision"]
OPERATORS = ("gated", "additive", "projection", "clamp")
INNERS = ("additive", "projection")


def example_prompts(n: int = 4) -> tuple[list[str], list[str]]:
    """(benign, unsafe) prompts from the shipped second held-out set (evaluation only: nothing
    was fitted on it): captions and near-miss prompts; unsafe pair sides and euphemistic
    rewrites."""
    from xsteer.data.heldout import load_heldout

    h = load_heldout()
    benign = h.captions[: n // 2] + h.nearmiss[: n - n // 2]
    unsafe = h.unsafe_texts()[: n // 2] + [r.prompt for r in h.euphemistic[: n - n // 2]]
    return benign, unsafe


def _media(arr: np.ndarray, video: bool, stem: str) -> Any:
    """An image as is; a clip as an animated GIF file the page plays."""
    if not video:
        return arr
    from PIL import Image

    path = Path(tempfile.mkdtemp(prefix="xsteer-app-")) / f"{stem}.gif"
    frames = [Image.fromarray(f) for f in arr]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=125, loop=0)
    return str(path)


def _outputs(r: Result) -> tuple[Any, ...]:
    details = {"fired": r.fired, "decisions": r.decisions, "max_abs_diff": r.max_abs_diff,
               "seconds": round(r.seconds, 3), "video": r.video}
    return (_media(r.unsteered, r.video, "unsteered"), _media(r.steered, r.video, "steered"),
            _media(r.difference, r.video, "difference"),
            {"headers": GATE_HEADERS, "data": r.rows}, details)


def build_page(session: AppSession) -> Any:
    """The `gradio.Blocks` page for ``session`` (not launched)."""
    gr = require("gradio", "app")
    op = session.adapter.operator
    strength = op.get("strength", 1.0)
    strength = float(strength) if isinstance(strength, (int, float)) else 1.0
    benign, unsafe = example_prompts()
    image = dict(type="numpy", format="png", height=280, interactive=False)

    def run(prompt: str, seed: float, s: float, mode: str, inner: str) -> tuple[Any, ...]:
        try:
            return _outputs(session.run(prompt, int(seed), s, mode, inner))
        except Exception as exc:  # one line on the page, as the CLI would print it
            raise gr.Error(" ".join(str(exc).split())) from exc

    with gr.Blocks(title="xsteer: safety adapter") as page:
        gr.Markdown(f"# xsteer safety adapter\n{session.describe}\n\nThe left image is the "
                    "pipeline as it is; the right one is the same seed with the adapter on. "
                    "Prompts the gates do not flag come out bit-identical.")
        with gr.Row():
            prompt = gr.Textbox(label="prompt", lines=2, scale=4, elem_id="prompt")
            seed = gr.Number(label="seed", value=0, precision=0, scale=1)
        with gr.Row():
            s = gr.Slider(0.0, max(8.0, 2 * strength), value=strength, step=0.25,
                          label="strength")
            mode = gr.Dropdown(list(OPERATORS), value=op.get("mode", "gated"), label="operator")
            inner = gr.Dropdown(list(INNERS), value=op.get("inner", "additive"),
                                label="inner operator (gated)")
        go = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Row():
            a = gr.Image(label="unsteered", elem_id="unsteered", **image)
            b = gr.Image(label="steered", elem_id="steered", **image)
        with gr.Accordion("show the difference", open=False):
            d = gr.Image(label="|steered - unsteered| (scaled; black: identical)",
                         elem_id="difference", **image)
        table = gr.Dataframe(headers=GATE_HEADERS, label="gate decisions", elem_id="gates",
                             interactive=False)
        details = gr.JSON(label="details")
        gr.Examples([[p] for p in benign], inputs=[prompt], label="held-out benign prompts")
        gr.Examples([[p] for p in unsafe], inputs=[prompt], label="held-out unsafe prompts")
        go.click(run, [prompt, seed, s, mode, inner], [a, b, d, table, details], api_name="run")
        prompt.submit(run, [prompt, seed, s, mode, inner], [a, b, d, table, details])
    return page
