"""``SamplesTable(dataset | entry)``: every sample of a dataset as a table row, with per-column
statistics in the headers and filters that become code.

Only the rows in view cross to the browser: the front end (``widgets/samples_table.js``) asks for
a window of rows (offset, count) as it scrolls; filtering and sorting happen here, over the
shards' manifests (:class:`~atdata_lab.manifest.selection.SampleRows`), and each row is read by
random access (``ds[k]``). Every user action has a programmatic twin::

    table = entry.table()                   # or ds.table(), SamplesTable(ds)
    table.rows(0, 20)                       # the cells of rows 0..19, as sent to the browser
    table.sort("score", descending=True)    # a manifest field
    table.filter_bin("score", 3)            # what clicking a histogram bar does
    table.filter_value("label", "cat")      # what clicking a top value does
    table.set_filter('F.label == "cat" and F.score > 0.5')   # typed (parsed, never evaluated)
    table.code                              # 'ds.query(where=F.label == "cat")'
    table.selection.locations()             # the SampleLocations; .dataset(), .samples(), .indices

``table.filter`` is the current :class:`~atdata_lab.manifest.Predicate` (or None), a trait other
widgets observe (the sample inspector's grid follows it).
"""

from __future__ import annotations

import time
from typing import Any

import anywidget
import ipywidgets
import traitlets

from ..entry import IndexEntry
from ..errors import InvalidArgumentError, InvalidTypeError, SampleIndexError
from ..manifest.predicate_text import parse_predicate, predicate_code, query_code
from ..manifest.predicates import Predicate
from ..manifest.selection import SampleRows, Selection
from ..views.samples import classify, sample_fields
from ..views.samples_table import column_header, table_cell
from ._base import AtdataWidget, CopyButton, ProgressBar, esc, html_table, read_esm

__all__ = ["SamplesTable"]

MAX_WINDOW = 200  # rows sent at once
_CELL_KIND = {"image": "img", "volume": "img", "scalar": "num", "int": "num", "float": "num", "str": "text"}


class _TableView(anywidget.AnyWidget):
    """The virtualised table (``widgets/samples_table.js``). The kernel sets ``columns``,
    ``n_rows``, ``version`` and ``window``; the browser sets ``request``, ``sort_key`` /
    ``descending``, ``filter_click`` and ``selected``."""

    _esm = traitlets.Unicode().tag(sync=True)
    columns = traitlets.List(
        help="[{key, label, kind, sortable, why_not, numeric, summary, bins, tops}]"
    ).tag(sync=True)
    n_rows = traitlets.Int(0, help="Rows after the filter.").tag(sync=True)
    total = traitlets.Int(0, help="Samples in the dataset.").tag(sync=True)
    version = traitlets.Int(
        0, help="Grows when the rows change (filter, sort): cached rows are dropped."
    ).tag(sync=True)
    window = traitlets.Dict(help="{version, offset, rows: [{r, i, cells}]}: rows the browser asked for.").tag(
        sync=True
    )
    request = traitlets.Dict(help="{offset, count, seq}: the rows the browser needs (set by it).").tag(
        sync=True
    )
    sort_key = traitlets.Unicode("", help="The column sorted by ('' for dataset order).").tag(sync=True)
    descending = traitlets.Bool(False).tag(sync=True)
    filter_click = traitlets.Dict(
        help="{column, bin | value, seq}: a histogram bar or top value clicked."
    ).tag(sync=True)
    selected = traitlets.Int(-1, help="The global index of the selected sample (-1: none).").tag(sync=True)
    filter_column = traitlets.Unicode("", help="The column the filter came from (highlighted).").tag(
        sync=True
    )
    row_height = traitlets.Int(40).tag(sync=True)
    body_height = traitlets.Int(420, help="Pixel height of the scrolling rows.").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_esm=read_esm("samples_table.js"), **kwargs)


class SamplesTable(AtdataWidget):
    """A table of every sample of a dataset (virtualised), with column statistics and filters.

    Args:
        source: A :class:`~atdata_lab.dataset.Dataset` or an :class:`~atdata_lab.entry.IndexEntry`.
        stats: Compute the column statistics for the headers (``ds.stats()``: from the manifests
            when every shard has one, else one streaming pass, in the background with progress).
        height: Pixel height of the scrolling rows.

    Attributes:
        filter: The current :class:`~atdata_lab.manifest.Predicate`, or None (a trait: observe it).
        stats: The :class:`~atdata_lab.column_stats.DatasetStats` once computed, else None.
        timings: Kernel ms of the last ``window`` (rows read), ``filter`` and ``sort``.
    """

    _root_class = "atdata-samples-table"
    _css_files = ("atdata.css", "column_stats.css", "samples_table.css")

    filter = traitlets.Any(None, allow_none=True, help="The current Predicate, or None.")

    def __init__(self, source: Any, *, stats: bool = True, height: int = 420, name: str = "ds") -> None:
        super().__init__()
        if isinstance(source, IndexEntry):
            self.entry: IndexEntry | None = source
            self.dataset = source.dataset()
        elif hasattr(source, "locate") and hasattr(source, "__getitem__"):
            self.entry = None
            self.dataset = source
        else:
            raise InvalidTypeError(
                f"SamplesTable shows a Dataset or an IndexEntry, not {type(source).__name__}"
            )
        self.name = name
        self._rows = SampleRows(self.dataset)
        self.n = self._rows.n
        self.stats: Any = None
        self.timings: dict[str, float] = {}
        self._order = self._rows.order()
        self._kinds: dict[str, str] = {}
        self._stats_task: Any = None

        self.view = self.part(_TableView(total=self.n, n_rows=self.n, body_height=int(height)), "grid")
        self.query_text = self.part(
            ipywidgets.Text(
                placeholder='F.label == "cat" and F.score > 0.5',
                description="Filter",
                layout=ipywidgets.Layout(width="420px"),
                continuous_update=False,
            ),
            "query",
        )
        self.apply_button = self.part(
            ipywidgets.Button(description="Apply", layout=ipywidgets.Layout(width="auto")), "apply"
        )
        self.clear_button = self.part(
            ipywidgets.Button(description="Clear", layout=ipywidgets.Layout(width="auto")), "clear"
        )
        self.status = self.part(ipywidgets.HTML(), "status", "atdata-muted")
        self.code_html = self.part(ipywidgets.HTML(), "code")
        self.copy_button = self.part(CopyButton(label="Copy"), "copy")
        self.detail = self.part(ipywidgets.HTML(), "detail")
        self.progress = self.part(ProgressBar(), "progress")
        toolbar = self.part(
            ipywidgets.HBox([self.query_text, self.apply_button, self.clear_button, self.status]),
            "toolbar",
            "atdata-toolbar",
        )
        code_row = self.part(
            ipywidgets.HBox([self.code_html, self.copy_button]), "code-row", "atdata-toolbar"
        )

        self.on_click(self.apply_button, lambda _b: self.set_filter(self.query_text.value), "Filtering")
        self.on_click(self.clear_button, lambda _b: self.clear_filter(), "Clearing the filter")
        self.query_text.observe(self.ui(lambda ch: self.set_filter(ch["new"]), "Filtering"), names="value")
        self.view.observe(self.ui(lambda ch: self._on_request(ch["new"]), "Reading rows"), names="request")
        self.view.observe(self.ui(lambda _ch: self._on_sort(), "Sorting"), names=["sort_key", "descending"])
        self.view.observe(self.ui(lambda ch: self._on_click(ch["new"]), "Filtering"), names="filter_click")
        self.view.observe(self.ui(lambda ch: self.select(ch["new"]), "Showing the sample"), names="selected")

        self.set_body(toolbar, code_row, self.progress, self.view, self.detail)
        self._syncing = False
        with self.reporting("Reading the first rows", reraise=False):
            self._columns()
            self._refresh()
            if stats:
                self.compute_stats()

    # ------------------------------------------------------------------ columns and statistics
    def _columns(self) -> None:
        """The columns, from the first sample's fields (kinds) and the manifest fields (sortable)."""
        if self.n == 0:
            self.view.columns = [column_header("#", "num")]
            return
        first = self.dataset[int(self._order[0]) if len(self._order) else 0]
        fields = set(self._rows.fields)
        self._kinds = {}
        for name, value in sample_fields(first):
            kind = classify(value)
            self._kinds[name] = _CELL_KIND.get(kind, "other" if kind not in ("bool",) else "text")
        self.view.columns = [column_header("#", "num", sortable=False)] + [
            self._header(name, kind, name in fields) for name, kind in self._kinds.items()
        ]

    def _header(self, name: str, kind: str, sortable: bool) -> dict:
        col = self.stats.columns.get(name) if self.stats is not None else None
        why = "" if sortable else self._why_not(name)
        return column_header(name, kind, col, sortable=sortable, why_not=why)

    def _why_not(self, name: str) -> str:
        if self._rows.has_manifests:
            fields = ", ".join(self._rows.fields) or "none"
            return (
                f"{name} is not a manifest field, and only manifest fields (scalars: numbers, text) sort; "
                f"sort by one of: {fields}"
            )
        return (
            "Sorting needs the shards' manifests: write with manifest=True or run index.build_manifests(name)"
        )

    def compute_stats(self) -> Any:
        """Compute the column statistics (in the background) and show them in the headers;
        returns the task (``task.wait()``), or None when the dataset has no ``stats()``."""
        stats_of = getattr(self.entry if self.entry is not None else self.dataset, "stats", None)
        if stats_of is None:
            return None

        def work(task: Any) -> Any:
            return stats_of(progress=task.progress)

        def done(result: Any) -> None:
            self.stats = result
            self.progress.layout.display = "none"  # the headers show the result
            self._columns()

        self.progress.layout.display = ""
        self._stats_task = self.run_task(
            "Computing column statistics", work, progress=self.progress, on_done=done
        )
        return self._stats_task

    def wait_stats(self, timeout: float = 60) -> Any:
        """Wait for the statistics (tests); returns them."""
        if self._stats_task is not None:
            self._stats_task.wait(timeout)
            deadline = time.monotonic() + 5
            while self.stats is None and time.monotonic() < deadline:  # on_done runs just after
                time.sleep(0.01)
        return self.stats

    # ------------------------------------------------------------------ rows
    @property
    def n_rows(self) -> int:
        """Rows after the filter."""
        return len(self._order)

    def index_of(self, row: int) -> int:
        """The global index (``ds[k]``) of row ``row`` as shown (filtered, sorted)."""
        if not 0 <= row < len(self._order):
            raise SampleIndexError(f"row {row} is out of range: the table has {len(self._order):,} rows")
        return int(self._order[row])

    def rows(self, offset: int, count: int) -> list[dict]:
        """The rows ``offset .. offset+count-1`` as sent to the browser: ``{r: row, i: global
        index, cells: [cell per column]}`` (at most :data:`MAX_WINDOW`; each sample read by index)."""
        t = time.perf_counter()
        offset = max(int(offset), 0)
        count = max(min(int(count), MAX_WINDOW), 0)
        out = []
        for r in range(offset, min(offset + count, len(self._order))):
            k = int(self._order[r])
            sample = self.dataset[k]
            values = dict(sample_fields(sample))
            cells = [{"t": "num", "v": f"{k:,}", "full": str(k)}]
            cells += [table_cell(values.get(name)) for name in self._kinds]
            out.append({"r": r, "i": k, "cells": cells})
        self.timings["window"] = (time.perf_counter() - t) * 1000
        return out

    def _on_request(self, req: dict) -> None:
        if not req:
            return
        rows = self.rows(req.get("offset", 0), req.get("count", 50))
        self.view.window = {
            "version": self.view.version,
            "offset": int(req.get("offset", 0)),
            "seq": req.get("seq", 0),
            "rows": rows,
        }

    def _refresh(self) -> None:
        """After a filter or sort: new rows, the status and the code line."""
        self.view.n_rows = len(self._order)
        self.view.version += 1
        self.view.window = {"version": self.view.version, "offset": 0, "seq": -1, "rows": self.rows(0, 30)}
        shown = f"{len(self._order):,} of {self.n:,} samples"
        self.status.value = f"<span class='atdata-samples-table-count'>{esc(shown)}</span>"
        code = self.code
        self.code_html.value = f"<code class='atdata-samples-table-code-line'>{esc(code)}</code>"
        self.copy_button.text = code

    # ------------------------------------------------------------------ sorting
    def sort(self, column: str | None, descending: bool = False) -> None:
        """Sort the rows by the manifest field ``column`` (None or "": dataset order).

        Raises:
            InvalidArgumentError: ``column`` is not a manifest field (the message says how to make it one).
            ManifestNotFoundError: The shards have no manifests.
        """
        with self.reporting(f"Sorting by {column}"):
            t = time.perf_counter()
            column = column or None
            if column is not None and column not in self._rows.fields:
                raise InvalidArgumentError(f"cannot sort by {column!r}: {self._why_not(column)}")
            self._order = self._rows.order(self.filter, column, descending)
            self._syncing = True
            try:
                self.view.sort_key = column or ""
                self.view.descending = bool(descending)
            finally:
                self._syncing = False
            self._refresh()
            self.timings["sort"] = (time.perf_counter() - t) * 1000

    def _on_sort(self) -> None:
        if self._syncing:
            return
        try:
            self.sort(self.view.sort_key or None, self.view.descending)
        except Exception:
            self._syncing = True
            try:
                self.view.sort_key = ""
            finally:
                self._syncing = False
            raise

    # ------------------------------------------------------------------ filtering
    def set_filter(self, predicate: Predicate | str | None) -> Predicate | None:
        """Show only the samples ``predicate`` selects: a Predicate (``F.label == "cat"``), its text
        (parsed by :func:`~atdata_lab.manifest.predicate_text.parse_predicate`, never evaluated),
        or None / "" for every sample. Returns the predicate.

        Raises:
            PredicateSyntaxError: The text is not a predicate (a ``ValueError``; nothing ran).
            ManifestNotFoundError: The shards have no manifests (filters read them).
        """
        with self.reporting("Filtering"):
            if isinstance(predicate, str):
                predicate = parse_predicate(predicate) if predicate.strip() else None
            if predicate is not None and not isinstance(predicate, Predicate):
                raise InvalidTypeError(
                    f"a filter is a predicate (F.label == 'cat') or its text, not {type(predicate).__name__}"
                )
            t = time.perf_counter()
            order = self._rows.order(predicate, self.view.sort_key or None, self.view.descending)
            self._order = order
            self.filter = predicate
            self.view.filter_column = ""
            self._syncing = True
            try:
                text = predicate_code(predicate) if predicate is not None else ""
                if self.query_text.value != text:
                    self.query_text.value = text
            finally:
                self._syncing = False
            self._refresh()
            self.timings["filter"] = (time.perf_counter() - t) * 1000
            return predicate

    @traitlets.observe("filter")
    def _filter_changed(self, change: dict) -> None:
        # set from outside (the sample inspector, code): follow it
        if change["new"] is not change["old"] and change["new"] is not self._rows_filter():
            with self.reporting("Filtering", reraise=False):
                self.set_filter(change["new"])

    def _rows_filter(self) -> Any:
        last = self._rows._last
        return last[0] if last is not None else None

    def clear_filter(self) -> None:
        """Show every sample again."""
        self.set_filter(None)

    def _column_stats(self, column: str) -> Any:
        if self.stats is None:
            raise InvalidArgumentError(
                "the column statistics are not computed yet: wait for them (table.wait_stats())"
            )
        col = self.stats.columns.get(column)
        if col is None:
            raise InvalidArgumentError(
                f"no statistics for column {column!r} (columns: {', '.join(self.stats.columns)})"
            )
        return col

    def filter_bin(self, column: str, i: int) -> Predicate | None:
        """Filter by histogram bin ``i`` of ``column`` (what clicking its bar does)."""
        pred = self._column_stats(column).predicate_for_bin(int(i))
        out = self.set_filter(pred)
        self.view.filter_column = column
        return out

    def filter_value(self, column: str, value: str) -> Predicate | None:
        """Filter by one of ``column``'s values (what clicking a top value does)."""
        pred = self._column_stats(column).predicate_for_value(value)
        out = self.set_filter(pred)
        self.view.filter_column = column
        return out

    def _on_click(self, click: dict) -> None:
        if not click:
            return
        column = str(click.get("column", ""))
        if "bin" in click:
            self.filter_bin(column, int(click["bin"]))
        elif "value" in click:
            self.filter_value(column, str(click["value"]))

    @property
    def code(self) -> str:
        """The line that makes the current filter's query: ``ds.query(where=F.label == "cat")``."""
        return query_code(self.filter, self.name)

    @property
    def selection(self) -> Selection:
        """What the current filter selects: ``.locations()``, ``.indices``, ``.samples()``, ``.dataset()``."""
        return self._rows.selection(self.filter)

    # ------------------------------------------------------------------ one sample
    def select(self, k: int) -> Any:
        """Select the sample with global index ``k`` (-1: none) and show its fields in full; returns it."""
        with self.reporting(f"Showing sample {k}"):
            k = int(k)
            if k < 0:
                self.detail.value = ""
                return None
            sample = self.dataset[k]
            if self.view.selected != k:
                self.view.selected = k
            cells = [(name, table_cell(v)["full"]) for name, v in sample_fields(sample)]
            table = (
                html_table(["field", "value"], cells, css_class="atdata-samples-table-detail-table")
                if cells
                else ""
            )
            self.detail.value = f"<div class='atdata-samples-table-detail-title'>sample {k:,}</div>{table}"
            return sample

    # ------------------------------------------------------------------ static fallback
    def __repr__(self) -> str:
        what = f", filter {predicate_code(self.filter)}" if self.filter is not None else ""
        return f"SamplesTable({self.n_rows:,} of {self.n:,} samples{what})"

    def _static_html(self) -> str:
        rows = self.rows(0, 10) if self.n else []
        heads = ["#", *self._kinds]
        body = [[c["v"] for c in r["cells"]] for r in rows]
        return (
            f"<div class='atdata-samples-table'><div>{esc(repr(self))}</div>"
            f"{html_table(heads, body)}<code>{esc(self.code)}</code></div>"
        )
