"""The package's layering, read from the source (AST of module-level imports; nothing is imported):
no import cycle between modules, and the layer rules of ``docs/architecture.md``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "atdata_lab"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(tree: ast.Module):
    """Import statements that run when the module is imported (not in functions, classes bodies
    included, not under ``if TYPE_CHECKING:``)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack += node.body + node.orelse
        elif isinstance(node, (ast.Try, ast.With)):
            stack += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            for h in getattr(node, "handlers", []):
                stack += h.body
        elif isinstance(node, ast.ClassDef):
            stack += node.body


def imports_of(name: str) -> set[str]:
    """The atdata_lab modules ``name`` imports at module level (``from pkg import sub`` imports the
    submodule ``sub`` when it is one, not ``pkg``'s body; parents imported implicitly do not count)."""
    path = MODULES[name]
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _module_level(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # a name that is a submodule depends on it; any other name on the module it comes from
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        for t in targets:
            if t in MODULES and t != name:
                out.add(t)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_ring():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_cycle():
    assert cycles(GRAPH) == []


def test_the_core_never_imports_the_widgets_or_plotting_at_import_time():
    for name, deps in GRAPH.items():
        if name.startswith("atdata_lab.widgets"):
            continue
        assert not {d for d in deps if d.startswith("atdata_lab.widgets")}, name
        tree = ast.parse(MODULES[name].read_text())
        third = {
            a.name.split(".")[0] for n in _module_level(tree) if isinstance(n, ast.Import) for a in n.names
        }
        third |= {
            (n.module or "").split(".")[0]
            for n in _module_level(tree)
            if isinstance(n, ast.ImportFrom) and not n.level
        }
        assert not third & {"ipywidgets", "anywidget", "matplotlib", "traitlets"}, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_parses(name):
    ast.parse(MODULES[name].read_text())
