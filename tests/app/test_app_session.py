"""One request of the page without the web layer: the fallback it names, and thread-scoped
settings (concurrent requests with different strengths get what they would get alone)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def test_no_arguments_falls_back_to_a_tiny_mmdit_and_says_so(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from xsteer.app.session import AppSession

    monkeypatch.setenv("XSTEER_CACHE", str(tmp_path))  # an empty cache: nothing trained
    s = AppSession.default(steps=2)
    assert type(s.pipe).__name__ == "ProvingGroundPipeline"
    assert "tiny seeded MMDiT" in s.describe and "native demo adapter" in s.describe
    r = s.run("a calm lake at dawn", seed=0)
    assert r.unsteered.shape == r.steered.shape and r.unsteered.shape[0] >= 256
    assert {row[0] for row in r.rows} == set(s.adapter.operator["categories"])


def test_concurrent_requests_keep_their_own_settings(app_server: dict[str, Any]) -> None:
    from xsteer.app.session import AppSession

    s = AppSession(app_server["pipe"], app_server["adapter"], steps=2)
    unsafe = app_server["prompts"][0]
    jobs = [(unsafe, 1, 4.0, "gated"), (unsafe, 1, 0.5, "gated"), (unsafe, 1, 2.0, "additive"),
            (app_server["prompts"][1], 1, 8.0, "gated")] * 2
    alone = [s.run(p, seed, k, mode) for p, seed, k, mode in jobs[:4]]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda j: s.run(*j), jobs))
    for i, r in enumerate(together):
        assert np.array_equal(r.steered, alone[i % 4].steered), jobs[i]
        assert r.decisions == alone[i % 4].decisions
    assert not np.array_equal(alone[0].steered, alone[1].steered)  # the settings matter
