"""The safety adapter's packaging: `pack` (pieces → `Adapter`), the model card from a sweep
(`card`); ``xsteer pack`` is `xsteer.cli.adapter`, which calls `pack`.

The `Adapter` itself (load, ``apply``/``remove``, the pipeline check) lives in
`xsteer.pipelines.adapter`, beside the `Steerer` it builds, so ``xsteer generate`` and sweeps can
use it; ``xsteer.load_adapter`` is the public entry point.
"""

from xsteer.adapter.pack import pack, pipeline_identity
from xsteer.pipelines.adapter import Adapter, AdapterMismatchError, load_adapter

__all__ = ["Adapter", "AdapterMismatchError", "load_adapter", "pack", "pipeline_identity"]
