"""The SampleInspector in a real JupyterLab, clicked through in headless Chromium: next, previous,
jump, slider, random, colormap, slices of a volume, the grid and its thumbnails, JSON panes; each
step asserted on the DOM and on the kernel's state."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from tests.support.notebook_ui import make_notebook

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@atdata.packable
class Scan:
    image: NDArray
    volume: NDArray
    trace: NDArray
    name: str
    raw: bytes
    meta: dict


def write_scans(n=12):
    rng = np.random.default_rng(0)
    index = atdata.Index()
    index.write(
        [
            Scan(
                image=rng.random((24, 32)).astype(np.float32),
                volume=rng.integers(0, 9, (5, 10, 12), dtype=np.uint8),
                trace=np.sin(np.linspace(0, 3 * (i + 1), 100)),
                name=f"scan {i}",
                raw=bytes(range(i, i + 20)),
                meta={"i": i, "tags": ["a", "b"]},
            )
            for i in range(n)
        ],
        name="scans",
        maxcount=5,
        progress=False,
    )


NOTEBOOK = make_notebook(
    "import atdata_lab as atdata\nindex = atdata.Index()\nentry = index.get_entry_by_name('scans')",
    "insp = entry.inspect(seed=1)\ninsp",
)


def test_step_through_samples(lab):
    write_scans()
    lab.open_notebook(NOTEBOOK, name="inspector.ipynb")
    lab.run_all_and_wait()

    header = lab.widget("atdata-sample-inspector-header")
    expect(header).to_contain_text("sample 0 of 12")
    expect(header).to_contain_text("shard scans-000000.tar")
    fields = lab.page.locator(".atdata-sample-inspector-field")
    expect(fields).to_have_count(6)
    for kind in ("image", "volume", "line", "str", "bytes", "dict"):
        expect(lab.widget(f"atdata-sample-inspector-kind-{kind}")).to_have_count(1)
    images = lab.page.locator("img.atdata-sample-inspector-image")
    expect(images).to_have_count(3)  # the image, the volume's slice, the line plot
    assert images.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    expect(lab.widget("atdata-sample-inspector-kind-bytes")).to_contain_text("20 bytes: 00 01 02")
    expect(lab.widget("atdata-sample-inspector-kind-image")).to_contain_text("float32 (24, 32)")
    expect(lab.page.locator(".atdata-sample-inspector-kind-image svg.atdata-histogram")).to_have_count(1)

    # next / previous
    lab.widget("atdata-sample-inspector-next").click()
    expect(header).to_contain_text("sample 1 of 12")
    lab.wait_for_kernel("insp.k", 1)
    expect(lab.widget("atdata-sample-inspector-kind-str")).to_contain_text("scan 1")
    lab.widget("atdata-sample-inspector-prev").click()
    expect(header).to_contain_text("sample 0 of 12")
    lab.wait_for_kernel("insp.k", 0)

    # jump to a sample in the second shard
    jump = lab.page.locator(".atdata-sample-inspector-jump input")
    jump.fill("7")
    jump.press("Enter")
    expect(header).to_contain_text("sample 7 of 12")
    expect(header).to_contain_text("shard scans-000001.tar")
    lab.wait_for_kernel("insp.k", 7)
    assert lab.kernel_eval("insp.sample.name") == "scan 7"
    # the slider follows
    expect(lab.page.locator(".atdata-sample-inspector-slider .widget-readout")).to_have_text("7")

    # random: the kernel draws, the page shows it
    lab.widget("atdata-sample-inspector-random").click()
    lab.wait_for_kernel("insp.timings.get('step') is not None and insp.k != 7", True)
    k = lab.kernel_eval("insp.k")
    expect(header).to_contain_text(f"sample {k} of 12")

    # the JSON pane is collapsible
    details = lab.page.locator(".atdata-sample-inspector-kind-dict details")
    expect(details.locator("pre")).to_be_hidden()
    details.locator("summary").click()
    expect(details.locator("pre")).to_be_visible()
    expect(details.locator("pre")).to_contain_text('"tags"')


def test_colormap_slices_and_grid(lab):
    write_scans()
    lab.open_notebook(NOTEBOOK, name="inspector_grid.ipynb")
    lab.run_all_and_wait()
    header = lab.widget("atdata-sample-inspector-header")
    expect(header).to_contain_text("sample 0 of 12")

    image = lab.page.locator(".atdata-sample-inspector-kind-image img.atdata-sample-inspector-image")
    before = image.get_attribute("src")
    lab.page.locator(".atdata-sample-inspector-cmap select").select_option("gray")
    lab.wait_for_kernel("insp.cmap", "gray")
    expect(image).not_to_have_attribute("src", before)

    # the volume's slice selector
    volume_img = lab.page.locator(".atdata-sample-inspector-kind-volume img.atdata-sample-inspector-image")
    vol_before = volume_img.get_attribute("src")
    assert lab.page.locator(".atdata-sample-inspector-slice").count() == 1
    handle = lab.page.locator(".atdata-sample-inspector-slice .noUi-handle")
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    expect(lab.page.locator(".atdata-sample-inspector-slice .widget-readout")).to_have_text("3")
    lab.wait_for_kernel("insp.slices['volume']", [3])
    expect(volume_img).not_to_have_attribute("src", vol_before)

    # the grid: thumbnails of the first samples; a thumbnail opens its sample
    lab.widget("atdata-sample-inspector-view").get_by_role("button", name="Grid").click()
    thumbs = lab.page.locator(".atdata-sample-inspector-thumb")
    expect(thumbs).to_have_count(12)
    lab.wait_for_kernel("insp.grid_field", "image")
    assert lab.page.locator(".atdata-sample-inspector-thumb img").evaluate_all(
        "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(lab.widget("atdata-sample-inspector-grid-status")).to_contain_text("image: samples 0–11 of 12")
    lab.screenshot("sample-inspector-grid")
    lab.page.locator(".atdata-sample-inspector-grid-field select").select_option("volume")
    lab.wait_for_kernel("insp.grid_field", "volume")
    thumbs.nth(4).get_by_role("button", name="#4").click()
    expect(header).to_contain_text("sample 4 of 12")
    expect(lab.widget("atdata-sample-inspector-fields")).to_be_visible()
    expect(lab.widget("atdata-sample-inspector-grid-panel")).to_be_hidden()
    lab.wait_for_kernel("[insp.k, insp.view_toggle.value]", [4, "Sample"])
    lab.screenshot("sample-inspector-sample")


@atdata.packable
class Trace:
    trace: NDArray
    name: str


def test_line_plot_ticks_follow_the_theme_and_grid_is_disabled_without_images(lab):
    """Issue 19's polish, rendered: a line plot is dark ink on a transparent background, inverted by
    the dark theme; a dataset with no image field shows Grid disabled (no error panel)."""
    index = atdata.Index()
    index.write(
        [Trace(trace=np.sin(np.linspace(0, 6, 80) + i), name=f"t{i}") for i in range(3)],
        name="traces",
        progress=False,
    )
    nb = make_notebook(
        "import atdata_lab as atdata\nindex = atdata.Index()",
        "insp = index.get_entry_by_name('traces').inspect()\ninsp",
    )
    lab.open_notebook(nb, name="inspector_polish.ipynb")
    lab.run_all_and_wait()
    plot = lab.page.locator(".atdata-sample-inspector-kind-line img.atdata-sample-inspector-plot")
    expect(plot).to_be_visible()
    assert plot.evaluate("e => getComputedStyle(e).filter") == "none"
    grid = lab.widget("atdata-sample-inspector-view").get_by_role("button", name="Grid")
    expect(grid).to_be_disabled()
    expect(lab.page.locator(".atdata-sample-inspector-cmap select")).to_be_disabled()
    assert lab.kernel_eval("insp.errors.message") == ""
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    lab.page.wait_for_function(
        "() => getComputedStyle(document.querySelector('img.atdata-sample-inspector-plot')).filter.includes('invert')"
    )
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


@atdata.packable
class Photo:
    image: NDArray
    label: str
    caption: str


_CAPTIONS_FIT = """
() => Array.from(document.querySelectorAll('.atdata-sample-inspector-thumb')).map(tile => {
  const t = tile.getBoundingClientRect();
  return Array.from(tile.querySelectorAll('.atdata-sample-inspector-caption')).map(c => {
    const r = c.getBoundingClientRect();
    return {inside: r.left >= t.left - 0.5 && r.right <= t.right + 0.5, cut: c.scrollWidth > c.clientWidth,
            lines: Math.round(r.height / parseFloat(getComputedStyle(c).lineHeight)),
            ellipsis: getComputedStyle(c).textOverflow, title: c.title, fg: getComputedStyle(c).color};
  });
}).flat()
"""


def _photo(i: int) -> np.ndarray:
    """A small picture per sample: a gradient whose colours move with ``i``."""
    yy, xx = np.mgrid[0:24, 0:32]
    rgb = np.stack(
        [(xx * 8 + i * 7) % 256, (yy * 10 + i * 3) % 256, np.full_like(xx, (i % 3) * 110)], axis=-1
    )
    return rgb.astype(np.uint8)


def _tile_background() -> str:
    return "() => getComputedStyle(document.querySelector('.atdata-sample-inspector-thumb')).backgroundColor"


_CAPTION_SELECT_COLOURS = """() => {
  const sel = document.querySelector('.widget-select-multiple.atdata-sample-inspector-captions select');
  const bgOf = (n) => {
    for (; n; n = n.parentElement) {
      const c = getComputedStyle(n).backgroundColor;
      if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  return Array.from(sel.options).map((o) => ({
    text: o.textContent, selected: o.selected, fg: getComputedStyle(o).color, bg: bgOf(o),
  }));
}"""


def test_grid_pages_with_captions_in_light_and_dark(lab):
    """Issue 19's grid, rendered: paging through all 72 samples (first/prev disabled on the first
    page, next/last on the last), the page box and the page size, captions cut to the tile's width
    with the full text on hover (light and dark, >= 4.5:1), a tile opening its sample."""
    from tests.browser.test_index_browser_browser import _contrast, _rgb

    index = atdata.Index()
    index.write(
        [
            Photo(
                image=_photo(i),
                label=("cat", "dog", "bird")[i % 3],
                caption=f"photo {i} " + "with a caption far longer than a tile is wide " * 3,
            )
            for i in range(72)
        ],
        name="photos",
        maxcount=30,
        manifest=True,
        progress=False,
    )
    nb = make_notebook(
        "import atdata_lab as atdata\nindex = atdata.Index()",
        "insp = index.get_entry_by_name('photos').inspect()\ninsp",
    )
    lab.open_notebook(nb, name="inspector_paging.ipynb")
    lab.run_all_and_wait()
    status = lab.widget("atdata-sample-inspector-grid-status")
    thumbs = lab.page.locator(".atdata-sample-inspector-thumb")
    buttons = {
        name: lab.page.locator(f".atdata-sample-inspector-{name}-page")
        for name in ("first", "prev", "next", "last")
    }
    lab.widget("atdata-sample-inspector-view").get_by_role("button", name="Grid").click()
    expect(thumbs).to_have_count(16)
    expect(status).to_have_text("image: samples 0–15 of 72 (numbered from 0) · page 0 of 5 (0–4)")
    expect(buttons["first"]).to_be_disabled()
    expect(buttons["prev"]).to_be_disabled()
    expect(buttons["next"]).to_be_enabled()
    expect(buttons["last"]).to_be_enabled()

    lab.page.locator(".atdata-sample-inspector-captions select").select_option(["label", "caption"])
    lab.wait_for_kernel("insp.grid_captions", ["label", "caption"])
    expect(lab.page.locator(".atdata-sample-inspector-caption")).to_have_count(32)

    buttons["next"].click()
    expect(status).to_contain_text("samples 16–31 of 72")
    expect(thumbs.first.get_by_role("button", name="#16")).to_be_visible()
    buttons["last"].click()
    expect(status).to_contain_text("samples 64–71 of 72 (numbered from 0) · page 4 of 5")
    expect(thumbs).to_have_count(8)
    expect(buttons["next"]).to_be_disabled()
    expect(buttons["last"]).to_be_disabled()
    expect(buttons["prev"]).to_be_enabled()
    page_box = lab.page.locator(".atdata-sample-inspector-page input")
    expect(page_box).to_have_value("4")
    page_box.fill("2")
    page_box.press("Enter")
    expect(status).to_contain_text("samples 32–47 of 72")
    lab.wait_for_kernel("insp.grid_indices[0]", 32)

    for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
        lab.page.evaluate(
            f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
        )
        lab.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
        lab.page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')")
        lab.page.wait_for_timeout(300)  # the theme's stylesheet applied
        captions = lab.page.evaluate(_CAPTIONS_FIT)
        assert len(captions) == 32
        assert all(c["inside"] and c["lines"] == 1 and c["ellipsis"] == "ellipsis" for c in captions), (
            captions
        )
        long = [c for c in captions if c["title"].startswith("caption: ")]
        assert len(long) == 16 and all(c["cut"] for c in long)  # cut on the tile...
        first = 32 if light == "true" else 16
        assert (
            long[0]["title"]
            == f"caption: photo {first} " + "with a caption far longer than a tile is wide " * 3
        )
        bg = lab.page.evaluate(_tile_background())
        ratio = _contrast(_rgb(captions[0]["fg"]), _rgb(bg))
        assert ratio >= 4.5, (theme, captions[0]["fg"], bg, ratio)
        options = lab.page.evaluate(_CAPTION_SELECT_COLOURS)  # the Captions picker, chosen or not
        assert any(o["selected"] for o in options), options
        for o in options:
            assert _contrast(_rgb(o["fg"]), _rgb(o["bg"])) >= 4.5, (theme, o)
            if o["selected"] and light == "false":  # chosen rows darker than Chromium's light grey
                assert sum(_rgb(o["bg"])[:3]) < sum(_rgb("rgb(206, 206, 206)")[:3]), o
        buttons["first"].click()
        expect(status).to_contain_text("samples 0–15 of 72")
        expect(buttons["prev"]).to_be_disabled()
        buttons["next"].click()
        expect(status).to_contain_text("samples 16–31 of 72")
        shot = lab.screenshot(f"sample-inspector-grid-{'light' if light == 'true' else 'dark'}")
        if light == "true" and os.environ.get("ATDATA_UPDATE_SCREENSHOTS") == "1":  # the README's image
            shutil.copyfile(
                shot, Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "sample-grid.png"
            )
    lab.page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
    )
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")

    # the page size
    lab.page.locator(".atdata-sample-inspector-page-size select").select_option("32")
    expect(thumbs).to_have_count(32)
    expect(status).to_contain_text("samples 0–31 of 72 (numbered from 0) · page 0 of 3")
    # a tile opens its sample
    thumbs.nth(5).get_by_role("button", name="#5").click()
    expect(lab.widget("atdata-sample-inspector-header")).to_contain_text("sample 5 of 72")
    lab.wait_for_kernel("[insp.k, insp.view_toggle.value]", [5, "Sample"])

    # the grid follows the filter clicked in the Table view (the "dog" value of the label column)
    lab.widget("atdata-sample-inspector-table-toggle").click()
    dog = lab.page.locator(".atdata-samples-table-th[data-key='label'] [data-value='dog']")
    expect(dog).to_be_visible()
    dog.click()
    lab.wait_for_kernel("insp.filter is not None", True)
    lab.widget("atdata-sample-inspector-view").get_by_role("button", name="Grid").click()
    expect(status).to_have_text(
        "image: matches 0–23 of 24 (numbered from 0; 72 samples in all) · page 0 of 1 (0–0)"
    )
    expect(thumbs).to_have_count(24)
    expect(thumbs.first.get_by_role("button", name="#1")).to_be_visible()
    expect(buttons["next"]).to_be_disabled()
    expect(buttons["prev"]).to_be_disabled()
    assert lab.kernel_eval("insp.grid_indices[:3]") == [1, 4, 7]
