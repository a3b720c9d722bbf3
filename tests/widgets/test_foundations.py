"""Foundations shared by the widgets: lazy imports, assets (checkout and wheel), error panel,
progress subscriber, background tasks, debouncing, the DataTable view and the static fallback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

import atdata_lab as atdata  # noqa: E402
from atdata_lab.progress import ProgressEvent  # noqa: E402
from atdata_lab.widgets import _base as B  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@atdata.packable
class Vec:
    x: NDArray
    label: int


def vecs(n):
    return [Vec(x=np.full(8, i, dtype=np.float32), label=i) for i in range(n)]


@pytest.fixture
def index(tmp_path):
    return atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


# ------------------------------------------------------------------------------------------- imports
def test_core_import_does_not_pull_widget_stacks():
    code = textwrap.dedent("""
        import sys, json
        import atdata_lab
        import atdata_lab.widgets as w
        before = {m: m in sys.modules for m in ("ipywidgets", "matplotlib", "anywidget", "PIL")}
        names = sorted(w.__all__)
        ib = w.IndexBrowser  # resolved on first use
        print(json.dumps({"before": before, "names": names, "ib": ib.__module__,
                          "after": "ipywidgets" in sys.modules, "mpl": "matplotlib.pyplot" in sys.modules}))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["before"] == {"ipywidgets": False, "matplotlib": False, "anywidget": False, "PIL": False}
    assert got["names"] == [
        "CompareView",
        "IndexBrowser",
        "PromotionWizard",
        "SampleInspector",
        "SamplesTable",
        "SchemaDiff",
        "SchemaDiffViewer",
        "diff",
    ]
    assert got["ib"] == "atdata_lab.widgets.index_browser" and got["after"] is True
    assert got["mpl"] is False  # the widgets never import pyplot (no global matplotlib state)


def test_unknown_widget_name_is_an_attribute_error():
    import atdata_lab.widgets as w

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        w.Nope  # noqa: B018
    assert "IndexBrowser" in dir(w)


def test_library_shortcuts_open_the_widgets(index):
    from atdata_lab.widgets import IndexBrowser, SampleInspector

    entry = index.write(vecs(5), name="v", progress=False)
    assert isinstance(index.browse(), IndexBrowser)
    assert isinstance(index.browse(page_size=2), IndexBrowser) and index.browse(page_size=2).page_size == 2
    assert isinstance(entry.inspect(), SampleInspector)
    assert isinstance(index.dataset("v").inspect(start=3), SampleInspector)
    assert index.dataset("v").inspect(start=3).k == 3


# ------------------------------------------------------------------------------------------- assets
def test_each_es_module_is_one_valid_module_with_its_shared_parts_once(tmp_path):
    """anywidget loads one ES module text per widget: the shared helpers (table_common.js) are put in
    front of the modules that use them, are written once, and the result parses as a module."""
    import re
    import shutil

    everything = {p.name: p.read_text() for p in (REPO / "widgets").glob("*.js")}
    defined: dict[str, list[str]] = {}
    for name, text in everything.items():
        for fn in re.findall(r"^function (\w+)\(", text, re.M):
            defined.setdefault(fn, []).append(name)
    written_twice = {fn: names for fn, names in defined.items() if len(names) > 1 and fn != "render"}
    assert written_twice == {}
    for name, preludes in B.ESM_PRELUDES.items():
        text = B.read_esm(name)
        assert all(B.read_asset(p) in text for p in preludes) and text.endswith(B.read_asset(name))
        assert not re.search(r"^export ", "".join(B.read_asset(p) for p in preludes), re.M)
        if shutil.which("node"):
            module = tmp_path / (name.replace(".js", ".mjs"))
            module.write_text(text)
            subprocess.run(["node", "--check", str(module)], check=True)


def test_assets_load_from_the_checkout():
    assert not (REPO / "atdata_lab" / "_frontend").exists()  # an editable checkout
    for name in ("atdata.css", "index_browser.css", "sample_inspector.css", "data_table.js"):
        assert B.asset_path(name) == REPO / "widgets" / name
        assert B.read_asset(name) == (REPO / "widgets" / name).read_text()
    css = B.read_asset("atdata.css")
    assert "--jp-layout-color1" in css and "--jp-ui-font-color1" in css and "--jp-error-color1" in css
    style = B.stylesheet("atdata.css", "index_browser.css")
    assert style.value.startswith("<style>") and ".atdata-error" in style.value
    assert ".atdata-index-browser" in style.value and style.layout.display == "none"
    with pytest.raises(FileNotFoundError, match="nope.css.*_frontend.*widgets"):
        B.asset_path("nope.css")


def test_assets_reload_when_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "asset_dirs", lambda: [tmp_path])
    f = tmp_path / "x.css"
    f.write_text("a{}")
    assert B.read_asset("x.css") == "a{}"
    f.write_text("b{}")
    os.utime(f, (time.time() + 5, time.time() + 5))
    assert B.read_asset("x.css") == "b{}"


@pytest.mark.slow
def test_assets_load_from_an_installed_wheel(tmp_path):
    """Build the real wheel (pyproject force-includes widgets/ as atdata_lab/_frontend), install it
    into a fresh folder, and build the widgets from there (the checkout is not on the path)."""
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(wheels.glob("atdata_lab-*.whl"))
    site = tmp_path / "site"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    code = textwrap.dedent("""
        import json, sys
        import numpy as np
        import atdata_lab as atdata
        from atdata_lab.widgets import _base as B
        from atdata_lab.widgets import IndexBrowser, SampleInspector
        index = atdata.Index(path="index.db", data_store=atdata.LocalDiskStore("data"))
        index.write([atdata.DictSample({"x": np.zeros((4, 4), np.uint8)})], name="w", progress=False)
        browser = IndexBrowser(index)
        insp = SampleInspector(index.get_entry_by_name("w"))
        print(json.dumps({
            "module": atdata.__file__,
            "css": str(B.asset_path("atdata.css")),
            "js": str(B.asset_path("data_table.js")),
            "style": ".atdata-index-browser" in browser._style.value,
            "esm": "export default" in browser.table._esm,
            "fields": insp.fields,
        }))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    frontend = site / "atdata_lab" / "_frontend"
    assert got["module"].startswith(str(site))
    assert got["css"] == str(frontend / "atdata.css") and got["js"] == str(frontend / "data_table.js")
    assert got["style"] and got["esm"] and got["fields"] == {"x": "image"}


# ------------------------------------------------------------------------------------------- errors
def test_reporting_shows_logs_and_reraises(caplog):
    w = B.AtdataWidget()
    assert not w.errors.visible and w.children[1] is w.errors
    with (
        caplog.at_level(logging.ERROR, logger="atdata_lab.widgets"),
        pytest.raises(KeyError),
        w.reporting("Opening 'x'"),
    ):
        raise atdata.EntryNotFoundError("no dataset named 'x' in the index")
    assert w.errors.visible
    # readable: what failed, the error class and message (not KeyError's quoted repr); traceback folded
    assert w.errors.message == "Opening 'x' failed: EntryNotFoundError: no dataset named 'x' in the index"
    html = w.errors._html.value
    assert "<details" in html and "Traceback" in html and "raise atdata.EntryNotFoundError" in html
    assert any("Opening 'x' failed" in r.getMessage() and r.exc_info for r in caplog.records)
    # nested blocks show an error once; the next outermost action clears the panel first
    with pytest.raises(ValueError), w.reporting("outer"), w.reporting("inner"):
        raise ValueError("bad")
    assert w.errors.message == "inner failed: ValueError: bad" and len(w.errors.history) == 2
    with w.reporting("fine"):
        pass
    assert not w.errors.visible and w.errors.message == ""


def test_ui_callbacks_show_errors_without_raising(caplog):
    import ipywidgets

    w = B.AtdataWidget()
    button = ipywidgets.Button()
    calls = []

    def handler(_b):
        calls.append(1)
        raise RuntimeError("the handler broke")

    w.on_click(button, handler, "Clicking")
    with caplog.at_level(logging.ERROR, logger="atdata_lab.widgets"):
        button.click()  # ipywidgets' own path for a front-end click
    assert calls == [1]
    assert w.errors.message == "Clicking failed: RuntimeError: the handler broke"
    assert isinstance(w.errors.last, RuntimeError) and caplog.records
    w.errors._dismiss.click()
    assert not w.errors.visible and w.errors.history  # dismissed, still recorded
    w.errors.show_message("the diff viewer is not installed", title="Not available")
    assert w.errors.visible and w.errors.message == "Not available: the diff viewer is not installed"


def test_not_available_message():
    msg = B.not_available("The schema diff viewer", "schema_diff", ImportError("No module named x"))
    assert (
        msg.startswith("The schema diff viewer is not available yet")
        and "atdata_lab.widgets.schema_diff" in msg
    )


# ------------------------------------------------------------------------------------------- progress
def test_progress_bar_subscribes_to_a_real_write(index):
    bar = B.ProgressBar(interval=0.0)
    assert bar.layout.display == "none"
    index.write(vecs(300), name="p", maxcount=100, progress=bar)
    assert bar.events and bar.events[-1].finished and bar.events[-1].task == "write"
    assert bar.layout.display == "flex" and bar._bar.bar_style == "success"
    assert bar._bar.value == bar._bar.max == 300
    assert bar.text.startswith("write: 300 / 300 samples") and bar.text.endswith("done")
    bar.reset()
    assert bar.layout.display == "none" and not bar.events


def test_progress_bar_throttles_but_shows_the_last_event():
    bar = B.ProgressBar(interval=60.0)
    for i in range(1, 101):
        bar(ProgressEvent("copy", i * 1024, 100 * 1024, "bytes"))
    assert len(bar.events) == 100
    assert bar.text.startswith("copy: 1.0 KB")  # throttled: only the first was drawn
    bar.flush()
    assert bar.text == "copy: 100.0 KB / 100.0 KB"
    bar(ProgressEvent("copy", 100 * 1024, 100 * 1024, "bytes", finished=True))
    assert bar.text.endswith("done") and bar._bar.bar_style == "success"
    bar(ProgressEvent("scan", 3, None, "shards"))
    bar.flush()
    assert bar.text == "scan: 3 shards" and bar._bar.value == 0.0


def test_progress_bar_says_where_a_cancelled_task_stopped():
    bar = B.ProgressBar(interval=0.0, description="Publishing")
    bar(ProgressEvent("upload", 1, 2, "blobs"))
    bar.stop("Cancelled", "cancelled here")
    assert bar._bar.description == "Cancelled" and bar._bar.bar_style == "warning"
    assert bar.text == "upload: 1 / 2 blobs · cancelled here" and bar.layout.display == "flex"
    bar.reset()  # the next run starts as it was
    assert bar._bar.description == "Publishing" and bar._bar.bar_style == "" and bar.layout.display == "none"
    bar.stop("Cancelled", "cancelled before it started")
    assert bar.text == "cancelled before it started"


# ------------------------------------------------------------------------------------------- threads
def test_run_task_keeps_the_kernel_free_and_reports_progress(index):
    w = B.AtdataWidget()
    bar = B.ProgressBar(interval=0.0)
    started, release = threading.Event(), threading.Event()
    done = []

    def work(task):
        started.set()
        release.wait(10)
        return index.write(vecs(200), name="bg", maxcount=50, progress=task.progress)

    task = w.run_task("Writing", work, progress=bar, on_done=done.append)
    assert started.wait(10)
    # the calling (UI) thread is free while the work runs
    assert not task.done and task.thread is not threading.current_thread() and len(index) == 0
    release.set()
    entry = task.wait(30)
    assert entry.name == "bg" and task.done and task.error is None
    for _ in range(100):  # on_done runs right after the result is set
        if done:
            break
        time.sleep(0.01)
    assert done == [entry] and bar.events[-1].finished and not w.errors.visible


def test_cancel_stops_a_real_write_at_its_next_progress_report(index):
    w = B.AtdataWidget()
    seen = threading.Event()

    def progress(event):
        seen.set()
        time.sleep(0.002)

    def work(task):
        return index.write(vecs(5000), name="cancelled", maxcount=100, progress=task.progress)

    task = w.run_task("Writing", work, progress=progress)
    assert seen.wait(10)
    task.cancel()
    with pytest.raises(B.TaskCancelled):
        task.wait(30)
    assert task.cancelled and task.cancel_requested
    assert not w.errors.visible  # a cancel is not an error
    assert len(index) == 0  # the write was aborted: no entry, no finished shard
    assert not list(index.data_store.root.rglob("*.tar"))


def test_errors_in_background_tasks_land_in_the_panel():
    w = B.AtdataWidget()

    def work(task):
        raise atdata.SchemaNotFoundError("no schema 'atdata://local/schema/X@1.0.0' in this index")

    task = w.run_task("Loading the schema", work)
    with pytest.raises(KeyError):
        task.wait(10)
    for _ in range(200):
        if w.errors.visible:
            break
        time.sleep(0.01)
    assert w.errors.message.startswith("Loading the schema failed: SchemaNotFoundError: no schema")
    with pytest.raises(TimeoutError):
        B.run_in_thread(lambda t: time.sleep(1)).wait(0.01)


def test_debouncer_runs_once_after_the_last_call():
    got = []
    d = B.Debouncer(0.1, got.append)
    for text in ("e", "ex", "exp"):
        d(text)
    assert d.pending and got == []
    time.sleep(0.4)
    assert got == ["exp"] and d.calls == 1 and not d.pending
    d("x")
    d.flush()
    assert got == ["exp", "x"] and d.calls == 2
    d("y")
    d.cancel()
    time.sleep(0.2)
    assert got == ["exp", "x"]


# ------------------------------------------------------------------------------------------- DataTable
def test_data_table_traits_are_documented_and_synced():
    import anywidget

    table = B.DataTable(
        columns=[{"key": "name", "label": "Name", "sortable": True, "numeric": False}], rows=[{"name": "a"}]
    )
    assert "export default" in table._esm and "render" in table._esm
    own = {
        n: t
        for n, t in table.traits(sync=True).items()
        if n not in anywidget.AnyWidget.class_traits() and n != "_anywidget_id"
    }
    assert set(own) >= {
        "columns",
        "rows",
        "row_key",
        "sort_key",
        "descending",
        "selected",
        "clicks",
        "badges",
        "subtitle",
        "empty_text",
        "css_prefix",
    }
    assert all(t.help for t in own.values()), [n for n, t in own.items() if not t.help]
    state = table.get_state()
    assert state["rows"] == [{"name": "a"}] and state["columns"][0]["sortable"] is True


# ------------------------------------------------------------------------------------------- fallback
def test_static_fallback_contract():
    w = B.AtdataWidget()
    bundle = w._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    assert bundle["text/plain"] == "AtdataWidget()"
    assert bundle["text/html"] == w._repr_html_() and "atdata-widget" in bundle["text/html"]

    class Broken(B.AtdataWidget):
        def _static_html(self):
            raise RuntimeError("no fallback")

    assert "no static view (RuntimeError: no fallback)" in Broken()._repr_mimebundle_()["text/html"]


def test_css_class_convention():
    import ipywidgets

    class Hello(B.AtdataWidget):
        _root_class = "atdata-hello"

    h = Hello()
    assert h._dom_classes == ("atdata-widget", "atdata-hello")
    part = h.part(ipywidgets.HTML(), "label", "atdata-muted")
    assert part._dom_classes == ("atdata-hello-label", "atdata-muted")
    h.set_body(part)
    assert h.children == (h._style, h.errors, part)
    assert B.esc("<b>&") == "&lt;b&gt;&amp;" and B.esc(None) == ""
    table = B.html_table(["a", "b"], [["<x>", None]])
    assert "&lt;x&gt;" in table and table.startswith("<table class='atdata-table'")
    assert "<i>" in B.html_table(["a"], [["<i>y</i>"]], raw=True)
