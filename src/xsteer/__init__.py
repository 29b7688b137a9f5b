"""xsteer: cross-model safety steering for diffusion generators.

The library: `xsteer.directions` (estimate a safety direction in a source model),
`xsteer.encoders` and `xsteer.models` (read models), `xsteer.align` (benign-only maps and
transport), `xsteer.steer` (operators, gates), `xsteer.pipelines` (steer diffusers pipelines),
`xsteer.evaluate` (representation level and the sweep harness), `xsteer.demo` and
`xsteer.proving_ground` (product features), the CLI. The research scripts that write
``docs/*.md`` live outside, in ``experiments/``; ``docs/architecture.md`` has the map.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``xsteer.load_adapter`` / ``xsteer.Adapter``, imported on first use (importing ``xsteer``
    stays free of torch)."""
    if name in ("load_adapter", "Adapter"):
        import importlib

        return getattr(importlib.import_module("xsteer.pipelines.adapter"), name)
    raise AttributeError(f"module 'xsteer' has no attribute {name!r}")
