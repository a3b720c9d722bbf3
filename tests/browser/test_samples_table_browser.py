"""The SamplesTable in a real JupyterLab, in headless Chromium, light and dark: the table renders,
scrolling fetches new rows from the kernel (only the rows in view are in the page), clicking a
histogram bar or a top value filters and shows the code line, no number cell wraps, and the
selected row's rendered contrast is >= 4.5:1. Screenshots go to ``test-artifacts/``;
``ATDATA_UPDATE_SCREENSHOTS=1`` also refreshes ``docs/screenshots/samples-table-{light,dark}.png``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from tests.browser.test_index_browser_browser import _contrast, _rgb
from tests.support.notebook_ui import make_notebook

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
pytest.importorskip("pandas")

N = 3000
LABELS = ["cat", "dog", "eel", "fox"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@atdata.packable
class Pic:
    image: NDArray
    label: str
    score: float
    idx: int
    caption: str


def build():
    rng = np.random.default_rng(0)
    atdata.Index().write(
        [
            Pic(
                image=rng.integers(0, 255, (16, 16), dtype=np.uint8),
                label=LABELS[i % 4],
                score=float(rng.random()) * 100,
                idx=i,
                caption=f"picture number {i} of a {LABELS[i % 4]} " + "with a long caption " * 8,
            )
            for i in range(N)
        ],
        name="pics",
        maxcount=500,
        manifest=True,
        progress=False,
    )


SETUP = "import atdata_lab as atdata\nindex = atdata.Index()\nentry = index.get_entry_by_name('pics')"
SHOW = "table = entry.table(height=360)\nstats = table.wait_stats()\ntable"

ROWS = ".atdata-samples-table-row[data-index]"

# how many lines each number cell's text takes
_LINES_OF = """
() => Array.from(document.querySelectorAll('.atdata-samples-table-td.atdata-num')).map(td => {
  const r = document.createRange();
  r.selectNodeContents(td);
  return [td.textContent, new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size,
          td.scrollWidth <= td.clientWidth + 1];
})
"""

_COLOUR_OF = """
(sel) => {
  const row = document.querySelector(sel);
  const cell = row.querySelector('.atdata-samples-table-text');
  return [getComputedStyle(cell).color, getComputedStyle(row).backgroundColor];
}
"""


def indices(lab):
    return [int(x) for x in lab.page.locator(ROWS).evaluate_all("rs => rs.map(r => r.dataset.index)")]


def set_theme(lab, theme, light):
    lab.page.evaluate(
        f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
    )
    lab.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    lab.page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")
    lab.page.wait_for_timeout(300)  # the theme's stylesheet applied


def shot(lab, name):
    path = lab.screenshot(name)
    if os.environ.get("ATDATA_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS / f"{name}.png")


def test_table_scroll_filter_code_line_contrast(lab):
    build()
    lab.page.set_viewport_size({"width": 1100, "height": 1000})
    lab.open_notebook(make_notebook(SETUP, SHOW), name="samples_table.ipynb")
    lab.run_all_and_wait()

    root = lab.widget("atdata-samples-table")
    expect(root).to_be_visible()
    expect(lab.page.locator(f"{ROWS}[data-index='0']")).to_have_count(1)
    shown = indices(lab)
    assert lab.page.locator(".atdata-samples-table-view").count() == 1
    assert shown[:5] == [0, 1, 2, 3, 4] and len(shown) < 40  # only the rows in view are in the page
    expect(lab.widget("atdata-samples-table-status")).to_contain_text(f"{N:,} of {N:,} samples")
    # thumbnails, and statistics in the headers (from the manifests)
    thumb = lab.page.locator(".atdata-samples-table-thumb").first
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    score_th = lab.page.locator(".atdata-samples-table-th[data-key='score']")
    expect(score_th.locator("svg.atdata-colstats-hist")).to_be_visible()
    expect(lab.page.locator(".atdata-samples-table-th[data-key='label'] [data-value='cat']")).to_be_visible()

    # no number cell wraps or overflows
    lines = lab.page.evaluate(_LINES_OF)
    assert lines and all(n == 1 and fits for _, n, fits in lines), lines

    # scrolling far asks the kernel for that window of rows
    body = lab.page.locator(".atdata-samples-table-body")
    body.evaluate("b => { b.scrollTop = 2000 * 40; }")
    expect(lab.page.locator(f"{ROWS}[data-index='2000']")).to_have_count(1)
    assert all(1990 <= i <= 2020 for i in indices(lab)), indices(lab)
    req = lab.wait_for_kernel(
        "table.view.request['offset'] <= 2000 < table.view.request['offset'] + table.view.request['count']"
    )
    assert req is True
    body.evaluate("b => { b.scrollTop = b.scrollHeight; }")
    expect(lab.page.locator(f"{ROWS}[data-index='{N - 1}']")).to_have_count(1)

    # a header click sorts on the kernel side
    lab.page.locator(".atdata-samples-table-th[data-key='score'] .atdata-samples-table-th-title").click()
    lab.wait_for_kernel("[table.view.sort_key, table.view.descending]", ["score", False])
    expect(score_th).to_have_attribute("aria-sort", "ascending")
    lab.page.wait_for_function("() => document.querySelector('.atdata-samples-table-body').scrollTop === 0")
    first = lab.kernel_eval("int(table._order[0])")
    expect(lab.page.locator(ROWS).first).to_have_attribute("data-index", str(first))

    # clicking a histogram bar filters, and shows the code line
    score_th.locator("g.atdata-colstats-bin[data-bin='0']").click()
    code = lab.widget("atdata-samples-table-code").locator(".atdata-samples-table-code-line")
    expect(code).to_contain_text("ds.query(where=")
    expect(code).to_contain_text("F.score")
    count = lab.kernel_eval("stats.columns['score'].histogram[0][2]")
    assert lab.wait_for_kernel("table.n_rows", count) == count
    expect(lab.widget("atdata-samples-table-status")).to_contain_text(f"{count:,} of {N:,} samples")
    high = lab.kernel_eval("stats.columns['score'].histogram[0][1]")
    got = lab.kernel_eval(f"all(entry.dataset()[i].score <= {high} for i in {indices(lab)[:10]})")
    assert got is True
    assert lab.kernel_eval("table.code") == code.text_content()

    # clicking a top value: the label filter, its exact code line
    lab.page.locator(".atdata-samples-table-th[data-key='label'] [data-value='dog']").click()
    expect(code).to_have_text('ds.query(where=F.label == "dog")')
    assert lab.wait_for_kernel("len(table.selection)", N // 4) == N // 4
    assert lab.kernel_eval("table.selection.locations() == entry.dataset().query(table.filter)")
    assert all(i % 4 == 1 for i in indices(lab))

    # typing a predicate
    box = lab.page.locator(".atdata-samples-table-query input")
    box.fill('F.label == "fox" and F.idx < 40')
    box.press("Enter")
    expect(code).to_have_text('ds.query(where=(F.label == "fox") & (F.idx < 40))')
    expect(lab.page.locator(ROWS)).to_have_count(10)
    # a malicious one is refused in the widget, and nothing ran
    box.fill("__import__('os').system('echo pwned')")
    box.press("Enter")
    error = lab.page.locator(".atdata-samples-table > .atdata-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("PredicateSyntaxError")
    expect(code).to_have_text('ds.query(where=(F.label == "fox") & (F.idx < 40))')
    box.fill('F.label == "fox" and F.idx < 40')  # back to a good one: the error is cleared
    box.press("Enter")
    expect(error).to_be_hidden()

    # select a row: its values in full; contrast of the selected row in both themes
    lab.page.locator(f"{ROWS}[data-index='7']").click()
    lab.wait_for_kernel("table.view.selected", 7)
    expect(lab.widget("atdata-samples-table-detail")).to_contain_text("picture number 7 of a fox")
    sel = ".atdata-samples-table-row.atdata-selected"
    expect(lab.page.locator(sel)).to_have_count(1)
    lab.page.mouse.move(0, 0)
    shot(lab, "samples-table-light")
    fg, bg = lab.page.evaluate(_COLOUR_OF, sel)
    assert _contrast(_rgb(fg), _rgb(bg)) >= 4.5, ("light", fg, bg)
    set_theme(lab, "JupyterLab Dark", "false")
    fg2, bg2 = lab.page.evaluate(_COLOUR_OF, sel)
    assert (fg2, bg2) != (fg, bg)
    assert _contrast(_rgb(fg2), _rgb(bg2)) >= 4.5, ("dark", fg2, bg2)
    lines = lab.page.evaluate(_LINES_OF)
    assert lines and all(n == 1 and fits for _, n, fits in lines), lines
    shot(lab, "samples-table-dark")
    set_theme(lab, "JupyterLab Light", "true")
