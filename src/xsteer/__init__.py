"""xsteer: cross-model safety steering for diffusion generators.

The library: `xsteer.directions` (estimate a safety direction in a source model),
`xsteer.encoders` and `xsteer.models` (read models), `xsteer.align` (benign-only maps and
transport), `xsteer.steer` (operators, gates), `xsteer.pipelines` (steer diffusers pipelines),
`xsteer.evaluate` (representation level and the sweep harness), `xsteer.demo` and
`xsteer.proving_ground` (product features), the CLI. The research scripts that write
``docs/*.md`` live outside, in ``experiments/``; ``docs/architecture.md`` has the map.
"""

__version__ = "0.1.0"
