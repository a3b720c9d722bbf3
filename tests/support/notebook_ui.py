"""Drive notebooks in a real JupyterLab through a Playwright page.

Typical use in a browser test (fixture ``lab`` from ``tests/plugins/jupyter.py``)::

    nb = make_notebook("import ipywidgets as w", "b = w.Button(); b.add_class('my-button'); b")
    lab.open_notebook(nb, name="demo.ipynb")   # copies into the server root, opens, waits kernel idle
    lab.run_all_and_wait()                     # Run All, then every code cell shows ``[N]:``
    lab.widget("my-button").click()            # widgets carry stable classes (``add_class``)
    assert lab.kernel_eval("b.description") == ""

Everything waits on a condition (default 60 s), never on a fixed sleep.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

WAIT_S = 60.0
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (ipykernel)"
IDLE_TEXT = f"{KERNEL_DISPLAY_NAME} | Idle"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
_TRUTHY = object()
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# JS helper: the NotebookPanel showing ``path`` (relative to the server root), or null.
_FIND_PANEL = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const w of Array.from(app.shell.widgets('main'))) {
    if (w.context && w.context.path === path && w.content && w.sessionContext) return w;
  }
  return null;
}
"""


def make_notebook(*sources: str, markdown: Mapping[int, str] | None = None) -> nbformat.NotebookNode:
    """A v4 notebook of code cells (``markdown={index: text}`` inserts markdown cells)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    cells = [nbformat.v4.new_code_cell(src) for src in sources]
    for index, text in sorted((markdown or {}).items()):
        cells.insert(index, nbformat.v4.new_markdown_cell(text))
    nb.cells = cells
    return nb


class NotebookCellError(AssertionError):
    """A cell raised while running the notebook in JupyterLab."""


class LabPage:
    """A JupyterLab tab in Playwright, bound to one ``JupyterLabServer``.

    ``subdir`` is the folder (relative to the server root) where this page's notebooks are copied.
    """

    def __init__(self, page: Any, server: Any, subdir: str = "", timeout_s: float = WAIT_S):
        self.page = page
        self.server = server
        self.subdir = subdir.strip("/")
        self.timeout_s = timeout_s
        self.path: str | None = None  # the open notebook, relative to the server root
        self.workspace: str | None = None  # a fresh one per open_notebook: no tabs from earlier tests

    # -- files -------------------------------------------------------------------------------------
    @property
    def root_dir(self) -> Path:
        return Path(self.server.root_dir)

    def server_path(self, name: str) -> str:
        return f"{self.subdir}/{name}" if self.subdir else name

    def notebook_file(self, path: str | None = None) -> Path:
        """The notebook's file on disk (the open one by default)."""
        return self.root_dir / (path or self._require_path())

    def copy_to_root(self, src: str | os.PathLike, name: str | None = None) -> str:
        """Copy a file next to this page's notebooks; returns its server-relative path."""
        rel = self.server_path(name or Path(src).name)
        dest = self.root_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return rel

    # -- opening -----------------------------------------------------------------------------------
    def open_notebook(
        self,
        notebook: str | os.PathLike | nbformat.NotebookNode,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        wait_idle: bool = True,
    ) -> str:
        """Copy ``notebook`` (a path or a NotebookNode) into the server root, open it via
        ``/lab/workspaces/<fresh>/tree/<path>?token=...`` and (by default) wait for an idle kernel.

        The kernel gets every ``ATDATA_*`` variable of the test process plus ``env``. The kernelspec
        is forced to ``python3`` (the only one the harness serves). Returns the server-relative path.
        """
        if isinstance(notebook, nbformat.NotebookNode):
            nb = notebook
            name = name or "notebook.ipynb"
        else:
            nb = nbformat.read(os.fspath(notebook), as_version=4)
            name = name or Path(notebook).name
        nb.metadata["kernelspec"] = dict(KERNELSPEC)
        rel = self.server_path(name)
        dest = self.root_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, os.fspath(dest))

        kernel_env = {k: v for k, v in os.environ.items() if k.startswith("ATDATA_")}
        kernel_env.update({k: str(v) for k, v in (env or {}).items()})
        self.server.set_kernel_env(kernel_env)

        self.path = rel
        self.workspace = "t" + uuid.uuid4().hex[:12]  # only this notebook open, nothing restored
        self.page.goto(self.server.lab_url(rel, workspace=self.workspace), wait_until="domcontentloaded")
        self.page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell && "
            "document.querySelector('#jp-main-statusbar') !== null",
            timeout=self._ms(),
        )
        self.page.wait_for_function(
            f"(path) => {{ const w = ({_FIND_PANEL})(path); return !!w && w.context.isReady; }}",
            arg=rel,
            timeout=self._ms(),
        )
        if wait_idle:
            self.wait_kernel_idle()
        return rel

    def wait_kernel_idle(self, timeout: float | None = None) -> dict:
        """Wait until the notebook's kernel session exists on the server, its kernel is connected and
        idle in the page, and the status bar reads ``Python 3 (ipykernel) | Idle``. Returns the
        server's session model. (The status bar alone reads idle before the session exists, and a
        Run All sent then silently does nothing.)"""
        path = self._require_path()
        deadline = time.monotonic() + (timeout or self.timeout_s)
        session = None
        while session is None or not session.get("kernel"):
            session = self.server.session_for(path)
            if session and session.get("kernel"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no kernel session for {path}: {self.server.sessions()}")
            self.page.wait_for_timeout(200)  # yields to the browser while polling the server
        remaining_ms = max(1000.0, (deadline - time.monotonic()) * 1000)
        self.page.wait_for_function(
            f"""([path, idleText]) => {{
              const w = ({_FIND_PANEL})(path);
              if (!w) return false;
              const ctx = w.sessionContext;
              const k = ctx.session && ctx.session.kernel;
              if (!ctx.isReady || !k || k.connectionStatus !== 'connected' || k.status !== 'idle') {{
                return false;
              }}
              const bar = document.querySelector('#jp-main-statusbar');
              return !!bar && bar.innerText.replace(/\\s+/g, ' ').includes(idleText);
            }}""",
            arg=[path, IDLE_TEXT],
            timeout=remaining_ms,
            polling=200,
        )
        return session

    # -- running -----------------------------------------------------------------------------------
    def run_all(self) -> None:
        """Start ``notebook:run-all-cells`` on this notebook (not awaited: it resolves late)."""
        self._activate()
        self.page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    def wait_all_executed(self, timeout: float | None = None, raise_on_error: bool = True) -> dict:
        """Wait until every non-empty code cell's prompt shows ``[N]:`` (or a cell errored).

        Returns ``{"total", "executed", "errors"}``; raises :class:`NotebookCellError` with the
        traceback when a cell raised (unless ``raise_on_error`` is False)."""
        handle = self.page.wait_for_function(
            f"""(path) => {{
              const w = ({_FIND_PANEL})(path);
              if (!w) return null;
              let total = 0, executed = 0;
              const errors = [];
              w.content.widgets.forEach((cell, index) => {{
                if (cell.model.type !== 'code') return;
                if (!cell.model.sharedModel.getSource().trim()) return;
                total += 1;
                const prompt = cell.node.querySelector('.jp-InputPrompt');
                const text = prompt ? prompt.textContent.replace(/\\s+/g, '') : '';
                if (/^\\[\\d+\\]:$/.test(text)) executed += 1;
                const outputs = cell.model.outputs;
                for (let i = 0; i < outputs.length; i++) {{
                  const o = outputs.get(i).toJSON();
                  if (o.output_type === 'error') {{
                    errors.push({{cell: index, ename: o.ename, evalue: o.evalue,
                                  traceback: (o.traceback || []).join('\\n')}});
                  }}
                }}
              }});
              const done = total > 0 && executed === total;
              return (done || errors.length) ? {{total, executed, errors}} : null;
            }}""",
            arg=self._require_path(),
            timeout=self._ms(timeout),
            polling=250,
        )
        state = handle.json_value()
        if state["errors"] and raise_on_error:
            first = state["errors"][0]
            raise NotebookCellError(
                f"cell {first['cell']} raised {first['ename']}: {first['evalue']}\n"
                + _ANSI.sub("", first["traceback"])
            )
        return state

    def run_all_and_wait(self, timeout: float | None = None) -> dict:
        """``run_all`` + ``wait_all_executed`` + wait for the kernel to be idle again."""
        self.wait_kernel_idle(timeout)
        self.run_all()
        state = self.wait_all_executed(timeout)
        self.wait_kernel_idle(timeout)
        return state

    # -- the same kernel, read from Python ---------------------------------------------------------
    def kernel_id(self) -> str:
        session = self.server.session_for(self._require_path())
        if not session or not session.get("kernel"):
            raise RuntimeError(f"no kernel session for {self.path}")
        return session["kernel"]["id"]

    def kernel_repr(self, expr: str, timeout: float | None = None) -> str:
        """``repr`` (text/plain) of ``expr`` evaluated in the notebook's own kernel, read through a
        second kernel client (connection file from ``/api/sessions`` + the runtime dir) with
        ``user_expressions``. Does not touch the execution count or history."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient()
        client.load_connection_file(os.fspath(self.server.connection_file(self.kernel_id())))
        client.start_channels()
        try:
            reply = client.execute(
                "",
                silent=True,
                store_history=False,
                user_expressions={"value": expr},
                reply=True,
                timeout=timeout or self.timeout_s,
            )
        finally:
            client.stop_channels()
        result = reply["content"].get("user_expressions", {}).get("value")
        if not result:
            raise RuntimeError(f"kernel did not evaluate {expr!r}: {reply['content']}")
        if result.get("status") != "ok":
            raise RuntimeError(f"{expr!r} raised {result.get('ename')}: {result.get('evalue')}")
        return result["data"]["text/plain"]

    def kernel_eval(self, expr: str, timeout: float | None = None) -> Any:
        """The value of ``expr`` in the notebook's kernel, round-tripped through JSON (non-JSON values
        come back as their ``repr``)."""
        text = self.kernel_repr(f"__import__('json').dumps(({expr}), default=repr)", timeout)
        return json.loads(ast.literal_eval(text))

    def wait_for_kernel(self, expr: str, expected: Any = _TRUTHY, timeout: float | None = None) -> Any:
        """Poll ``kernel_eval(expr)`` until it equals ``expected`` (or is truthy when no ``expected``)
        and return it. Use it for state that the front end sends back to the kernel (traitlets set in
        the browser, ``Output.outputs``): the page can show a change before the kernel has it."""
        deadline = time.monotonic() + (timeout or self.timeout_s)
        while True:
            value = self.kernel_eval(expr)
            if bool(value) if expected is _TRUTHY else value == expected:
                return value
            if time.monotonic() > deadline:
                want = "a truthy value" if expected is _TRUTHY else repr(expected)
                raise AssertionError(f"kernel: {expr} is {value!r}, expected {want}")
            self.page.wait_for_timeout(100)

    # -- saving ------------------------------------------------------------------------------------
    def save_notebook(self) -> nbformat.NotebookNode:
        """Save through JupyterLab (``docmanager:save``) and return the saved .ipynb read back from
        disk (a dict; multi-line strings joined). The raw text is ``notebook_file().read_text()``."""
        path = self._require_path()
        self._activate()
        dirty = self.page.evaluate(
            f"""async (path) => {{
              const w = ({_FIND_PANEL})(path);
              await window.jupyterapp.commands.execute('docmanager:save');
              return w.context.model.dirty;
            }}""",
            path,
        )
        if dirty:
            raise AssertionError(f"{path} is still dirty after docmanager:save")
        return nbformat.reads(self.notebook_file(path).read_text(), as_version=4)

    def notebook_json(self) -> dict:
        """The notebook as the front end holds it now (outputs included), without saving."""
        return self.page.evaluate(
            f"(path) => ({_FIND_PANEL})(path).context.model.toJSON()", self._require_path()
        )

    # -- page helpers ------------------------------------------------------------------------------
    def widget(self, css_class: str) -> Any:
        """Locator for the element(s) carrying ``css_class`` (added with ``widget.add_class``)."""
        return self.page.locator(f".{css_class.lstrip('.')}")

    def screenshot(self, name: str, directory: str | os.PathLike | None = None) -> Path:
        """Full-page PNG under ``directory`` (default: the repo's git-ignored ``test-artifacts/``)."""
        from tests.plugins.jupyter import ARTIFACTS_DIR

        out = Path(directory) if directory else ARTIFACTS_DIR / (self.subdir or "screenshots")
        out.mkdir(parents=True, exist_ok=True)
        dest = out / (name if name.endswith(".png") else f"{name}.png")
        self.page.screenshot(path=os.fspath(dest), full_page=True)
        return dest

    # -- internals ---------------------------------------------------------------------------------
    def _require_path(self) -> str:
        if not self.path:
            raise RuntimeError("no notebook is open: call open_notebook() first")
        return self.path

    def _ms(self, timeout: float | None = None) -> float:
        return (timeout or self.timeout_s) * 1000

    def _activate(self) -> None:
        """Make this notebook the shell's current widget (commands act on the current widget)."""
        self.page.wait_for_function(
            f"""(path) => {{
              const app = window.jupyterapp;
              const w = ({_FIND_PANEL})(path);
              if (!w) return false;
              if (app.shell.currentWidget !== w) app.shell.activateById(w.id);
              return app.shell.currentWidget === w;
            }}""",
            arg=self._require_path(),
            timeout=self._ms(),
            polling=100,
        )
