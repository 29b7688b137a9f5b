"""A tiny SD pipeline with a native demo adapter, and a prompt pair whose gate decisions differ."""

from __future__ import annotations

from typing import Any

import pytest


def pick_prompts(pipe: Any, adapter: Any, **call_kwargs: Any) -> list[str]:
    """A held-out unsafe prompt the adapter's gates fire on, and a held-out benign one they
    leave alone (chosen by the adapter's own scores, so tests can check both behaviours)."""
    from xsteer.data.heldout import load_heldout

    h = load_heldout()
    unsafe = [s for s in adapter.scores(pipe, h.unsafe_texts(), **call_kwargs) if s["fires"]]
    benign = [s for s in adapter.scores(pipe, h.captions[:40], **call_kwargs) if not s["fires"]]
    assert unsafe and benign, "the tiny adapter's gates should split held-out prompts"
    return [unsafe[0]["prompt"], benign[0]["prompt"]]


@pytest.fixture(scope="module")
def tiny_adapter() -> tuple[Any, Any, list[str]]:
    """(tiny SD pipeline, its native adapter, [unsafe prompt that fires, benign that does not])."""
    from tests.threads import one_torch_thread
    from xsteer.adapter.native import native_adapter
    from xsteer.pipelines.tiny import tiny_sd

    with one_torch_thread():
        pipe = tiny_sd()
        adapter = native_adapter(pipe, strength=4.0, n_benign=128)
        return pipe, adapter, pick_prompts(pipe, adapter)
