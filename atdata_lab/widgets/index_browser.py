"""``IndexBrowser(index)``: browse, search, sort and open the entries of an index.

Filtering, sorting and paging are done by the index (``Index.search``: SQL side for SQLite);
the widget only ever holds one page of rows. Every user action has a programmatic twin::

    browser = index.browse()          # or IndexBrowser(index)
    browser.search("exp")             # the search box (debounced when typed)
    browser.filter_schema("Image")    # the schema filter (a name: any version)
    browser.sort_by("size")           # a header click (again: reverses)
    browser.next_page(); browser.prev_page(); browser.goto_page(3)
    browser.select("mnist-train")     # a row click: the detail panel
    browser.inspect_selected()        # "Inspect samples"
    browser.diff_selected()           # "Diff schema"
    browser.promote_selected()        # "Promote…"
    browser.refresh()                 # sees entries written by other kernels
    browser.show_tab("published"); browser.load_published(); browser.select_record(uri)
    browser.verify(uri).wait()        # "Verify" (runs off the UI thread)
    browser.show_tab("network"); browser.search_network("mnist", tags=["img"])
    browser.select_network(uri)       # a Network row: its records and the load_dataset line
    browser.inspect_network(); browser.diff_network(local_ref)
    browser.close()                   # also stops the Network tab's polling

The Network tab (with an AppView: the attached atmosphere's, or ``ATDATA_APPVIEW_URL`` without any
account) finds datasets of every publisher through the AppView (``index.search(..., scope="network")``); new records appear by polling (see
:mod:`atdata_lab.widgets._network`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets

from .. import views as S
from ..entry import IndexEntry
from ..errors import InvalidArgumentError, NotFoundError
from ..promotion import entry_publication
from ..views import PUBLICATION_BADGES, Publication, verification_badge
from ._base import (
    AtdataWidget,
    BackgroundTask,
    DataTable,
    Debouncer,
    esc,
    hide_action,
    html_table,
    not_available,
    show_action,
)
from ._network import NetworkTab

__all__ = ["IndexBrowser", "verification_badge"]


_COLUMN_BY_KEY = {c.key: c for c in S.ENTRY_COLUMNS}
_COLUMN_BY_SORT = {c.sort: c for c in S.ENTRY_COLUMNS if c.sort}
_RECORD_COLUMNS = [
    {"key": "kind", "label": "Kind", "sortable": False, "numeric": False},
    {"key": "name", "label": "Name", "sortable": False, "numeric": False},
    {"key": "version", "label": "Version", "sortable": False, "numeric": False},
    {"key": "uri", "label": "at:// URI", "sortable": False, "numeric": False},
]


def _follow_cells(browser: IndexBrowser) -> Callable[[], None] | None:
    """In IPython, check after every cell whether the index changed (``refresh_if_changed``).
    The hook holds the browser weakly; returns the function that removes it (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    ref = weakref.ref(browser)

    def after_cell(*_args: Any) -> None:
        b = ref()
        if b is None:
            remove()
            return
        with b.reporting("Refreshing after the cell", reraise=False):
            b.refresh_if_changed()

    def remove() -> None:
        try:
            shell.events.unregister("post_run_cell", after_cell)
        except ValueError:  # already removed
            pass

    shell.events.register("post_run_cell", after_cell)
    return remove


class IndexBrowser(AtdataWidget):
    """A table of an index's entries with search, schema filter, sorting, paging and a detail panel.

    Args:
        index: The :class:`~atdata_lab.index.Index` to browse.
        page_size: Rows per page.
        sort: Initial sort column (a table key such as ``"size"`` or an index column such as
            ``"size_bytes"``).
        descending: Initial sort direction.
        debounce: Seconds the search box waits after the last keystroke before searching.
        poll: Seconds between the Network tab's checks for new records (bounded to 2..600;
            None: no polling). Polling starts with the tab's first search and stops on ``close()``.

    Attributes:
        page: The :class:`~atdata_lab.index.SearchPage` shown.
        selected: The selected :class:`~atdata_lab.entry.IndexEntry`, or None.
        action_widget: The widget opened by the last action (inspector, diff, wizard), or None.
        published: ``index.list_published()`` as last loaded (Published tab), or None.
        network: The Network tab (:class:`~atdata_lab.widgets._network.NetworkTab`), or None
            without an atmosphere or an AppView.
        tab_names: The tabs shown, in order (``["local", "published", "network"]`` at most).
        timings: Kernel time in ms of the last ``render`` (first page), ``query`` and ``select``.
    """

    _root_class = "atdata-index-browser"
    _css_files = ("atdata.css", "index_browser.css")

    def __init__(
        self,
        index: Any,
        *,
        page_size: int = 25,
        sort: str = "created_at",
        descending: bool = True,
        debounce: float = 0.25,
        poll: float | None = 10.0,
    ) -> None:
        t0 = time.perf_counter()
        super().__init__()
        if page_size < 1:
            raise InvalidArgumentError(f"page_size must be at least 1, not {page_size}")
        self.index = index
        self.page_size = int(page_size)
        self.query = ""
        self.schema_filter: str | None = None
        self.sort = self._sort_column(sort)
        self.descending = bool(descending)
        self.offset = 0
        self.page: Any = None
        self.selected: IndexEntry | None = None
        self.action_widget: Any = None
        self.published: dict[str, list[dict[str, Any]]] | None = None
        self.selected_record: dict[str, Any] | None = None
        self.verification: Any = None
        self.generation: int | None = None
        self.timings: dict[str, float] = {}
        self._syncing = False
        self._poll = poll
        self._tab_quiet = False
        self.network: NetworkTab | None = None

        # -- toolbar
        self.search_box = self.part(
            ipywidgets.Text(
                placeholder="Search name, description, tags",
                continuous_update=True,
                layout=ipywidgets.Layout(width="280px"),
            ),
            "search",
        )
        self.schema_dropdown = self.part(
            ipywidgets.Dropdown(
                options=[("All schemas", "")], value="", layout=ipywidgets.Layout(width="220px")
            ),
            "schema-filter",
        )
        self.refresh_button = self.part(
            ipywidgets.Button(
                description="Refresh",
                icon="refresh",
                tooltip="Reload from the index (sees other kernels' writes)",
                layout=ipywidgets.Layout(width="auto"),
            ),
            "refresh",
        )
        self.status = self.part(ipywidgets.HTML(), "status", "atdata-muted")
        toolbar = self.part(
            ipywidgets.HBox([self.search_box, self.schema_dropdown, self.refresh_button, self.status]),
            "toolbar",
            "atdata-toolbar",
        )

        # -- table and pager
        self.table = self.part(
            DataTable(
                columns=[
                    {"key": c.key, "label": c.label, "sortable": c.sort is not None, "numeric": c.numeric}
                    for c in S.ENTRY_COLUMNS
                ],
                row_key="name",
                css_prefix=self._root_class,
                empty_text="No entries match",
                badges={"published": dict(PUBLICATION_BADGES)},
                subtitle={"published": "uri"},
            ),
            "table",
        )
        self.prev_button = self.part(
            ipywidgets.Button(description="‹ Prev", layout=ipywidgets.Layout(width="auto")), "prev"
        )
        self.next_button = self.part(
            ipywidgets.Button(description="Next ›", layout=ipywidgets.Layout(width="auto")), "next"
        )
        self.page_label = self.part(ipywidgets.HTML(), "page-label")
        pager = self.part(
            ipywidgets.HBox([self.prev_button, self.page_label, self.next_button]), "pager", "atdata-toolbar"
        )

        # -- detail panel and actions
        self.detail_title = self.part(ipywidgets.HTML(), "detail-title")
        self.detail_meta = self.part(ipywidgets.HTML(), "detail-meta")
        self.detail_fields = self.part(ipywidgets.HTML(), "detail-fields")
        self.detail_shards = self.part(ipywidgets.HTML(), "detail-shards")
        self.inspect_button = self.part(
            ipywidgets.Button(
                description="Inspect samples", icon="search", layout=ipywidgets.Layout(width="auto")
            ),
            "inspect",
        )
        self.diff_against = self.part(
            ipywidgets.Dropdown(options=[], layout=ipywidgets.Layout(width="320px")), "diff-against"
        )
        self.diff_button = self.part(
            ipywidgets.Button(
                description="Diff schema", icon="columns", layout=ipywidgets.Layout(width="auto")
            ),
            "diff",
        )
        self.promote_button = self.part(
            ipywidgets.Button(
                description="Promote…",
                icon="upload",
                button_style="primary",
                layout=ipywidgets.Layout(width="auto"),
            ),
            "promote",
        )
        actions = self.part(
            ipywidgets.HBox([self.inspect_button, self.diff_against, self.diff_button, self.promote_button]),
            "actions",
            "atdata-toolbar",
        )
        self.detail = self.part(
            ipywidgets.VBox(
                [self.detail_title, actions, self.detail_meta, self.detail_fields, self.detail_shards],
                layout=ipywidgets.Layout(display="none"),
            ),
            "detail",
            "atdata-card",
        )
        self.close_action_button = self.part(
            ipywidgets.Button(description="Close", icon="times", layout=ipywidgets.Layout(width="auto")),
            "close-action",
        )
        self.action_title = self.part(ipywidgets.HTML(), "action-title")
        self.action_area = self.part(
            ipywidgets.VBox([], layout=ipywidgets.Layout(display="none")), "action-area"
        )
        self.local_tab = self.part(
            ipywidgets.VBox([toolbar, self.table, pager, self.detail, self.action_area]), "local"
        )

        # -- published tab (only with an atmosphere), network tab (with an atmosphere or an AppView)
        self.published_tab: ipywidgets.VBox | None = None
        self.tabs: ipywidgets.Tab | None = None
        self.tab_names: list[str] = ["local"]
        self._ensure_tabs()

        # -- events (each calls a public method)
        self._debouncer = Debouncer(debounce, self.ui(self.search, "Searching"))
        self.search_box.observe(lambda ch: self._debouncer(ch["new"]), names="value")
        self.schema_dropdown.observe(
            self.ui(lambda ch: self._schema_changed(ch["new"]), "Filtering by schema"), names="value"
        )
        self.on_click(self.refresh_button, lambda _b: self.refresh(), "Refreshing")
        self.on_click(self.prev_button, lambda _b: self.prev_page(), "Paging")
        self.on_click(self.next_button, lambda _b: self.next_page(), "Paging")
        self.table.observe(self.ui(self._table_sorted, "Sorting"), names=["sort_key", "descending"])
        self.table.observe(self.ui(self._table_selected, "Opening the entry"), names=["selected"])
        self.on_click(self.inspect_button, lambda _b: self.inspect_selected(), "Opening the sample inspector")
        self.on_click(
            self.diff_button,
            lambda _b: self.diff_selected(self.diff_against.value or None),
            "Comparing schemas",
        )
        self.on_click(self.promote_button, lambda _b: self.promote_selected(), "Opening the promotion wizard")
        self.on_click(self.close_action_button, lambda _b: self.close_action(), "Closing")

        body = self.tabs if self.tabs is not None else self.local_tab
        self.set_body(body)
        with self.reporting("Loading the index", reraise=False):  # shown in the widget
            self._load_schema_options()
            self._reload()
        self.timings["render"] = (time.perf_counter() - t0) * 1000
        self._cell_hook = _follow_cells(self)

    # ------------------------------------------------------------------ querying
    @staticmethod
    def _sort_column(column: str) -> str:
        if column in _COLUMN_BY_SORT:
            return column
        col = _COLUMN_BY_KEY.get(column)
        if col is None or col.sort is None:
            sortable = ", ".join(c.key for c in S.ENTRY_COLUMNS if c.sort)
            raise InvalidArgumentError(f"cannot sort by {column!r}; sortable columns: {sortable}")
        return col.sort

    def _reload(self) -> Any:
        t = time.perf_counter()
        idx = self.index
        page = idx.search(
            self.query or None,
            schema=self.schema_filter,
            sort=self.sort,
            descending=self.descending,
            offset=self.offset,
            limit=self.page_size,
            scope="local",
        )
        if not page and page.total and self.offset >= page.total:  # the page emptied (entries deleted)
            self.offset = max(0, (page.total - 1) // self.page_size * self.page_size)
            page = idx.search(
                self.query or None,
                schema=self.schema_filter,
                sort=self.sort,
                descending=self.descending,
                offset=self.offset,
                limit=self.page_size,
                scope="local",
            )
        self.page = page
        self.generation = idx.generation()
        self._syncing = True
        try:
            with self.table.hold_sync():
                self.table.rows = [self._row(e) for e in page]
                self.table.sort_key = _COLUMN_BY_SORT[self.sort].key
                self.table.descending = self.descending
                self.table.selected = self.selected.name if self.selected is not None else ""
        finally:
            self._syncing = False
        self.page_label.value = esc(S.page_label(self.offset, len(page), page.total))
        self.prev_button.disabled = self.offset <= 0
        self.next_button.disabled = self.offset + len(page) >= page.total
        self.timings["query"] = (time.perf_counter() - t) * 1000
        self.status.value = esc(f"{S.format_count(len(idx))} entries in the {S.provider_label(idx.provider)}")
        return page

    def publication(self, entry: IndexEntry) -> Publication:
        """Whether ``entry`` is published by the attached account (see ``_published``): the Published
        column, the detail panel and the wizard all show this, never another account's record as ours."""
        return entry_publication(self.index, entry)

    def _row(self, entry: IndexEntry) -> dict[str, str]:
        row = S.entry_row(entry)
        pub = self.publication(entry)
        row["published"], row["uri"] = pub.state, pub.uri
        return row

    def _load_schema_options(self) -> None:
        names = sorted({r.get("name") for r in self.index.list_schemas() if r.get("name")})
        options = [("All schemas", "")] + [(n, n) for n in names]
        current = self.schema_filter or ""
        if current and current not in names:
            options.append((current, current))
        self._syncing = True
        try:
            self.schema_dropdown.options = options
            self.schema_dropdown.value = current
        finally:
            self._syncing = False

    def search(self, text: str = "") -> Any:
        """Show entries whose name, description or tags contain ``text`` (from the first page).

        Returns the :class:`~atdata_lab.index.SearchPage` shown.
        """
        with self.reporting("Searching"):
            text = text or ""
            self.query = text
            if self.search_box.value != text:
                self._debouncer.cancel()
                self._syncing = True
                try:
                    self.search_box.value = text
                finally:
                    self._syncing = False
                self._debouncer.cancel()
            self.offset = 0
            t = time.perf_counter()
            page = self._reload()
            self.timings["search"] = (time.perf_counter() - t) * 1000
            return page

    def filter_schema(self, name: str | None) -> Any:
        """Show only entries of schema ``name`` (any version; a full ref pins one); None: all."""
        with self.reporting("Filtering by schema"):
            self.schema_filter = name or None
            self.offset = 0
            self._load_schema_options()
            return self._reload()

    def _schema_changed(self, value: str) -> None:
        if not self._syncing and (value or None) != self.schema_filter:
            self.filter_schema(value or None)

    def sort_by(self, column: str, descending: bool | None = None) -> Any:
        """Sort by ``column`` (e.g. ``"size"``, ``"name"``, ``"created"``; or ``"size_bytes"``).

        ``descending=None`` reverses the direction when ``column`` is already the sort column,
        else sorts ascending. Starts again from the first page.
        """
        with self.reporting("Sorting"):
            col = self._sort_column(column)
            if descending is None:
                descending = (not self.descending) if col == self.sort else False
            self.sort, self.descending, self.offset = col, bool(descending), 0
            return self._reload()

    def _table_sorted(self, change: dict) -> None:
        if self._syncing:
            return
        key, desc = self.table.sort_key, self.table.descending
        col = _COLUMN_BY_KEY.get(key)
        if col is None or col.sort is None:
            return
        if (col.sort, desc) != (self.sort, self.descending):
            self.sort_by(key, desc)

    def goto_page(self, number: int) -> Any:
        """Show page ``number`` (from 1; clamped to the pages there are)."""
        with self.reporting("Paging"):
            total = self.page.total if self.page is not None else 0
            last = max(0, (total - 1) // self.page_size)
            self.offset = min(max(int(number) - 1, 0), last) * self.page_size
            return self._reload()

    def next_page(self) -> Any:
        """Show the next page (stays on the last one)."""
        return self.goto_page(self.offset // self.page_size + 2)

    def prev_page(self) -> Any:
        """Show the previous page (stays on the first one)."""
        return self.goto_page(self.offset // self.page_size)

    @property
    def page_number(self) -> int:
        return self.offset // self.page_size + 1

    @property
    def names(self) -> list[str]:
        """The names of the entries on the page shown."""
        return [e.name for e in self.page] if self.page is not None else []

    def refresh(self) -> Any:
        """Reload the page, the schema list and the selected entry from the index (entries written
        or deleted by other kernels show up); also reloads the Published tab if it was loaded."""
        with self.reporting("Refreshing"):
            self._ensure_published_tab()
            self._load_schema_options()
            if self.selected is not None:
                try:
                    self.selected = self.index.get_entry_by_name(self.selected.name)
                except KeyError:
                    self.selected = None
            page = self._reload()
            if self.selected is not None:
                self._show_detail(self.selected)
            else:
                self.detail.layout.display = "none"
            if self.published is not None:
                self.load_published()
            return page

    # ------------------------------------------------------------------ selection and detail
    def _table_selected(self, change: dict) -> None:
        if self._syncing:
            return
        name = change["new"]
        if name and (self.selected is None or self.selected.name != name):
            self.select(name)

    def select(self, name: str) -> IndexEntry:
        """Select the entry ``name`` (it need not be on the page) and show its detail panel.

        Raises:
            EntryNotFoundError: no such entry (a ``KeyError``).
        """
        with self.reporting(f"Opening {name!r}"):
            t = time.perf_counter()
            entry = self.index.get_entry_by_name(name)
            self.selected = entry
            self._syncing = True
            try:
                self.table.selected = entry.name
            finally:
                self._syncing = False
            self._show_detail(entry)
            self.timings["select"] = (time.perf_counter() - t) * 1000
            return entry

    def _show_detail(self, entry: IndexEntry) -> None:
        pub = self.publication(entry)
        self.detail_title.value = S.entry_title_html(entry, pub)
        self.detail_meta.value = S.entry_detail_html(entry, pub)
        try:
            schema = self.index.resolve_schema(entry)
        except Exception as e:  # the entry stays usable without its schema: say why
            self.detail_fields.value = S.schema_unavailable_html(entry.schema_ref, e)
        else:
            self.detail_fields.value = S.schema_fields_html(schema)
        self.detail_shards.value = S.shards_html(self.index.get_shards(entry))
        try:
            candidates = S.diff_candidates(self.index.list_schemas(), entry.schema_ref)
        except Exception:  # a remote schema ref: nothing local to offer
            candidates = []
        self.diff_against.options = candidates or [("no other version to compare with", "")]
        self.diff_against.value = candidates[0][1] if candidates else ""
        self.diff_button.disabled = not candidates
        self.detail.layout.display = "flex"

    def _require_selected(self) -> IndexEntry:
        if self.selected is None:
            raise InvalidArgumentError(
                "no entry is selected: select one in the table (or call browser.select(name))"
            )
        return self.selected

    # ------------------------------------------------------------------ actions
    def _open_action(self, title: str, widget: Any) -> Any:
        self.action_widget = widget
        show_action(self.action_area, self.action_title, self.close_action_button, title, widget)
        return widget

    def close_action(self) -> None:
        """Close the inspector / diff / wizard opened by an action."""
        self.action_widget = None
        hide_action(self.action_area)

    def inspect_selected(self) -> Any:
        """ "Inspect samples": open a :class:`SampleInspector` on the selected entry (returned)."""
        with self.reporting("Opening the sample inspector"):
            entry = self._require_selected()
            from .sample_inspector import SampleInspector

            return self._open_action(f"Samples of {entry.name}", SampleInspector(entry))

    def diff_selected(self, against: str | None = None) -> Any:
        """ "Diff schema": compare ``against`` (a local ref or at:// URI; default: the first of the
        dropdown — the published record, else the newest other version) with the selected
        entry's schema. Returns the ``SchemaDiffViewer`` widget, or None when it is not available."""
        with self.reporting("Comparing schemas"):
            entry = self._require_selected()
            against = against or (self.diff_against.value or None)
            if not against:
                raise InvalidArgumentError(
                    f"schema {S.schema_label(entry.schema_ref)} has no other version, local or "
                    "published, to compare with"
                )
            try:
                from .schema_diff import SchemaDiffViewer
            except ImportError as e:
                self.errors.show_message(not_available("The schema diff viewer", "schema_diff", e))
                return None
            return self._open_action(
                f"{S.schema_label(against)} → {S.schema_label(entry.schema_ref)}",
                SchemaDiffViewer(against, entry.schema_ref, index=self.index),
            )

    def promote_selected(self) -> Any:
        """ "Promote…": open the ``PromotionWizard`` on the selected entry (returned), or None when
        it is not available."""
        with self.reporting("Opening the promotion wizard"):
            entry = self._require_selected()
            try:
                from .promotion_wizard import PromotionWizard
            except ImportError as e:
                self.errors.show_message(not_available("The promotion wizard", "promotion_wizard", e))
                return None
            import inspect

            kwargs = {"browser": self} if "browser" in inspect.signature(PromotionWizard).parameters else {}
            return self._open_action(
                f"Promote {entry.name}", PromotionWizard(self.index, entry=entry, **kwargs)
            )

    # ------------------------------------------------------------------ published tab
    def _build_published_tab(self) -> None:
        self.published_refresh = self.part(
            ipywidgets.Button(description="Reload", icon="refresh", layout=ipywidgets.Layout(width="auto")),
            "published-refresh",
        )
        self.published_status = self.part(ipywidgets.HTML(), "published-status", "atdata-muted")
        self.records_table = self.part(
            DataTable(
                columns=_RECORD_COLUMNS,
                row_key="uri",
                css_prefix=f"{self._root_class}-record",
                empty_text="Nothing published yet",
            ),
            "records",
        )
        self.record_detail = self.part(ipywidgets.HTML(), "record-detail")
        self.verify_button = self.part(
            ipywidgets.Button(
                description="Verify", icon="check", disabled=True, layout=ipywidgets.Layout(width="auto")
            ),
            "verify",
        )
        self.verify_output = self.part(ipywidgets.HTML(), "verify-result")
        self.record_box = self.part(
            ipywidgets.VBox(
                [ipywidgets.HBox([self.verify_button]), self.verify_output, self.record_detail],
                layout=ipywidgets.Layout(display="none"),
            ),
            "record",
            "atdata-card",
        )
        self.published_tab = self.part(
            ipywidgets.VBox(
                [
                    ipywidgets.HBox([self.published_refresh, self.published_status]),
                    self.records_table,
                    self.record_box,
                ]
            ),
            "published",
        )
        self.published_tab.children[0].add_class("atdata-toolbar")
        self.on_click(self.published_refresh, lambda _b: self.load_published(), "Loading published records")
        self.records_table.observe(
            self.ui(lambda ch: ch["new"] and self.select_record(ch["new"]), "Opening the record"),
            names="selected",
        )
        self.on_click(self.verify_button, lambda _b: self.verify(), "Verifying")

    def _appview_configured(self) -> bool:
        finder = getattr(self.index, "_network_client", None)
        try:
            return callable(finder) and finder() is not None
        except Exception:  # a malformed ATDATA_APPVIEW_URL: searching says what is wrong
            return True

    def _ensure_tabs(self) -> bool:
        """Add the Published tab once an atmosphere is attached (e.g. by the wizard's login), and the
        Network tab once there is an atmosphere or an AppView (``ATDATA_APPVIEW_URL``: anyone may
        search without an account). Returns whether there are tabs."""
        has_atm = getattr(self.index, "atmosphere", None) is not None
        names = ["local"]
        if has_atm:
            names.append("published")
        if has_atm or self.network is not None or self._appview_configured():
            names.append("network")
        if names == self.tab_names:
            return self.tabs is not None
        if has_atm and self.published_tab is None:
            self._build_published_tab()
        if "network" in names and self.network is None:
            self.network = NetworkTab(self, poll=self._poll)
        parts = {
            "local": self.local_tab,
            "published": self.published_tab,
            "network": getattr(self.network, "tab", None),
        }
        first = self.tabs is None
        if first:
            self.tabs = self.part(ipywidgets.Tab(), "tabs")
        assert self.tabs is not None
        shown = self.tab_names[self.tabs.selected_index or 0] if not first else "local"
        self._tab_quiet = True  # rebuilding is no user switching tabs
        try:
            self.tabs.children = [parts[n] for n in names]
            for i, n in enumerate(names):
                self.tabs.set_title(i, n.capitalize())
            self.tab_names = names
            self.tabs.selected_index = names.index(shown) if shown in names else 0
        finally:
            self._tab_quiet = False
        if first:
            self.tabs.observe(self.ui(self._tab_changed, "Switching tabs"), names="selected_index")
            if hasattr(self, "errors") and self.children:  # built after the first set_body
                self.set_body(self.tabs)
        return True

    def _ensure_published_tab(self) -> bool:
        """The Published tab, added once an atmosphere is attached; False when none is."""
        self._ensure_tabs()
        return self.published_tab is not None and "published" in self.tab_names

    def tab_index(self, name: str) -> int:
        """The position of tab ``name`` (``"local"``, ``"published"``, ``"network"``) among the tabs shown.

        Raises:
            InvalidArgumentError: that tab is not shown (the message says what it needs).
        """
        if name not in ("local", "published", "network"):
            raise InvalidArgumentError(f"no tab {name!r}: choose 'local', 'published' or 'network'")
        self._ensure_tabs()
        if name not in self.tab_names:
            need = (
                "an index with an atmosphere attached (Index(..., atmosphere=Atmosphere.login(handle, "
                "app_password)))"
                if name == "published"
                else "an AppView: an atmosphere with one, or ATDATA_APPVIEW_URL (the sandbox: --appview)"
            )
            raise InvalidArgumentError(f"the {name.capitalize()} tab needs {need}")
        return self.tab_names.index(name)

    def _tab_changed(self, change: dict) -> None:
        if self._tab_quiet or change["new"] is None:
            return
        name = self.tab_names[change["new"]]
        if name == "published" and self.published is None:
            self.load_published()
        elif name == "network" and self.network is not None:
            if not self.network.searched:
                self.network.search("")
            else:  # what arrived while the tab was hidden
                self.network.poll_once()

    def show_tab(self, name: str) -> None:
        """Switch to the ``"local"``, ``"published"`` or ``"network"`` tab (the Published tab loads
        the records once; the Network tab searches once, with no text: the newest datasets)."""
        with self.reporting("Switching tabs"):
            i = self.tab_index(name)
            if self.tabs is None:  # only the local tab
                return
            self.tabs.selected_index = i
            if name == "published" and self.published is None:
                self.load_published()
            elif name == "network" and self.network is not None and not self.network.searched:
                self.network.search("")

    def load_published(self) -> list[dict[str, str]]:
        """Load the dataset, schema and label records of the attached account's repository
        (``index.list_published()``) into the Published tab; returns its rows."""
        with self.reporting("Loading published records"):
            if not self._ensure_published_tab():
                raise InvalidArgumentError(
                    "no atmosphere is attached to this index: nothing published to show"
                )
            self.published_status.value = "loading…"
            self.published = self.index.list_published()
            self._reload()  # published badges of the local entries
            rows = S.record_rows(self.published)
            self.records_table.rows = rows
            atm = self.index.atmosphere
            who = getattr(atm, "handle", None) or getattr(atm, "did", "")
            self.published_status.value = esc(f"{len(rows)} records in the repository of {who}")
            if self.selected_record is not None and all(
                r["uri"] != self.selected_record["uri"] for r in rows
            ):
                self.selected_record = None
                self.record_box.layout.display = "none"
            return rows

    def _find_record(self, uri: str) -> tuple[str, dict[str, Any]]:
        kinds = {"entries": "dataset", "schemas": "schema", "labels": "label"}
        for key, kind in kinds.items():
            for rec in (self.published or {}).get(key) or []:
                if rec.get("uri") == uri:
                    return kind, rec
        raise NotFoundError(f"no published record {uri!r} in this repository (reload the Published tab?)")

    def select_record(self, uri: str) -> dict[str, Any]:
        """Show a published record: its at:// URI, CID and raw JSON; "Verify" for dataset records."""
        with self.reporting("Opening the record"):
            if self.published is None:
                self.load_published()
            kind, rec = self._find_record(uri)
            self.selected_record = rec
            if self.records_table.selected != uri:
                self.records_table.selected = uri
            self.record_detail.value = S.record_html(kind, rec)
            self.verify_button.disabled = kind != "dataset"
            self.verify_output.value = ""
            self.record_box.layout.display = "flex"
            return rec

    def verify(self, uri: str | None = None) -> BackgroundTask:
        """ "Verify": run ``index.verify(uri)`` (default: the selected dataset record) off the UI
        thread; the checks show when done. ``verify(uri).wait()`` returns the report."""
        with self.reporting("Verifying"):
            if uri is None:
                if self.selected_record is None:
                    raise InvalidArgumentError("select a dataset record to verify")
                uri = self.selected_record["uri"]
            self.verify_button.disabled = True
            self.verify_output.value = f"<div class='atdata-muted'>verifying {esc(uri)} …</div>"

            def work(task: BackgroundTask) -> Any:
                try:
                    return self.index.verify(uri)
                except Exception:
                    self.verify_output.value = ""
                    raise
                finally:
                    self.verify_button.disabled = False

            def done(report: Any) -> None:
                self.verification = report
                self.verify_output.value = S.verify_result_html(report)

            task = self.run_task("Verifying", work, on_done=done)
            return task

    # ------------------------------------------------------------------ network tab
    def _require_network(self) -> NetworkTab:
        self.tab_index("network")
        assert self.network is not None
        return self.network

    def search_network(
        self,
        text: str = "",
        *,
        tags: list[str] | None = None,
        schema: str | None = None,
        publisher: str | None = None,
    ) -> list[dict[str, str]]:
        """The Network tab's search (see :meth:`NetworkTab.search`); returns the rows shown."""
        with self.reporting("Searching the network"):
            net = self._require_network()
            self._tab_quiet = True  # this search is what the tab shows: no search of its own first
            try:
                if self.tabs is not None:
                    self.tabs.selected_index = self.tab_index("network")
            finally:
                self._tab_quiet = False
            return net.search(text, tags=tags, schema=schema, publisher=publisher)

    def select_network(self, uri: str) -> Any:
        """Select a Network row: its detail card and records (see :meth:`NetworkTab.select`)."""
        return self._require_network().select(uri)

    def inspect_network(self) -> Any:
        """ "Inspect samples" of the selected Network dataset; returns the inspector."""
        return self._require_network().inspect()

    def diff_network(self, against: str | None = None) -> Any:
        """ "Diff schema": a local schema against the selected Network dataset's schema."""
        return self._require_network().diff(against)

    def refresh_if_changed(self) -> bool:
        """Refresh when the index changed since the page was loaded (its generation moved): run
        after every notebook cell, so entries written, published or deleted in this kernel show up
        without pressing Refresh. Returns whether it refreshed."""
        if self.generation is None or self.index.generation() == self.generation:
            return False
        self.refresh()
        return True

    def close(self) -> None:
        """Close the widget and stop the Network tab's polling (and following the notebook's cells)."""
        if self._cell_hook is not None:
            self._cell_hook()
            self._cell_hook = None
        if self.network is not None:
            self.network.stop_polling()
        self._debouncer.cancel()
        super().close()

    # ------------------------------------------------------------------ static fallback
    def __repr__(self) -> str:
        if self.page is None:
            return "IndexBrowser(not loaded)"
        q = f", search {self.query!r}" if self.query else ""
        s = f", schema {self.schema_filter!r}" if self.schema_filter else ""
        return (
            f"IndexBrowser({S.page_label(self.offset, len(self.page), self.page.total)} entries{q}{s}, "
            f"sorted by {self.sort} {'descending' if self.descending else 'ascending'})"
        )

    def _static_html(self) -> str:
        if self.page is None:
            return f"<div class='atdata-index-browser'>{esc(repr(self))}</div>"
        keys = [c.key for c in S.ENTRY_COLUMNS]
        rows = [self._row(e) for e in self.page]
        table = html_table(
            [c.label for c in S.ENTRY_COLUMNS],
            [[r[k] + (f" {r['uri']}" if k == "published" and r["uri"] else "") for k in keys] for r in rows],
        )
        label = S.page_label(self.offset, len(self.page), self.page.total)
        network = ""
        if self.network is not None and self.network.searched:
            net = self.network
            network = (
                f"<div><b>Network</b> {esc(S.network_status_text(len(net.rows), query=net.query))}</div>"
                + html_table(
                    [c.label for c in S.NETWORK_COLUMNS],
                    [[r[c.key] for c in S.NETWORK_COLUMNS] for r in net.rows],
                )
            )
        return (
            f"<div class='atdata-index-browser'><div><b>Index</b> {esc(S.provider_label(self.index.provider))} · "
            f"entries {esc(label)}</div>{table}{network}"
            "<div class='atdata-static-note'>A static view: run the notebook with ipywidgets to search, "
            "sort and open entries.</div></div>"
        )
