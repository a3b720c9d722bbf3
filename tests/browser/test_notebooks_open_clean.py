"""The shipped notebooks open in JupyterLab unmodified: no "unsaved changes" dot the moment one is
opened (issue 19: the tour showed as modified as soon as it opened), checked on the page's dirty
indicator and on the notebook model, after the kernel has started and reported its language.

The cause was ``metadata.language_info``: JupyterLab replaces it with the kernel's (name, version,
mimetype, codemirror_mode, pygments_lexer, nbconvert_exporter, file_extension) and marks the notebook
modified unless it is exactly what was stored, so the notebooks record it in full, as ipykernel
reports it on the project's reference Python (the tests' venv). A kernel on another Python version
still changes ``version`` (JupyterLab's behaviour, not the notebook's); then the test checks that
nothing else differs and says so (xfail).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

_STATE = """
(path) => {
  const app = window.jupyterapp;
  const w = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const tab = Array.from(document.querySelectorAll('.lm-TabBar-tab'))
    .find(t => t.classList.contains('jp-mod-current') && t.closest('.jp-main-dock-panel, #jp-main-dock-panel'));
  return {dirty: w.context.model.dirty, tabDirty: !!(tab && tab.classList.contains('jp-mod-dirty')),
          model: w.context.model.toJSON()};
}
"""


def _cell(cell: dict) -> dict:
    return {k: "".join(v) if k == "source" and isinstance(v, list) else v for k, v in cell.items()}


def _differences(stored: dict, model: dict) -> list[str]:
    """What the page's model holds that the stored file does not (the cause of the dirty mark)."""
    out = []
    for key in sorted(set(stored["metadata"]) | set(model["metadata"])):
        if stored["metadata"].get(key) != model["metadata"].get(key):
            out.append(f"metadata.{key}: {stored['metadata'].get(key)!r} -> {model['metadata'].get(key)!r}")
    for i, (a, b) in enumerate(zip(stored["cells"], model["cells"])):
        a, b = _cell(a), _cell(b)
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            out.append(f"cell {i}: {keys}: {[a.get(k) for k in keys]!r} -> {[b.get(k) for k in keys]!r}")
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_notebook_opens_without_unsaved_changes(lab, notebook):
    path = lab.open_notebook(notebook)  # copied as it is stored (byte for byte), kernel started
    lab.page.wait_for_timeout(1500)  # the kernel's info reply (language_info) applied
    state = lab.page.evaluate(_STATE, path)
    stored = json.loads(notebook.read_text(encoding="utf-8"))
    kernel_info = state["model"]["metadata"]["language_info"]
    recorded = stored["metadata"]["language_info"]
    assert lab.notebook_file().read_bytes() == notebook.read_bytes()  # nothing saved behind our back
    if kernel_info.get("version") != recorded.get("version"):
        differences = _differences(stored, state["model"])
        assert differences == [f"metadata.language_info: {recorded!r} -> {kernel_info!r}"]
        assert {**kernel_info, "version": recorded["version"]} == recorded
        pytest.xfail(
            f"the kernel's Python is {kernel_info.get('version')}, the notebooks record "
            f"{recorded.get('version')}: JupyterLab marks them modified for that alone"
        )
    assert not state["dirty"] and not state["tabDirty"], _differences(stored, state["model"])
