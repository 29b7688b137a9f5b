"""The proving ground: a procedural world, an image judge, and small generators trained here on
CPU over a real, frozen text encoder, so that steering is measured end to end on pixels.

What lives here: the world and its captions (``world``, ``glyphs``, ``captions``, ``scenes``), the
judge (``judge``), `ProvingGroundPipeline` (``pipeline``: a real diffusers pipeline whose denoiser
is diffusers' own `FluxTransformer2DModel` MMDiT or `WanTransformer3DModel` DiT, built in
``denoisers``), training (``training``), held-out benchmark files for the sweep (``benchmarks``),
whose ``xsteer proving-ground`` commands live in `xsteer.cli.proving_ground`.

What does not: steering (`xsteer.steer`, `xsteer.pipelines.Steerer` drive the pipeline like any
other) and the sweep harness (`xsteer.evaluate.harness`; the proving-ground judge is one of its
judge kinds). Tables for the docs are written by scripts in ``experiments/``.
"""
