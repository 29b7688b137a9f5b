"""Research scripts that produce the tables in ``docs/*.md``; not part of the library.

What lives here: the transport study (``python -m experiments.transport_study``, run by
``make results``, writes ``docs/results.md``), the experiment it drives
(`experiments.transport_experiment`: every transport method, ablation and control on one
source→target pair); the source-side gate study (`experiments.source_gate_study`, `docs/source_gate.md`).

What does not: anything a user needs to steer a generator. These modules use the public API of
``xsteer``; nothing under ``src/xsteer`` imports them (``tests/test_layering.py`` checks it).
The proving-ground experiment stays a product feature (``xsteer proving-ground experiment``).
"""
