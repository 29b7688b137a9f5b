"""The page that shows what an adapter does (``xsteer app``): `AppSession` (one request: unsteered
and steered outputs, difference, gate table; no web code) and `build_page` (the Gradio page, extra
``xsteer[app]``).

Run with no arguments it serves the proving-ground MMDiT from the cache, or a tiny seeded MMDiT
when none is trained, and says which on the page.
"""

from xsteer.app.session import AppSession, Result

__all__ = ["AppSession", "Result"]
