"""The results page's headline: the goal is judged on measured numbers, all three conditions."""

from __future__ import annotations

from experiments.transport_study import render_summary


def _pair(cos: float, fid: float, false: float) -> dict:
    row = {"kind": "transported", "cos_native": cos, "auroc": 0.9, "false_trigger_rate": false,
           "ratios": {"knn_equal_strength": fid, "knn_equal_fidelity": fid}}
    return {"source": "s", "target": "t", "native_ceiling": 0.9,
            "rows": [{**row, "label": "ridge", "cos_native": 0.1},
                     {**row, "label": "better"}]}


def test_goal_needs_cosine_reduction_and_false_triggers():
    assert "| better | 0.80 |" in "\n".join(render_summary([_pair(0.8, 0.95, 0.0)]))
    assert render_summary([_pair(0.8, 0.95, 0.0)])[-2].endswith("| yes |")
    for bad in (_pair(0.7, 0.95, 0.0), _pair(0.8, 0.5, 0.0), _pair(0.8, 0.95, 0.05)):
        assert render_summary([bad])[-2].endswith("| no |")


def test_cli_reads_the_options_run_needs(monkeypatch, tmp_path):
    import pytest

    from experiments import transport_study as ts

    seen = {}
    monkeypatch.setattr(ts, "run", lambda *a: seen.update(args=a))
    with pytest.raises(SystemExit) as e:
        ts.main(["--out", str(tmp_path / "r.md"), "--json", str(tmp_path / "r.json"),
                 "--generic", "5", "--jobs", "1", "--pairs", "a:b,c:d", "--no-heldout"])
    assert e.value.code == 0
    assert seen["args"] == (tmp_path / "r.md", tmp_path / "r.json", 5, 1, (("a", "b"), ("c", "d")),
                            False)
    with pytest.raises(SystemExit):
        ts.main([])
    assert seen["args"][0] == ts.Path("docs/results.md") and seen["args"][4] == ts.PAIRS
    assert seen["args"][5] is True  # the page leads with both held-out sets by default


def test_bad_pairs_are_refused():
    import pytest
    import typer

    from experiments.transport_study import parse_pairs

    with pytest.raises(typer.BadParameter, match="a:b:c"):
        parse_pairs("a:b:c")


def test_a_rerun_keeps_the_block_other_targets_render() -> None:
    from experiments.transport_study import keep_block

    old = ("# Transport results\nold header\n\n<!-- kept:start -->\n## Lead\nfrom other pages\n"
           "<!-- kept:end -->\n\n## Headline\nold numbers\n")
    new = "# Transport results\nnew header\n\n## Headline\nnew numbers\n"
    page = keep_block(old, new)
    assert page.index("new header") < page.index("## Lead") < page.index("## Headline")
    assert "from other pages" in page and "new numbers" in page and "old numbers" not in page
    assert keep_block("# no block\n", new) == new
