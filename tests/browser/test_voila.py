"""``voila notebooks/04-widgets-tour.ipynb`` serves the widgets as an app: a real Voila server, a real
headless Chromium, clicks through the index browser (search, sort, page, select, inspect)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.sandbox, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "04-widgets-tour.ipynb"
ARTIFACTS = REPO / "test-artifacts" / "voila"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila_app(tmp_path, atdata_home):
    """A Voila server for the tour notebook (its own HOME, Jupyter dirs and token); stopped with its
    kernels (and so the notebook's sandbox) at the end."""
    from atdata_lab.sandbox import cache_root, ensure_installed

    ensure_installed(progress=False)
    root = tmp_path / "root"
    root.mkdir()
    (root / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    home = tmp_path / "home"
    home.mkdir()
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JUPYTER_", "JPY_"))}
    env.pop("ATDATA_TOUR_AUTOPILOT", None)
    env.update(
        HOME=str(home),
        IPYTHONDIR=str(home / ".ipython"),
        MPLCONFIGDIR=str(home / ".mpl"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
        JUPYTER_PLATFORM_DIRS="1",
        ATDATA_HOME=str(atdata_home),
        PYTHONUNBUFFERED="1",
        ATDATA_LAB_CACHE=str(cache_root().parent),  # the installed sandbox, though HOME is new
        PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    )
    log_path = tmp_path / "voila.log"
    port = _free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                NOTEBOOK.name,
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
                "--Voila.port_retries=0",
                f"--token={token}",
                "--show_tracebacks=True",
            ],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/?token={token}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/voila.js", timeout=2)  # noqa: S310
            break
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"voila did not answer:\n{log_path.read_text()[-4000:]}") from None
            time.sleep(0.3)
    app = type("VoilaApp", (), {"url": url, "proc": proc, "log": log_path})()
    try:
        yield app
    finally:
        for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass


def test_voila_serves_the_tour_and_the_index_browser_clicks_through(voila_app, page):
    page.goto(voila_app.url, wait_until="domcontentloaded")
    browser = page.locator(".atdata-index-browser").first
    expect(browser).to_be_visible(timeout=120_000)  # the notebook runs first (sandbox, data, v1 promotion)
    rows = browser.locator("tr.atdata-index-browser-row")
    expect(rows).to_have_count(3)
    expect(browser.locator(".atdata-index-browser-page-label")).to_have_text("1–3 of 3")
    assert (
        page.locator(".jp-OutputArea-output .jp-InputArea, .jp-InputArea-editor").count() == 0
    )  # no code shown
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "1-app.png"), full_page=True)

    # sort by samples (a header click; again reverses)
    header = browser.locator(".atdata-index-browser-th[data-key='samples']")
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_have_attribute("data-id", "goog-prices")  # 52 samples: the fewest
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")

    # search, debounced, on the index side
    browser.locator(".atdata-index-browser-search input").press_sequentially("captioned", delay=30)
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", "hopper-tiles-captioned")

    # select: the detail panel with fields and shards
    rows.first.click()
    detail = browser.locator(".atdata-index-browser-detail")
    expect(detail).to_be_visible()
    expect(browser.locator(".atdata-index-browser-detail-fields")).to_contain_text("Schema PhotoTile@1.1.0")
    expect(browser.locator(".atdata-index-browser-detail-fields")).to_contain_text("caption")
    expect(browser.locator(".atdata-index-browser-detail-shards")).to_contain_text("Shards (3)")

    # inspect: an image, then the next sample
    browser.locator(".atdata-index-browser-inspect").click()
    inspector = browser.locator(".atdata-sample-inspector")
    expect(inspector).to_be_visible()
    header_text = inspector.locator(".atdata-sample-inspector-header")
    expect(header_text).to_contain_text("sample 0 of 72")
    image = inspector.locator("img.atdata-sample-inspector-image").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    inspector.locator(".atdata-sample-inspector-next").click()
    expect(header_text).to_contain_text("sample 1 of 72")
    expect(inspector).to_contain_text("row 0, column 1")
    page.screenshot(path=str(ARTIFACTS / "2-index-browser-inspect.png"), full_page=True)

    # clear the search: all three again; the Published tab lists the v1 records
    browser.locator(".atdata-index-browser-search input").fill("")
    expect(rows).to_have_count(3)
    browser.locator(".lm-TabBar-tab", has_text="Published").click()
    records = browser.locator("tr.atdata-index-browser-record-row")
    expect(records).to_have_count(3)  # schema, dataset and label of hopper-tiles
    errors = [m for m in page.atdata_console if "[pageerror]" in m]
    assert not errors, errors
    log = voila_app.log.read_text(errors="replace")
    assert not re.search(r"\b[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}\b", log), "a password in the log"
