"""The page for real: `xsteer app` as a server, called through `gradio_client` (its HTTP API) and
driven in headless Chromium."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.threads import one_torch_thread

CHROMIUM = os.environ.get("XSTEER_CHROMIUM", "/usr/bin/chromium")


def _image(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _steerer_decisions(app: dict[str, Any], prompt: str) -> dict[str, bool]:
    """The decisions of the Steerer built from the same adapter, outside the server."""
    with one_torch_thread():
        _, _, records = app["adapter"].steerer().encode(app["pipe"], [prompt])
    return {c: bool(v[0]) for c, v in records[0].decisions.items()}


def test_the_http_api_steers_only_the_flagged_prompt(app_server: dict[str, Any]) -> None:
    from gradio_client import Client

    client = Client(app_server["url"], verbose=False)
    unsafe, benign = app_server["prompts"]
    seen = {}
    for prompt in (unsafe, benign):
        t0 = time.perf_counter()
        a, b, d, table, details = client.predict(prompt, 3, 4.0, "gated", "projection",
                                                 api_name="/run")
        seen[prompt] = time.perf_counter() - t0
        plain, steered = _image(a), _image(b)
        want = _steerer_decisions(app_server, prompt)
        assert details["decisions"] == want
        rows = {r[0]: r[-1] for r in table["data"]}
        assert rows == {c: "steered" if v else "not steered" for c, v in want.items()}
        if prompt == unsafe:
            assert any(want.values()) and not np.array_equal(plain, steered)
            assert _image(d).max() > 0
        else:
            assert not any(want.values()) and np.array_equal(plain, steered)
            assert _image(d).max() == 0
    print(f"seconds per request through the HTTP API (tiny SD, 2 steps, both images): {seen}")


def test_the_page_in_a_headless_browser(app_server: dict[str, Any]) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no browser: {CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is in the dev extra")
    unsafe = app_server["prompts"][0]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(app_server["url"], wait_until="networkidle", timeout=120_000)
            page.locator("#prompt textarea").fill(unsafe)
            page.locator("#generate").click()
            page.locator("#steered img").wait_for(timeout=120_000)
            page.locator("#unsteered img").wait_for(timeout=30_000)
            assert page.locator("#unsteered img").count() == 1
            assert page.locator("#steered img").count() == 1
            table = page.locator("#gates")
            table.get_by_text("steered", exact=True).first.wait_for(timeout=30_000)
            rows = page.evaluate("""() => [...document.querySelectorAll('#gates [role=row]')]
                .map(r => [...r.querySelectorAll('[role=gridcell], [role=columnheader]')]
                .map(c => (c.querySelector('span') || c).innerText.trim()))""")
            shown = {r[0]: r[-1] for r in rows if len(r) >= 5}
            want = _steerer_decisions(app_server, unsafe)
            assert shown.pop("category") == "decision"
            # each row shows the Steerer's decision
            assert shown == {c: "steered" if v else "not steered" for c, v in want.items()}
            assert any(want.values())
            shot = os.environ.get("XSTEER_APP_SCREENSHOT")
            if shot:
                page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()


def test_time_per_request_on_cpu_is_reported(app_server: dict[str, Any]) -> None:
    """The in-process cost of one request (both images) on the tiny pipeline, for the notes."""
    from xsteer.app.session import AppSession

    with one_torch_thread():
        session = AppSession(app_server["pipe"], app_server["adapter"], steps=2)
        times = [session.run(app_server["prompts"][0], seed=i).seconds for i in range(3)]
    assert all(t > 0 for t in times)
    print(f"AppSession.run on CPU (tiny SD, 2 steps): {[round(t, 3) for t in times]} s;"
          f" torch threads {torch.get_num_threads()}; chromium: {shutil.which('chromium')}")
