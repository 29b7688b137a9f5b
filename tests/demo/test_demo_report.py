"""The demo's report: plots and Markdown from a metrics dict (no models needed)."""

from xsteer.demo.report import plot_category_cosines, plot_tradeoff, render_markdown

ROW_KEYS = ("asr_before", "asr_after", "asr_linear_after", "pair_fidelity_after", "self_cosine",
            "benign_cosine", "auroc", "false_trigger_rate", "unsafe_trigger_rate")


def row(kind, method, asr_after, curve=True):
    r = {k: 0.5 for k in ROW_KEYS} | {"direction": kind, "method": method, "asr_after": asr_after,
                                     "asr_before": 0.9, "cos_native": 0.8}
    r["curve"] = [{"strength": s, "asr_after": 0.9 - s, "benign_cosine": 1 - s / 4}
                  for s in (0.1, 0.5)] if curve else []
    return r


def metrics():
    pair = {"source": "src-model", "target": "tgt-model", "source_site": "layer:6/mean",
            "target_site": "layer:6/mean",
            "rows": [row("none", "-", 0.9, curve=False), row("native", "mean-diff", 0.2),
                     row("random", "random", 0.88), row("transported", "ridge", 0.3)],
            "category_cosines": {"ridge": {"global": 0.8, "sexual": 0.5}}}
    return {"strength": 0.5, "n_train_pairs": 10, "n_test_pairs": 10, "n_anchors": 100,
            "n_captions": 20, "pairs": [pair], "seconds": 1.0}


def test_report_writes_plots_and_tables(tmp_path):
    m = metrics()
    paths = [plot_tradeoff(m["pairs"], tmp_path), plot_category_cosines(m["pairs"], tmp_path)]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = render_markdown(m, [p.name for p in paths])
    assert "## src-model → tgt-model" in md
    assert "| transported | ridge | 0.800 | 0.900 | 0.300 |" in md
    assert "| ridge | 0.800 | 0.500 |" in md
    assert "![tradeoff.png](tradeoff.png)" in md


def test_piped_tables_show_every_number(monkeypatch):
    import io

    from rich.console import Console

    from xsteer.demo.run import PIPED_WIDTH, _console, _print_table

    monkeypatch.delenv("COLUMNS", raising=False)
    assert _console().width == PIPED_WIDTH  # pytest captures stdout: not a terminal
    row = metrics()["pairs"][0]["rows"][-1] | {"cos_native": 0.123456, "asr_after": 0.987654,
                                               "false_trigger_rate": 0.654321}
    out = io.StringIO()
    for width in (PIPED_WIDTH, 60):  # wide enough: one line per row; narrow: folded, not cut
        _print_table(Console(file=out, width=width), [metrics()["pairs"][0] | {"rows": [row]}])
        text = out.getvalue().replace("│", "").replace(" ", "").replace("\n", "")
        assert "…" not in out.getvalue()
        for number in ("0.12", "0.90→0.99", "0.65"):
            assert number in text
