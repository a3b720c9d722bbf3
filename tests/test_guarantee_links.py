"""Every test the README and docs/guarantees.md cite as proof exists (a renamed test breaks this)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`((?:R|tests)/[\w/]+\.py)::([\w:]+)`")


def _defines(path: Path, names: list[str]) -> bool:
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    for i, name in enumerate(names):
        last = i == len(names) - 1
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if last else (ast.ClassDef,)
        node = next((n for n in scope if isinstance(n, kinds) and n.name == name), None)
        if node is None:
            return False
        scope = node.body
    return True


@pytest.mark.parametrize("doc", ["README.md", "docs/guarantees.md"])
def test_every_cited_test_exists(doc):
    cited = CITED.findall((REPO / doc).read_text())
    assert len(cited) >= 10, f"{doc}: expected test ids in backticks"
    missing = []
    for path, name in cited:
        file = REPO / re.sub(r"^R/", "tests/reliability/", path)
        if not file.is_file() or not _defines(file, name.split("::")):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc} cites tests that do not exist:\n" + "\n".join(missing)


def test_the_hostile_publisher_section_cites_every_numbered_case():
    for doc in ("README.md", "docs/guarantees.md"):
        text = (REPO / doc).read_text()
        assert "Loading other people's datasets" in text
        for case in range(1, 8):
            assert f"test_hostile_publisher.py::test_{case}_" in text, f"{doc}: case {case} is not cited"
