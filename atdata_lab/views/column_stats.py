"""Column statistics shown: a compact summary per field (for a table's header), all fields of a
dataset, and two datasets' statistics side by side (Facets Overview style), as HTML and as text.

Pure functions of :class:`~atdata_lab.column_stats.ColumnStats`, ``DatasetStats`` and
``StatsComparison`` (read by attribute). In the HTML, each histogram bar carries ``data-bin="i"``
and each top-value bar ``data-value="..."`` (with ``data-field``), so a widget can turn a click
into ``ColumnStats.predicate_for_bin(i)`` / ``predicate_for_value(v)``.

CSS classes: ``atdata-colstats`` (one field's summary), ``atdata-colstats-hist`` (the SVG),
``atdata-colstats-top`` (top values), ``atdata-colstats-meta`` (count, nulls, shapes),
``atdata-stats-table`` (all fields), ``atdata-stats-compare`` (the comparison table, rows
``atdata-cmp-row atdata-cmp-<status>``, differing cells ``atdata-cmp-diff``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .text import dtype_text, esc, format_count, plain, shape_text, text_table

if TYPE_CHECKING:
    from ..column_stats import ColumnStats, DatasetStats, FieldComparison, StatsComparison

__all__ = [
    "column_stats_html",
    "column_stats_line",
    "column_histogram_svg",
    "top_values_html",
    "dataset_stats_html",
    "dataset_stats_text",
    "stats_comparison_html",
    "stats_comparison_rows",
    "stats_comparison_text",
]

HIST_WIDTH = 120
HIST_HEIGHT = 32
TOP_SHOWN = 5
VALUE_CHARS = 24  # a top value is cut to this many characters (the whole value on hover)


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _nulls_text(cs: ColumnStats) -> str:
    if not cs.measured:
        return "nulls ?"
    if not cs.nulls:
        return "no nulls"
    return f"{cs.nulls:,} null ({cs.null_fraction:.1%})"


def _shapes_text(cs: ColumnStats, k: int = 2) -> str:
    shown = [shape_text(s) for s, _ in cs.shapes[:k]]
    more = len(cs.shapes) - k
    return ", ".join(shown) + (f" +{more} more" if more > 0 else "")


def _bin_title(cs: ColumnStats, i: int) -> str:
    low, high, n = cs.histogram[i]
    if cs.integral and high - low == 1.0:
        what = _num(low + 0.5)
    else:
        close = "]" if i == len(cs.histogram) - 1 else ")"
        what = f"[{_num(low)}, {_num(high)}{close}"
    return f"{what}: {n:,}"


def column_histogram_svg(cs: ColumnStats, *, width: int = HIST_WIDTH, height: int = HIST_HEIGHT) -> str:
    """The field's histogram as a small SVG: one ``<rect data-bin="i">`` per bin (the full height is
    clickable, the bar drawn inside), its range and count in a ``<title>``; bars in
    ``currentColor``."""
    hist = cs.histogram
    if not hist:
        return ""
    top = max(n for _, _, n in hist) or 1
    w = width / len(hist)
    parts = []
    for i, (_, _, n) in enumerate(hist):
        h = 0.0 if n == 0 else max(1.0, (height - 1) * n / top)
        x = i * w
        parts.append(
            f"<g class='atdata-colstats-bin' data-bin='{i}' data-field='{esc(cs.name)}'>"
            f"<title>{esc(_bin_title(cs, i))}</title>"
            f"<rect class='atdata-colstats-hit' x='{x:.2f}' y='0' width='{w:.2f}' height='{height}' "
            f"fill='transparent' data-bin='{i}'></rect>"
            f"<rect class='atdata-colstats-bar' x='{x:.2f}' y='{height - h:.2f}' width='{max(w - 1, 0.5):.2f}' "
            f"height='{h:.2f}' data-bin='{i}'></rect></g>"
        )
    label = f"histogram of {cs.name}: {_num(hist[0][0])} to {_num(hist[-1][1])}"
    return (
        f"<svg class='atdata-colstats-hist' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"xmlns='http://www.w3.org/2000/svg' fill='currentColor' role='img' aria-label='{esc(label)}'>"
        f"{''.join(parts)}</svg>"
    )


def top_values_html(cs: ColumnStats, k: int = TOP_SHOWN) -> str:
    """The most frequent values as bars (``data-value`` holds the value as ``top_values`` has it),
    their share of the present values as the bar's width."""
    if not cs.top_values:
        return ""
    present = max(cs.count - cs.nulls, 1)
    rows = []
    for v, n in cs.top_values[:k]:
        share = n / present
        shown = plain(v, VALUE_CHARS)
        rows.append(
            f"<div class='atdata-colstats-value' data-value='{esc(v)}' data-field='{esc(cs.name)}' "
            f"title='{esc(v)}: {n:,} ({share:.1%})'>"
            f"<span class='atdata-colstats-valbar' style='width:{100 * share:.1f}%'></span>"
            f"<span class='atdata-colstats-vallabel'>{esc(shown)}</span>"
            f"<span class='atdata-colstats-valcount'>{n:,}</span></div>"
        )
    more = ""
    if cs.distinct is not None and cs.distinct > k:
        more = f"<div class='atdata-muted'>{cs.distinct - k:,} more values</div>"
    elif cs.distinct is None and cs.kind in ("categorical", "text"):
        more = "<div class='atdata-muted'>many distinct values</div>"
    return f"<div class='atdata-colstats-top'>{''.join(rows)}{more}</div>"


def column_stats_line(cs: ColumnStats) -> str:
    """One line of text: ``numeric · 0 to 9, mean 4.5 · no nulls`` (what a table header says in words)."""
    parts = [cs.kind]
    if not cs.measured:
        parts.append("not in the manifests")
    elif cs.kind == "numeric":
        if cs.minimum is not None:
            parts.append(f"{_num(cs.minimum)} to {_num(cs.maximum)}, mean {_num(cs.mean)}")
    elif cs.kind in ("categorical", "text"):
        parts.append(f"{cs.distinct:,} distinct" if cs.distinct is not None else "many distinct")
        if cs.kind == "text" and cs.lengths:
            parts.append(f"length {cs.lengths[0]:,}–{cs.lengths[2]:,}")
    elif cs.kind == "array":
        if cs.shapes:
            parts.append(_shapes_text(cs))
        if cs.dtype:
            parts.append(dtype_text(cs.dtype))
    elif cs.lengths:
        parts.append(f"length {cs.lengths[0]:,}–{cs.lengths[2]:,}")
    parts.append(_nulls_text(cs))
    if not cs.exact:
        parts.append("approximate")
    return " · ".join(parts)


def column_stats_html(cs: ColumnStats) -> str:
    """One field's compact summary (for a table's column header): a histogram or the top values,
    the shape/dtype summary, and the null count."""
    body = ""
    if cs.kind == "numeric":
        body = column_histogram_svg(cs)
        if cs.minimum is not None:
            body += (
                f"<div class='atdata-colstats-range'><span>{esc(_num(cs.minimum))}</span>"
                f"<span>{esc(_num(cs.maximum))}</span></div>"
            )
    elif cs.kind == "categorical" or (cs.kind == "text" and cs.top_values and cs.top_values[0][1] > 1):
        body = top_values_html(cs)  # (text whose values are all different: its lengths say more)
    meta = [esc(column_stats_line(cs))]
    return (
        f"<div class='atdata-colstats atdata-colstats-{esc(cs.kind)}' data-field='{esc(cs.name)}'>"
        f"{body}<div class='atdata-colstats-meta atdata-muted'>{'<br>'.join(meta)}</div></div>"
    )


def _source_text(stats: DatasetStats) -> str:
    return "from the shards' manifests" if stats.source == "manifest" else "from one pass over the samples"


def dataset_stats_text(stats: DatasetStats) -> str:
    """Every field's statistics as aligned text (the CLI and ``repr``)."""
    head = f"{format_count(stats.n_samples)} samples, {len(stats.columns)} fields ({_source_text(stats)})"
    rows = []
    for cs in stats.columns.values():
        detail = ""
        if cs.kind in ("categorical", "text") and cs.top_values:
            detail = ", ".join(f"{plain(v, VALUE_CHARS)} {n:,}" for v, n in cs.top_values[:3])
        rows.append((cs.name, column_stats_line(cs), detail))
    return head + "\n" + text_table(("field", "summary", "top values"), rows, indent="  ")


def dataset_stats_html(stats: DatasetStats) -> str:
    """Every field's summary in one table (``DatasetStats._repr_html_``)."""
    rows = "".join(
        f"<tr><th>{esc(cs.name)}</th><td>{column_stats_html(cs)}</td></tr>" for cs in stats.columns.values()
    )
    return (
        f"<div class='atdata-stats'><div class='atdata-muted'>{esc(format_count(stats.n_samples))} samples, "
        f"{len(stats.columns)} fields ({esc(_source_text(stats))})</div>"
        f"<table class='atdata-table atdata-stats-table'><tbody>{rows}</tbody></table></div>"
    )


# ----------------------------------------------------------------------------- comparison

_CELLS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (column title, what it shows, the changes that highlight it)
    ("kind", "kind", ("kind",)),
    ("count", "count", ()),
    ("nulls", "nulls", ("nulls",)),
    ("mean", "mean", ("mean",)),
    ("min", "min", ("min",)),
    ("max", "max", ("max",)),
    ("top / shape", "top", ("top", "values", "shape", "dtype", "lengths")),
)


def _cell(cs: ColumnStats | None, what: str) -> str:
    if cs is None:
        return "–"
    if what == "kind":
        return cs.kind
    if what == "count":
        return f"{cs.count:,}"
    if what == "nulls":
        return f"{cs.null_fraction:.1%}" if cs.measured else "?"
    if what in ("mean", "min", "max"):
        return (
            _num({"mean": cs.mean, "min": cs.minimum, "max": cs.maximum}[what])
            if cs.kind == "numeric"
            else "–"
        )
    if cs.kind in ("categorical", "text"):
        return ", ".join(f"{plain(v, 16)} {n:,}" for v, n in cs.top_values[:2]) or "–"
    if cs.kind == "array":
        return " ".join(p for p in (_shapes_text(cs), dtype_text(cs.dtype)) if p) or "–"
    if cs.lengths:
        return f"length {cs.lengths[0]:,}–{cs.lengths[2]:,}"
    return "–"


_STATUS_WORDS = {"same": "same", "changed": "changed", "added": "new field", "removed": "missing field"}


def stats_comparison_rows(cmp: StatsComparison) -> list[tuple[FieldComparison, list[tuple[str, str, bool]]]]:
    """For each field: its comparison and, per column of :data:`_CELLS`, the two sides' texts and
    whether the column is highlighted."""
    out = []
    for f in cmp.fields:
        cells = []
        for _, what, flags in _CELLS:
            hot = f.status in ("added", "removed") or any(c in f.changes for c in flags)
            cells.append((_cell(f.a, what), _cell(f.b, what), hot))
        out.append((f, cells))
    return out


def stats_comparison_text(cmp: StatsComparison) -> str:
    """The comparison as text: one line per field (``a → b`` where they differ, ``*`` marks the
    highlighted columns), then the notes."""
    a, b = cmp.a, cmp.b
    head = (
        f"{plain(cmp.a_label)} ({format_count(a.n_samples)} samples) vs {plain(cmp.b_label)} "
        f"({format_count(b.n_samples)} samples): {len(cmp.changed)} of {len(cmp.fields)} fields differ"
    )
    rows = []
    for f, cells in stats_comparison_rows(cmp):
        row: list[str] = [f.name, _STATUS_WORDS.get(f.status, f.status)]
        for x, y, hot in cells:
            text = x if x == y else f"{x} → {y}"
            row.append(("*" if hot else "") + text)
        rows.append(row)
    table = text_table(("field", "status", *(t for t, _, _ in _CELLS)), rows, indent="  ")
    notes = [f"  {plain(f.name)}: {plain(n)}" for f in cmp.fields for n in f.notes]
    return "\n".join([head, table, *(["differences:", *notes] if notes else [])])


def stats_comparison_html(cmp: StatsComparison) -> str:
    """The comparison as a table: a row per field, each column the two sides (``a`` above ``b``),
    differing columns and changed rows highlighted, the notes under the field name."""
    a, b = cmp.a, cmp.b
    head = "".join(f"<th>{esc(t)}</th>" for t, _, _ in _CELLS)
    body = []
    for f, cells in stats_comparison_rows(cmp):
        tds = []
        for (_, what, _), (x, y, hot) in zip(_CELLS, cells):
            classes = f"atdata-cmp-{what}" + (" atdata-cmp-diff" if hot else "")
            tds.append(
                f"<td class='{classes}'><div class='atdata-cmp-a'>{esc(x)}</div><div class='atdata-cmp-b'>{esc(y)}</div></td>"
            )
        notes = "".join(f"<div class='atdata-cmp-note'>{esc(n)}</div>" for n in f.notes)
        body.append(
            f"<tr class='atdata-cmp-row atdata-cmp-{esc(f.status)}' data-field='{esc(f.name)}'>"
            f"<td class='atdata-cmp-field'><code>{esc(f.name)}</code>{notes}</td>"
            f"<td class='atdata-cmp-status'>{esc(_STATUS_WORDS.get(f.status, f.status))}</td>{''.join(tds)}</tr>"
        )
    legend = (
        f"<div class='atdata-cmp-legend'><span class='atdata-cmp-a'>{esc(cmp.a_label)}</span> "
        f"({esc(format_count(a.n_samples))} samples, {esc(_source_text(a))}) above "
        f"<span class='atdata-cmp-b'>{esc(cmp.b_label)}</span> ({esc(format_count(b.n_samples))} samples, "
        f"{esc(_source_text(b))}); {len(cmp.changed)} of {len(cmp.fields)} fields differ</div>"
    )
    return (
        f"<div class='atdata-stats-compare-wrap'>{legend}<table class='atdata-table atdata-stats-compare'>"
        f"<thead><tr><th>field</th><th>status</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
