"""``SchemaDiffViewer``: two schemas side by side, with the verdict and the version to use next.

Usage::

    from atdata_lab.widgets import SchemaDiffViewer, diff
    SchemaDiffViewer(FeatureSample, "at://did:plc:.../science.alt.dataset.schema/...", index=index)
    diff(index.get_entry_by_name("a"), index.get_entry_by_name("b"))

Each side may be a sample type, a local schema ref, an at:// schema URI, a schema record dict or
an :class:`~atdata_lab.entry.IndexEntry`, mixed freely. The library resolves and compares them
(:func:`atdata_lab.schema_diff.compare_schemas`) and everything shown comes from
:mod:`atdata_lab.views.schema`; the widget only lays it out.

CSS classes: ``atdata-schema-diff`` (root), ``atdata-schema-diff-verdict``,
``atdata-schema-diff-table`` (rows ``atdata-diff-row atdata-diff-<status>``),
``atdata-schema-diff-left-record`` / ``-right-record`` (collapsible raw records),
``atdata-schema-diff-swap``.
"""

from __future__ import annotations

from typing import Any

import ipywidgets
import traitlets

from .. import views
from ..index import Index
from ..schema_diff import SchemaComparison, compare_schemas, resolve_schema
from ._base import AtdataWidget, esc

__all__ = ["SchemaDiffViewer", "SchemaDiff", "diff"]


def _record_pane(title: str) -> tuple[ipywidgets.Accordion, ipywidgets.HTML]:
    body = ipywidgets.HTML()
    body.add_class("atdata-json")
    pane = ipywidgets.Accordion(children=[body], selected_index=None)
    pane.set_title(0, title)
    return pane, body


class SchemaDiffViewer(AtdataWidget):
    """A side-by-side field table of two schemas, the verdict, and both raw records.

    Args:
        a: The left (older) side.
        b: The right (newer) side.
        index: Resolves local refs and entries; its atmosphere (else ``ATDATA_PDS_URL``) reads
            at:// URIs. Default: an entry's own index, else ``Index()``.

    Attributes:
        comparison: The :class:`~atdata_lab.schema_diff.SchemaComparison` shown (sides and diff).
    """

    _root_class = "atdata-schema-diff"
    _css_files = ("atdata.css", "schema_diff.css")

    verdict = traitlets.Unicode("", help="identical, compatible or breaking ('' until compared).")
    next_version = traitlets.Unicode("", help="The semantic version the right side should be published as.")

    def __init__(self, a: Any, b: Any, *, index: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.comparison: SchemaComparison | None = None
        self._inputs = (a, b)
        self._title = self.part(ipywidgets.HTML(), "title")
        self._verdict = self.part(ipywidgets.HTML(), "verdict")
        self._table = self.part(ipywidgets.HTML(), "table")
        self._left_pane, self._left_body = _record_pane("left record")
        self._right_pane, self._right_body = _record_pane("right record")
        self.part(self._left_pane, "left-record")
        self.part(self._right_pane, "right-record")
        toolbar = self.swap_toolbar(self._title, self.swap)
        records = self.part(ipywidgets.HBox([self._left_pane, self._right_pane]), "records")
        self.set_body(toolbar, self._verdict, self._table, records)
        self.compare(a, b)

    # -- actions (programmatic twins) ------------------------------------------------------------
    def compare(self, a: Any, b: Any) -> SchemaComparison:
        """Resolve both sides, diff them, and show the result."""
        with self.reporting("Comparing the schemas"):
            cmp = compare_schemas(self._side(a), self._side(b), self.index)
            self._inputs = (a, b)
            self._show(cmp)
            return cmp

    def _side(self, x: Any) -> Any:
        """A local ref given without an index is looked up in the default ``Index()`` (documented above)."""
        if self.index is None and isinstance(x, str) and not x.startswith("at://"):
            return resolve_schema(x, Index())
        return x

    def swap(self) -> SchemaComparison:
        """Compare the other way round (right becomes left)."""
        a, b = self._inputs
        return self.compare(b, a)

    # -- what is shown ---------------------------------------------------------------------------
    @property
    def diff(self) -> Any:
        """The library :class:`~atdata_lab.schema_diff.SchemaDiff` (None if the comparison failed)."""
        return self.comparison.diff if self.comparison else None

    @property
    def rows(self) -> list[views.DiffRow]:
        """The rows of the table (field, left, right, status, changes)."""
        return self.comparison.rows if self.comparison else []

    def _show(self, cmp: SchemaComparison) -> None:
        self.comparison = cmp
        d = cmp.diff
        self._title.value = views.comparison_title_html(cmp)
        self._verdict.value = views.verdict_badge_html(d)
        # the sides are named once, in the title; the table and the record panes use the short labels
        self._table.value = views.diff_table_html(d, caption=False)
        self._left_pane.set_title(0, f"left record: {cmp.left.label}")
        self._right_pane.set_title(0, f"right record: {cmp.right.label}")
        self._left_body.value = f"<pre>{esc(views.record_json(cmp.left.record))}</pre>"
        self._right_body.value = f"<pre>{esc(views.record_json(cmp.right.record))}</pre>"
        self.verdict = d.verdict
        self.next_version = d.next_version

    def _static_html(self) -> str:
        if self.comparison is None:
            return f"<div class='atdata-schema-diff'>{esc(self.errors.message or 'no comparison')}</div>"
        return f"<div class='atdata-schema-diff'>{views.comparison_html(self.comparison)}</div>"

    def __repr__(self) -> str:
        if self.comparison is None:
            return "SchemaDiffViewer(not compared)"
        c = self.comparison
        return (
            f"SchemaDiffViewer({c.left.label} -> {c.right.label}: {c.diff.verdict}, "
            f"next version {c.diff.next_version})"
        )


#: The widget's name before 0.2 (the library's ``atdata_lab.SchemaDiff`` is the diff itself); kept for one release.
SchemaDiff = SchemaDiffViewer


def diff(a: Any, b: Any, *, index: Any = None) -> SchemaDiffViewer:
    """Shortcut: ``SchemaDiffViewer(a, b, index=index)``."""
    return SchemaDiffViewer(a, b, index=index)
