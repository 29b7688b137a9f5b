"""`Site`: one parser for the three site forms, ``str`` gives the saved string back, exact equality."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.artifacts import edit_json
from xsteer.errors import XSteerError
from xsteer.site import Site, SiteError
from xsteer.workflow import parse_site

FORMS = ["layer:6/mean", "layer:0/last", "layer:12/mean", "tokens/mean", "tokens/last",
         "text_encoder", "text_encoder_2", "text_encoder_3", "text_encoder.pooled",
         "text_encoder_2.pooled"]


@pytest.mark.parametrize("text", FORMS)
def test_parse_then_str_gives_the_string_back(text):
    s = Site.parse(text)
    assert str(s) == text
    assert Site.parse(str(s)) == s
    assert Site.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_fields_of_each_form():
    assert Site.parse("layer:6/mean") == Site("layer", layer=6, pooling="mean")
    assert Site.parse("tokens/last") == Site("tokens", pooling="last")
    assert Site.parse("text_encoder_2.pooled") == Site("component", component="text_encoder_2",
                                                       pooling="pooled")
    assert Site.parse("text_encoder") == Site("component", component="text_encoder")
    assert Site.at_layer(6, "mean") == Site.parse("layer:6/mean")


@pytest.mark.parametrize("bad", ["", "layer:/mean", "layer:6", "layer:-1/mean", "layer:6/",
                                 "layer:x/mean", "tokens/", "text_encoder.tokens", "a.b.pooled",
                                 "6", "layer:6/mean ", "text encoder"])
def test_bad_strings_raise_naming_the_string_and_the_forms(bad):
    with pytest.raises(XSteerError) as e:
        Site.parse(bad)
    assert isinstance(e.value, SiteError)
    assert repr(bad) in str(e.value) and "layer:N/pooling" in str(e.value)


def test_bad_fields_raise():
    with pytest.raises(SiteError):
        Site("layer", layer=None, pooling="mean")
    with pytest.raises(SiteError):
        Site("component", component="text_encoder", pooling="mean")
    with pytest.raises(SiteError):
        Site("tokens", layer=3, pooling="mean")
    with pytest.raises(SiteError):
        Site("bogus", pooling="mean")  # type: ignore[arg-type]
    with pytest.raises(SiteError):
        Site.parse(6)  # type: ignore[arg-type]


def test_equality_is_exact_and_includes_provenance():
    a = Site.parse("layer:6/mean", model_id="m", revision="r1")
    assert a.same_as(Site.parse("layer:6/mean", model_id="m", revision="r1"))
    assert not a.same_as("layer:6/mean")  # no model id on the other side
    assert not a.same_as(Site.parse("layer:6/mean", model_id="m", revision="r2"))
    assert not a.same_as(Site.parse("layer:6/last", model_id="m", revision="r1"))
    assert Site.parse("layer:6/mean").same_as("layer:6/mean")
    assert not Site.parse("text_encoder").same_as("text_encoder.pooled")
    assert str(a) == "layer:6/mean"  # provenance is never part of the string
    assert hash(a) == hash(Site.parse("layer:6/mean", model_id="m", revision="r1"))


def test_parse_of_a_site_fills_provenance():
    s = Site.parse("tokens/mean")
    assert Site.parse(s) is s
    assert Site.parse(s, model_id="m").model_id == "m"


def test_workflow_parse_site_is_a_thin_wrapper():
    assert parse_site("layer:6/mean") == (6, "mean")
    with pytest.raises(XSteerError, match="text_encoder"):
        parse_site("text_encoder")


_POOL = st.from_regex(r"\A[a-z_][a-z0-9_]{0,8}\Z", fullmatch=True)
_COMPONENT = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z", fullmatch=True)
_SITES = st.one_of(
    st.builds(lambda n, p: f"layer:{n}/{p}", st.integers(0, 200), _POOL),
    st.builds(lambda p: f"tokens/{p}", _POOL),
    st.builds(lambda c, pooled: c + (".pooled" if pooled else ""), _COMPONENT, st.booleans()),
)


@given(_SITES)
def test_round_trip_property(text):
    s = Site.parse(text)
    assert str(s) == text
    assert Site.parse(text) == s and s.same_as(text)


def test_saved_directions_keep_the_site_string_and_old_artifacts_load(tmp_path):
    import torch

    from xsteer.directions import Direction

    d = Direction(torch.ones(3), model_id="m", site="layer:6/mean")
    d.save_pretrained(tmp_path / "new")
    meta = json.loads((tmp_path / "new" / "direction.json").read_text())
    assert meta["site"] == "layer:6/mean"
    assert Site.from_dict(meta["site_spec"]) == Site.parse("layer:6/mean", model_id="m")
    # an artifact written before site_spec existed
    edit_json(tmp_path / "new" / "direction.json", lambda m: m.pop("site_spec"))
    back = Direction.load(tmp_path / "new")
    assert back.site == "layer:6/mean" and Site.parse(back.site).layer == 6


def test_a_direction_site_is_a_site_that_equals_and_hashes_like_its_string():
    import torch

    from xsteer.directions import Direction

    d = Direction(torch.ones(3), model_id="m", site="text_encoder_2.pooled")
    assert isinstance(d.site, Site) and d.site.component == "text_encoder_2"
    assert d.site == "text_encoder_2.pooled" and "text_encoder_2.pooled" == d.site
    assert d.site != "text_encoder_2" and {"text_encoder_2.pooled": 1}[d.site] == 1
    assert Direction(torch.ones(3), model_id="m", site=d.site).site == d.site
    # exact comparison between sites still sees model_id and revision
    assert Site.parse("layer:6/mean", model_id="a") != Site.parse("layer:6/mean", model_id="b")
    with pytest.raises(SiteError):
        Direction(torch.ones(3), model_id="m", site="layer:-1/mean")
