"""The SchemaDiff in a real JupyterLab + Chromium: the side-by-side table with a coloured row and
a written status per field, the verdict, the raw records in collapsible panes, theme-aware row
colours (light and dark), and the index browser's "Diff schema" action opening it."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

import atdata_lab as atdata
from tests.support.notebook_ui import make_notebook

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

TYPES = """
from typing import Optional
import numpy as np
from numpy.typing import NDArray
import atdata_lab as atdata
from atdata_lab.widgets import diff

@atdata.packable
class Reading:
    signal: NDArray[np.float32]
    label: int
    tags: list[int]
    gone: str

@atdata.packable
class ReadingNext:
    signal: NDArray[np.float64]
    label: Optional[int]
    tags: list[str]
    extra: Optional[str] = None
"""


def row(lab, field):
    return lab.page.locator(f".atdata-schema-diff-table tr.atdata-diff-row[data-field='{field}']")


def backgrounds(lab):
    return lab.page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.atdata-schema-diff-table tr.atdata-diff-row')]"
        ".map(r => [r.dataset.field, [getComputedStyle(r).backgroundColor,"
        " getComputedStyle(r.querySelector('.atdata-diff-status')).color]]))"
    )


def test_table_verdict_records_and_theme_colours(lab):
    lab.open_notebook(make_notebook(TYPES, "w = diff(Reading, ReadingNext)\nw"), name="schema_diff.ipynb")
    lab.run_all_and_wait()
    root = lab.widget("atdata-schema-diff")
    expect(root).to_be_visible()

    headers = lab.page.locator(".atdata-schema-diff-table thead th")
    expect(headers).to_have_text(["field", "left", "right", "status"])
    expected = {
        "signal": ("changed", "changed: dtype <f4 -> <f8"),
        "label": ("changed", "changed: required -> optional"),
        "tags": ("changed", "changed: list item type int -> str"),
        "gone": ("removed", "removed"),
        "extra": ("added", "added"),
    }
    for field, (status, text) in expected.items():
        r = row(lab, field)
        expect(r).to_have_attribute("data-status", status)
        expect(r).to_have_class(f"atdata-diff-row atdata-diff-{status}")
        expect(r.locator(".atdata-diff-status")).to_have_text(text)  # readable without colour
    expect(row(lab, "signal").locator(".atdata-diff-left")).to_have_text("ndarray<f4")
    expect(row(lab, "signal").locator(".atdata-diff-right")).to_have_text("ndarray<f8")
    expect(row(lab, "extra").locator(".atdata-diff-left")).to_have_text("—")
    verdict = lab.widget("atdata-schema-diff-verdict")
    expect(verdict).to_contain_text("breaking")
    expect(verdict).to_contain_text("use version 2.0.0 next")

    # both raw records, collapsed until opened
    for side, needle in (("left", '"name": "gone"'), ("right", '"name": "extra"')):
        pane = lab.widget(f"atdata-schema-diff-{side}-record")
        body = pane.locator(".atdata-json")
        expect(body).to_be_hidden()
        pane.get_by_text(f"{side} record:").click()
        expect(body).to_be_visible()
        expect(body).to_contain_text(needle)

    # colours: each status has its own tint, in the light and in the dark theme
    light = backgrounds(lab)
    tints = {light[f][0] for f in ("signal", "gone", "extra")}
    assert len(tints) == 3 and "rgba(0, 0, 0, 0)" not in tints
    lab.screenshot("schema-diff-light")
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    lab.page.wait_for_function(
        "(before) => { const r = document.querySelector(\".atdata-diff-row[data-field='extra']\");"
        " return getComputedStyle(r).backgroundColor !== before; }",
        arg=light["extra"][0],
    )
    dark = backgrounds(lab)
    assert len({dark[f][0] for f in ("signal", "gone", "extra")}) == 3
    for field in ("signal", "gone", "extra"):
        assert dark[field] != light[field]  # tint and text colour follow the theme
    lab.page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")
    lab.screenshot("schema-diff-dark")
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")

    # the kernel holds the same diff
    assert lab.kernel_eval("[w.verdict, w.next_version]") == ["breaking", "2.0.0"]
    assert lab.kernel_eval("[r.status for r in w.rows]") == [
        "changed",
        "changed",
        "changed",
        "removed",
        "added",
    ]


def probe_v1():
    @atdata.packable
    class Probe:
        x: int

    return Probe(x=1)


def probe_v2():
    @atdata.packable
    class Probe:  # the next version of the same type: one optional field more
        x: int
        note: Optional[str] = None

    return Probe(x=2, note="n")


def test_index_browsers_diff_schema_action_opens_it(lab):
    index = atdata.Index()  # the test's ATDATA_HOME, which the kernel inherits
    index.write([probe_v1()], name="probe-v1", progress=False)
    index.write([probe_v2()], name="probe-v2", progress=False)
    index.write([atdata.DictSample({"y": np.zeros(2, np.float32)})], name="other", progress=False)
    nb = make_notebook(
        "import atdata_lab as atdata\nindex = atdata.Index()", "browser = index.browse()\nbrowser"
    )
    lab.open_notebook(nb, name="browser_diff.ipynb")
    lab.run_all_and_wait()
    lab.page.locator(".atdata-index-browser-row[data-id='probe-v2']").click()
    lab.wait_for_kernel("browser.selected and browser.selected.name", "probe-v2")
    button = lab.widget("atdata-index-browser-diff")
    expect(button).to_have_text("Diff schema")
    expect(button).to_be_enabled()
    button.click()
    shown = lab.page.locator(".atdata-index-browser .atdata-schema-diff")
    expect(shown).to_be_visible()
    expect(shown.locator(".atdata-diff-row[data-field='note'] .atdata-diff-status")).to_have_text("added")
    expect(shown.locator(".atdata-schema-diff-verdict")).to_contain_text("compatible")
    expect(shown.locator(".atdata-schema-diff-verdict")).to_contain_text("1.1.0")
    lab.wait_for_kernel("type(browser.action_widget).__name__", "SchemaDiffViewer")
    assert lab.kernel_eval("browser.action_widget.verdict") == "compatible"
