"""Every test the README and docs/guarantees.md cite as proof exists (a renamed test breaks this)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`((?:R|tests)/[\w/]+\.py)::([\w:]+)`")


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)}


# where inherited test methods come from: the file itself and the conformance suites it opts into
SUITES = {
    name: node
    for f in sorted((REPO / "tests" / "conformance").glob("*.py"))
    for name, node in _classes(f).items()
}


def _has_method(cls: ast.ClassDef, name: str, own: dict[str, ast.ClassDef], seen: set[str]) -> bool:
    if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in cls.body):
        return True
    for base in cls.bases:
        base_name = (
            base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
        )
        parent = own.get(base_name) or SUITES.get(base_name)
        if (
            parent is not None
            and base_name not in seen
            and _has_method(parent, name, own, seen | {base_name})
        ):
            return True
    return False


def _defines(path: Path, names: list[str]) -> bool:
    """``path`` defines the test ``names`` (``[function]`` or ``[Class, method]``, inherited methods too)."""
    tree = ast.parse(path.read_text())
    if len(names) == 1:
        return any(
            isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == names[0] for n in tree.body
        )
    own = _classes(path)
    cls = own.get(names[0])
    return cls is not None and len(names) == 2 and _has_method(cls, names[1], own, {names[0]})


@pytest.mark.parametrize("doc", ["README.md", "docs/guarantees.md"])
def test_every_cited_test_exists(doc):
    cited = CITED.findall((REPO / doc).read_text())
    assert len(cited) >= 10, f"{doc}: expected test ids in backticks"
    missing = []
    for path, name in cited:
        file = REPO / re.sub(r"^R/", "tests/reliability/", path)
        if not file.name.startswith("test_") or not file.is_file() or not _defines(file, name.split("::")):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc} cites tests that do not exist:\n" + "\n".join(missing)


def test_the_hostile_publisher_section_cites_every_numbered_case():
    for doc in ("README.md", "docs/guarantees.md"):
        text = (REPO / doc).read_text()
        assert "Loading other people's datasets" in text
        for case in range(1, 8):
            assert f"test_hostile_publisher.py::test_{case}_" in text, f"{doc}: case {case} is not cited"
