"""``CompareView``: two datasets, splits or versions side by side — each field's statistics with
the differences highlighted (Facets Overview style), next to the two schemas' diff.

Usage::

    train.compare(test)                     # Dataset.compare / IndexEntry.compare open this view
    from atdata_lab.widgets import CompareView
    CompareView(index.get_entry_by_name("photos-v1"), index.get_entry_by_name("photos-v2"))

Each side is a :class:`~atdata_lab.Dataset` or an :class:`~atdata_lab.IndexEntry`. The library
computes (``.stats()``, cached on each side) and decides what differs
(:func:`atdata_lab.column_stats.compare_stats`); the table comes from
:mod:`atdata_lab.views.column_stats`, the schemas' diff is the :class:`SchemaDiffViewer`. This
widget only lays them out.

CSS classes: ``atdata-compare`` (root), ``atdata-compare-title`` (the sides' names), ``atdata-compare-stats`` (the
statistics table), ``atdata-compare-schema`` (the schema diff), ``atdata-compare-swap``.
"""

from __future__ import annotations

from typing import Any

import ipywidgets
import traitlets

from .. import views
from ..column_stats import StatsComparison, compare_datasets
from ..sample import DictSample
from ._base import AtdataWidget, esc

__all__ = ["CompareView"]


def _schema_side(x: Any) -> Any:
    """What the schema diff compares for a side: an entry as it is, a dataset's sample type (None
    for a dataset of dicts, which has no declared schema)."""
    if hasattr(x, "schema_ref"):
        return x
    st = getattr(x, "sample_type", None)
    return None if st is None or st is DictSample else st


class CompareView(AtdataWidget):
    """Two datasets' field statistics side by side, and their schemas' diff.

    Args:
        a: The left side (a dataset or an index entry).
        b: The right side.
        index: Resolves the entries' schemas (default: each entry's own index).
        progress: Progress of computing statistics that are not cached yet: ``True`` (default) a
            bar while a side is scanned, ``None`` silent, or a callable of ``ProgressEvent``.

    Attributes:
        comparison: The :class:`~atdata_lab.column_stats.StatsComparison` shown.
        schema_view: The :class:`~atdata_lab.widgets.SchemaDiffViewer` (None when a side has no
            declared schema).
        changed_fields: The names of the fields that differ.
    """

    _root_class = "atdata-compare"
    _css_files = ("atdata.css", "column_stats.css", "schema_diff.css", "compare.css")

    changed_fields = traitlets.List(traitlets.Unicode(), help="The fields whose statistics differ.")

    def __init__(self, a: Any, b: Any, *, index: Any = None, progress: Any = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.progress = progress
        self.comparison: StatsComparison | None = None
        self.schema_view: Any = None
        self._inputs = (a, b)
        self._title = self.part(ipywidgets.HTML(), "title")
        self._stats = self.part(ipywidgets.HTML(), "stats")
        self._schema_box = self.part(ipywidgets.VBox(), "schema")
        toolbar = self.swap_toolbar(self._title, self.swap)
        stats_title = ipywidgets.HTML("<div class='atdata-section-title'>Field statistics</div>")
        schema_title = ipywidgets.HTML("<div class='atdata-section-title'>Schemas</div>")
        self.set_body(toolbar, stats_title, self._stats, schema_title, self._schema_box)
        self.compare(a, b)

    # -- actions (programmatic twins) ------------------------------------------------------------
    def compare(self, a: Any, b: Any) -> StatsComparison:
        """Compute (or reuse) both sides' statistics, compare them, and show the result."""
        with self.reporting("Comparing the datasets"):
            cmp = compare_datasets(a, b, progress=self.progress)
            self._inputs = (a, b)
            self.comparison = cmp
            self.changed_fields = [f.name for f in cmp.changed]
            self._title.value = (
                f"<span class='atdata-compare-sides'>{esc(cmp.a_label)} → {esc(cmp.b_label)}</span>"
            )
            self._stats.value = views.stats_comparison_html(cmp)
            self._show_schemas(a, b)
            return cmp

    def swap(self) -> StatsComparison:
        """Compare the other way round (right becomes left)."""
        a, b = self._inputs
        return self.compare(b, a)

    def _show_schemas(self, a: Any, b: Any) -> None:
        sa, sb = _schema_side(a), _schema_side(b)
        if sa is None or sb is None:
            self.schema_view = None
            note = ipywidgets.HTML(
                "<div class='atdata-compare-schema-note'>No schema diff: a side holds samples of no "
                "declared type (DictSample).</div>"
            )
            self._schema_box.children = [note]
            return
        from .schema_diff import SchemaDiffViewer

        if self.schema_view is None:
            self.schema_view = SchemaDiffViewer(sa, sb, index=self.index)
        else:
            self.schema_view.compare(sa, sb)
        self._schema_box.children = [self.schema_view]

    # -- static fallback -------------------------------------------------------------------------
    def _static_html(self) -> str:
        if self.comparison is None:
            return f"<div class='atdata-compare'>{esc(self.errors.message or 'not compared')}</div>"
        schema = ""
        if self.schema_view is not None and self.schema_view.comparison is not None:
            schema = views.comparison_html(self.schema_view.comparison)
        return f"<div class='atdata-compare'>{views.stats_comparison_html(self.comparison)}{schema}</div>"

    def __repr__(self) -> str:
        if self.comparison is None:
            return "CompareView(not compared)"
        c = self.comparison
        return f"CompareView({c.a_label} -> {c.b_label}: {len(c.changed)} of {len(c.fields)} fields differ)"
