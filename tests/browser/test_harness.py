"""Smoke tests of the browser harness: real JupyterLab, real Chromium, real kernel round trips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.notebook_ui import LabPage, NotebookCellError, make_notebook

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_ipywidgets_button_round_trip(lab, tmp_path, atdata_home):
    marker = tmp_path / "clicked.txt"
    nb = make_notebook(
        "import os, sys\nimport ipywidgets as widgets\nclicks = 0",
        f"""
MARKER = {str(marker)!r}
label = widgets.Label("not clicked")
label.add_class("atdata-smoke-label")
out = widgets.Output()
out.add_class("atdata-smoke-output")
button = widgets.Button(description="Click me")
button.add_class("atdata-smoke-button")

def on_click(_):
    global clicks
    clicks += 1
    with open(MARKER, "w") as f:
        f.write(f"clicks={{clicks}}")
    label.value = f"clicked {{clicks}}"
    with out:
        print(f"handler ran {{clicks}}")

button.on_click(on_click)
widgets.VBox([button, label, out])
""",
    )
    lab.open_notebook(nb, name="smoke_button.ipynb")
    lab.run_all_and_wait()

    button = lab.widget("atdata-smoke-button")
    expect(button).to_be_visible()
    button.click()

    # (a) the DOM changed: the handler's Label update and Output print came back to the page
    expect(lab.widget("atdata-smoke-label")).to_have_text("clicked 1")
    expect(lab.widget("atdata-smoke-output")).to_contain_text("handler ran 1")
    # (b) the kernel-side effect happened
    assert marker.read_text() == "clicks=1"
    # (c) the same kernel, read through a second client
    assert lab.kernel_eval("clicks") == 1
    # Output.outputs is filled by the front end only: proves kernel -> browser -> kernel
    lab.wait_for_kernel("len(out.outputs)", 1)
    # the kernel is this venv's python and got the test's own ATDATA_HOME
    assert lab.kernel_eval("sys.executable") == sys.executable
    assert lab.kernel_eval("os.environ['ATDATA_HOME']") == str(atdata_home)


ANYWIDGET_ESM = """
function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "atdata-anywidget-smoke";
  const show = () => { button.textContent = `clicks: ${model.get("clicks")}`; };
  button.addEventListener("click", () => {
    model.set("clicks", model.get("clicks") + 1);
    model.save_changes();
  });
  model.on("change:clicks", show);
  show();
  el.appendChild(button);
}
export default { render };
"""


def test_anywidget_custom_view(lab):
    nb = make_notebook(
        f"""
import anywidget, traitlets

class Smoke(anywidget.AnyWidget):
    _esm = {ANYWIDGET_ESM!r}
    clicks = traitlets.Int(0).tag(sync=True)

seen = []
smoke = Smoke()
smoke.observe(lambda change: seen.append(change["new"]), names="clicks")
smoke
""",
    )
    lab.open_notebook(nb, name="smoke_anywidget.ipynb")
    federated = lab.page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
        ".federated_extensions.map(e => e.name)"
    )
    assert "anywidget" in federated, federated
    lab.run_all_and_wait()

    button = lab.widget("atdata-anywidget-smoke")
    expect(button).to_have_text("clicks: 0")
    button.click()
    expect(button).to_have_text("clicks: 1")
    # the click synced the traitlet to the kernel, and the kernel-side observer ran
    # (the page shows the new value before the kernel has it: poll the kernel)
    lab.wait_for_kernel("smoke.clicks", 1)
    assert lab.kernel_eval("seen") == [1]


def test_save_through_jupyterlab(lab):
    nb = make_notebook("print('saved-output-marker')", "x = 40 + 2\nx")
    path = lab.open_notebook(nb, name="smoke_save.ipynb")
    on_disk = json.loads(lab.notebook_file().read_text())
    assert all(not c.get("outputs") for c in on_disk["cells"])

    lab.run_all_and_wait()
    saved = lab.save_notebook()

    assert Path(lab.server.root_dir, path) == lab.notebook_file()
    assert saved["metadata"]["kernelspec"]["name"] == "python3"
    outputs = [o for c in saved["cells"] for o in c.get("outputs", [])]
    text = json.dumps(outputs)
    assert "saved-output-marker" in text
    assert any(o.get("data", {}).get("text/plain") == "42" for o in outputs), outputs
    assert [c["execution_count"] for c in saved["cells"]] == [1, 2]


def test_kernel_env_and_cell_errors(lab, monkeypatch, atdata_home):
    """Kernels get the test's ATDATA_* variables and ``env=``; a raising cell fails fast."""
    monkeypatch.setenv("ATDATA_PDS_URL", "http://127.0.0.1:9/pds")
    nb = make_notebook("import os\nvalue = 1", "raise ValueError('boom from cell')", "never = 1")
    lab.open_notebook(nb, name="smoke_errors.ipynb", env={"EXTRA_FOR_KERNEL": "yes"})
    lab.run_all()
    with pytest.raises(NotebookCellError, match="ValueError: boom from cell"):
        lab.wait_all_executed()
    lab.wait_kernel_idle()
    env = lab.kernel_eval(
        "{k: os.environ.get(k) for k in ('ATDATA_HOME', 'ATDATA_PDS_URL', 'EXTRA_FOR_KERNEL')}"
    )
    assert env == {
        "ATDATA_HOME": str(atdata_home),
        "ATDATA_PDS_URL": "http://127.0.0.1:9/pds",
        "EXTRA_FOR_KERNEL": "yes",
    }
    assert lab.kernel_eval("value") == 1
    with pytest.raises(RuntimeError, match="NameError"):
        lab.kernel_eval("never")


def test_server_factory_env(jupyter_lab, jupyter_server, page):
    """``jupyter_lab(env=...)`` starts a separate server whose kernels inherit ``env``."""
    server = jupyter_lab(env={"ATDATA_FACTORY_MARKER": "from-factory"})
    assert server is not jupyter_server and server is jupyter_lab(
        env={"ATDATA_FACTORY_MARKER": "from-factory"}
    )
    lab = LabPage(page, server, subdir="factory")
    try:
        lab.open_notebook(make_notebook("1"), name="factory.ipynb")
        assert lab.kernel_eval("__import__('os').environ.get('ATDATA_FACTORY_MARKER')") == "from-factory"
    finally:
        server.shutdown_kernels()
