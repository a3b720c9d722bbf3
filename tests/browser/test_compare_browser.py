"""The CompareView in a real JupyterLab + Chromium: two splits' field statistics side by side with
the differing cells highlighted and every difference also written out, the schema diff beside it,
and readable contrast of the highlighted cells in the light and the dark theme (computed from the
colours Chromium renders). ``ATDATA_UPDATE_SCREENSHOTS=1`` also refreshes the README's
``docs/screenshots/compare.png``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.test_index_browser_browser import _contrast, _rgb
from tests.support.notebook_ui import make_notebook

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

SETUP = """
import tempfile
import numpy as np
from numpy.typing import NDArray
import atdata_lab as atdata

@atdata.packable
class Photo:
    image: NDArray
    label: str
    score: float

def photos(n, shift=0.0, labels=("cat", "dog", "bird")):
    rng = np.random.default_rng(n)
    return [Photo(image=np.zeros((8, 8), np.uint8), label=labels[i % len(labels)],
                  score=float(rng.normal(0, 1)) + shift) for i in range(n)]

where = tempfile.mkdtemp()
train = atdata.write_samples(photos(300), where + "/train", maxcount=100, manifest=True)
test = atdata.write_samples(photos(120, shift=2.5, labels=("cat", "dog", "zebra")), where + "/test")
"""

SHOW = "view = train.compare(test)\nview"

_CELL_COLOURS = """
() => Array.from(document.querySelectorAll('.atdata-stats-compare td.atdata-cmp-diff')).map(td => {
  const a = td.querySelector('.atdata-cmp-a');
  return [getComputedStyle(a).color, getComputedStyle(td).backgroundColor];
})
"""


def row(lab, field):
    return lab.page.locator(f".atdata-stats-compare tr.atdata-cmp-row[data-field='{field}']")


def test_compare_view_highlights_differences_in_light_and_dark(lab):
    lab.page.set_viewport_size({"width": 1200, "height": 900})
    lab.open_notebook(make_notebook(SETUP, SHOW), name="compare.ipynb")
    lab.run_all_and_wait()
    lab.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # room for the table
    root = lab.widget("atdata-compare")
    expect(root).to_be_visible()
    expect(lab.widget("atdata-compare-title")).to_contain_text("→")

    headers = lab.page.locator(".atdata-stats-compare thead th")
    expect(headers).to_have_text(
        ["field", "status", "kind", "count", "nulls", "mean", "min", "max", "top / shape"]
    )
    # the differing fields: marked, and the difference written out (not colour alone)
    for field in ("score", "label"):
        expect(row(lab, field)).to_have_class("atdata-cmp-row atdata-cmp-changed")
        expect(row(lab, field).locator(".atdata-cmp-status")).to_have_text("changed")
    expect(row(lab, "score").locator(".atdata-cmp-note").first).to_contain_text("mean")
    expect(row(lab, "label").locator(".atdata-cmp-field")).to_contain_text("new 'zebra'")
    expect(row(lab, "label").locator(".atdata-cmp-field")).to_contain_text("gone 'bird'")
    expect(row(lab, "score").locator("td.atdata-cmp-diff")).to_have_count(3)  # mean, min, max
    expect(row(lab, "image").locator(".atdata-cmp-status")).to_have_text("same")
    expect(row(lab, "image").locator("td.atdata-cmp-diff")).to_have_count(0)
    # the schema diff beside it
    schema = lab.page.locator(".atdata-compare-schema .atdata-schema-diff")
    expect(schema).to_be_visible()
    expect(schema.locator(".atdata-schema-diff-verdict")).to_contain_text("identical")
    assert lab.kernel_eval("sorted(view.changed_fields)") == ["label", "score"]
    assert lab.kernel_eval("view.comparison.a.source") == "manifest"

    shots = {}
    for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
        lab.page.evaluate(
            f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
        )
        lab.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
        lab.page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")
        lab.page.wait_for_timeout(300)  # the theme's stylesheet applied
        cells = lab.page.evaluate(_CELL_COLOURS)
        assert len(cells) == 4  # score: mean, min, max; label: its values
        page_bg = _rgb(
            lab.page.evaluate(
                "() => getComputedStyle(document.querySelector('.jp-Notebook')).backgroundColor"
            )
        )
        for fg, bg in cells:
            ratio = _contrast(_rgb(fg), _rgb(bg))
            assert ratio >= 4.5, (theme, fg, bg, ratio)
            assert _contrast(_rgb(bg), page_bg) > 1.1, (theme, bg)  # the highlight shows
        root.scroll_into_view_if_needed()
        shots[light] = lab.screenshot(f"compare-{'light' if light == 'true' else 'dark'}")
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    if os.environ.get("ATDATA_UPDATE_SCREENSHOTS") == "1":  # the README's image
        shutil.copyfile(
            shots["true"], Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "compare.png"
        )
