"""The index browser's Network tab in a real JupyterLab, clicked through in headless Chromium: two
publishers' datasets (one published with atdata-lab, one with the real atdata 0.7) found through
the sandbox's real AppView, one opened (its records and its
``load_dataset`` line), its samples inspected, read from its publisher's PDS blobs.
``ATDATA_UPDATE_SCREENSHOTS=1`` also refreshes the README's ``docs/screenshots/network-tab.png``."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from tests.support import atdata_reference as ref
from tests.support.notebook_ui import make_notebook

pytestmark = [pytest.mark.browser, pytest.mark.sandbox, pytest.mark.appview]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@atdata.packable
class Frame:
    image: NDArray
    label: int


def publish(sandbox, account, tmp_path, name, tag, n):
    """``account`` publishes ``n`` frames as ``name``, its shards as PDS blobs (anyone can read them)."""
    from atdata_lab.atmosphere import Atmosphere

    client = Atmosphere.login(
        account.handle, account.password, pds_url=sandbox.env(account)["ATDATA_PDS_URL"]
    )
    index = atdata.Index(
        path=tmp_path / f"{account.handle}.db",
        data_store=atdata.LocalDiskStore(tmp_path / account.handle),
        atmosphere=client,
    )
    rng = np.random.default_rng(n)
    samples = [Frame(image=rng.integers(0, 255, (16, 16), dtype=np.uint8), label=i) for i in range(n)]
    index.write(samples, name=name, description=f"frames of {account.handle}", tags=[tag], progress=False)
    return index.promote_entry(name, license="MIT", copy_to="blobs", progress=False)


def test_network_tab_finds_two_publishers_and_inspects_a_sample(lab, appview_sandbox, tmp_path, monkeypatch):
    from tests.plugins.sandbox import wait_until_indexed

    sb = appview_sandbox
    tag = f"nb{uuid.uuid4().hex[:8]}"
    alice, bob, carol = sb.create_account(), sb.create_account(), sb.create_account()
    a_uri = publish(sb, alice, tmp_path, "frames-alice", tag, 4)
    # bob publishes with atdata 0.7's own publishers, in its reference venv
    b_uri = ref.publish_dataset_with_atdata(sb.pds_url, bob.handle, bob.password, "rows-bob", tag)["uri"]
    for uri in (a_uri, b_uri):
        wait_until_indexed(sb.appview_url, uri)

    # the kernel is carol's: it logs in from the ATDATA_* variables it inherits (AppView URL included)
    for k, v in sb.env(carol).items():
        monkeypatch.setenv(k, v)
    nb = make_notebook(
        "import os\nimport atdata_lab as atdata\nfrom atdata_lab.atmosphere import Atmosphere\n"
        "client = Atmosphere.login(os.environ['ATDATA_HANDLE'], os.environ['ATDATA_PASSWORD'])\n"
        "index = atdata.Index(atmosphere=client)",
        "browser = index.browse(poll=None)\nbrowser",
    )
    lab.open_notebook(nb, name="network_tab.ipynb")
    lab.run_all_and_wait()

    lab.widget("atdata-index-browser-tabs").get_by_role("tab", name="Network", exact=True).click()
    lab.wait_for_kernel("browser.network.searched", True)
    box = lab.page.locator(".atdata-index-browser-network-search input")
    box.press_sequentially(tag, delay=30)  # debounced into one search
    rows = lab.page.locator("tr.atdata-index-browser-network-row")
    expect(rows).to_have_count(2)
    assert lab.wait_for_kernel("browser.network.query", tag) == tag
    a_row = lab.page.locator(f"tr.atdata-index-browser-network-row[data-id='{a_uri}']")
    b_row = lab.page.locator(f"tr.atdata-index-browser-network-row[data-id='{b_uri}']")
    expect(a_row.locator(".atdata-index-browser-network-cell-publisher")).to_contain_text(f"@{alice.handle}")
    expect(b_row.locator(".atdata-index-browser-network-cell-publisher")).to_contain_text(f"@{bob.handle}")
    expect(b_row.locator(".atdata-index-browser-network-cell-samples")).to_have_text(
        "?"
    )  # atdata's record states no count
    expect(lab.widget("atdata-index-browser-network-status")).to_contain_text(f"2 datasets matching '{tag}'")

    # open alice's: her records and the line that loads it
    a_row.click()
    lab.wait_for_kernel("browser.network.records is not None and browser.network.records.uri", a_uri)
    detail = lab.widget("atdata-index-browser-network-detail")
    expect(detail).to_be_visible()
    expect(detail.locator(".atdata-network-load-line")).to_have_text(
        f'load_dataset("@{alice.handle}/frames-alice")'
    )
    expect(detail.locator(".atdata-network-label-records")).to_contain_text("frames-alice")
    expect(detail.locator(".atdata-network-schema-record summary")).to_contain_text("schema")
    # the Copy button puts the line on the clipboard (and tells the kernel)
    line = f'load_dataset("@{alice.handle}/frames-alice")'
    lab.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = lab.page.locator(".atdata-index-browser-network-copy button")
    expect(copy).to_have_text("Copy load_dataset line")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert lab.page.evaluate("() => navigator.clipboard.readText()") == line
    assert lab.wait_for_kernel("browser.network.copy_button.copies", 1) == 1
    shot = lab.screenshot("index-browser-network-detail")
    if os.environ.get("ATDATA_UPDATE_SCREENSHOTS") == "1":  # the README's image
        shutil.copyfile(
            shot, Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "network-tab.png"
        )

    # its samples, read from alice's PDS blobs
    lab.widget("atdata-index-browser-network-inspect").click()
    inspector = lab.widget("atdata-sample-inspector")
    expect(inspector).to_be_visible()
    header = lab.widget("atdata-sample-inspector-header")
    expect(header).to_contain_text("sample 0 of 4")
    image = lab.page.locator(".atdata-sample-inspector img.atdata-sample-inspector-image").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    lab.widget("atdata-sample-inspector-next").click()
    expect(header).to_contain_text("sample 1 of 4")
    assert lab.wait_for_kernel("browser.network.action_widget.sample.label", 1) == 1

    # bob's, published by atdata 0.7: its samples open too (read from his PDS blob)
    lab.widget("atdata-index-browser-tabs").get_by_role("tab", name="Network", exact=True).click()
    b_row.click()
    lab.wait_for_kernel("browser.network.records is not None and browser.network.records.uri", b_uri)
    lab.widget("atdata-index-browser-network-inspect").click()
    assert lab.wait_for_kernel("browser.network.action_widget.sample.label", 0) == 0
    expect(lab.widget("atdata-sample-inspector-header")).to_contain_text("sample 0 of 12")
    lab.screenshot("index-browser-network")
