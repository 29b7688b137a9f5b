"""``xsteer sweep`` is the harness command; ``xsteer eval`` is its hidden, deprecated alias."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from xsteer.cli import _register


def _first_words(text: str) -> set[str]:
    return {line.strip("│ ").split(" ")[0] for line in text.splitlines() if line.strip("│ ")}


def test_eval_is_a_hidden_deprecated_alias_of_sweep(tmp_path: Path) -> None:
    app = _register()
    args = [str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "out")]
    old = CliRunner().invoke(app, ["eval", *args])
    new = CliRunner().invoke(app, ["sweep", *args])
    assert old.stderr.strip().splitlines()[0] == ("xsteer eval is deprecated: use xsteer sweep "
                                                  "(same arguments)")
    assert "deprecated" not in new.stderr
    assert new.exception is not None  # the missing config fails the same way under both names
    assert type(old.exception) is type(new.exception) and str(old.exception) == str(new.exception)
    listed = _first_words(CliRunner().invoke(app, ["--help"]).output)
    assert "sweep" in listed and "evaluate" in listed and "eval" not in listed
