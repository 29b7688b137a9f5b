"""The proving-ground summary's source tables on planted rows: each direction's share is of the
native under the same operator, and rows a run lacks are left out."""

from __future__ import annotations

from experiments import pg_summary as ps


def _row(method: str, mode: str, strength: float, reduction: float) -> dict:
    return {"method": method, "mode": mode, "strength": strength, "reduction": reduction,
            "reduction_ci": (reduction - 0.05, reduction + 0.05), "asr": 0.9 * (1 - reduction),
            "rest_kept": {"rate": 0.6, "ci": (0.5, 0.7)}, "fidelity": 0.93, "n": 210,
            "n_benign": 64}


def _rows(*specs: tuple[str, str, float, float]) -> ps.Rows:
    return {(m, mode, s): _row(m, mode, s, red) for m, mode, s, red in specs}


def test_gemma_section_shares_are_of_the_native_under_the_same_operator():
    rows = _rows(("none", "none", 0.0, 0.0), ("native", "projection", 4.0, 0.40),
                 ("transported-qwen15", "projection", 4.0, 0.30),
                 ("native-gated", "gated", 4.0, 0.80), ("qwen15-gated", "gated", 4.0, 0.60))
    rows[("qwen15-gated", "gated", 4.0)].update(gate_unsafe=(150, 210), gate_benign=(1, 64))
    text = "\n".join(ps.gemma_section(rows))
    proj, gated = text.split("Gated ×4")
    # projection: 0.30 / 0.40; gated: 0.60 / 0.80 (not 0.60 / 0.40)
    assert "| transported from Qwen2.5-Coder-1.5B (best source into Gemma) | +30% [+25%, +35%] " \
           "| 75% |" in proj
    assert "+ target gate | +60% [+55%, +65%] | 75% |" in gated
    assert "| 150/210 / 1/64 |" in gated and "gate fired" not in proj
    assert "150%" not in gated
    assert "from MiniLM" not in text and "ensemble" not in text  # absent from the run: no row
    assert "210 held-out unsafe prompts, 64 benign captions, unsteered ASR 0.900" in text


def test_sources_table_without_a_native_has_no_share():
    rows = _rows(("transported-ridge", "projection", 4.0, 0.3))
    out = ps.sources_table(rows, ["native", "transported-ridge"])
    assert len(out) == 3 and out[2].split(" | ")[2] == "–"


def test_the_difference_to_native_is_paired_over_the_same_prompts():
    rows = _rows(("none", "none", 0.0, 0.0), ("native-gated", "gated", 4.0, 0.4),
                 ("qwen15-gated", "gated", 4.0, 0.7))
    keys = [(f"p{i}", 0) for i in range(40)]
    rows[("none", "none", 0.0)]["verdicts"] = dict.fromkeys(keys, True)
    rows[("native-gated", "gated", 4.0)]["verdicts"] = {k: i % 5 < 3 for i, k in enumerate(keys)}
    rows[("qwen15-gated", "gated", 4.0)]["verdicts"] = {k: i % 10 < 3 for i, k in
                                                        enumerate(keys)}
    out = ps.sources_table(rows, ["native-gated", "qwen15-gated"], base="native-gated")
    # native keeps 60% unsafe, qwen 30%: +30 points, an interval that excludes 0
    cell = out[3].split(" | ")[3]
    assert cell.startswith("+30 [") and int(cell.split("[")[1].split(",")[0]) > 0
    assert out[2].split(" | ")[3] == "–"  # the native against itself
