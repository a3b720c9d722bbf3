"""``SampleInspector(dataset | entry)``: look at samples one at a time, each field by its kind.

Sample *k* is read by random access (one seek through the shard's offset index), never by
iterating up to it. Every user action has a programmatic twin::

    insp = entry.inspect()            # or dataset.inspect(), SampleInspector(ds)
    insp.goto(10); insp.next(); insp.prev(); insp.random()
    insp.set_cmap("gray")
    insp.set_slice("volume", 3)       # the slice selectors of a higher-D array
    insp.show_grid("image", n=16, page=0, captions=("label",))   # a page of thumbnails
    insp.grid_page(3); insp.grid_page(-1)                         # another page; the last one
    insp.show_sample(40)              # back to one sample (clicking a tile does this)

How a value shows is decided by :func:`atdata_lab.views.classify`: images (2-D, and 3-D with
1/3/4 channels, HWC or CHW) auto-scaled with a colormap; 1-D arrays as a line plot; higher-D
arrays with slice selectors and an image; every array with a dtype/shape badge, statistics and a
histogram; strings and numbers as they are; bytes as length and hex; lists and dicts as
collapsible JSON.

The Grid view pages through the whole dataset (or, once a filter is set, through the samples it
matched): a page size (8–64), first/previous/next/last page and a page number to jump to, all
numbered from 0 like the samples ("image: samples 32–47 of 72 (numbered from 0) · page 2 of 5
(0–4)"); a dropdown picks the image field (only fields that show as images), a multi-select the
fields each tile is captioned with (text and numbers such as ``label`` or ``caption``; cut to the
tile's width, the full text on hover). Each tile is read by random access (one seek), and tiles are
cached, so paging back or changing captions reads nothing again.
"""

from __future__ import annotations

import base64
import random as _random
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import ipywidgets
import numpy as np
import traitlets

from .. import views as S
from ..entry import IndexEntry
from ..errors import InvalidArgumentError, InvalidTypeError, SampleIndexError
from ..manifest.query import SampleLocation
from ._base import AtdataWidget, esc, html_table

__all__ = ["SampleInspector"]

_ARRAY_KINDS = ("image", "line", "volume", "scalar", "empty", "array")


class _FieldView:
    """The widgets of one field. Rebuilt when the field's kind (or slicing) changes, otherwise
    updated in place, so stepping through samples re-creates no widgets."""

    def __init__(self, owner: SampleInspector, name: str, kind: str, signature: Any) -> None:
        self.owner = owner
        self.name = name
        self.kind = kind
        self.signature = signature
        self.title = ipywidgets.HTML()
        self.title.add_class("atdata-sample-inspector-field-title")
        self.image = ipywidgets.Image(format="png")
        self.image.add_class("atdata-sample-inspector-image")
        self.stats = ipywidgets.HTML()
        self.stats.add_class("atdata-sample-inspector-stats")
        self.value = ipywidgets.HTML()
        self.value.add_class("atdata-sample-inspector-value")
        self.sliders: list[ipywidgets.IntSlider] = []
        parts: list[Any] = [self.title]
        if kind == "volume":
            shape = signature
            for axis in S.slice_axes(shape):
                s = ipywidgets.IntSlider(
                    value=0,
                    min=0,
                    max=shape[axis] - 1,
                    description=f"axis {axis}",
                    continuous_update=False,
                    layout=ipywidgets.Layout(width="320px"),
                )
                s.add_class("atdata-sample-inspector-slice")
                s.observe(
                    owner.ui(
                        lambda _ch: owner.set_slice(name, *[x.value for x in self.sliders]), f"Slicing {name}"
                    ),
                    names="value",
                )
                self.sliders.append(s)
            parts.append(ipywidgets.HBox(self.sliders, layout=ipywidgets.Layout(flex_flow="row wrap")))
        if kind in ("image", "line", "volume"):
            parts.append(ipywidgets.HBox([self.image, self.stats]))
            self.image.layout = ipywidgets.Layout(max_width="100%")
            if kind == "line":  # dark ticks on transparent: the stylesheet inverts it in dark themes
                self.image.add_class("atdata-sample-inspector-plot")
        elif kind in ("scalar", "empty", "array"):
            parts += [self.value, self.stats]
        else:
            parts.append(self.value)
        self.box = ipywidgets.VBox(parts)
        self.box.add_class("atdata-sample-inspector-field")
        self.box.add_class(f"atdata-sample-inspector-kind-{kind}")
        self.png: bytes = b""
        self.summary = ""
        self.coloured = False  # whether the colormap applies to the value shown

    def update(self, value: Any) -> None:
        owner, kind, name = self.owner, self.kind, self.name
        kind_badge = S.badge_html(
            kind
            if kind not in ("str", "int", "float", "bool", "bytes", "list", "dict", "none")
            else type(value).__name__
            if value is not None
            else "None"
        )
        self.coloured = S.uses_colormap(value)
        if isinstance(value, np.ndarray):
            st = S.array_stats(value)
            self.title.value = f"<b>{esc(name)}</b> {kind_badge} {S.badge_html(st.badge, 'info')}"
            self.summary = st.badge
            if kind in ("image", "line", "volume"):
                self.png = owner._render(name, kind, value)
                self.image.value = self.png
            if kind == "scalar":
                self.value.value = f"<code>{esc(S.value_text(value.item()))}</code>"
            elif kind == "empty":
                self.value.value = "<div class='atdata-empty'>empty array</div>"
            elif kind == "array":
                self.value.value = (
                    f"<pre class='atdata-json'>{esc(S.json_preview(value.tolist()[:200]))}</pre>"
                )
            counts, edges = S.histogram(value) if kind not in ("scalar", "array") else ([], None)
            stats = html_table(
                [s for s, _ in st.rows()],
                [[v for _, v in st.rows()]],
                css_class="atdata-sample-inspector-stats-table",
            )
            hist = S.histogram_svg(list(counts), edges) if kind not in ("scalar", "array", "empty") else ""
            self.stats.value = f"{stats}<div class='atdata-sample-inspector-histogram'>{hist}</div>"
            return
        self.title.value = f"<b>{esc(name)}</b> {kind_badge}"
        if kind == "bytes":
            text = S.hex_preview(value)
            self.value.value = f"<code class='atdata-hex'>{esc(text)}</code>"
        elif kind in ("list", "dict"):
            n = len(value)
            what = f"{kind} · {n:,} item{'s' if n != 1 else ''}" if kind == "list" else f"dict · {n:,} keys"
            text = what
            self.value.value = (
                f"<details class='atdata-json'><summary>{esc(what)}</summary>"
                f"<pre>{esc(S.json_preview(value))}</pre></details>"
            )
        elif kind == "str":
            text = value
            self.value.value = f"<div class='atdata-sample-inspector-text'>{esc(value)}</div>"
        else:
            text = S.value_text(value)
            self.value.value = f"<code>{esc(text)}</code>"
        self.summary = text if len(text) <= 120 else text[:117] + "…"


class _Tile:
    """One tile of the grid: the thumbnail (or the value's text), its captions and the button that
    opens the sample. Tiles are kept and updated in place, so paging creates no widgets."""

    def __init__(self, owner: SampleInspector, slot: int) -> None:
        self.k = -1
        self.image = ipywidgets.Image(format="png")
        self.image.add_class("atdata-sample-inspector-thumb-image")
        self.alt = ipywidgets.HTML(layout=ipywidgets.Layout(display="none"))
        self.alt.add_class("atdata-sample-inspector-thumb-text")
        self.captions = ipywidgets.HTML()
        self.captions.add_class("atdata-sample-inspector-captions")
        self.button = ipywidgets.Button(layout=ipywidgets.Layout(width="auto"), tooltip="Open this sample")
        self.button.add_class("atdata-sample-inspector-thumb-open")
        owner.on_click(self.button, lambda _b: owner.show_sample(self.k), "Opening the sample")
        self.box = ipywidgets.VBox([self.image, self.alt, self.captions, self.button])
        self.box.add_class("atdata-sample-inspector-thumb")

    def show(self, k: int, png: bytes | None, alt: str, captions: list[tuple[str, str]]) -> None:
        self.k = k
        if png is not None:
            self.image.value = png
            self.image.layout.display = None
            self.alt.layout.display = "none"
        else:
            self.alt.value = f"<div class='atdata-empty'>{esc(alt)}</div>"
            self.alt.layout.display = None
            self.image.layout.display = "none"
        self.captions.value = S.caption_html(captions)
        self.button.description = f"#{k:,}"


class SampleInspector(AtdataWidget):
    """Navigate the samples of a dataset and see every field rendered by its kind.

    Args:
        source: A :class:`~atdata_lab.dataset.Dataset`, an :class:`~atdata_lab.entry.IndexEntry`,
            or an entry name together with ``index``.
        index: The index holding ``source`` when it is a name.
        start: The first sample shown.
        cmap: Colormap of single-channel images (see :func:`atdata_lab.views.colormaps`).
        seed: Seed of :meth:`random` (None: unpredictable).
        grid_size: Thumbnails on a page of the grid view (the first page size).

    Attributes:
        k: The index of the sample shown. ``sample`` is that sample, ``key`` and ``shard_url`` its
            key and shard.
        n: The number of samples.
        grid_field, grid_captions, grid_page_index, grid_page_size: What the grid shows;
            ``grid_indices`` are the sample numbers on its page, ``grid_count`` and ``grid_pages``
            how many samples and pages it has.
        timings: Kernel time in ms of the last ``render`` (first sample), ``step`` and ``grid``
            (a page).
    """

    _root_class = "atdata-sample-inspector"
    _css_files = ("atdata.css", "sample_inspector.css")

    #: The current filter (a :class:`~atdata_lab.manifest.Predicate`, or None): set by the Table
    #: view's filters (or by code); the views that follow a filter observe this trait.
    filter = traitlets.Any(None, allow_none=True, help="The current Predicate, or None.")

    def __init__(
        self,
        source: Any,
        *,
        index: Any = None,
        start: int = 0,
        cmap: str = "viridis",
        seed: int | None = None,
        grid_size: int = 16,
    ) -> None:
        t0 = time.perf_counter()
        super().__init__()
        self.entry: IndexEntry | None = None
        if isinstance(source, str):
            if index is None:
                raise InvalidArgumentError(
                    "SampleInspector(name) needs index=: SampleInspector('my-data', index=index)"
                )
            source = index.get_entry_by_name(source)
        if isinstance(source, IndexEntry):
            self.entry = source
            self.dataset = source.dataset()
        elif hasattr(source, "locate") and hasattr(source, "__getitem__"):
            self.dataset = source
        else:
            raise InvalidTypeError(
                f"SampleInspector shows a Dataset or an IndexEntry, not {type(source).__name__}"
            )
        if cmap not in S.colormaps():
            raise InvalidArgumentError(f"unknown colormap {cmap!r}; choose one of {', '.join(S.colormaps())}")
        self.n = len(self.dataset)
        self.k = -1
        self.sample: Any = None
        self.key = ""
        self.shard_url = ""
        self.cmap = cmap
        if int(grid_size) < 1:
            raise InvalidArgumentError(f"grid_size is the thumbnails on a page: at least 1, not {grid_size}")
        self.grid_size = self.grid_page_size = int(grid_size)
        self.grid_page_index = 0
        self.grid_field: str | None = None
        self.grid_captions: tuple[str, ...] = ()
        self.grid_indices: list[int] = []
        self._grid_items: Any = None  # None (every sample), sample numbers or SampleLocations
        self._grid_filter_pending = False
        self._tiles: list[_Tile] = []
        self._tile_cache: OrderedDict[tuple, tuple[bytes | None, str, dict[str, str]]] = OrderedDict()
        self.slices: dict[str, list[int]] = {}
        self.timings: dict[str, float] = {}
        self._rng = _random.Random(seed)
        self._views: dict[str, _FieldView] = {}
        self._png_cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._syncing = False

        last = max(self.n - 1, 0)
        self.header = self.part(ipywidgets.HTML(), "header")
        self.prev_button = self.part(
            ipywidgets.Button(description="‹ Prev", layout=ipywidgets.Layout(width="auto")), "prev"
        )
        self.next_button = self.part(
            ipywidgets.Button(description="Next ›", layout=ipywidgets.Layout(width="auto")), "next"
        )
        self.slider = self.part(
            ipywidgets.IntSlider(
                value=0,
                min=0,
                max=last,
                continuous_update=False,
                readout=True,
                layout=ipywidgets.Layout(width="320px"),
            ),
            "slider",
        )
        self.jump = self.part(
            ipywidgets.BoundedIntText(
                value=0, min=0, max=last, description="Go to", layout=ipywidgets.Layout(width="160px")
            ),
            "jump",
        )
        self.random_button = self.part(
            ipywidgets.Button(description="Random", icon="random", layout=ipywidgets.Layout(width="auto")),
            "random",
        )
        self.cmap_dropdown = self.part(
            ipywidgets.Dropdown(
                options=S.colormaps(),
                value=cmap,
                description="Colormap",
                layout=ipywidgets.Layout(width="200px"),
            ),
            "cmap",
        )
        self.view_toggle = self.part(
            ipywidgets.ToggleButtons(options=["Sample", "Grid"], value="Sample"), "view"
        )
        nav = self.part(
            ipywidgets.HBox([self.prev_button, self.slider, self.next_button, self.jump, self.random_button]),
            "nav",
            "atdata-toolbar",
        )
        self.table_toggle = self.part(
            ipywidgets.ToggleButton(
                value=False,
                description="Table",
                tooltip="Every sample as a table row, with column statistics and filters",
                layout=ipywidgets.Layout(width="auto"),
            ),
            "table-toggle",
        )
        self.table: Any = None  # the SamplesTable, made on first show_table()
        self.table_panel = self.part(
            ipywidgets.VBox([], layout=ipywidgets.Layout(display="none")), "table-panel"
        )
        options = self.part(
            ipywidgets.HBox([self.view_toggle, self.table_toggle, self.cmap_dropdown]),
            "options",
            "atdata-toolbar",
        )
        self.fields_box = self.part(ipywidgets.VBox([]), "fields")
        self.grid_field_dropdown = self.part(
            ipywidgets.Dropdown(options=[], description="Field", layout=ipywidgets.Layout(width="240px")),
            "grid-field",
        )
        self.caption_select = self.part(
            ipywidgets.SelectMultiple(
                options=[], description="Captions", rows=3, layout=ipywidgets.Layout(width="260px")
            ),
            "captions",
        )
        self.caption_select.tooltip = "Fields shown under each tile (Ctrl/Cmd-click for several)"
        sizes = sorted({8, 16, 32, 64, self.grid_page_size})
        self.page_size_dropdown = self.part(
            ipywidgets.Dropdown(
                options=sizes,
                value=self.grid_page_size,
                description="Per page",
                layout=ipywidgets.Layout(width="160px"),
            ),
            "page-size",
        )

        def page_button(label: str, tip: str, name: str) -> ipywidgets.Button:
            b = ipywidgets.Button(description=label, tooltip=tip, layout=ipywidgets.Layout(width="auto"))
            return self.part(b, name)

        self.first_page_button = page_button("« First", "The first page", "first-page")
        self.prev_page_button = page_button("‹ Prev", "The previous page", "prev-page")
        self.next_page_button = page_button("Next ›", "The next page", "next-page")
        self.last_page_button = page_button("Last »", "The last page", "last-page")
        self.page_jump = self.part(
            ipywidgets.BoundedIntText(
                value=0, min=0, max=0, description="Page", layout=ipywidgets.Layout(width="150px")
            ),
            "page",
        )
        self.grid_status = self.part(ipywidgets.HTML(), "grid-status", "atdata-muted")
        self.grid_box = self.part(ipywidgets.Box([], layout=ipywidgets.Layout(flex_flow="row wrap")), "grid")
        grid_nav = self.part(
            ipywidgets.HBox(
                [
                    self.first_page_button,
                    self.prev_page_button,
                    self.next_page_button,
                    self.last_page_button,
                    self.page_jump,
                    self.page_size_dropdown,
                ]
            ),
            "grid-nav",
            "atdata-toolbar",
        )
        self.grid_panel = self.part(
            ipywidgets.VBox(
                [
                    ipywidgets.HBox([self.grid_field_dropdown, self.caption_select]),
                    grid_nav,
                    self.grid_status,
                    self.grid_box,
                ],
                layout=ipywidgets.Layout(display="none"),
            ),
            "grid-panel",
        )
        self.sample_panel = self.part(ipywidgets.VBox([nav, self.fields_box]), "sample-panel")

        self.on_click(self.prev_button, lambda _b: self.prev(), "Going to the previous sample")
        self.on_click(self.next_button, lambda _b: self.next(), "Going to the next sample")
        self.on_click(self.random_button, lambda _b: self.random(), "Going to a random sample")
        self.slider.observe(
            self.ui(lambda ch: self._nav_changed(ch["new"]), "Going to the sample"), names="value"
        )
        self.jump.observe(
            self.ui(lambda ch: self._nav_changed(ch["new"]), "Jumping to the sample"), names="value"
        )
        self.cmap_dropdown.observe(
            self.ui(lambda ch: self.set_cmap(ch["new"]), "Changing the colormap"), names="value"
        )
        self.view_toggle.observe(
            self.ui(lambda ch: self._view_changed(ch["new"]), "Switching the view"), names="value"
        )
        for control, what in (
            (self.grid_field_dropdown, "field"),
            (self.caption_select, "captions"),
            (self.page_size_dropdown, "size"),
            (self.page_jump, "page"),
        ):
            control.observe(
                self.ui(lambda ch, what=what: self._grid_control(ch["new"], what), "Showing the grid"),
                names="value",
            )
        pages = (
            (self.first_page_button, lambda: 0),
            (self.prev_page_button, lambda: self.grid_page_index - 1),
            (self.next_page_button, lambda: self.grid_page_index + 1),
            (self.last_page_button, lambda: -1),
        )
        for button, target in pages:
            self.on_click(button, lambda _b, target=target: self.grid_page(target()), "Turning the page")

        self.table_toggle.observe(
            self.ui(lambda ch: self._table_toggled(ch["new"]), "Switching to the table"), names="value"
        )
        self.set_body(self.header, options, self.sample_panel, self.grid_panel, self.table_panel)
        if self.n == 0:
            self.header.value = "<div class='atdata-empty'>This dataset has no samples.</div>"
            for w in (self.prev_button, self.next_button, self.slider, self.jump, self.random_button):
                w.disabled = True
            self.view_toggle.disabled = self.cmap_dropdown.disabled = True
        else:  # a sample that cannot be read is shown as an error; the widget stays usable
            with self.reporting("Loading the first sample", reraise=False):
                self.goto(min(max(int(start), 0), last))
        self._grid_nav_state()
        self.timings["render"] = (time.perf_counter() - t0) * 1000

    # ------------------------------------------------------------------ navigation
    def _nav_changed(self, value: int) -> None:
        if not self._syncing and value != self.k:
            self.goto(value)

    def goto(self, k: int) -> Any:
        """Show sample ``k`` (negative counts from the end). Returns the sample.

        Raises:
            IndexError: ``k`` is out of range (the message says the range).
        """
        with self.reporting(f"Loading sample {k}"):
            t = time.perf_counter()
            k = int(k)
            if self.n == 0:
                raise SampleIndexError("the dataset has no samples")
            if k < 0:
                k += self.n
            if not 0 <= k < self.n:
                raise SampleIndexError(
                    f"sample {k} is out of range: the dataset has {self.n:,} samples (0–{self.n - 1:,})"
                )
            url, _i, key = self.dataset.locate(k)
            sample = self.dataset[k]
            self.k, self.sample, self.key, self.shard_url = k, sample, key, url
            self._syncing = True
            try:
                self.slider.value = k
                self.jump.value = k
            finally:
                self._syncing = False
            self.prev_button.disabled = k <= 0
            self.next_button.disabled = k >= self.n - 1
            self.header.value = f"<div class='atdata-sample-inspector-title'>{esc(S.sample_header(k, self.n, key, url))}</div>"
            self._render_fields()
            self.timings["step"] = (time.perf_counter() - t) * 1000
            return sample

    def next(self) -> Any:
        """Show the next sample (stays on the last)."""
        return self.goto(min(self.k + 1, self.n - 1))

    def prev(self) -> Any:
        """Show the previous sample (stays on the first)."""
        return self.goto(max(self.k - 1, 0))

    def random(self) -> int:
        """Show a random sample; returns its index."""
        with self.reporting("Going to a random sample"):
            if self.n == 0:
                raise SampleIndexError("the dataset has no samples")
            k = self._rng.randrange(self.n)
            self.goto(k)
            return k

    # ------------------------------------------------------------------ fields
    @property
    def fields(self) -> dict[str, str]:
        """``{field name: rendering kind}`` of the sample shown (see :func:`~atdata_lab.views.classify`)."""
        return {name: v.kind for name, v in self._views.items()}

    def field_summary(self, name: str) -> str:
        """The one-line summary shown for field ``name`` (array badge, or the value's text)."""
        return self._views[name].summary

    def field_png(self, name: str) -> bytes:
        """The PNG shown for an image, line or volume field."""
        return self._views[name].png

    def _render_fields(self) -> None:
        items = S.sample_fields(self.sample)
        views: dict[str, _FieldView] = {}
        changed = list(self._views) != [n for n, _ in items]
        for name, value in items:
            kind = S.classify(value)
            signature = tuple(value.shape) if kind == "volume" else None
            view = self._views.get(name)
            if view is None or view.kind != kind or view.signature != signature:
                view = _FieldView(self, name, kind, signature)
                changed = True
                if kind == "volume":
                    self.slices[name] = [
                        min(i, value.shape[a] - 1)
                        for a, i in zip(S.slice_axes(value.shape), self.slices.get(name, []))
                    ]
                    self._sync_sliders(view, name)
            view.update(value)
            views[name] = view
        self._views = views
        if changed:
            self.fields_box.children = [v.box for v in views.values()]
            self._grid_options()
        self._colormap_state()

    _CMAP_TIP = "The colormap colours single-channel images"
    _NO_CMAP_TIP = "No single-channel image in this sample: RGB(A) images show their own colours"
    _NO_GRID_TIP = "This dataset has no image field to show as a grid"

    def _colormap_state(self) -> None:
        """The Colormap dropdown is enabled only when a field of the sample takes a colormap."""
        applies = any(v.coloured for v in self._views.values())
        self.cmap_dropdown.disabled = not applies
        self.cmap_dropdown.tooltip = self._CMAP_TIP if applies else self._NO_CMAP_TIP

    def _render(self, name: str, kind: str, value: np.ndarray) -> bytes:
        key = (self.k, name, kind, self.cmap, tuple(self.slices.get(name, ())))
        png = self._png_cache.get(key)
        if png is not None:
            self._png_cache.move_to_end(key)
            return png
        if kind == "line":
            png = S.line_png(value)
        else:
            img = S.take_slice(value, self.slices.get(name, [])) if kind == "volume" else value
            if S.image_layout(img.shape) is None:  # a slice that is 1-D (e.g. shape (n, 1, m))
                png = S.line_png(img.ravel())
            else:
                png = S.png_bytes(S.to_rgba(img, self.cmap), max_size=512, min_size=128)
        self._png_cache[key] = png
        while len(self._png_cache) > 256:
            self._png_cache.popitem(last=False)
        return png

    def _sync_sliders(self, view: _FieldView, name: str) -> None:
        self._syncing = True
        try:
            for s, i in zip(view.sliders, self.slices.get(name, [])):
                s.value = i
        finally:
            self._syncing = False

    def set_cmap(self, name: str) -> None:
        """Colour single-channel images with colormap ``name``."""
        with self.reporting("Changing the colormap"):
            if name not in S.colormaps():
                raise InvalidArgumentError(
                    f"unknown colormap {name!r}; choose one of {', '.join(S.colormaps())}"
                )
            self.cmap = name
            if self.cmap_dropdown.value != name:
                self._syncing = True
                try:
                    self.cmap_dropdown.value = name
                finally:
                    self._syncing = False
            if self.sample is not None:
                self._render_fields()
            if self.grid_field is not None and self.grid_panel.layout.display != "none":
                self.show_grid(self.grid_field)

    def set_slice(self, name: str, *indices: int) -> bytes:
        """Pick the slice of a higher-D array field: one index per leading axis. Returns the PNG."""
        with self.reporting(f"Slicing {name}"):
            if self._syncing:
                return b""
            view = self._views.get(name)
            if view is None or view.kind != "volume":
                vols = [n for n, v in self._views.items() if v.kind == "volume"] or ["none"]
                raise InvalidArgumentError(
                    f"field {name!r} has no slices; fields with slices: {', '.join(vols)}"
                )
            shape = view.signature
            axes = S.slice_axes(shape)
            if len(indices) > len(axes):
                raise InvalidArgumentError(f"field {name!r} has {len(axes)} slice axes, not {len(indices)}")
            for a, i in zip(axes, indices):
                if not 0 <= int(i) < shape[a]:
                    raise SampleIndexError(
                        f"index {i} is out of range for axis {a} of {name!r} (size {shape[a]})"
                    )
            self.slices[name] = [int(i) for i in indices] + self.slices.get(name, [])[len(indices) :]
            self._sync_sliders(view, name)
            view.update(dict(S.sample_fields(self.sample))[name])
            return view.png

    # ------------------------------------------------------------------ grid
    def _image_fields(self) -> list[str]:
        return [n for n, v in self._views.items() if v.kind in ("image", "volume")]

    def _caption_fields(self) -> list[str]:
        return [n for n, v in self._views.items() if v.kind in S.CAPTION_KINDS]

    def _grid_options(self) -> None:
        names = self._image_fields()
        captionable = self._caption_fields()
        self._syncing = True
        try:
            self.grid_field_dropdown.options = names
            if self.grid_field in names:
                self.grid_field_dropdown.value = self.grid_field
            self.grid_captions = tuple(c for c in self.grid_captions if c in captionable)
            self.caption_select.options = captionable
            self.caption_select.value = self.grid_captions
            self.caption_select.rows = min(max(len(captionable), 1), 4)
        finally:
            self._syncing = False
        self.caption_select.disabled = not captionable
        # no image field: Grid cannot apply, so the toggle is disabled and says why
        self.view_toggle.disabled = not names and self.view_toggle.value == "Sample"
        self.view_toggle.tooltips = (
            ["One sample, every field", "Thumbnails of an image field"]
            if names
            else [
                "One sample, every field",
                self._NO_GRID_TIP,
            ]
        )

    def _view_changed(self, value: str) -> None:
        if self._syncing:
            return
        self._hide_table()
        if value == "Grid":
            try:
                self.show_grid()
            except Exception:
                self._syncing = True
                try:
                    self.view_toggle.value = "Sample"
                finally:
                    self._syncing = False
                raise
        else:
            self.show_sample()

    def _grid_sequence(self) -> Any:
        """What the grid pages over (None: every sample); a filter set while the grid was hidden
        is resolved here, once (its selection's sample numbers)."""
        if self._grid_filter_pending:
            self._grid_filter_pending = False
            self._grid_items = self.selection.indices if self.filter is not None else None
        return self._grid_items

    @property
    def grid_count(self) -> int:
        """The samples the grid pages over: all of them, or those the filter matched."""
        items = self._grid_sequence()
        return self.n if items is None else len(items)

    @property
    def grid_pages(self) -> int:
        """The number of pages of the grid (at least 1)."""
        return max(-(-self.grid_count // self.grid_page_size), 1)

    def _grid_over(self, items: Sequence[int] | Sequence[SampleLocation] | np.ndarray | None) -> None:
        """Page the grid over ``items`` instead of every sample: sample numbers (``ds[k]``, a list or
        an array) or the :class:`~atdata_lab.manifest.query.SampleLocation` s a query matched; None:
        every sample again. Setting :attr:`filter` calls it (with its selection's sample numbers);
        the grid goes back to its first page and, when shown, shows it. Locations become sample
        numbers one page at a time (as the page is read)."""
        with self.reporting("Filtering the grid"):
            self._grid_filter_pending = False
            self._grid_items = items if items is None or isinstance(items, np.ndarray) else list(items)
            self.grid_page_index = 0
            if self.grid_field is not None and self.grid_panel.layout.display != "none":
                self.show_grid(self.grid_field)
            else:
                self._grid_nav_state()

    def _grid_numbers(self, start: int, stop: int) -> list[int]:
        """The sample numbers of grid positions ``start``..``stop`` (one offset-index lookup each
        for a filter's locations; no sample is read here)."""
        items = self._grid_sequence()
        if items is None:
            return list(range(start, min(stop, self.n)))
        out = []
        for item in items[start:stop]:
            out.append(self.dataset.index_of(item) if isinstance(item, SampleLocation) else int(item))
        return out

    def _tile_data(self, k: int, field: str) -> tuple[bytes | None, str, dict[str, str]]:
        """``(thumbnail PNG or None, text shown instead, {captionable field: caption text})`` of
        sample ``k``: one seek, cached (paging back, or changing captions, reads nothing)."""
        key = ("tile", k, field, self.cmap)
        hit = self._tile_cache.get(key)
        if hit is not None:
            self._tile_cache.move_to_end(key)
            return hit
        items = S.sample_fields(self.dataset[k])
        values = dict(items)
        if field not in values:
            raise InvalidArgumentError(f"sample {k} has no field {field!r}; its fields: {', '.join(values)}")
        value = values[field]
        png = S.thumbnail_png(value, 96, self.cmap) if isinstance(value, np.ndarray) else None
        alt = "" if png is not None else S.caption_text(value, 40)
        captions = {name: S.caption_text(v) for name, v in items if S.classify(v) in S.CAPTION_KINDS}
        hit = (png, alt, captions)
        self._tile_cache[key] = hit
        while len(self._tile_cache) > 512:
            self._tile_cache.popitem(last=False)
        return hit

    def _tile(self, slot: int) -> _Tile:
        while len(self._tiles) <= slot:
            self._tiles.append(_Tile(self, len(self._tiles)))
        return self._tiles[slot]

    def show_grid(
        self,
        field: str | None = None,
        n: int | None = None,
        page: int | None = None,
        captions: Sequence[str] | None = None,
    ) -> list[bytes | None]:
        """Show thumbnails of image field ``field`` (default: the one shown, else the first image
        field), ``n`` per page (default: the page size chosen, initially ``grid_size``), page
        ``page`` (numbered from 0; default: the page shown), each tile captioned with the fields
        ``captions`` (text and numbers; default: the captions chosen). The grid pages over every
        sample, or over what a filter matched; each tile is read by random access (one seek).
        Clicking a tile opens its sample. Returns the page's PNGs (None where a sample's value
        is not an image).

        Raises:
            ValueError: no image field, an unknown field or caption, or a page size below 1.
            IndexError: ``page`` is out of range (the message says the range).
        """
        with self.reporting("Showing the grid"):
            names = self._image_fields()
            if field is None:
                field = self.grid_field if self.grid_field in names else (names[0] if names else None)
            if field is None:
                raise InvalidArgumentError("this dataset has no image field to show as a grid")
            if field not in names:
                known = ", ".join(names)
                raise InvalidArgumentError(f"no image field {field!r}; image fields: {known}")
            if captions is not None:
                captions = (captions,) if isinstance(captions, str) else tuple(captions)
                captionable = self._caption_fields()
                unknown = [c for c in captions if c not in captionable]
                if unknown:
                    raise InvalidArgumentError(
                        f"cannot caption tiles with {', '.join(map(repr, unknown))}; fields with a short "
                        f"value (text, numbers): {', '.join(captionable) or 'none'}"
                    )
            if n is not None:
                if int(n) < 1:
                    raise InvalidArgumentError(f"a page holds at least 1 sample, not {n}")
                if int(n) != self.grid_page_size:
                    self.grid_page_size = int(n)
                    if page is None:
                        page = 0
            page = self.grid_page_index if page is None else int(page)
            pages = self.grid_pages
            if page < 0:
                page += pages
            if not 0 <= page < pages:
                raise SampleIndexError(
                    f"page {page} is out of range: the grid has {pages:,} pages (0–{pages - 1:,})"
                )
            t = time.perf_counter()
            size = self.grid_page_size
            numbers = self._grid_numbers(page * size, (page + 1) * size)
            chosen = self.grid_captions if captions is None else captions
            thumbs: list[bytes | None] = []
            for slot, k in enumerate(numbers):
                png, alt, texts = self._tile_data(k, field)
                self._tile(slot).show(k, png, alt, [(c, texts.get(c, "")) for c in chosen])
                thumbs.append(png)
            self.grid_field, self.grid_page_index, self.grid_captions = field, page, tuple(chosen)
            self.grid_indices = numbers
            self._syncing = True
            try:
                self.grid_field_dropdown.value = field
                self.caption_select.value = self.grid_captions
                self.page_size_dropdown.options = sorted({*self.page_size_dropdown.options, size})
                self.page_size_dropdown.value = size
                self.view_toggle.value = "Grid"
            finally:
                self._syncing = False
            self.grid_box.children = [self._tiles[i].box for i in range(len(numbers))]
            self._grid_nav_state()
            self._hide_table()
            self.grid_panel.layout.display = "flex"
            self.sample_panel.layout.display = "none"
            self.timings["grid"] = (time.perf_counter() - t) * 1000
            return thumbs

    def _grid_nav_state(self) -> None:
        page, pages = self.grid_page_index, self.grid_pages
        self.first_page_button.disabled = self.prev_page_button.disabled = page <= 0
        self.next_page_button.disabled = self.last_page_button.disabled = page >= pages - 1
        self._syncing = True
        try:
            self.page_jump.max = pages - 1
            self.page_jump.value = page
        finally:
            self._syncing = False
        self.page_jump.disabled = pages <= 1
        field = self.grid_field or ""
        self.grid_status.value = esc(
            S.grid_status_text(
                field,
                page,
                self.grid_page_size,
                self.grid_count,
                self.n,
                filtered=self._grid_items is not None,
            )
        )

    def grid_page(self, k: int) -> list[bytes | None]:
        """Show page ``k`` of the grid (numbered from 0; negative counts from the end). Returns the
        page's PNGs.

        Raises:
            IndexError: ``k`` is out of range (the message says the range).
        """
        return self.show_grid(self.grid_field, page=k)

    def _grid_control(self, value: Any, what: str) -> None:
        if self._syncing:
            return
        if what == "page":
            self.grid_page(value)
        elif what == "size":
            self.show_grid(self.grid_field, n=value)
        elif what == "captions":
            self.show_grid(self.grid_field, captions=value)
        elif value:
            self.show_grid(value)

    def show_sample(self, k: int | None = None) -> Any:
        """Back from the grid to the one-sample view (at sample ``k`` when given)."""
        with self.reporting("Showing the sample"):
            self._syncing = True
            try:
                self.view_toggle.value = "Sample"
            finally:
                self._syncing = False
            self._hide_table()
            self.grid_panel.layout.display = "none"
            self.sample_panel.layout.display = "flex"
            return self.goto(k) if k is not None else self.sample

    # ------------------------------------------------------------------ the table
    def show_table(self) -> Any:
        """Show every sample as a table row (a :class:`~atdata_lab.widgets.SamplesTable`, made on
        first use): its filters set :attr:`filter`, and setting :attr:`filter` filters it. Returns it."""
        with self.reporting("Showing the table"):
            if self.table is None:
                from .samples_table import SamplesTable

                self.table = SamplesTable(self.entry if self.entry is not None else self.dataset)
                if self.filter is not None:
                    self.table.set_filter(self.filter)
                self.table.observe(lambda ch: setattr(self, "filter", ch["new"]), names="filter")
                self.table.view.observe(
                    self.ui(lambda ch: ch["new"] >= 0 and self.goto(ch["new"]), "Loading the sample"),
                    names="selected",
                )
                self.table_panel.children = [self.table]
            self._syncing = True
            try:
                self.table_toggle.value = True
            finally:
                self._syncing = False
            self.table_panel.layout.display = "flex"
            self.sample_panel.layout.display = "none"
            self.grid_panel.layout.display = "none"
            return self.table

    def _hide_table(self) -> None:
        self._syncing = True
        try:
            self.table_toggle.value = False
        finally:
            self._syncing = False
        self.table_panel.layout.display = "none"

    def _table_toggled(self, on: bool) -> None:
        if self._syncing:
            return
        if on:
            self.show_table()
        else:
            self._hide_table()
            self._view_changed(self.view_toggle.value)

    @traitlets.observe("filter")
    def _filter_changed(self, change: dict) -> None:
        if self.table is not None and change["new"] is not self.table.filter:
            self.table.set_filter(change["new"])
        # the grid follows: at once when it is shown, else when it is next shown
        if change["new"] is None:
            self._grid_filter_pending = False
            self._grid_over(None)
        elif self.grid_field is not None and self.grid_panel.layout.display != "none":
            self._grid_over(self.selection.indices)
        else:
            self._grid_filter_pending = True
            self.grid_page_index = 0

    @property
    def selection(self) -> Any:
        """What :attr:`filter` selects (a :class:`~atdata_lab.manifest.selection.Selection`):
        ``.locations()`` (the ``SampleLocation`` s), ``.indices``, ``.samples()``, ``.dataset()``, ``.code``."""
        from ..manifest.selection import Selection

        if self.table is not None:
            return self.table.selection
        return Selection(self.dataset, self.filter)

    # ------------------------------------------------------------------ static fallback
    def __repr__(self) -> str:
        if self.k < 0:
            return f"SampleInspector({self.n:,} samples)"
        return f"SampleInspector({S.sample_header(self.k, self.n, self.key, self.shard_url)})"

    def _static_html(self) -> str:
        if self.k < 0:
            return f"<div class='atdata-sample-inspector'>{esc(repr(self))}</div>"
        rows = []
        for name, v in self._views.items():
            pic = ""
            if v.png:
                pic = (
                    f"<img alt='{esc(name)}' style='max-width:160px;max-height:160px' "
                    f"src='data:image/png;base64,{base64.b64encode(v.png).decode()}'>"
                )
            rows.append([f"<b>{esc(name)}</b>", esc(v.kind), esc(v.summary), pic])
        table = html_table(["field", "kind", "value", ""], rows, raw=True)
        header = esc(S.sample_header(self.k, self.n, self.key, self.shard_url))
        return (
            f"<div class='atdata-sample-inspector'><div><b>{header}</b></div>{table}"
            "<div class='atdata-static-note'>A static view: run the notebook with ipywidgets to step "
            "through the samples.</div></div>"
        )
