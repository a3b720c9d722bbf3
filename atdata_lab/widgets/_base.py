"""Foundations shared by every atdata-lab widget. Read this before writing a widget.

A widget subclasses :class:`AtdataWidget` (an ``ipywidgets.VBox``) and gets:

* **Stable CSS classes.** Set ``_root_class`` (e.g. ``"atdata-schema-diff"``); the widget carries
  ``atdata-widget`` and its root class. Tag every part a browser test needs with
  ``self.part(widget, "verdict")`` which adds ``f"{_root_class}-verdict"``
  (``atdata-schema-diff-verdict``). Shared looks use the shared classes of ``widgets/atdata.css``:
  ``atdata-badge`` (+ ``-ok``/``-warn``/``-error``/``-info``), ``atdata-table``, ``atdata-json``,
  ``atdata-muted``, ``atdata-hex``, ``atdata-toolbar``, ``atdata-card``.
* **Styles.** ``_css_files = ("atdata.css", "schema_diff.css")``: files of the top-level ``widgets/``
  folder (an installed wheel has them in ``atdata_lab/_frontend``; :func:`asset_path` looks there
  first). They are injected once per widget by a hidden ``<style>`` element (:func:`stylesheet`).
  Use JupyterLab's ``--jp-*`` variables only, so light and dark themes both work. anywidget views
  load their ESM with ``_esm = asset_path("my_view.js")``.
* **Readable errors, never swallowed.** ``self.errors`` is an :class:`ErrorPanel` at the top of
  the widget. Wrap every action in ``with self.reporting("Loading samples"):`` — an exception is
  shown in the panel (message first, traceback folded), logged on the ``atdata_lab.widgets``
  logger, and re-raised, so programmatic callers still get it. Connect UI events with
  ``self.ui(handler)`` (or ``self.on_click(button, handler, "Searching")``): the same, but not
  re-raised, because there is no caller to receive it.
* **Programmatic twins.** Every user action is a public method (``browser.search("exp")``) and
  the UI handler only calls it; kernel-side tests drive the public methods.
* **Progress and threads.** :class:`ProgressBar` is a subscriber of the library's
  :class:`~atdata_lab.progress.ProgressEvent` protocol: pass it as ``progress=``. Long work runs
  off the UI thread with ``task = self.run_task("Publishing", fn, progress=bar)``: ``fn(task)``
  runs in a thread, gets ``task.progress`` to pass on as ``progress=`` (it forwards to the bar and
  raises :class:`TaskCancelled` at the next report once ``task.cancel()`` was called), and its
  error lands in the error panel. ``task.wait()`` returns the result (tests use it).
* **A static fallback.** Where no widget manager runs (nbviewer, GitHub, a terminal) the output
  carries ``text/html`` from :meth:`AtdataWidget._static_html` and ``text/plain`` from
  ``repr()``. Override both with something meaningful (a table of what the widget shows); build
  HTML with :func:`html_table` and :func:`esc`.

Minimal example::

    class Hello(AtdataWidget):
        _root_class = "atdata-hello"

        def __init__(self, index):
            super().__init__()
            self.index = index
            self.label = self.part(ipywidgets.HTML(), "label")
            button = self.part(ipywidgets.Button(description="Count"), "count")
            self.on_click(button, lambda _: self.count(), "Counting")
            self.set_body(button, self.label)

        def count(self) -> int:                      # the programmatic twin
            with self.reporting("Counting"):
                n = len(self.index)
                self.label.value = f"{n:,} entries"
                return n

        def _static_html(self):
            return f"<div class='atdata-hello'>{esc(self.label.value)}</div>"
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets

from ..errors import DataNotFoundError
from ..logs import logger
from ..progress import ProgressEvent
from ..views.text import esc, html_table, progress_text

__all__ = [
    "AtdataWidget",
    "BackgroundTask",
    "CopyButton",
    "DataTable",
    "Debouncer",
    "ErrorPanel",
    "ProgressBar",
    "Scroller",
    "TaskCancelled",
    "asset_dirs",
    "asset_path",
    "esc",
    "html_table",
    "not_available",
    "read_asset",
    "run_in_thread",
    "stylesheet",
]

log = logger("atdata_lab.widgets")

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../atdata_lab


# ---------------------------------------------------------------------------------------------
# assets
# ---------------------------------------------------------------------------------------------
def asset_dirs() -> list[Path]:
    """Where front-end assets are looked up, in order.

    1. ``atdata_lab/_frontend`` — an installed wheel (pyproject force-includes ``widgets/`` there);
    2. ``<repo>/widgets`` — an editable checkout.
    """
    return [_PACKAGE_DIR / "_frontend", _PACKAGE_DIR.parent / "widgets"]


def asset_path(name: str) -> Path:
    """The path of the front-end asset ``name`` (e.g. ``"atdata.css"``).

    Raises:
        FileNotFoundError: the asset is in none of :func:`asset_dirs` (the message lists them).
    """
    for d in asset_dirs():
        p = d / name
        if p.is_file():
            return p
    where = ", ".join(str(d) for d in asset_dirs())
    raise DataNotFoundError(
        f"front-end asset {name!r} not found in {where}; reinstall atdata-lab (the wheel ships it in "
        "atdata_lab/_frontend) or run from a checkout that has the top-level widgets/ folder"
    )


_asset_cache: dict[Path, tuple[float, str]] = {}


def read_asset(name: str) -> str:
    """The text of asset ``name`` (re-read when the file changes, so CSS edits show on re-display)."""
    p = asset_path(name)
    mtime = p.stat().st_mtime
    hit = _asset_cache.get(p)
    if hit is None or hit[0] != mtime:
        hit = (mtime, p.read_text(encoding="utf-8"))
        _asset_cache[p] = hit
    return hit[1]


ESM_PRELUDES = {"data_table.js": ("table_common.js",), "samples_table.js": ("table_common.js",)}


def read_esm(name: str) -> str:
    """The ES module ``name`` as anywidget loads it: one text, with the shared files it uses
    (:data:`ESM_PRELUDES`, which have no exports) in front of it."""
    return "\n".join([*(read_asset(p) for p in ESM_PRELUDES.get(name, ())), read_asset(name)])


def stylesheet(*names: str) -> ipywidgets.HTML:
    """A hidden widget whose ``<style>`` element holds the CSS of ``names`` (in order)."""
    css = "\n".join(f"/* {n} */\n{read_asset(n)}" for n in names)
    w = ipywidgets.HTML(f"<style>{css}</style>", layout=ipywidgets.Layout(display="none"))
    w.add_class("atdata-style")
    return w


# ---------------------------------------------------------------------------------------------
# HTML helpers (esc and html_table come from atdata_lab.views.text)
# ---------------------------------------------------------------------------------------------
def not_available(feature: str, module: str, error: BaseException | None = None) -> str:
    """The readable message shown when an optional widget module is not there (yet)."""
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return (
        f"{feature} is not available yet: atdata_lab.widgets.{module} could not be imported{detail}. "
        "Update atdata-lab, or use the library directly."
    )


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, KeyError) and not text.startswith("'") and exc.args and isinstance(exc.args[0], str):
        text = exc.args[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def show_action(
    area: ipywidgets.Box, title: ipywidgets.HTML, close: ipywidgets.Widget, heading: str, widget: Any
) -> None:
    """Show ``widget`` in a widget's action area (the inspector, diff viewer or wizard an action
    opened), under ``heading`` with its close button."""
    title.value = f"<div class='atdata-section-title'>{esc(heading)}</div>"
    area.children = [
        ipywidgets.HBox([title, close], layout=ipywidgets.Layout(justify_content="space-between")),
        widget,
    ]
    area.layout.display = "flex"


def hide_action(area: ipywidgets.Box) -> None:
    """Empty and hide an action area (:func:`show_action`)."""
    area.children = []
    area.layout.display = "none"


class ErrorPanel(ipywidgets.VBox):
    """Shows an exception readably: what failed, the message, and the traceback folded away.

    Hidden while empty. ``history`` keeps ``(context, exception)`` of everything shown;
    ``last`` is the latest exception; ``message`` the latest one-line text.
    """

    def __init__(self) -> None:
        self._html = ipywidgets.HTML()
        self._html.add_class("atdata-error-text")
        self._dismiss = ipywidgets.Button(description="Dismiss", layout=ipywidgets.Layout(width="auto"))
        self._dismiss.add_class("atdata-error-dismiss")
        self._dismiss.on_click(lambda _b: self.clear())
        super().__init__([self._html, self._dismiss], layout=ipywidgets.Layout(display="none"))
        self.add_class("atdata-error")
        self.history: list[tuple[str, BaseException]] = []
        self.last: BaseException | None = None
        self.message = ""
        self.advice = ""

    def show(self, exc: BaseException, context: str = "", advice: str = "") -> None:
        """Display ``exc`` (``context`` says what was being done, e.g. ``"Searching"``) and log it.

        ``advice`` (optional) says what to do next; it is shown under the message.
        """
        self.history.append((context, exc))
        self.last = exc
        what = f"{context} failed" if context else "Something failed"
        self.message = f"{what}: {_describe(exc)}"
        self.advice = advice
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        hint = f"<div class='atdata-error-advice'>What to do next: {esc(advice)}</div>" if advice else ""
        self._html.value = (
            f"<div class='atdata-error-title'>{esc(what)}</div>"
            f"<div class='atdata-error-message'>{esc(_describe(exc))}</div>{hint}"
            f"<details class='atdata-error-details'><summary>Traceback</summary><pre>{esc(tb)}</pre></details>"
        )
        self.layout.display = "flex"
        log.error("%s", self.message, exc_info=(type(exc), exc, exc.__traceback__))

    def show_message(self, text: str, *, title: str = "Not available") -> None:
        """Display a plain message (no exception), e.g. a feature that is not installed."""
        self.message = f"{title}: {text}"
        self._html.value = f"<div class='atdata-error-title'>{esc(title)}</div><div class='atdata-error-message'>{esc(text)}</div>"
        self.layout.display = "flex"

    def clear(self) -> None:
        """Hide the panel (the history stays)."""
        self.message = ""
        self.advice = ""
        self._html.value = ""
        self.layout.display = "none"

    @property
    def visible(self) -> bool:
        return self.layout.display != "none"


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------
class ProgressBar(ipywidgets.HBox):
    """A subscriber of the library's progress protocol: ``index.write(..., progress=bar)``.

    Shows the latest task as a bar (a count when the total is unknown) and a label such as
    ``write: 500 / 1,000 samples · shard 2``. Updates are throttled to one every ``interval``
    seconds (the last event of a task always shows). Safe to call from a worker thread.

    Attributes:
        events: Every event received (tests read it).
    """

    def __init__(self, *, interval: float = 0.05, description: str = "") -> None:
        self._bar = ipywidgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, description=description, layout=ipywidgets.Layout(width="240px")
        )
        self._description = description
        self._label = ipywidgets.HTML()
        self._label.add_class("atdata-progress-label")
        super().__init__([self._bar, self._label], layout=ipywidgets.Layout(display="none"))
        self.add_class("atdata-progress")
        self.interval = interval
        self.events: list[ProgressEvent] = []
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            self.events.append(event)
            now = time.monotonic()
            if not event.finished and now - self._last < self.interval and self.layout.display != "none":
                return
            self._last = now
        self._render(event)

    def flush(self) -> None:
        """Show the latest event even if throttling held it back (called when a task ends)."""
        if self.events:
            self._render(self.events[-1])

    def _render(self, event: ProgressEvent) -> None:
        self.layout.display = "flex"
        if event.total:
            self._bar.max = float(event.total)
            self._bar.value = float(min(event.done, event.total))
        else:
            self._bar.max = 1.0
            self._bar.value = 1.0 if event.finished else 0.0
        self._bar.bar_style = "success" if event.finished else ""
        self._label.value = esc(self.text_for(event))

    @staticmethod
    def text_for(event: ProgressEvent) -> str:
        """``"write: 500 / 1,000 samples · shard 2"``."""
        return progress_text(event)

    @property
    def text(self) -> str:
        return html.unescape(self._label.value)

    def stop(self, description: str, note: str) -> None:
        """The work stopped before it finished (a cancel): the bar, relabelled ``description``
        (e.g. "Cancelled") in the warning style, says where it stopped, followed by ``note``."""
        with self._lock:
            last = self.events[-1] if self.events else None
        self.layout.display = "flex"
        self._bar.description = description
        self._bar.bar_style = "warning"
        where = f"{self.text_for(last)} · " if last is not None else ""
        self._label.value = esc(f"{where}{note}")

    def reset(self) -> None:
        self.events.clear()
        self._bar.value = 0.0
        self._bar.bar_style = ""
        self._bar.description = self._description
        self._label.value = ""
        self.layout.display = "none"


# ---------------------------------------------------------------------------------------------
# background work
# ---------------------------------------------------------------------------------------------
class TaskCancelled(Exception):
    """Raised inside a :class:`BackgroundTask` at its next progress report after ``cancel()``."""


class BackgroundTask:
    """Work running in a daemon thread, started by :func:`run_in_thread`.

    ``fn(task)`` receives this task: pass ``task.progress`` on as ``progress=`` (it forwards
    events to the subscriber and raises :class:`TaskCancelled` once :meth:`cancel` was called), and
    check ``task.cancel_requested`` in loops of your own.

    Attributes:
        result: ``fn``'s return value once done.
        error: The exception ``fn`` raised (``TaskCancelled`` when cancelled), or None.
    """

    def __init__(
        self,
        fn: Callable[[BackgroundTask], Any],
        *,
        name: str = "atdata-task",
        progress: Callable[[ProgressEvent], Any] | None = None,
        on_done: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self._subscriber = progress
        self._on_done = on_done
        self._on_error = on_error
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> BackgroundTask:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self.fn(self)
        except BaseException as e:  # noqa: BLE001 - handed to on_error, never lost
            self.error = e
        try:
            if self.error is None:
                if self._on_done is not None:
                    self._on_done(self.result)
            elif self._on_error is not None:
                self._on_error(self.error)
            else:
                log.error(
                    "%s failed", self.name, exc_info=(type(self.error), self.error, self.error.__traceback__)
                )
        except Exception:
            log.exception("%s: completion callback failed", self.name)
        finally:
            self._done.set()  # after the callbacks: wait() returns once the widget shows the outcome

    def progress(self, event: ProgressEvent) -> None:
        """Forward ``event`` to the subscriber; raise :class:`TaskCancelled` if cancel was asked."""
        if self._subscriber is not None:
            self._subscriber(event)
        if self._cancel.is_set():
            raise TaskCancelled(f"{self.name} was cancelled")

    def cancel(self) -> None:
        """Ask the work to stop (at its next progress report or ``cancel_requested`` check)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, TaskCancelled)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until done; return the result or raise the error.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.name} still running after {timeout} s")
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


def run_in_thread(fn: Callable[[BackgroundTask], Any], **kwargs: Any) -> BackgroundTask:
    """Start ``fn(task)`` in a daemon thread and return the :class:`BackgroundTask`.

    Keyword arguments are those of :class:`BackgroundTask` (``name``, ``progress``, ``on_done``,
    ``on_error``). The kernel keeps answering the front end meanwhile, so the widget stays live.
    """
    return BackgroundTask(fn, **kwargs).start()


class Debouncer:
    """Call ``fn(*args)`` once, ``delay`` seconds after the last :meth:`__call__` (e.g. keystrokes).

    ``fn`` runs in a timer thread. :meth:`flush` runs a pending call now (tests use it);
    ``calls`` counts the calls that actually ran.
    """

    def __init__(self, delay: float, fn: Callable[..., Any]) -> None:
        self.delay = delay
        self.fn = fn
        self.calls = 0
        self._timer: threading.Timer | None = None
        self._args: tuple = ()
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._args = args
            self._timer = threading.Timer(self.delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._timer is None:
                return
            self._timer = None
            args = self._args
        self.calls += 1
        self.fn(*args)

    @property
    def pending(self) -> bool:
        return self._timer is not None

    def flush(self) -> None:
        """Run the pending call now, in this thread (nothing happens when none is pending)."""
        with self._lock:
            timer, self._timer = self._timer, None
            args = self._args
        if timer is not None:
            timer.cancel()
            self.calls += 1
            self.fn(*args)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None


# ---------------------------------------------------------------------------------------------
# a sortable, clickable table (anywidget)
# ---------------------------------------------------------------------------------------------
class DataTable(anywidget.AnyWidget):
    """A table whose header clicks (sort) and row clicks (select) reach Python.

    The front end is ``widgets/data_table.js``. Python sets ``columns`` and ``rows`` (display
    strings only: the caller pages, sorts and formats); the browser sets ``sort_key``,
    ``descending``, ``selected`` and ``clicks``. Observe those (``table.observe(fn, "selected")``).
    Rows carry the class ``f"{css_prefix}-row"`` and ``data-id``; headers ``f"{css_prefix}-th"``
    and ``data-key``.
    """

    _esm = traitlets.Unicode(help="The view's ES module (widgets/data_table.js).").tag(sync=True)
    columns = traitlets.List(help="Columns: [{key, label, sortable, numeric}].").tag(sync=True)
    rows = traitlets.List(help="Rows: [{column key: display string}], one page at most.").tag(sync=True)
    row_key = traitlets.Unicode("name", help="The cell that identifies a row.").tag(sync=True)
    sort_key = traitlets.Unicode("", help="The column key sorted by ('' for none).").tag(sync=True)
    descending = traitlets.Bool(False, help="Sort direction of sort_key.").tag(sync=True)
    selected = traitlets.Unicode("", help="The id (row_key cell) of the selected row, '' for none.").tag(
        sync=True
    )
    clicks = traitlets.Int(0, help="Grows on every row click, also on the selected row.").tag(sync=True)
    badges = traitlets.Dict(
        help="{column key: {cell text: ok|warn|error|info}}: such cells show as badges."
    ).tag(sync=True)
    subtitle = traitlets.Dict(help="{column key: other key}: that cell is shown under it in small text.").tag(
        sync=True
    )
    empty_text = traitlets.Unicode("Nothing to show", help="Shown when there are no rows.").tag(sync=True)
    css_prefix = traitlets.Unicode("atdata-table", help="Prefix of the per-part CSS classes.").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_esm=read_esm("data_table.js"), **kwargs)


class CopyButton(anywidget.AnyWidget):
    """A button that copies ``text`` to the clipboard (``widgets/copy_button.js``; where the browser
    refuses the clipboard API it falls back to a selected text area). ``copies`` grows on every
    successful copy. Only ever give it public text (it is widget state, saved with the notebook)."""

    _esm = traitlets.Unicode(help="The view's ES module (widgets/copy_button.js).").tag(sync=True)
    text = traitlets.Unicode("", help="What is copied ('' disables the button).").tag(sync=True)
    label = traitlets.Unicode("Copy", help="The button's text.").tag(sync=True)
    copies = traitlets.Int(0, help="Grows on every successful copy (set by the browser).").tag(sync=True)
    css_class = traitlets.Unicode("", help="An extra class of the button element.").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_esm=read_asset("copy_button.js"), **kwargs)


class Scroller(anywidget.AnyWidget):
    """Scrolls another widget into view (``widgets/scroll_into_view.js``): put it (it shows nothing)
    next to the control whose action changes a widget far away, and call :meth:`scroll_to`.
    ``scrolls`` grows on every scroll the page did."""

    _esm = traitlets.Unicode(help="The view's ES module (widgets/scroll_into_view.js).").tag(sync=True)
    scrolls = traitlets.Int(0, help="Grows on every scroll done (set by the browser).").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_esm=read_asset("scroll_into_view.js"), **kwargs)

    def scroll_to(self, widget: ipywidgets.DOMWidget) -> None:
        """Scroll the page so ``widget``'s top shows (a no-op where no front end is attached)."""
        mark = f"atdata-scroll-{widget.model_id}"
        if mark not in widget._dom_classes:
            widget.add_class(mark)
        self.send({"scroll_to": f".{mark}"})


# ---------------------------------------------------------------------------------------------
# the base widget
# ---------------------------------------------------------------------------------------------
class AtdataWidget(ipywidgets.VBox):
    """Base of the atdata-lab widgets (see the module docstring for the conventions).

    Subclasses set ``_root_class`` and ``_css_files``, call ``super().__init__()`` first, build
    their parts, then ``self.set_body(*parts)``.
    """

    _root_class = "atdata-widget"
    _css_files: tuple[str, ...] = ("atdata.css",)

    def __init__(self, **kwargs: Any) -> None:
        self.errors = ErrorPanel()
        self._style = stylesheet(*self._css_files)
        self._reporting_depth = 0
        self._tasks: list[BackgroundTask] = []
        super().__init__(children=[self._style, self.errors], **kwargs)
        self.add_class("atdata-widget")
        if self._root_class != "atdata-widget":
            self.add_class(self._root_class)

    # -- layout
    def set_body(self, *parts: ipywidgets.Widget) -> None:
        """Set the widget's content (the stylesheet and the error panel stay first)."""
        self.children = [self._style, self.errors, *parts]

    def part(self, widget: ipywidgets.Widget, name: str, *extra: str) -> Any:
        """Tag ``widget`` with ``f"{_root_class}-{name}"`` (and any ``extra`` classes); return it."""
        widget.add_class(f"{self._root_class}-{name}")
        for c in extra:
            widget.add_class(c)
        return widget

    # -- errors
    @contextlib.contextmanager
    def reporting(self, what: str, *, reraise: bool = True) -> Iterator[None]:
        """Run a block as the action ``what``: an exception is shown, logged, and re-raised.

        The outermost block clears a previous error first, so the panel shows the latest outcome.
        """
        self._reporting_depth += 1
        if self._reporting_depth == 1 and self.errors.visible:
            self.errors.clear()
        try:
            yield
        except Exception as e:
            if not getattr(e, "_atdata_shown", False):
                self.errors.show(e, what, self.error_advice(e))
                with contextlib.suppress(Exception):
                    e._atdata_shown = True  # type: ignore[attr-defined]
            if reraise:
                raise
        finally:
            self._reporting_depth -= 1

    def ui(self, handler: Callable[..., Any], what: str = "") -> Callable[..., Any]:
        """Wrap a UI callback: exceptions are shown in the panel and logged, not re-raised."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.reporting(
                what or getattr(handler, "__name__", "action").strip("_").replace("_", " "), reraise=False
            ):
                return handler(*args, **kwargs)

        return wrapped

    def on_click(self, button: ipywidgets.Button, handler: Callable[[Any], Any], what: str = "") -> None:
        """``button.on_click(self.ui(handler, what))``."""
        button.on_click(self.ui(handler, what))

    def swap_toolbar(self, title: ipywidgets.Widget, swap: Callable[[], Any]) -> ipywidgets.HBox:
        """``title`` beside a "Swap sides" button that calls ``swap()`` (the two-sided views)."""
        button = self.part(
            ipywidgets.Button(
                description="Swap sides", icon="exchange", layout=ipywidgets.Layout(width="auto")
            ),
            "swap",
        )
        self.on_click(button, lambda _b: swap(), "Swapping the sides")
        toolbar = ipywidgets.HBox([title, button])
        toolbar.add_class("atdata-toolbar")
        return toolbar

    def error_advice(self, exc: BaseException) -> str:
        """What to do next about ``exc``, shown under the message. Override per widget ("" = none)."""
        return ""

    # -- background work
    def run_task(
        self,
        what: str,
        fn: Callable[[BackgroundTask], Any],
        *,
        progress: Callable[[ProgressEvent], Any] | None = None,
        on_done: Callable[[Any], Any] | None = None,
    ) -> BackgroundTask:
        """Run ``fn(task)`` off the UI thread; its error is shown in the panel as ``what`` failed."""
        if self.errors.visible:
            self.errors.clear()

        def on_error(e: BaseException) -> None:
            flush = getattr(progress, "flush", None)
            if flush is not None:
                flush()
            if isinstance(e, TaskCancelled):
                return
            self.errors.show(e, what, self.error_advice(e))

        def done(result: Any) -> None:
            flush = getattr(progress, "flush", None)
            if flush is not None:
                flush()
            if on_done is not None:
                with self.reporting(what, reraise=False):
                    on_done(result)

        task = run_in_thread(fn, name=what, progress=progress, on_done=done, on_error=on_error)
        self._tasks.append(task)
        return task

    # -- static fallback
    def _static_html(self) -> str:
        """HTML shown where no widget manager runs. Override with what the widget shows."""
        return f"<div class='atdata-widget {esc(self._root_class)}'>{esc(repr(self))}</div>"

    def _repr_html_(self) -> str:
        return self._static_html()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/plain"] = repr(self)
        try:
            data["text/html"] = self._static_html()
        except Exception as e:  # a broken fallback must not break the live widget
            log.exception("static fallback of %s failed", type(self).__name__)
            data["text/html"] = f"<pre>{esc(repr(self))}: no static view ({esc(_describe(e))})</pre>"
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
