"""The newcomer's journey, end to end in a real JupyterLab + headless Chromium + the real sandbox PDS.

Open ``notebooks/04-widgets-tour.ipynb``, run it, find the new dataset in the index browser, inspect
a sample (an image shows), diff its schema against the published one, promote it through the wizard
(from the browser's Promote… button), verify it, and check the published record in the Published
tab. Every step is asserted on the page and on the kernel's state, and screenshotted into
``test-artifacts/journey/``. ``ATDATA_UPDATE_SCREENSHOTS=1`` also refreshes the README's images in
``docs/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.sandbox, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "04-widgets-tour.ipynb"
ARTIFACTS = REPO / "test-artifacts" / "journey"
README_SHOTS = REPO / "docs" / "screenshots"
# the screenshots the README shows (artifact name -> docs/screenshots name)
README_IMAGES = {
    "03-index-browser": "index-browser.png",
    "04-sample-inspector": "sample-inspector.png",
    "05-schema-diff": "schema-diff.png",
    "09-wizard-verified": "promotion-wizard.png",
    "10-published-tab": "published-tab.png",
    "11-journey-end": "journey.png",
}
PASSWORD_SHAPE = re.compile(r"\b[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}\b")


class Shots:
    """Numbered screenshots: the whole page, or one widget (scrolled into view)."""

    def __init__(self, page):
        self.page = page
        self.taken: dict[str, Path] = {}
        if ARTIFACTS.exists():
            shutil.rmtree(ARTIFACTS)
        ARTIFACTS.mkdir(parents=True)

    def __call__(self, name: str, locator=None) -> Path:
        path = ARTIFACTS / f"{name}.png"
        if locator is None:
            self.page.screenshot(path=str(path))
        else:  # a tall window for a moment, so a tall widget fits in the notebook panel uncut
            size = self.page.viewport_size
            self.page.set_viewport_size({"width": size["width"], "height": 2600})
            try:
                locator.scroll_into_view_if_needed()
                self.page.wait_for_timeout(400)  # let images and the anywidget table settle
                locator.screenshot(path=str(path))
            finally:
                self.page.set_viewport_size(size)
        self.taken[name] = path
        return path

    def publish_to_readme(self) -> None:
        if os.environ.get("ATDATA_UPDATE_SCREENSHOTS") != "1":
            return
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        for name, target in README_IMAGES.items():
            shutil.copyfile(self.taken[name], README_SHOTS / target)


def wizard_part(scope, name):
    return scope.locator(f".atdata-promotion-wizard-{name}")


def click_next(wizard, step):
    button = wizard_part(wizard, "next")
    expect(button).to_be_enabled(timeout=60_000)
    button.click()
    expect(wizard_part(wizard, f"step-{step}")).to_be_visible(timeout=60_000)


def test_newcomer_journey(lab, monkeypatch):
    from atdata_lab.sandbox import cache_root, ensure_installed

    ensure_installed(progress=False)
    # the kernel gets every ATDATA_* variable: the installed sandbox (the server's HOME is a temp dir)
    monkeypatch.setenv("ATDATA_LAB_CACHE", str(cache_root().parent))
    monkeypatch.delenv("ATDATA_TOUR_AUTOPILOT", raising=False)
    for var in ("ATDATA_PDS_URL", "ATDATA_HANDLE", "ATDATA_PASSWORD"):
        monkeypatch.delenv(var, raising=False)  # the notebook starts its own sandbox and account
    page = lab.page
    failed_requests: list[str] = []
    page.on("requestfailed", lambda r: failed_requests.append(r.url))
    shots = Shots(page)

    # 1. open the tour in JupyterLab and run it
    lab.open_notebook(NOTEBOOK)
    shots("01-notebook-open")
    state = lab.run_all_and_wait(timeout=240)
    assert not state["errors"] and state["executed"] == state["total"], state
    assert lab.kernel_eval("wizard.step") == "connect"  # nothing promoted by the notebook itself
    handle = lab.kernel_eval("client.handle")
    shots("02-notebook-ran")

    # 2. find the new dataset in the index browser
    browser = lab.widget("atdata-index-browser").first
    expect(browser).to_be_visible()
    rows = browser.locator("tr.atdata-index-browser-row")
    expect(rows).to_have_count(3)
    browser.scroll_into_view_if_needed()
    browser.locator(".atdata-index-browser-search input").press_sequentially("captioned", delay=30)
    expect(rows).to_have_count(1)
    rows.first.click()
    lab.wait_for_kernel("browser.selected and browser.selected.name", "hopper-tiles-captioned")
    expect(browser.locator(".atdata-index-browser-detail-fields")).to_contain_text("Schema PhotoTile@1.1.0")
    expect(browser.locator(".atdata-index-browser-detail-shards")).to_contain_text("Shards (3)")
    # a shard's size and sample count stay on one line ("313.0 KB", never "313.0" over "KB")
    sizes = browser.locator(".atdata-index-browser-shards-table td:nth-child(3)")
    expect(sizes).to_have_count(3)
    assert sizes.evaluate_all(
        "tds => tds.map(td => { const r = document.createRange(); r.selectNodeContents(td);"
        " return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size; })"
    ) == [1, 1, 1]
    shots("03-index-browser", browser)

    # 3. inspect a sample: an image is shown
    browser.locator(".atdata-index-browser-inspect").click()
    inspector = browser.locator(".atdata-sample-inspector")
    expect(inspector).to_be_visible()
    for _ in range(3):
        inspector.locator(".atdata-sample-inspector-next").click()
    expect(inspector.locator(".atdata-sample-inspector-header")).to_contain_text("sample 3 of 72")
    image = inspector.locator("img.atdata-sample-inspector-image").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    lab.wait_for_kernel("browser.action_widget.k", 3)
    assert lab.kernel_eval("browser.action_widget.sample.caption") == "row 0, column 3"
    shots("04-sample-inspector", inspector)

    # 4. diff its schema against the published one
    select = browser.locator(".atdata-index-browser-diff-against select")
    labels = [t.replace("\xa0", " ") for t in select.locator("option").all_inner_texts()]
    published = next(i for i, t in enumerate(labels) if "as published" in t)
    select.select_option(index=published)
    browser.locator(".atdata-index-browser-diff").click()
    schema_diff = browser.locator(".atdata-schema-diff")
    expect(schema_diff).to_be_visible()
    expect(schema_diff.locator(".atdata-schema-diff-verdict")).to_contain_text("compatible")
    expect(schema_diff.locator(".atdata-schema-diff-verdict")).to_contain_text("1.1.0")
    expect(schema_diff.locator(".atdata-diff-added")).to_contain_text("caption")
    lab.wait_for_kernel("browser.action_widget.verdict", "compatible")
    assert lab.kernel_eval("browser.action_widget.comparison.left.source == 'published schema'") is True
    shots("05-schema-diff", schema_diff)

    # 5. promote it through the wizard (the browser's Promote… button)
    browser.locator(".atdata-index-browser-promote").click()
    wizard = browser.locator(".atdata-promotion-wizard")
    expect(wizard).to_be_visible()
    expect(wizard_part(wizard, "identity")).to_contain_text(f"Connected as @{handle}")
    click_next(wizard, "dataset")
    expect(wizard_part(wizard, "entry-card")).to_contain_text("hopper-tiles-captioned")
    click_next(wizard, "describe")
    wizard_part(wizard, "description").locator("textarea").fill("Grace Hopper photo tiles with captions")
    tags = wizard_part(wizard, "tags")
    for tag in ("images", "captions"):
        if tags.locator(".jupyter-widget-tag", has_text=tag).count():
            continue  # carried over from the entry's own tags
        tags.dispatch_event("click")
        tags.locator("input").fill(tag)
        tags.locator("input").dispatch_event("change")
        expect(tags.locator(".jupyter-widget-tag", has_text=tag)).to_be_visible()
    wizard_part(wizard, "license").locator("input").fill("CC0-1.0")
    expect(wizard_part(wizard, "validation")).to_contain_text("valid")
    shots("06-wizard-describe", wizard)
    click_next(wizard, "data")
    wizard_part(wizard, "data-mode").locator("label", has_text="Upload as PDS blobs").click()
    lab.wait_for_kernel("browser.action_widget.copy_to()", "blobs")
    expect(wizard_part(wizard, "data-info")).to_contain_text("blob", timeout=60_000)
    shots("07-wizard-data", wizard)
    click_next(wizard, "preview")
    expect(wizard_part(wizard, "decision")).to_contain_text(
        "Publish new schema PhotoTile@1.1.0", timeout=60_000
    )
    shots("08-wizard-preview", wizard)
    click_next(wizard, "publish")
    wizard_part(wizard, "publish").click()
    expect(wizard_part(wizard, "step-verify")).to_be_visible(timeout=120_000)
    checks = wizard_part(wizard, "checks")
    expect(checks).to_contain_text("All checks passed", timeout=120_000)
    expect(checks).to_contain_text(f'atdata.load_dataset("@{handle}/hopper-tiles-captioned", split="train")')
    lab.wait_for_kernel("browser.action_widget.status", "verified")
    uri = lab.kernel_eval("browser.action_widget.published_uri")
    assert uri.startswith("at://did:plc:") and "/science.alt.dataset.entry/" in uri
    shots("09-wizard-verified", wizard)

    # 6. the published record in the Published tab
    wizard_part(wizard, "open-browser").click()
    expect(browser.locator(".lm-TabBar-tab.lm-mod-current").first).to_have_text("Published")
    lab.wait_for_kernel("browser.selected_record and browser.selected_record['uri']", uri)
    records = browser.locator("tr.atdata-index-browser-record-row")
    expect(records).to_have_count(6)  # v1 and the new one: schema 1.0.0 and 1.1.0, 2 entries, 2 labels
    record = browser.locator(".atdata-index-browser-record-detail")
    expect(record).to_contain_text(uri)
    expect(record).to_contain_text("hopper-tiles-captioned")
    browser.locator(".atdata-index-browser-verify").click()
    expect(browser.locator(".atdata-index-browser-verify-result")).to_contain_text("verified", timeout=60_000)
    lab.wait_for_kernel("browser.verification is not None and browser.verification.ok", True)
    shots("10-published-tab", browser.locator(".atdata-index-browser-published"))

    # the kernel agrees: published, and anyone can load it back by handle and name
    assert lab.kernel_eval("index.get_entry_by_name('hopper-tiles-captioned').published_uri") == uri
    assert (
        lab.kernel_eval(f"len(atdata.load_dataset('@{handle}/hopper-tiles-captioned', split='train'))") == 72
    )
    assert lab.kernel_eval("{k: len(v) for k, v in index.list_published().items()}") == {
        "entries": 2,
        "schemas": 2,
        "labels": 2,
    }
    shots("11-journey-end")

    # no secret anywhere: the saved notebook, the page, the server log
    password = lab.kernel_eval("account.password")
    saved = lab.save_notebook()
    text = lab.notebook_file().read_text()
    assert saved["cells"] and password not in text and not PASSWORD_SHAPE.search(text)
    assert password not in page.content() and password not in lab.server.log_tail(10_000)
    errors = [m for m in page.atdata_console if m.startswith("[pageerror]")]
    assert not errors, errors
    shots.publish_to_readme()
    print(
        f"\njourney screenshots: {ARTIFACTS}; requests that failed (offline machine): {len(failed_requests)}"
    )
