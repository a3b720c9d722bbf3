"""The PromotionWizard in a real JupyterLab + Chromium against the real sandbox PDS: click through
from login to verify, check the records on the PDS through the library, then save the notebook
through JupyterLab (with widget state saving on) and find the app password nowhere in the file."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.notebook_ui import LabPage, make_notebook

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

SETUP = """
import numpy as np
import atdata_lab as atdata
from numpy.typing import NDArray
from atdata_lab.widgets import PromotionWizard

@atdata.packable
class FeatureSample:
    features: NDArray
    label: int

rng = np.random.default_rng(0)
index = atdata.Index(data_store=atdata.LocalDiskStore())
index.write([FeatureSample(features=rng.standard_normal(16).astype(np.float32), label=i % 10)
             for i in range(100)], name="fv", maxcount=50, progress=False)
"""


@pytest.fixture
def state_lab(jupyter_lab, page, request):
    """A LabPage on a server of its own whose JupyterLab saves widget state into the notebook."""
    server = jupyter_lab(env={"ATDATA_TEST_SERVER": "widget-state-saved"})
    settings = server.settings_dir / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"saveState": True}))
    lab = LabPage(page, server, subdir=re.sub(r"[^\w.-]+", "_", request.node.name)[:60])
    try:
        yield lab
    finally:
        server.shutdown_kernels()


def part(lab, name):
    return lab.widget(f"atdata-promotion-wizard-{name}")


def click_next(lab, step):
    button = part(lab, "next")
    expect(button).to_be_enabled()
    button.click()
    expect(part(lab, f"step-{step}")).to_be_visible()


def test_click_through_from_login_to_verify_and_the_password_is_nowhere(state_lab, sandbox, monkeypatch):
    lab = state_lab
    account = sandbox.create_account()
    monkeypatch.setenv("ATDATA_PDS_URL", sandbox.pds_url)  # the kernel inherits it; no password in env
    nb = make_notebook(SETUP, "wizard = PromotionWizard(index)\nwizard")
    lab.open_notebook(nb, name="promote.ipynb")
    assert lab.kernel_eval("'ATDATA_PASSWORD' in __import__('os').environ") is False
    lab.run_all_and_wait()

    # 1. Connect: the PDS URL defaults to ATDATA_PDS_URL; a wrong password first
    expect(lab.widget("atdata-promotion-wizard")).to_be_visible()
    expect(part(lab, "step-connect")).to_be_visible()
    expect(part(lab, "steps")).to_contain_text("Connect")
    expect(part(lab, "pds-url").locator("input")).to_have_value(sandbox.pds_url)
    expect(part(lab, "next")).to_be_disabled()
    expect(part(lab, "back")).to_be_disabled()
    expect(part(lab, "cancel")).to_be_enabled()
    # the labels are not cut ("App password" in full) and the button is as wide as its label
    for name in ("handle", "password", "pds-url"):
        label = part(lab, name).locator(".widget-label")
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), name
    assert part(lab, "login").evaluate(
        "b => b.getBoundingClientRect().width < b.parentElement.getBoundingClientRect().width / 2"
    )
    part(lab, "handle").locator("input").fill(account.handle)
    password = part(lab, "password").locator("input")
    assert password.get_attribute("type") == "password"
    wrong = "Wrong-" + account.password[::-1]
    password.fill(wrong)
    lab.wait_for_kernel("wizard._password.value", wrong)
    part(lab, "login").click()
    expect(lab.widget("atdata-error")).to_contain_text("Logging in failed")
    expect(lab.widget("atdata-error")).to_contain_text("What to do next")
    expect(password).to_have_value("")
    password.fill(account.password)
    lab.wait_for_kernel("len(wizard._password.value)", len(account.password))
    password.press("Enter")  # Enter submits the form
    expect(part(lab, "identity")).to_contain_text(f"Connected as @{account.handle}")
    expect(password).to_have_value("")
    lab.wait_for_kernel("wizard.status", "connected")
    assert lab.kernel_eval("wizard._password.value") == ""
    expect(lab.widget("atdata-error")).to_be_hidden()
    lab.screenshot("wizard-1-connect")

    # 2. Dataset: the searchable list with each entry's summary
    click_next(lab, "dataset")
    entries = part(lab, "entries").locator("select")
    expect(entries.locator("option")).to_have_count(1)
    label = entries.locator("option").first.inner_text().replace("\xa0", " ")  # ipywidgets shows nbsp
    assert "fv" in label and "100 samples" in label and "not published" in label
    part(lab, "search").locator("input").fill("nothing-matches")
    expect(entries.locator("option")).to_have_count(0)
    part(lab, "search").locator("input").fill("fv")
    expect(entries.locator("option")).to_have_count(1)
    entries.select_option(index=0)
    expect(part(lab, "entry-card")).to_contain_text("FeatureSample")
    lab.wait_for_kernel("wizard.entry is not None and wizard.entry.name", "fv")

    # 3. Describe: inline validation keeps Next disabled until the input is valid
    click_next(lab, "describe")
    expect(part(lab, "name").locator("input")).to_have_value("fv")
    part(lab, "description").locator("textarea").fill("Feature vectors for classification")
    tags = part(lab, "tags")
    tag_input = tags.locator("input")
    for tag in ("features", "embeddings"):
        tags.dispatch_event("click")  # a click on the box (not a tag) focuses and shows the tag input
        tag_input.fill(tag)
        tag_input.dispatch_event("change")  # what Enter or leaving the field commits
        expect(tags.locator(".jupyter-widget-tag", has_text=tag)).to_be_visible()
    lab.wait_for_kernel("list(wizard._tags.value)", ["features", "embeddings"])
    license_box = part(lab, "license").locator("input")
    license_box.fill("MIT-ish")
    expect(part(lab, "validation")).to_contain_text("not an SPDX identifier")
    expect(part(lab, "next")).to_be_disabled()
    license_box.fill("MIT")
    expect(part(lab, "validation")).to_contain_text("valid")
    expect(part(lab, "next")).to_be_enabled()
    lab.screenshot("wizard-3-describe")

    # Back and Next keep the input
    part(lab, "back").click()
    expect(part(lab, "step-dataset")).to_be_visible()
    click_next(lab, "describe")
    expect(part(lab, "description").locator("textarea")).to_have_value("Feature vectors for classification")
    expect(license_box).to_have_value("MIT")

    # 4. Data: keep the URLs, with the warning that local paths reach nobody else
    click_next(lab, "data")
    expect(part(lab, "data-info")).to_contain_text("nobody else can reach", timeout=30_000)
    lab.screenshot("wizard-4-data")

    # 5. Preview: the plan and nothing else; nothing written yet
    click_next(lab, "preview")
    expect(part(lab, "decision")).to_contain_text("Publish new schema FeatureSample@1.0.0", timeout=30_000)
    plan = part(lab, "plan")
    expect(plan.locator("details.atdata-plan-write")).to_have_count(3)
    expect(plan).to_contain_text("PDS call")
    expect(plan).to_contain_text("rate-limit points")
    plan.locator("details.atdata-plan-write-entry summary").click()
    expect(plan.locator("details.atdata-plan-write-entry pre")).to_contain_text(
        "Feature vectors for classification"
    )
    assert (
        lab.kernel_eval(
            "wizard.plan.to_dict() == index.plan_promotion('fv', **wizard.promotion_options()).to_dict()"
        )
        is True
    )
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.atmosphere import records as rec

    client = Atmosphere.login(account.handle, account.password, pds_url=sandbox.pds_url)

    def counts():
        return tuple(
            len(list(client.list_all_records(n))) for n in (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID)
        )

    assert counts() == (0, 0, 0)
    lab.screenshot("wizard-5-preview")

    # 6. Publish (off the UI thread, progress bar), then 7. Verify runs by itself: the URLs were kept,
    # so every check passes but "loadable by others" (local file paths), and the wizard says so plainly
    click_next(lab, "publish")
    part(lab, "publish").click()
    expect(part(lab, "step-verify")).to_be_visible(timeout=60_000)
    checks = part(lab, "checks")
    expect(checks).to_contain_text("Only loadable on this machine", timeout=60_000)
    expect(checks.locator(".atdata-verify-only-here")).to_contain_text("every other check passed")
    for check in (
        "entry record present",
        "CIDs match what was written",
        "shard checksums match",
        "first batch loads with the right shapes",
    ):
        expect(checks).to_contain_text(check)
    expect(checks.locator("tr.atdata-verify-fail")).to_have_count(1)
    expect(checks.locator("tr.atdata-verify-fail")).to_contain_text("loadable by others")
    expect(checks).to_contain_text(f'atdata.load_dataset("@{account.handle}/fv", split="train")')
    lab.wait_for_kernel("wizard.status", "verified, only loadable on this machine")
    uris = lab.kernel_eval("wizard.uris()")
    for uri in uris.values():
        expect(checks).to_contain_text(uri)
    lab.screenshot("wizard-7-verify")

    # the records exist on the PDS, read back through the library
    assert counts() == (1, 1, 1)
    import atdata_lab as atdata

    entry = atdata.Index(atmosphere=client).get_dataset(uris["dataset"])
    assert entry.name == "fv" and entry.num_samples == 100 and entry.license == "MIT"
    assert (
        entry.tags == ["features", "embeddings"] and entry.description == "Feature vectors for classification"
    )
    assert entry.schema_ref == uris["schema"]
    assert len(atdata.load_dataset(uris["dataset"], split="train")) == 100

    # back to the index browser's Published tab
    part(lab, "open-browser").click()
    browser = part(lab, "browser").locator(".atdata-index-browser")
    expect(browser).to_be_visible()
    expect(browser.locator(".lm-TabBar-tab.lm-mod-current")).to_have_text("Published")
    lab.wait_for_kernel("wizard._browser_box.children[0].selected_record['uri']", uris["dataset"])

    # save through JupyterLab: the widget state is saved, the app password is not
    saved = lab.save_notebook()
    text = lab.notebook_file().read_text()
    state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {m["model_name"] for m in state.values()}
    assert "PasswordModel" in models and account.handle in text  # the state really is in the file
    assert all(
        m["state"].get("value", "") == "" for m in state.values() if m["model_name"] == "PasswordModel"
    )
    assert account.password not in text and wrong not in text
    # nor in the kernel's view of any widget
    assert (
        lab.kernel_eval(
            f"any({account.password!r} in __import__('json').dumps(w.get_state(), default=repr) "
            "for w in __import__('ipywidgets').widgets.widget._instances.values())"
        )
        is False
    )


PUBLISHED_AS_BLOBS = """
from atdata_lab.atmosphere import Atmosphere

index.atmosphere = Atmosphere.from_env()   # the test's sandbox account (ATDATA_HANDLE / ATDATA_PASSWORD)
uri = index.promote_entry("fv", copy_to="blobs", license="CC0-1.0", description="feature vectors",
                          progress=False)
# as in issue 12: the local entry does not carry what was published (it was published before the
# index kept the published values); the wizard must start from the published record anyway
index.provider.update_entry("fv", description=None, license=None)
uri
"""


def test_promoting_a_published_entry_again_from_the_browser_keeps_its_blobs_and_license(
    lab, sandbox, monkeypatch
):
    """Issue 12, step 2: published as PDS blobs with CC0-1.0; then in the index browser select it ->
    Promote… -> Next x5 -> Publish. Describe starts from the published record, Data from the published
    storage; the record keeps its blobs and license and nothing is written (its CID is unchanged)."""
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.atmosphere import records as rec

    account = sandbox.create_account()
    for key, value in sandbox.env(account).items():
        monkeypatch.setenv(key, value)
    nb = make_notebook(SETUP, PUBLISHED_AS_BLOBS, "browser = index.browse()\nbrowser")
    lab.open_notebook(nb, name="promote_again.ipynb")
    lab.run_all_and_wait()

    client = Atmosphere.login(account.handle, account.password, pds_url=sandbox.pds_url)
    uri = lab.kernel_eval("uri")
    rkey = uri.rsplit("/", 1)[1]
    before = client.get_record(rec.ENTRY_NSID, rkey)
    assert rec.entry_from_record(before["value"])["storage"]["kind"] == "blobs"

    def counts():
        return tuple(
            len(list(client.list_all_records(n))) for n in (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID)
        )

    assert counts() == (1, 1, 1)

    # the index browser: select it, Promote…
    browser = lab.widget("atdata-index-browser").first
    row = browser.locator(".atdata-index-browser-row[data-id='fv']")
    expect(row.locator(".atdata-badge-ok")).to_have_text("published")
    row.click()
    lab.wait_for_kernel("browser.selected and browser.selected.name", "fv")
    browser.locator(".atdata-index-browser-promote").click()
    wizard = browser.locator(".atdata-promotion-wizard")
    expect(wizard).to_be_visible()
    expect(wizard.locator(".atdata-promotion-wizard-already")).to_contain_text("already published")

    def click_in_wizard(step):
        button = wizard.locator(".atdata-promotion-wizard-next")
        expect(button).to_be_enabled()
        button.click()
        expect(wizard.locator(f".atdata-promotion-wizard-step-{step}")).to_be_visible()

    # Next x5, looking at what each step proposes
    click_in_wizard("dataset")
    click_in_wizard("describe")
    expect(wizard.locator(".atdata-promotion-wizard-license input")).to_have_value("CC0-1.0")
    expect(wizard.locator(".atdata-promotion-wizard-description textarea")).to_have_value("feature vectors")
    click_in_wizard("data")
    data_mode = wizard.locator(".atdata-promotion-wizard-data-mode")
    expect(data_mode.locator("label", has_text="Keep the published storage").locator("input")).to_be_checked()
    expect(wizard.locator(".atdata-promotion-wizard-data-info")).to_contain_text(
        "nothing is copied or uploaded"
    )
    click_in_wizard("preview")
    expect(wizard.locator(".atdata-promotion-wizard-decision")).to_contain_text("Already published")
    expect(wizard.locator(".atdata-promotion-wizard-plan")).to_contain_text("No records will be written")
    expect(wizard.locator(".atdata-promotion-wizard-changes")).to_contain_text("PDS blob")
    lab.screenshot("wizard-promote-again-preview")
    click_in_wizard("publish")

    # Publish: nothing is written; the verification passes (blobs load anywhere)
    wizard.locator(".atdata-promotion-wizard-publish").click()
    expect(wizard.locator(".atdata-promotion-wizard-step-verify")).to_be_visible()
    expect(wizard.locator(".atdata-promotion-wizard-checks")).to_contain_text("All checks passed")
    lab.wait_for_kernel("browser.action_widget.status", "verified")
    assert lab.kernel_eval("browser.action_widget.result.written") == []

    after = client.get_record(rec.ENTRY_NSID, rkey)
    assert after["cid"] == before["cid"] and after["value"] == before["value"]
    parsed = rec.entry_from_record(after["value"])
    assert parsed["storage"]["kind"] == "blobs" and parsed["license"] == "CC0-1.0"
    assert parsed["description"] == "feature vectors"
    assert counts() == (1, 1, 1)
    expect(row.locator(".atdata-badge-ok")).to_have_text("published")

    # removing the published license needs a confirmation: Publish stays disabled until it is ticked
    for step in ("publish", "preview", "data", "describe"):
        wizard.locator(".atdata-promotion-wizard-back").click()
        expect(wizard.locator(f".atdata-promotion-wizard-step-{step}")).to_be_visible()
    wizard.locator(".atdata-promotion-wizard-license input").fill("")
    lab.wait_for_kernel("browser.action_widget._license.value", "")
    click_in_wizard("data")
    click_in_wizard("preview")
    box = wizard.locator(".atdata-promotion-wizard-downgrades")
    expect(box).to_be_visible()
    expect(box.locator("li.atdata-downgrade[data-field='license']")).to_contain_text('"CC0-1.0" → (none)')
    expect(wizard.locator(".atdata-promotion-wizard-next")).to_be_disabled()
    lab.wait_for_kernel("browser.action_widget.status", "needs confirmation")
    lab.screenshot("wizard-downgrade-confirmation")
    box.locator(".atdata-promotion-wizard-confirm input[type='checkbox']").check()
    expect(box).to_contain_text("as you confirmed")
    expect(box).to_contain_text("clear license")
    expect(wizard.locator(".atdata-promotion-wizard-changes")).to_contain_text("license")
    assert lab.wait_for_kernel("browser.action_widget.promotion_options().get('clear')", ["license"])
    click_in_wizard("publish")
    expect(wizard.locator(".atdata-promotion-wizard-publish")).to_be_enabled()
    wizard.locator(".atdata-promotion-wizard-cancel").click()  # not this time: nothing is written
    lab.wait_for_kernel("browser.action_widget.status", "closed")
    assert client.get_record(rec.ENTRY_NSID, rkey)["cid"] == before["cid"] and counts() == (1, 1, 1)


def test_back_to_the_index_browser_scrolls_it_into_view(lab, sandbox, monkeypatch):
    """Issue 19's polish, as in the tour: the wizard is a cell far below the index browser it was
    given; after Verify, "Back to the index browser (Published tab)" switches that browser to its
    Published tab with the record selected AND scrolls the page up to it."""
    account = sandbox.create_account()
    for key, value in sandbox.env(account).items():
        monkeypatch.setenv(key, value)
    nb = make_notebook(
        SETUP,
        PUBLISHED_AS_BLOBS,
        "browser = index.browse()\nbrowser",
        "import ipywidgets\nipywidgets.HTML(\"<div style='height:1600px'>the rest of a long notebook</div>\")",
        "wizard = PromotionWizard(index, entry='fv', browser=browser)\n"
        "for _ in range(5):\n    wizard.next()\n"
        "wizard.publish()\nwizard",
    )
    lab.open_notebook(nb, name="promote_scroll.ipynb")
    lab.run_all_and_wait()
    lab.wait_for_kernel("wizard.status", "verified")
    browser = lab.widget("atdata-index-browser").first
    tabs = browser.locator(".lm-TabBar").first
    back = part(lab, "open-browser")
    back.scroll_into_view_if_needed()
    expect(tabs).not_to_be_in_viewport()
    back.click()
    expect(browser.locator(".lm-TabBar-tab.lm-mod-current").first).to_have_text("Published")
    lab.wait_for_kernel("browser.selected_record and browser.selected_record['uri'] == wizard.published_uri")
    expect(tabs).to_be_in_viewport()
    expect(browser.locator(".atdata-index-browser-record-detail")).to_be_in_viewport()
    lab.wait_for_kernel("wizard._scroller.scrolls", 1)
    lab.screenshot("wizard-back-to-the-browser")
