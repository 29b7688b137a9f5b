"""A site as a typed value: where in a model a direction lives, parsed once and compared exactly.

A site is written as one of three strings, which artifacts store and tensor files use as keys:

- ``layer:6/mean``: an encoder's hidden-state layer and the pooling over tokens;
- ``text_encoder`` / ``text_encoder_2.pooled``: a pipeline component's token states or pooled output
  (the names of `xsteer.pipelines.families`);
- ``tokens/mean``: pooled token states of an encoder that has no numbered layers.

`Site.parse` is the one reader of these strings and ``str(site)`` gives the string back unchanged,
so saved artifacts keep loading. ``model_id`` and ``revision`` are optional and never part of the
string; `Site.same_as` compares every field, which is what binding a direction to a model needs.

A site also equals its own string (``Site.parse("layer:6/mean") == "layer:6/mean"``) and hashes
like it, so a `Site` finds the entries of dicts keyed by site strings (tensor keys, tables) and
artifact metadata can be compared with it directly; `to_dict` gives the structured form.

>>> s = Site.parse("layer:6/mean")
>>> s.kind, s.layer, s.pooling, str(s)
('layer', 6, 'mean', 'layer:6/mean')
>>> str(Site.parse("text_encoder_2.pooled")), Site.parse("text_encoder_2.pooled").component
('text_encoder_2.pooled', 'text_encoder_2')
>>> s == "layer:6/mean", s == Site.parse("layer:6/mean", model_id="m")
(True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from xsteer.errors import XSteerError

SiteKind = Literal["layer", "component", "tokens"]
POOLED = "pooled"
FORMS = "'layer:N/pooling', 'tokens/pooling', 'component' or 'component.pooled'"

_LAYER = re.compile(r"^layer:(?P<layer>\d+)/(?P<pooling>\w+)$")
_TOKENS = re.compile(r"^tokens/(?P<pooling>\w+)$")
_COMPONENT = re.compile(r"^(?P<component>[A-Za-z_]\w*)(?:\.(?P<pooled>pooled))?$")


class SiteError(XSteerError, ValueError):
    """A site string or value that is none of the accepted forms."""


@dataclass(frozen=True)
class Site:
    """Where in a model a representation is read.

    Attributes:
        kind: ``layer`` (an encoder layer), ``component`` (a pipeline's text-encoder output) or
            ``tokens`` (pooled token states of an encoder without numbered layers).
        layer: the hidden-state layer (``kind == "layer"`` only).
        component: the pipeline attribute (``kind == "component"`` only).
        pooling: ``mean``/``last``… for ``layer`` and ``tokens``; ``pooled`` or None (token
            states) for ``component``.
        model_id, revision: optional provenance of the model; not part of ``str(site)``.
    """

    kind: SiteKind
    layer: int | None = None
    component: str | None = None
    pooling: str | None = None
    model_id: str | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        ok = {
            "layer": isinstance(self.layer, int) and self.layer >= 0 and self.component is None
            and bool(self.pooling) and re.fullmatch(r"\w+", self.pooling or "") is not None,
            "tokens": self.layer is None and self.component is None and bool(self.pooling)
            and re.fullmatch(r"\w+", self.pooling or "") is not None,
            "component": self.layer is None and self.pooling in (None, POOLED)
            and _COMPONENT.fullmatch(self.component or "") is not None
            and "." not in (self.component or ""),
        }.get(self.kind, False)
        if not ok:
            raise SiteError(f"not a valid site: kind={self.kind!r}, layer={self.layer!r}, "
                            f"component={self.component!r}, pooling={self.pooling!r} "
                            f"(accepted forms: {FORMS})")

    @classmethod
    def parse(cls, text: str | Site, *, model_id: str | None = None,
              revision: str | None = None) -> Site:
        """Read a site string (a `Site` is returned as is, with model_id/revision filled in)."""
        if isinstance(text, Site):
            if model_id is None and revision is None:
                return text
            return cls(text.kind, text.layer, text.component, text.pooling,
                       model_id if model_id is not None else text.model_id,
                       revision if revision is not None else text.revision)
        if not isinstance(text, str):
            raise SiteError(f"a site is a string, got {type(text).__name__} {text!r} "
                            f"(accepted forms: {FORMS})")
        if m := _LAYER.fullmatch(text):
            return cls("layer", layer=int(m["layer"]), pooling=m["pooling"], model_id=model_id,
                       revision=revision)
        if m := _TOKENS.fullmatch(text):
            return cls("tokens", pooling=m["pooling"], model_id=model_id, revision=revision)
        if m := _COMPONENT.fullmatch(text):
            return cls("component", component=m["component"], pooling=m["pooled"],
                       model_id=model_id, revision=revision)
        raise SiteError(f"cannot read site {text!r}: accepted forms are {FORMS}")

    @classmethod
    def at_layer(cls, layer: int, pooling: str, **provenance: Any) -> Site:
        """An encoder layer site: ``Site.at_layer(6, "mean")`` is ``layer:6/mean``."""
        return cls("layer", layer=int(layer), pooling=pooling, **provenance)

    def __str__(self) -> str:
        if self.kind == "layer":
            return f"layer:{self.layer}/{self.pooling}"
        if self.kind == "tokens":
            return f"tokens/{self.pooling}"
        return f"{self.component}.{POOLED}" if self.pooling == POOLED else str(self.component)

    def __eq__(self, other: object) -> bool:
        """Another site: every field equal (as `same_as`); a string: the site's own string."""
        if isinstance(other, str):
            return str(self) == other
        if not isinstance(other, Site):
            return NotImplemented
        return (self.kind, self.layer, self.component, self.pooling, self.model_id,
                self.revision) == (other.kind, other.layer, other.component, other.pooling,
                                   other.model_id, other.revision)

    def __hash__(self) -> int:  # equal sites have equal strings, so this agrees with __eq__
        return hash(str(self))

    def same_as(self, other: Site | str) -> bool:
        """Exact comparison with another site (a string is parsed first): every field, including
        model_id and revision, must be equal."""
        return self == Site.parse(other)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (artifacts may store this next to the site string)."""
        return {"kind": self.kind, "layer": self.layer, "component": self.component,
                "pooling": self.pooling, "model_id": self.model_id, "revision": self.revision}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Site:
        return cls(d["kind"], d.get("layer"), d.get("component"), d.get("pooling"),
                   d.get("model_id"), d.get("revision"))

