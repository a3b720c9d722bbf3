"""The README's screenshots are real and kept current by the browser tests: every image the README
shows exists, and every file in ``docs/screenshots/`` is written by a browser test (run with
``ATDATA_UPDATE_SCREENSHOTS=1`` to refresh them), so none is a hand-made or forgotten picture."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "docs" / "screenshots"


def _browser_tests() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "tests" / "browser").glob("*.py")))


def test_every_readme_image_exists():
    images = re.findall(r"!\[[^\]]*\]\((docs/screenshots/[^)]+)\)", (REPO / "README.md").read_text())
    assert images
    assert [i for i in images if not (REPO / i).is_file()] == []


def test_every_screenshot_is_written_by_a_browser_test():
    tests = _browser_tests()
    assert "ATDATA_UPDATE_SCREENSHOTS" in tests
    orphans = []
    for png in sorted(SHOTS.glob("*.png")):
        themed = re.sub(r"-(light|dark)\.png$", "-{light,dark}.png", png.name)
        if png.name not in tests and themed not in tests:
            orphans.append(png.name)
    assert orphans == [], f"no browser test writes {orphans}: add it to one (ATDATA_UPDATE_SCREENSHOTS=1)"
