"""The page that shows what an adapter does (``xsteer app``): `AppSession` (one request: unsteered
and steered outputs, difference, gate table; no web code) and `build_page` (the Gradio page, extra
``xsteer[app]``).

Run with no arguments it serves the proving-ground MMDiT from the cache, or a tiny seeded MMDiT
when none is trained, and says which on the page.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # imported on first use, so `xsteer --help` (which registers `xsteer.app.cli`) stays torch-free
    if name in ("AppSession", "Result"):
        from xsteer.app import session

        return getattr(session, name)
    raise AttributeError(f"module 'xsteer.app' has no attribute {name!r}")


__all__ = ["AppSession", "Result"]
