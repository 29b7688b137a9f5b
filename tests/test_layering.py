"""The package map holds: no import cycles, no lower layer importing a higher one, the library
importing nothing from experiments/ or tests/, no module past ~400 lines, and every package
saying in its docstring what lives there.

Imports are read with `ast` (nothing is imported), including imports inside functions — a lazy
import still ties two modules together — but not those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "xsteer"

# Low to high. A module may import its own package and any package on the same or a lower layer.
LAYERS = {
    "xsteer": 0, "errors": 0, "tensors": 0, "formatting": 0,
    "io": 1, "atomic": 1, "artifact_files": 1, "outdir": 1, "signing": 1, "hub": 1,
    "categories": 1,
    "site": 1,
    "provenance": 2,
    "models": 3, "data": 3,
    "directions": 4,
    "encoders": 5,
    "align": 6, "steer": 6,
    "pipelines": 7, "proving_ground": 7,
    "evaluate": 8,
    "workflow": 9, "probe_fit": 9, "gate_fit": 9, "adapter": 9,
    "demo": 10, "app": 10,
    "cli": 11, "__main__": 12,
}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == \
                    "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

        def visit_Call(self, node: ast.Call) -> None:  # __import__("xsteer.x", ...)
            if getattr(node.func, "id", None) == "__import__" and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
            self.generic_visit(node)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}
EDGES = {name: {m for m in found if m in MODULES and m != name}
         for name, found in IMPORTS.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "xsteer"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    assert _cycles(EDGES) == []


def test_no_import_cycles_between_packages():
    packages: dict[str, set[str]] = defaultdict(set)
    for a, bs in EDGES.items():
        packages[_package(a)].update(_package(b) for b in bs if _package(b) != _package(a))
    assert _cycles(packages) == []


def test_every_package_has_a_layer():
    assert {_package(m) for m in MODULES} <= set(LAYERS), "add new packages to LAYERS"


def test_lower_layers_do_not_import_higher_ones():
    bad = sorted(
        f"{a} imports {b}" for a, bs in EDGES.items() for b in bs
        if LAYERS[_package(b)] > LAYERS[_package(a)])
    assert bad == []


def test_the_library_imports_no_experiments_or_tests():
    bad = sorted(f"{m} imports {i}" for m, found in IMPORTS.items() for i in found
                 if i.split(".")[0] in ("experiments", "tests"))
    assert bad == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_past_the_size_one_reader_can_hold(module):
    assert len(MODULES[module].read_text(encoding="utf-8").splitlines()) <= MAX_LINES


@pytest.mark.parametrize("package", sorted(
    _module_name(p) for p in PACKAGE.rglob("__init__.py")))
def test_every_package_says_what_lives_there(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 10, f"{package} needs a docstring saying what lives there"


CLI_BODY_LINES = 40


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("xsteer.cli")))
def test_cli_commands_stay_thin(module):
    """A command parses and checks its arguments, calls one library function and prints; work
    longer than that belongs in the library, where a Python user can call it too."""
    long = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.body:
            body = node.body[1:] if ast.get_docstring(node) else node.body
            if body and body[-1].end_lineno - body[0].lineno + 1 > CLI_BODY_LINES:
                long.append(node.name)
    assert long == []


def test_the_cli_registers_its_commands_by_plain_imports():
    bad = sorted(m for m in MODULES if m.startswith("xsteer.cli") and (
        "__import__(" in MODULES[m].read_text(encoding="utf-8")
        or "import_module" in MODULES[m].read_text(encoding="utf-8")))
    assert bad == []
