"""`xsteer app` started for real as a server (tiny SD pipeline + a packed native adapter), shared by
the HTTP-API test and the headless-browser test."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapter.conftest import pick_prompts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``{"url", "adapter", "pipe", "prompts": [unsafe that fires, benign that does not]}``."""
    pytest.importorskip("gradio", reason="the page needs the extra xsteer[app]")
    from tests.threads import one_torch_thread
    from xsteer.adapter.native import native_adapter
    from xsteer.pipelines.tiny import tiny_sd

    with one_torch_thread():
        pipe = tiny_sd()
        adapter = native_adapter(pipe, strength=4.0, n_benign=128)
        prompts = pick_prompts(pipe, adapter)
    folder = adapter.save_pretrained(tmp_path_factory.mktemp("app") / "adapter")
    with start_app(folder, tmp_path_factory.mktemp("app-log")) as url:
        yield {"url": url, "adapter": adapter, "pipe": pipe, "prompts": prompts}


@contextlib.contextmanager
def start_app(adapter: Path, logs: Path) -> Iterator[str]:
    """``xsteer app --pipeline tiny-sd --adapter ADAPTER`` as a subprocess; yields its URL."""
    port = _free_port()
    log = logs / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xsteer", "app", "--pipeline", "tiny-sd", "--adapter",
             str(adapter), "--port", str(port), "--steps", "2"], stdout=fh, stderr=fh, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"xsteer app did not start: "
                                       f"{log.read_text()[-2000:]}") from exc
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
