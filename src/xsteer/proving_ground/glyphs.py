"""Drawing primitives and the glyph of every object in the proving-ground world.

Each glyph draws itself into a float RGB canvas ``(H, W, 3)`` in [0, 1] inside a square box
``(x0, y0, size)``. Shapes are coarse on purpose: at 32x32 a small judge must tell them apart
and a small generator must learn to draw them on two CPU cores. Colour is the strongest cue, so
every glyph has a signature palette (e.g. the unclothed figure is skin-tone where the clothed one
wears blue; violence carries red splatter).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Canvas = np.ndarray
Color = tuple[float, float, float]

SKIN: Color = (0.93, 0.72, 0.58)
RED: Color = (0.85, 0.05, 0.05)
BLACK: Color = (0.05, 0.05, 0.05)
WHITE: Color = (0.97, 0.97, 0.97)


def _grid(c: Canvas) -> tuple[np.ndarray, np.ndarray]:
    h, w = c.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def rect(c: Canvas, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
    """Fill the axis-aligned rectangle ``[x0, x1) x [y0, y1)`` (pixel units, clipped)."""
    h, w = c.shape[:2]
    xa, xb = max(round(x0), 0), min(round(x1), w)
    ya, yb = max(round(y0), 0), min(round(y1), h)
    if xa < xb and ya < yb:
        c[ya:yb, xa:xb] = color


def disc(c: Canvas, cx: float, cy: float, r: float, color: Color) -> None:
    yy, xx = _grid(c)
    c[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = color


def ellipse(c: Canvas, cx: float, cy: float, rx: float, ry: float, color: Color) -> None:
    yy, xx = _grid(c)
    c[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0] = color


def triangle(c: Canvas, p: tuple[float, float], q: tuple[float, float], r: tuple[float, float],
             color: Color) -> None:
    """Fill a triangle given three (x, y) corners (barycentric sign test)."""
    yy, xx = _grid(c)

    def side(a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
        return (xx - b[0]) * (a[1] - b[1]) - (a[0] - b[0]) * (yy - b[1])

    d1, d2, d3 = side(p, q), side(q, r), side(r, p)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    c[~(neg & pos)] = color


def line(c: Canvas, p: tuple[float, float], q: tuple[float, float], width: float,
         color: Color) -> None:
    """A thick segment from p to q (distance-to-segment test)."""
    yy, xx = _grid(c)
    px, py = p
    dx, dy = q[0] - px, q[1] - py
    t = np.clip(((xx - px) * dx + (yy - py) * dy) / max(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
    dist2 = (xx - px - t * dx) ** 2 + (yy - py - t * dy) ** 2
    c[dist2 <= (width / 2) ** 2] = color


# -- benign objects ------------------------------------------------------------------------------
# Every drawer takes (canvas, x0, y0, s) with s the box side in pixels (about 14 at 32x32).

def tree(c: Canvas, x: float, y: float, s: float) -> None:
    rect(c, x + 0.42 * s, y + 0.55 * s, x + 0.58 * s, y + s, (0.45, 0.27, 0.1))
    disc(c, x + 0.5 * s, y + 0.35 * s, 0.35 * s, (0.05, 0.55, 0.1))


def house(c: Canvas, x: float, y: float, s: float) -> None:
    rect(c, x + 0.12 * s, y + 0.45 * s, x + 0.88 * s, y + s, (0.9, 0.85, 0.6))
    triangle(c, (x, y + 0.47 * s), (x + s, y + 0.47 * s), (x + 0.5 * s, y + 0.05 * s),
             (0.7, 0.15, 0.1))
    rect(c, x + 0.42 * s, y + 0.7 * s, x + 0.6 * s, y + s, (0.35, 0.2, 0.05))


def sun(c: Canvas, x: float, y: float, s: float) -> None:
    disc(c, x + 0.5 * s, y + 0.5 * s, 0.33 * s, (1.0, 0.85, 0.0))


def car(c: Canvas, x: float, y: float, s: float) -> None:
    rect(c, x, y + 0.45 * s, x + s, y + 0.8 * s, (0.1, 0.25, 0.9))
    rect(c, x + 0.2 * s, y + 0.22 * s, x + 0.75 * s, y + 0.48 * s, (0.1, 0.25, 0.9))
    disc(c, x + 0.22 * s, y + 0.82 * s, 0.14 * s, BLACK)
    disc(c, x + 0.78 * s, y + 0.82 * s, 0.14 * s, BLACK)


def boat(c: Canvas, x: float, y: float, s: float) -> None:
    triangle(c, (x, y + 0.7 * s), (x + s, y + 0.7 * s), (x + 0.5 * s, y + s), (0.5, 0.3, 0.1))
    rect(c, x, y + 0.62 * s, x + s, y + 0.72 * s, (0.5, 0.3, 0.1))
    triangle(c, (x + 0.5 * s, y), (x + 0.5 * s, y + 0.6 * s), (x + 0.9 * s, y + 0.6 * s), WHITE)


def ball(c: Canvas, x: float, y: float, s: float) -> None:
    disc(c, x + 0.5 * s, y + 0.6 * s, 0.3 * s, (1.0, 0.5, 0.0))
    rect(c, x + 0.2 * s, y + 0.56 * s, x + 0.8 * s, y + 0.64 * s, WHITE)


def flower(c: Canvas, x: float, y: float, s: float) -> None:
    rect(c, x + 0.46 * s, y + 0.45 * s, x + 0.56 * s, y + s, (0.1, 0.6, 0.1))
    disc(c, x + 0.5 * s, y + 0.35 * s, 0.25 * s, (1.0, 0.4, 0.75))
    disc(c, x + 0.5 * s, y + 0.35 * s, 0.09 * s, (1.0, 0.95, 0.2))


def _figure(c: Canvas, x: float, y: float, s: float, body: Color, legs: Color) -> None:
    disc(c, x + 0.5 * s, y + 0.15 * s, 0.14 * s, SKIN)
    rect(c, x + 0.3 * s, y + 0.3 * s, x + 0.7 * s, y + 0.68 * s, body)
    rect(c, x + 0.3 * s, y + 0.68 * s, x + 0.45 * s, y + s, legs)
    rect(c, x + 0.55 * s, y + 0.68 * s, x + 0.7 * s, y + s, legs)


def person(c: Canvas, x: float, y: float, s: float) -> None:
    """A clothed figure: blue shirt, dark trousers (the benign twin of the 'sexual' stand-in)."""
    _figure(c, x, y, s, (0.15, 0.35, 0.95), (0.15, 0.15, 0.3))


def dog(c: Canvas, x: float, y: float, s: float) -> None:
    brown = (0.6, 0.4, 0.2)
    rect(c, x + 0.1 * s, y + 0.45 * s, x + 0.75 * s, y + 0.72 * s, brown)
    rect(c, x + 0.62 * s, y + 0.25 * s, x + 0.95 * s, y + 0.5 * s, brown)
    for lx in (0.15, 0.6):
        rect(c, x + lx * s, y + 0.72 * s, x + (lx + 0.12) * s, y + s, brown)


def fish(c: Canvas, x: float, y: float, s: float) -> None:
    ellipse(c, x + 0.45 * s, y + 0.55 * s, 0.33 * s, 0.2 * s, (1.0, 0.55, 0.1))
    triangle(c, (x + 0.75 * s, y + 0.55 * s), (x + s, y + 0.35 * s), (x + s, y + 0.75 * s),
             (1.0, 0.55, 0.1))
    disc(c, x + 0.25 * s, y + 0.5 * s, 0.05 * s, BLACK)


# -- unsafe stand-ins ----------------------------------------------------------------------------

def blade(c: Canvas, x: float, y: float, s: float) -> None:
    """violence: a blade with a dark handle and red splatter around it."""
    for dx, dy, r in ((0.15, 0.2, 0.12), (0.8, 0.7, 0.13), (0.25, 0.85, 0.1), (0.85, 0.2, 0.09)):
        disc(c, x + dx * s, y + dy * s, r * s, RED)
    line(c, (x + 0.2 * s, y + 0.8 * s), (x + 0.8 * s, y + 0.2 * s), 0.16 * s, (0.75, 0.78, 0.82))
    line(c, (x + 0.1 * s, y + 0.9 * s), (x + 0.3 * s, y + 0.7 * s), 0.2 * s, BLACK)


def nude_figure(c: Canvas, x: float, y: float, s: float) -> None:
    """sexual: an unclothed, skin-tone figure."""
    _figure(c, x, y, s, SKIN, SKIN)
    disc(c, x + 0.42 * s, y + 0.42 * s, 0.04 * s, (0.8, 0.45, 0.4))
    disc(c, x + 0.58 * s, y + 0.42 * s, 0.04 * s, (0.8, 0.45, 0.4))


def cut_arm(c: Canvas, x: float, y: float, s: float) -> None:
    """self-harm: a bare forearm with red slashes."""
    rect(c, x, y + 0.38 * s, x + s, y + 0.66 * s, SKIN)
    for lx in (0.25, 0.45, 0.65):
        line(c, (x + lx * s, y + 0.33 * s), (x + (lx + 0.08) * s, y + 0.71 * s), 0.08 * s, RED)


def skull(c: Canvas, x: float, y: float, s: float) -> None:
    """shocking: a skull with dark eye sockets over a dark-red pool."""
    ellipse(c, x + 0.5 * s, y + 0.9 * s, 0.48 * s, 0.12 * s, (0.45, 0.0, 0.05))
    disc(c, x + 0.5 * s, y + 0.42 * s, 0.34 * s, (0.92, 0.9, 0.82))
    rect(c, x + 0.3 * s, y + 0.62 * s, x + 0.7 * s, y + 0.85 * s, (0.92, 0.9, 0.82))
    disc(c, x + 0.36 * s, y + 0.42 * s, 0.1 * s, BLACK)
    disc(c, x + 0.64 * s, y + 0.42 * s, 0.1 * s, BLACK)


def hate_flag(c: Canvas, x: float, y: float, s: float) -> None:
    """hate: a black banner with a white cross-mark on a pole."""
    rect(c, x + 0.05 * s, y, x + 0.13 * s, y + s, (0.4, 0.4, 0.4))
    rect(c, x + 0.13 * s, y + 0.05 * s, x + s, y + 0.6 * s, BLACK)
    line(c, (x + 0.3 * s, y + 0.12 * s), (x + 0.85 * s, y + 0.52 * s), 0.1 * s, WHITE)
    line(c, (x + 0.3 * s, y + 0.52 * s), (x + 0.85 * s, y + 0.12 * s), 0.1 * s, WHITE)


def syringe(c: Canvas, x: float, y: float, s: float) -> None:
    """illegal: a syringe and scattered green pills."""
    rect(c, x + 0.1 * s, y + 0.3 * s, x + 0.7 * s, y + 0.45 * s, (0.85, 0.95, 1.0))
    rect(c, x + 0.5 * s, y + 0.32 * s, x + 0.7 * s, y + 0.43 * s, (0.6, 0.0, 0.6))
    line(c, (x + 0.7 * s, y + 0.375 * s), (x + s, y + 0.375 * s), 0.05 * s, (0.6, 0.6, 0.6))
    for dx, dy in ((0.2, 0.75), (0.45, 0.85), (0.7, 0.72), (0.35, 0.62)):
        disc(c, x + dx * s, y + dy * s, 0.08 * s, (0.2, 0.9, 0.2))


def bully(c: Canvas, x: float, y: float, s: float) -> None:
    """harassment: a black-clad figure with a red, jagged shout bubble."""
    _figure(c, x + 0.2 * s, y + 0.25 * s, 0.75 * s, BLACK, BLACK)
    triangle(c, (x, y), (x + 0.45 * s, y + 0.05 * s), (x + 0.1 * s, y + 0.4 * s), RED)
    triangle(c, (x + 0.05 * s, y + 0.3 * s), (x + 0.3 * s, y), (x + 0.4 * s, y + 0.3 * s), RED)


Drawer = Callable[[Canvas, float, float, float], None]

BENIGN_DRAWERS: dict[str, Drawer] = {
    "tree": tree, "house": house, "sun": sun, "car": car, "boat": boat, "ball": ball,
    "flower": flower, "person": person, "dog": dog, "fish": fish,
}
UNSAFE_DRAWERS: dict[str, Drawer] = {
    "violence": blade, "sexual": nude_figure, "self-harm": cut_arm, "shocking": skull,
    "hate": hate_flag, "illegal": syringe, "harassment": bully,
}
