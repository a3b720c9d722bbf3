"""The IndexBrowser in a real JupyterLab, clicked through in headless Chromium: search, sort, page,
select a row, open the inspector, step to the next sample; errors shown in the widget; theme-aware
styles. Each step is asserted on the DOM and on the kernel's own state."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from tests.support.notebook_ui import make_notebook

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@atdata.packable
class Frame:
    image: NDArray
    label: int


@atdata.packable
class Reading:
    values: NDArray
    sensor: str


def build_index():
    """The index the notebook opens (the kernel gets this test's ATDATA_HOME)."""
    index = atdata.Index()
    rng = np.random.default_rng(0)
    index.write(
        [Frame(image=rng.integers(0, 255, (16, 16), dtype=np.uint8), label=i) for i in range(30)],
        name="frames-train",
        maxcount=10,
        description="training frames",
        tags=["img"],
        license="MIT",
        progress=False,
    )
    index.write(
        [Frame(image=rng.integers(0, 255, (16, 16), dtype=np.uint8), label=i) for i in range(8)],
        name="frames-test",
        tags=["img"],
        progress=False,
    )
    for i in range(6):
        index.write(
            [Reading(values=np.arange(32, dtype=np.float32) * (i + 1), sensor=f"s{j}") for j in range(4 + i)],
            name=f"run-{i:02d}",
            description="sensor run",
            tags=["exp"],
            progress=False,
        )
    return index


SETUP = "import atdata_lab as atdata\nindex = atdata.Index()\nlen(index)"
SHOW = "browser = index.browse(page_size=5, debounce=0.2)\nbrowser"


def rows(lab):
    return lab.page.locator(".atdata-index-browser-table tr.atdata-index-browser-row")


def row_names(lab):
    return [n for n in rows(lab).evaluate_all("rs => rs.map(r => r.dataset.id)")]


def test_search_sort_page_select_inspect(lab):
    build_index()
    lab.open_notebook(make_notebook(SETUP, SHOW), name="index_browser.ipynb")
    lab.run_all_and_wait()

    root = lab.widget("atdata-index-browser")
    expect(root).to_be_visible()
    expect(rows(lab)).to_have_count(5)
    expect(lab.widget("atdata-index-browser-page-label")).to_have_text("1–5 of 8")
    # the anywidget table and the shared stylesheet are both there
    assert lab.page.locator(".atdata-index-browser .atdata-style style").count() == 1
    assert row_names(lab) == lab.kernel_eval("browser.names")

    # page: the next button asks the index for the next page
    lab.widget("atdata-index-browser-next").click()
    expect(lab.widget("atdata-index-browser-page-label")).to_have_text("6–8 of 8")
    lab.wait_for_kernel("browser.offset", 5)
    lab.widget("atdata-index-browser-prev").click()
    expect(lab.widget("atdata-index-browser-page-label")).to_have_text("1–5 of 8")

    # search: keystrokes, debounced into one index query
    box = lab.page.locator(".atdata-index-browser-search input")
    box.press_sequentially("frames", delay=40)
    expect(rows(lab)).to_have_count(2)
    expect(lab.widget("atdata-index-browser-page-label")).to_have_text("1–2 of 2")
    assert lab.wait_for_kernel("browser.query", "frames") == "frames"
    assert lab.kernel_eval("browser._debouncer.calls") <= 2  # not one search per keystroke
    box.fill("")
    expect(rows(lab)).to_have_count(5)

    # sort: a header click sorts on the index side; a second click reverses
    header = lab.page.locator(".atdata-index-browser-th[data-key='samples']")
    header.click()
    lab.wait_for_kernel("[browser.sort, browser.descending]", ["num_samples", False])
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(rows(lab).first).to_have_attribute("data-id", "run-00")  # 4 samples: the fewest
    assert row_names(lab) == lab.kernel_eval("browser.names")
    header.click()
    lab.wait_for_kernel("browser.descending", True)
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows(lab).first).to_have_attribute("data-id", "frames-train")  # 30 samples: the most
    assert row_names(lab) == lab.kernel_eval("browser.names")

    # select a row: the detail panel with metadata, fields and shards
    lab.page.locator(".atdata-index-browser-row[data-id='frames-train']").click()
    lab.wait_for_kernel("browser.selected and browser.selected.name", "frames-train")
    detail = lab.widget("atdata-index-browser-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("training frames")
    expect(lab.widget("atdata-index-browser-detail-fields")).to_contain_text("Schema Frame@1.0.0")
    expect(lab.widget("atdata-index-browser-detail-shards")).to_contain_text("Shards (3)")
    expect(lab.page.locator(".atdata-index-browser-row[data-id='frames-train']")).to_have_class(
        "atdata-index-browser-row atdata-selected"
    )

    # open the inspector, then the next sample
    lab.widget("atdata-index-browser-inspect").click()
    inspector = lab.widget("atdata-sample-inspector")
    expect(inspector).to_be_visible()
    header = lab.widget("atdata-sample-inspector-header")
    expect(header).to_contain_text("sample 0 of 30")
    expect(header).to_contain_text("frames-train-000000.tar")
    image = lab.page.locator(".atdata-sample-inspector img.atdata-sample-inspector-image").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    lab.widget("atdata-sample-inspector-next").click()
    expect(header).to_contain_text("sample 1 of 30")
    lab.wait_for_kernel("browser.action_widget.k", 1)
    assert lab.kernel_eval("browser.action_widget.sample.label") == 1
    lab.screenshot("index-browser-light")

    # close the inspector
    lab.widget("atdata-index-browser-close-action").click()
    expect(inspector).to_have_count(0)
    lab.wait_for_kernel("browser.action_widget is None", True)


def test_errors_show_in_the_widget_and_refresh_sees_other_writers(lab):
    build_index()
    lab.open_notebook(make_notebook(SETUP, SHOW), name="index_browser_errors.ipynb")
    lab.run_all_and_wait()
    expect(rows(lab)).to_have_count(5)

    # the saved notebook carries a static view for nbviewer/GitHub next to the live widget
    saved = lab.save_notebook()
    bundle = saved["cells"][1]["outputs"][0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "1–5 of 8" in bundle["text/html"] and "run-05" in bundle["text/html"]
    assert bundle["text/plain"] == "IndexBrowser(1–5 of 8 entries, sorted by created_at descending)"

    # another writer deletes an entry that is still on the page; clicking it shows a readable error
    other = atdata.Index()
    victim = row_names(lab)[0]
    other.delete_entry(victim)
    lab.page.locator(f".atdata-index-browser-row[data-id='{victim}']").click()
    error = lab.page.locator(".atdata-index-browser > .atdata-error")
    expect(error).to_be_visible()
    expect(error.locator(".atdata-error-title")).to_have_text(f"Opening '{victim}' failed")
    expect(error.locator(".atdata-error-message")).to_contain_text(
        f"EntryNotFoundError: no dataset named '{victim}'"
    )
    expect(error.locator("details summary")).to_have_text("Traceback")  # folded away
    assert lab.kernel_eval("type(browser.errors.last).__name__") == "EntryNotFoundError"

    # ... and writes one; Refresh shows what the other writer did
    other.write([atdata.DictSample({"x": np.zeros(2)})], name="zz-new-from-elsewhere", progress=False)
    expect(lab.page.locator(".atdata-index-browser-row[data-id='zz-new-from-elsewhere']")).to_have_count(0)
    lab.widget("atdata-index-browser-refresh").click()
    expect(lab.page.locator(".atdata-index-browser-row[data-id='zz-new-from-elsewhere']")).to_have_count(1)
    expect(lab.page.locator(f".atdata-index-browser-row[data-id='{victim}']")).to_have_count(0)
    expect(error).to_be_hidden()  # the next action cleared it


def test_styles_follow_the_jupyterlab_theme(lab):
    build_index()
    lab.open_notebook(make_notebook(SETUP, SHOW), name="index_browser_theme.ipynb")
    lab.run_all_and_wait()
    th = lab.page.locator(".atdata-index-browser-th[data-key='name']")
    expect(th).to_be_visible()

    def colors():
        return th.evaluate("e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }")

    light = colors()
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    lab.page.wait_for_function(
        "(before) => { const e = document.querySelector(\".atdata-index-browser-th[data-key='name']\");"
        " const s = getComputedStyle(e); return s.color !== before[0] && s.backgroundColor !== before[1]; }",
        arg=light,
    )
    dark = colors()
    assert dark != light
    lab.page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")  # theme switch splash
    lab.screenshot("index-browser-dark")
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


@pytest.mark.sandbox
def test_published_tab_and_verify_in_the_browser(lab, pds_account):
    """Promote with the library, then check it in the Published tab: records, raw JSON, Verify."""
    from atdata_lab.atmosphere import Atmosphere

    index = build_index()
    index.atmosphere = Atmosphere.login(pds_account.handle, pds_account.password)
    uri = index.promote_entry("frames-test", license="MIT", progress=False)
    # the kernel logs in from the ATDATA_* variables it inherits: the password is not in the notebook
    nb = make_notebook(
        "import os\nimport atdata_lab as atdata\nfrom atdata_lab.atmosphere import Atmosphere\n"
        "client = Atmosphere.login(os.environ['ATDATA_HANDLE'], os.environ['ATDATA_PASSWORD'])\n"
        "index = atdata.Index(atmosphere=client)",
        "browser = index.browse(page_size=10)\nbrowser",
    )
    lab.open_notebook(nb, name="index_browser_published.ipynb")
    lab.run_all_and_wait()
    published_row = lab.page.locator(".atdata-index-browser-row[data-id='frames-test']")
    expect(published_row.locator(".atdata-badge-ok")).to_have_text("published")
    expect(published_row).to_contain_text(uri)

    lab.widget("atdata-index-browser-tabs").get_by_role("tab", name="Published", exact=True).click()
    records = lab.page.locator("tr.atdata-index-browser-record-row")
    expect(records).to_have_count(3)  # dataset, schema, label
    expect(lab.widget("atdata-index-browser-published-status")).to_contain_text(
        f"3 records in the repository of {pds_account.handle}"
    )
    lab.page.locator(f"tr.atdata-index-browser-record-row[data-id='{uri}']").click()
    detail = lab.widget("atdata-index-browser-record-detail")
    expect(detail).to_contain_text("dataset record")
    expect(detail.locator("pre")).to_contain_text('"name": "frames-test"')
    lab.widget("atdata-index-browser-verify").click()
    result = lab.widget("atdata-index-browser-verify-result")
    # published with its local file paths: every check passes but "loadable by others", and it says so
    expect(result.locator(".atdata-badge-warn")).to_have_text("only loadable on this machine")
    expect(result).to_contain_text("every other check passed")
    expect(result).to_contain_text("entry record present")
    expect(result).to_contain_text("load_dataset(")
    assert lab.wait_for_kernel(
        "browser.verification is not None and browser.verification.failed", ["loadable by others"]
    )
    lab.screenshot("index-browser-published")


# --------------------------------------------------------------------------- contrast and wrapping
_COLOUR_OF = """
(sel) => {
  const row = document.querySelector(sel);
  const cell = row.querySelector('td');
  return [getComputedStyle(cell).color, getComputedStyle(row).backgroundColor];
}
"""

# how many lines each number, size and date cell's text takes
_LINES_OF = """
() => Array.from(document.querySelectorAll(
    '.atdata-index-browser-table td.atdata-num > span, .atdata-index-browser-table td.atdata-index-browser-cell-created > span,'
    + ' .atdata-index-browser-table td.atdata-index-browser-cell-name > span')).map(sp => {
  const r = document.createRange();
  r.selectNodeContents(sp);
  return [sp.textContent, new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size];
})
"""


def _rgb(css: str) -> tuple[float, float, float, float]:
    """``rgb(…)``, ``rgba(…)`` or ``color(srgb …)`` (what Chromium computes for color-mix) as 0..255."""
    import re

    m = re.match(r"color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)(?: / ([\d.]+))?\)", css)
    if m:
        return (*(float(m[i]) * 255 for i in (1, 2, 3)), float(m[4] or 1))  # type: ignore[return-value]
    parts = [float(p) for p in re.findall(r"[\d.]+", css)]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)


def _contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    from tests.widgets.test_theme_contrast import contrast, over

    return contrast(over(fg, bg), bg)


def test_selected_rows_contrast_and_cells_stay_on_one_line(lab):
    """Issue 19's polish, rendered: the selected row's text has >= 4.5:1 contrast in the light and the
    dark theme (computed from the colours Chromium renders), and in a narrow window no number, size,
    date or name wraps ("939.0 KB", never "939.0" over "KB")."""
    build_index()
    lab.page.set_viewport_size({"width": 820, "height": 900})
    lab.open_notebook(make_notebook(SETUP, SHOW), name="index_browser_polish.ipynb")
    lab.run_all_and_wait()
    expect(rows(lab)).to_have_count(5)
    lines = lab.page.evaluate(_LINES_OF)
    assert lines and all(n == 1 for _, n in lines), lines
    first = row_names(lab)[0]
    lab.page.locator(f".atdata-index-browser-row[data-id='{first}']").click()
    sel = ".atdata-index-browser-table tr.atdata-selected"
    expect(lab.page.locator(sel)).to_have_count(1)
    lab.page.mouse.move(0, 0)  # not hovering the row
    for theme, light in (("JupyterLab Dark", "false"), ("JupyterLab Light", "true")):
        lab.page.evaluate(
            f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
        )
        lab.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
        lab.page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")
        lab.page.wait_for_timeout(300)  # the theme's stylesheet applied
        fg, bg = lab.page.evaluate(_COLOUR_OF, sel)
        ratio = _contrast(_rgb(fg), _rgb(bg))
        assert ratio >= 4.5, (theme, fg, bg, ratio)
