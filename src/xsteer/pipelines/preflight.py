"""Checks a direction (and its gates) against a pipeline folder before any weights load.

`xsteer generate` on FLUX loads tens of GB before `bind_site` can say the direction was made for
another encoder. A local pipeline folder already says enough: ``model_index.json`` names the
pipeline class (so the site table says which sites exist and which component each reads), and
the component's ``config.json`` gives the encoder's architecture digest, the one alignment
recorded in the direction (``meta["encoder"]["config_sha"]``). `check_pipeline_folder` compares
those, and a gate's recorded direction site, in well under a second; `bind_site` still does the
full check (weights probe included) once the pipeline is loaded. Hub ids and built-in aliases
are left to `bind_site`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xsteer.pipelines.binding import SiteBindingError
from xsteer.pipelines.families import FAMILIES, Family
from xsteer.site import Site, SiteError


def _family(class_name: str) -> Family | None:
    return next((f for f in FAMILIES.values() if class_name in f.classes), None)


def _first(directions: Any) -> Any:
    members = getattr(directions, "directions", None)
    return next(iter(members.values())) if isinstance(members, Mapping) else directions


def check_pipeline_folder(pipeline: str, directions: Any, site: str | None = None,
                          gates: Mapping[str, Any] | None = None,
                          force: bool = False) -> list[str]:
    """Problems binding ``directions`` (at ``site``, default the one they record) to the pipeline
    folder ``pipeline``, found from its JSON files alone; raises `SiteBindingError` naming them
    unless ``force`` (then returns them). Not a folder, or a class the site table does not
    know: nothing to check here (returns ``[]``)."""
    index = Path(pipeline).expanduser() / "model_index.json"
    if not index.is_file():
        return []
    try:
        class_name = str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
    except (OSError, ValueError, AttributeError) as exc:
        raise SiteBindingError(f"{index} is not a readable model_index.json ({exc})") from None
    fam = _family(class_name)
    if fam is None:
        return []
    d = _first(directions)
    problems: list[str] = []
    key = site or str(getattr(directions, "site", ""))
    try:
        named: Site | None = Site.parse(key)
    except SiteError:
        named = None
    names = [s.name for s in fam.sites]
    spec = None
    if named is not None and named.kind == "component":
        if key in names:
            spec = fam.site(key)
        else:
            problems.append(f"the direction is for site {key!r}, which {class_name} does not "
                            f"have (its sites: {names})")
    recorded = (getattr(d, "meta", None) or {}).get("encoder")
    theirs = recorded.get("config_sha") if isinstance(recorded, Mapping) else None
    if spec is not None and theirs:
        ours = _config_sha(index.parent / spec.component)
        if ours and ours != theirs:
            problems.append(
                f"the direction was made in encoder {getattr(d, 'model_id', '?')} (config "
                f"{theirs}) but {class_name} site {spec.name!r} reads "
                f"{index.parent / spec.component} (config {ours}): another architecture")
    for cat, gate in (gates or {}).items():
        made_for = ((getattr(gate, "meta", None) or {}).get("direction") or {}).get("site")
        if made_for and named is not None and made_for != str(getattr(directions, "site", "")):
            problems.append(f"gate {cat!r} was calibrated for a direction at site {made_for!r}, "
                            f"not {getattr(directions, 'site', '?')!r}")
    if problems and not force:
        raise SiteBindingError("; ".join(problems) + " (checked before loading the pipeline). "
                               "Pass --force to bind anyway; the manifest then records it")
    return problems


def _config_sha(component: Path) -> str | None:
    """The architecture digest of a component folder's transformers config (no weights read)."""
    if not (component / "config.json").is_file():
        return None
    from transformers import AutoConfig

    from xsteer.encoders.identity import config_digest

    try:
        cfg = AutoConfig.from_pretrained(str(component))
    except (OSError, ValueError, KeyError):  # not a transformers config: leave it to bind_site
        return None
    return config_digest(cfg)
