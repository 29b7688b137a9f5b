"""``xsteer pack``: write an adapter folder (directions, gates, operator config, pipeline
identity, model card from a sweep; `xsteer.adapter.pack.pack_files`), optionally push it to the
Hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def pack_cmd(
    out: Annotated[Path, Opt("--out", help="adapter folder to write")],
    direction: Annotated[Path | None, Opt("--direction", help="Direction or DirectionSet "
                                          "artifact (in the pipeline site's space)")] = None,
    adapter: Annotated[Path | None, Opt("--adapter", help="an existing adapter to re-card "
                                        "(with --sweep) instead of --direction")] = None,
    gate: Annotated[list[Path] | None, Opt("--gate", help="target-side gate folder (one gate "
                                           "or one per category; repeatable)")] = None,
    source_gate: Annotated[Path | None, Opt("--source-gate", help="source-side gate folder "
                                            "(probe.json + probe.safetensors)")] = None,
    mode: Annotated[str, Opt("--mode", help="additive, projection, clamp or gated")] = "gated",
    strength: Annotated[float, Opt("--strength")] = 1.0,
    inner: Annotated[str, Opt("--inner", help="gated: the inner operator")] = "additive",
    category: Annotated[list[str] | None, Opt("--category", help="steer only these "
                                              "categories")] = None,
    branch: Annotated[str, Opt("--branch", help="conditional or both")] = "conditional",
    site: Annotated[str | None, Opt("--site", help="pipeline site (default: the "
                                    "direction's)")] = None,
    operator: Annotated[str | None, Opt("--operator", help="JSON object of further operator "
                                        "keys (any Steering keyword), over the flags")] = None,
    pipeline: Annotated[str | None, Opt("--pipeline", help="the pipeline it is for (Hub id or "
                                        "folder; text side loaded to record and check its "
                                        "identity); default: what the directions record")] = None,
    sweep: Annotated[Path | None, Opt("--sweep", help="finished sweep folder: the model card's "
                                      "results")] = None,
    method: Annotated[str | None, Opt("--method", help="the sweep method that is this "
                                      "adapter (default: the one of kind adapter)")] = None,
    name: Annotated[str, Opt("--name")] = "xsteer-adapter",
    base_model: Annotated[str | None, Opt("--base-model", help="Hub id for the card's "
                                          "base_model (default: the pipeline's, if a Hub id)")]
        = None,
    license: Annotated[str, Opt("--license")] = "apache-2.0",
    push_to_hub: Annotated[str | None, Opt("--push-to-hub", help="also upload to this Hub "
                                           "repo id")] = None,
    dtype: Annotated[str, Opt("--dtype")] = "float32",
) -> None:
    """Pack directions, gates and an operator config into one adapter folder (+ model card)."""
    from xsteer.adapter.pack import pack_files
    from xsteer.errors import XSteerError

    if (direction is None) == (adapter is None):
        raise XSteerError("give exactly one of --direction or --adapter")
    op: dict[str, object] = {"mode": mode, "strength": strength, "inner": inner,
                             "categories": category, "branch": branch, "site": site}
    if operator is not None and adapter is None:
        try:
            extra = json.loads(operator)
        except json.JSONDecodeError as exc:
            raise XSteerError(f"--operator is not JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise XSteerError("--operator must be a JSON object")
        op.update(extra)
    ad, results = pack_files(operator=op, direction=direction, adapter=adapter, gates=gate or [],
                             source_gate=source_gate, pipeline=pipeline, sweep=sweep,
                             method=method, name=name, base_model=base_model, license=license,
                             dtype=dtype, echo=typer.echo)
    ad.save_pretrained(out)
    measured = f", card results from {sweep} ({results['method']})" if results else ""
    typer.echo(f"wrote {out}: adapter {ad.name!r} for {ad.pipeline.get('pipeline_class')} site "
               f"{ad.pipeline.get('site')}, {ad.gate_kind} gates{measured}")
    if push_to_hub:
        ad.push_to_hub(push_to_hub)
        typer.echo(f"pushed to {push_to_hub}")


def register(app: typer.Typer) -> None:
    """Add ``pack`` to the ``xsteer`` app."""
    app.command("pack")(pack_cmd)
