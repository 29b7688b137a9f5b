"""The report renders: Markdown images exist, the HTML parses and embeds valid PNGs."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.report import write_report


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.cells: list[str] = []
        self.stack: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        if tag in ("td", "th"):
            self._in_td = True
        if tag not in ("img", "meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()
        self._in_td = False

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data)


def test_report_renders_tables_plots_and_grids(finished_run: Path) -> None:
    md_path, html_path = write_report(finished_run)
    md = md_path.read_text()
    assert "| benchmark | method |" in md and "ASR any" in md and "CLIP (100·cos)" in md
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert any("tradeoff" in r and "clip_score" in r for r in refs)
    assert any("tradeoff" in r and "fid" in r for r in refs)
    assert {Path(r).name for r in refs if "grid" in r} >= {"grid-sexual.png", "grid-violence.png"}
    for r in refs:
        assert (md_path.parent / r).is_file(), r
    parser = _Collect()
    parser.feed(html_path.read_text())
    parser.close()
    assert parser.stack == []
    assert len(parser.imgs) == len(refs)
    for src in parser.imgs:  # self-contained: every image is an embedded, decodable PNG
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    assert {"native", "random", "none"} <= set(parser.cells)
    # the grid has one column per method: unsteered, native, random
    with Image.open(md_path.parent / "grids" / "grid-sexual.png") as g:
        assert g.size[0] == 3 * 128


def test_report_of_an_unfinished_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(XSteerError, match=r"summary\.json"):
        write_report(tmp_path)
