"""The index browser's Network tab: datasets of every publisher, found through the AppView.

The tab composes library calls and views: ``index.search(..., scope="network")`` finds datasets,
:func:`~atdata_lab.promotion.network.publisher_handles` names their publishers,
:func:`~atdata_lab.promotion.network.network_records` reads a selected one's records from its
publisher's PDS, :func:`~atdata_lab.promotion.published.load_published` opens its data for the sample
inspector (streamed: PDS blobs or http, under the trust policy), and the schema diff viewer compares
its schema with a local one. Rows and the detail card are :mod:`atdata_lab.views.network`.

**New records appear by polling** (not the AppView's ``subscribeChanges`` WebSocket): once the tab
has searched, a daemon thread repeats the current search every ``poll`` seconds (bounded to
[:data:`POLL_MIN`, :data:`POLL_MAX`]; ``poll=None`` turns it off) while the tab is shown, and
updates the table when the results changed; switching back to the tab checks at once. It stops when the browser widget is closed (``browser.close()``) or polling is
turned off (``browser.network.stop_polling()``).

Nothing secret goes into widget state: only what the AppView and the PDS serve publicly.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import ipywidgets

from .. import views as S
from ..errors import InvalidArgumentError, NotFoundError
from ..logs import logger
from ._base import CopyButton, DataTable, Debouncer, esc, hide_action, not_available, show_action

if TYPE_CHECKING:
    from .index_browser import IndexBrowser

__all__ = ["POLL_MAX", "POLL_MIN", "NetworkTab"]

log = logger("atdata_lab.widgets")

#: Bounds of the polling interval, seconds.
POLL_MIN = 2.0
POLL_MAX = 600.0

_COLUMNS = [
    {"key": c.key, "label": c.label, "sortable": False, "numeric": c.numeric} for c in S.NETWORK_COLUMNS
]


def _split_tags(text: str) -> list[str]:
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


class NetworkTab:
    """The parts and actions of the Network tab (built by :class:`IndexBrowser`; reach it as
    ``browser.network``). Every action is a public method the UI handler only calls.

    Attributes:
        results: The ``SearchResult`` items shown (one page), in order.
        rows: Their table rows (:func:`~atdata_lab.views.network_rows`).
        source, warnings: Where the search found them (``"atmosphere"``, ``"pds"``...) and what it
            warned about (shown in the status line).
        handles: ``{did: handle}`` of the publishers seen (handles that resolve back to their DID).
        selected: The selected ``SearchResult``, or None; ``records`` its
            :class:`~atdata_lab.promotion.network.NetworkRecords`.
        action_widget: The inspector or diff viewer opened last, or None.
        polls: How many polls ran; ``poll_changes`` how many of them changed the table.
    """

    def __init__(
        self, browser: IndexBrowser, *, poll: float | None = 10.0, limit: int = 50, debounce: float = 0.4
    ) -> None:
        self.browser = browser
        self.index = browser.index
        self.limit = max(1, min(int(limit), 100))
        self.poll = None if not poll else min(max(float(poll), POLL_MIN), POLL_MAX)
        self.query = ""
        self.tags: list[str] = []
        self.schema = ""
        self.publisher = ""
        self.searched = False
        self.results: list[Any] = []
        self.rows: list[dict[str, str]] = []
        self.source = ""
        self.warnings: list[str] = []
        self.handles: dict[str, str] = {}
        self._asked: set[str] = set()
        self.selected: Any = None
        self.records: Any = None
        self.action_widget: Any = None
        self.polls = 0
        self.poll_changes = 0
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock = threading.RLock()
        self._syncing = False

        part = browser.part
        self.search_box = part(
            ipywidgets.Text(
                placeholder="Search every publisher: name, description, tags",
                layout=ipywidgets.Layout(width="260px"),
            ),
            "network-search",
        )
        self.tags_box = part(
            ipywidgets.Text(placeholder="tags, comma separated", layout=ipywidgets.Layout(width="160px")),
            "network-tags",
        )
        self.schema_box = part(
            ipywidgets.Text(placeholder="schema at:// URI", layout=ipywidgets.Layout(width="190px")),
            "network-schema",
        )
        self.publisher_box = part(
            ipywidgets.Text(placeholder="publisher DID or handle", layout=ipywidgets.Layout(width="180px")),
            "network-publisher",
        )
        self.search_button = part(
            ipywidgets.Button(description="Search", icon="search", layout=ipywidgets.Layout(width="auto")),
            "network-go",
        )
        self.status = part(ipywidgets.HTML(), "network-status", "atdata-muted")
        toolbar = part(
            ipywidgets.HBox(
                [
                    self.search_box,
                    self.tags_box,
                    self.schema_box,
                    self.publisher_box,
                    self.search_button,
                ]
            ),
            "network-toolbar",
            "atdata-toolbar",
        )
        self.table = part(
            DataTable(
                columns=_COLUMNS,
                row_key="uri",
                css_prefix=f"{browser._root_class}-network",
                empty_text="No dataset on the network matches",
                subtitle={"publisher": "did"},
            ),
            "network-table",
        )
        self.detail_html = part(ipywidgets.HTML(), "network-detail-body")
        self.inspect_button = part(
            ipywidgets.Button(
                description="Inspect samples", icon="search", layout=ipywidgets.Layout(width="auto")
            ),
            "network-inspect",
        )
        self.diff_against = part(
            ipywidgets.Dropdown(options=[], layout=ipywidgets.Layout(width="300px")), "network-diff-against"
        )
        self.diff_button = part(
            ipywidgets.Button(
                description="Diff schema", icon="columns", layout=ipywidgets.Layout(width="auto")
            ),
            "network-diff",
        )
        self.copy_button = part(CopyButton(label="Copy load_dataset line"), "network-copy")
        actions = part(
            ipywidgets.HBox([self.inspect_button, self.diff_against, self.diff_button, self.copy_button]),
            "network-actions",
            "atdata-toolbar",
        )
        self.detail = part(
            ipywidgets.VBox([actions, self.detail_html], layout=ipywidgets.Layout(display="none")),
            "network-detail",
            "atdata-card",
        )
        self.action_title = part(ipywidgets.HTML(), "network-action-title")
        self.close_button = part(
            ipywidgets.Button(description="Close", icon="times", layout=ipywidgets.Layout(width="auto")),
            "network-close-action",
        )
        self.action_area = part(
            ipywidgets.VBox([], layout=ipywidgets.Layout(display="none")), "network-action-area"
        )
        self.tab = part(
            ipywidgets.VBox([toolbar, self.status, self.table, self.detail, self.action_area]), "network"
        )

        ui, on_click = browser.ui, browser.on_click
        self._debouncer = Debouncer(debounce, ui(lambda: self.search_from_boxes(), "Searching the network"))
        for box in (self.search_box, self.tags_box, self.schema_box, self.publisher_box):
            box.observe(lambda _ch: None if self._syncing else self._debouncer(), names="value")
        on_click(self.search_button, lambda _b: self.search_from_boxes(), "Searching the network")
        self.table.observe(
            ui(lambda ch: ch["new"] and not self._syncing and self.select(ch["new"]), "Opening the dataset"),
            names="selected",
        )
        on_click(self.inspect_button, lambda _b: self.inspect(), "Opening the sample inspector")
        on_click(self.diff_button, lambda _b: self.diff(self.diff_against.value or None), "Comparing schemas")
        on_click(self.close_button, lambda _b: self.close_action(), "Closing")

    # ------------------------------------------------------------------ searching
    def search_from_boxes(self) -> list[dict[str, str]]:
        """The Search button: search with what the boxes hold."""
        return self.search(
            self.search_box.value,
            tags=_split_tags(self.tags_box.value),
            schema=self.schema_box.value,
            publisher=self.publisher_box.value,
        )

    def _query(self) -> Any:
        return self.index.search(
            self.query or None,
            scope="network",
            tags=self.tags or None,
            schema_ref=self.schema or None,
            repo=self.publisher or None,
            limit=self.limit,
        )

    def search(
        self,
        text: str = "",
        *,
        tags: list[str] | None = None,
        schema: str | None = None,
        publisher: str | None = None,
    ) -> list[dict[str, str]]:
        """Search datasets of every publisher (``index.search(text, scope="network", tags=...,
        schema_ref=..., repo=...)``): ``text`` over name, description and tags; all of ``tags``;
        ``schema`` an at:// schema URI; ``publisher`` one publisher's DID or handle (then, with the
        AppView down, that publisher's PDS is read instead, and the status line says so). Shows the
        first page and starts polling. Returns the rows."""
        b = self.browser
        with b.reporting("Searching the network"):
            self.query, self.tags = (text or "").strip(), list(tags or [])
            self.schema, self.publisher = (schema or "").strip(), (publisher or "").strip().lstrip("@")
            self._debouncer.cancel()
            self._syncing = True
            try:
                self.search_box.value = self.query
                self.tags_box.value = ", ".join(self.tags)
                self.schema_box.value = self.schema
                self.publisher_box.value = self.publisher
            finally:
                self._syncing = False
            self.status.value = "searching…"
            try:
                rows = self._refresh(self._query())
            except Exception:
                self.status.value = ""
                raise
            self.searched = True
            self._start_polling()
            return rows

    def _refresh(self, found: Any) -> list[dict[str, str]]:
        """Show ``found`` (SearchResults); returns the rows. Holds the lock (the poller calls it too)."""
        items = list(getattr(found, "items", found) or [])
        new_dids = {S.publisher_did(r) for r in items if S.publisher_handle(r, self.handles) is None}
        new_dids -= self._asked
        if new_dids:  # the search gave no handle for these: ask once each
            from ..promotion.network import publisher_handles

            self._asked |= new_dids
            self.handles.update(publisher_handles(self.index, new_dids))
        with self._lock:
            rows = S.network_rows(items, self.handles)
            keep = {r["uri"] for r in rows}
            self.results = [r for r in items if r.uri in keep]
            self.rows = rows
            self.source = str(getattr(found, "source", "") or "")
            self._syncing = True
            try:
                with self.table.hold_sync():
                    self.table.rows = rows
                    self.table.selected = (
                        self.selected.uri if self.selected is not None and self.selected.uri in keep else ""
                    )
            finally:
                self._syncing = False
            self.warnings = [w for w in getattr(found, "warnings", None) or [] if isinstance(w, str)]
            self.status.value = esc(
                S.network_status_text(
                    len(rows), query=self.query, source=self.source, polling=self.poll, warnings=self.warnings
                )
            )
            return rows

    # ------------------------------------------------------------------ polling
    def _start_polling(self) -> None:
        if self.poll is None or (self._poller is not None and self._poller.is_alive()):
            return
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll_loop, name="atdata-network-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll or POLL_MAX):
            self.poll_once()

    def poll_once(self) -> bool:
        """One poll: repeat the current search; update the table when the results changed.
        Returns whether they did. A failed poll is logged and shown in the status line, not raised
        (the next poll tries again)."""
        if not self.searched or not self.showing:
            return False
        self.polls += 1
        try:
            found = self._query()
            items = list(getattr(found, "items", found) or [])
            before = [r["uri"] for r in self.rows]
            after = [r["uri"] for r in S.network_rows(items)]
            warnings = [w for w in getattr(found, "warnings", None) or [] if isinstance(w, str)]
            if after == before and warnings == self.warnings:
                return False
            self._refresh(found)
            self.poll_changes += 1
            return True
        except Exception as e:  # noqa: BLE001 - a poll must not kill the thread; shown in the status line
            log.info("network poll failed: %s", e)
            self.status.value = esc(
                f"checking for new records failed ({type(e).__name__}: {e}); trying again"
            )
            return False

    def stop_polling(self) -> None:
        """Stop the poller (``browser.close()`` does this); a new search starts it again."""
        self._debouncer.cancel()
        self._stop.set()
        t = self._poller
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self._poller = None

    @property
    def showing(self) -> bool:
        """Whether the Network tab is the one shown (polls are skipped while it is hidden; switching
        back to it checks at once)."""
        tabs, names = self.browser.tabs, self.browser.tab_names
        return tabs is None or (tabs.selected_index is not None and names[tabs.selected_index] == "network")

    @property
    def polling(self) -> bool:
        return self._poller is not None and self._poller.is_alive()

    # ------------------------------------------------------------------ a selected dataset
    def _find(self, uri: str) -> Any:
        for r in self.results:
            if r.uri == uri:
                return r
        raise NotFoundError(f"no dataset {uri!r} among the network results shown (search again?)")

    def select(self, uri: str) -> Any:
        """Select the network dataset ``uri`` (a row of the current results): its detail card and
        its records (entry, schema, labels) read from the publisher's PDS. Returns the
        :class:`~atdata_lab.promotion.network.NetworkRecords`."""
        b = self.browser
        with b.reporting("Opening the dataset"):
            result = self._find(uri)
            self.selected, self.records = result, None
            if self.table.selected != uri:
                self._syncing = True
                try:
                    self.table.selected = uri
                finally:
                    self._syncing = False
            handle = S.publisher_handle(result, self.handles)
            self.detail_html.value = S.network_detail_html(result, None, handle)
            self.copy_button.text = self.load_line
            self.detail.layout.display = "flex"
            from ..promotion.network import network_records

            try:
                records = network_records(self.index, uri)
            except Exception as e:
                self.detail_html.value = S.network_detail_html(
                    result, None, handle, error=f"{type(e).__name__}: {e}"
                )
                raise
            self.records = records
            self.detail_html.value = S.network_detail_html(result, records, handle)
            name = ""
            if records.schema is not None:
                v = records.schema.get("value", {}).get("name")
                name = v if isinstance(v, str) else ""
            options = S.network_diff_options(self.index.list_schemas(), name)
            self.diff_against.options = options or [("no local schema to compare with", "")]
            self.diff_against.value = options[0][1] if options else ""
            self.diff_button.disabled = not options
            return records

    def _require(self) -> Any:
        if self.selected is None:
            raise InvalidArgumentError(
                "no network dataset is selected: select a row (or browser.network.select(uri))"
            )
        return self.selected

    @property
    def load_line(self) -> str:
        """The selected dataset's ``load_dataset("@handle/name")`` line (the DID when no handle)."""
        r = self._require()
        return S.load_line(S.publisher_handle(r, self.handles) or S.publisher_did(r), r.name)

    # ------------------------------------------------------------------ actions
    def _open(self, title: str, widget: Any) -> Any:
        self.action_widget = widget
        show_action(self.action_area, self.action_title, self.close_button, title, widget)
        return widget

    def close_action(self) -> None:
        """Close the inspector or diff viewer opened here."""
        self.action_widget = None
        hide_action(self.action_area)

    def inspect(self) -> Any:
        """ "Inspect samples": open the sample inspector on the selected dataset's data, read with
        :func:`~atdata_lab.load_published` (records and shard locations checked first; data streamed
        from PDS blobs or http under the trust policy). Returns the inspector."""
        b = self.browser
        with b.reporting("Opening the sample inspector"):
            r = self._require()
            from ..promotion.published import load_published
            from .sample_inspector import SampleInspector

            ds = load_published(r.uri, index=self.index)
            return self._open(
                f"Samples of {r.name} ({S.publisher_label(S.publisher_did(r), S.publisher_handle(r, self.handles))})",
                SampleInspector(ds),
            )

    def diff(self, against: str | None = None) -> Any:
        """ "Diff schema": compare the local schema ``against`` (a local ref; default: the dropdown's)
        with the selected dataset's published schema. Returns the ``SchemaDiffViewer``."""
        b = self.browser
        with b.reporting("Comparing schemas"):
            r = self._require()
            against = against or (self.diff_against.value or None)
            if not against:
                raise InvalidArgumentError("choose a local schema to compare with (this index has none)")
            if not isinstance(r.schema_ref, str) or not r.schema_ref:
                raise InvalidArgumentError(f"{r.uri} names no schema")
            try:
                from .schema_diff import SchemaDiffViewer
            except ImportError as e:
                b.errors.show_message(not_available("The schema diff viewer", "schema_diff", e))
                return None
            return self._open(
                f"{S.schema_label(against)} → {S.schema_label(r.schema_ref)}",
                SchemaDiffViewer(against, r.schema_ref, index=self.index),
            )
