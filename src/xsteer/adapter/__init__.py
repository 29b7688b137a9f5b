"""The safety adapter's packaging: `pack` (pieces → `Adapter`), the model card from a sweep
(`card`), and ``xsteer pack`` (`cli`).

The `Adapter` itself (load, ``apply``/``remove``, the pipeline check) lives in
`xsteer.pipelines.adapter`, beside the `Steerer` it builds, so ``xsteer generate`` and sweeps can
use it; ``xsteer.load_adapter`` is the public entry point.
"""

from typing import Any

# imported on first use, so `xsteer --help` (which registers `xsteer.adapter.cli`) stays torch-free
_LAZY = {"pack": "xsteer.adapter.pack", "pipeline_identity": "xsteer.adapter.pack",
         "Adapter": "xsteer.pipelines.adapter", "AdapterMismatchError": "xsteer.pipelines.adapter",
         "load_adapter": "xsteer.pipelines.adapter"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xsteer.adapter' has no attribute {name!r}")


__all__ = ["Adapter", "AdapterMismatchError", "load_adapter", "pack", "pipeline_identity"]
