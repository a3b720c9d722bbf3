"""The cells and column headers of a samples table, as plain data a front end draws.

A cell is ``{"t": kind, "v": text shown, "full": the whole value as text (hover, selection),
"src": a PNG data URL}``: images (and higher-D arrays: their first slice) as thumbnails, other
arrays as their dtype and shape, text cut to one line, numbers as they read (right-aligned, never
wrapped, by the front end). A header is the column's name, kind, whether it sorts, and its statistics as
:mod:`.column_stats` renders them (histogram bars and top values, each clickable into a filter).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from .column_stats import column_stats_html
from .samples import array_stats, classify, hex_preview, thumbnail_png, value_summary, value_text
from .text import plain

__all__ = ["column_header", "table_cell", "TEXT_CELL_CHARS", "THUMBNAIL_PX"]

TEXT_CELL_CHARS = 80  # characters of a text shown in a cell (all of it on hover / selection)
FULL_CHARS = 2000  # characters of a value kept for hover and selection
THUMBNAIL_PX = 32
NUMBER_CHARS = 12  # a longer float shows 6 significant digits (all of it on hover)


def _short(text: str, limit: int = TEXT_CELL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(text: str, value: Any) -> str:
    """A number short enough for its cell: as it reads up to NUMBER_CHARS, else 6 significant digits."""
    if len(text) <= NUMBER_CHARS or not isinstance(value, (float, np.floating)):
        return text
    return f"{float(value):.6g}"


def table_cell(value: Any, *, thumbnail_px: int = THUMBNAIL_PX, cmap: str = "viridis") -> dict[str, str]:
    """One cell of the table: ``{"t": "num"|"text"|"img"|"arr"|"none"|"other", "v", "full", "src"}``."""
    kind = classify(value)
    if value is None:
        return {"t": "none", "v": "None", "full": "None"}
    if isinstance(value, np.ndarray):
        if kind == "scalar":
            text = value_text(value.item())
            return {"t": "num", "v": _number(text, value.item()), "full": text}
        badge = array_stats(value).badge
        if kind in ("image", "volume"):
            png = thumbnail_png(value, size=thumbnail_px * 2, cmap=cmap)
            if png is not None:
                src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
                return {"t": "img", "v": badge, "full": value_summary(value), "src": src}
        return {"t": "arr", "v": badge, "full": value_summary(value)}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "text", "v": str(bool(value)), "full": str(bool(value))}
    if isinstance(value, (int, float, np.integer, np.floating)):
        text = value_text(value)
        return {"t": "num", "v": _number(text, value), "full": text}
    if isinstance(value, str):
        full = plain(value, FULL_CHARS)
        return {"t": "text", "v": _short(plain(value, TEXT_CELL_CHARS * 2)), "full": full}
    if kind == "bytes":
        return {"t": "other", "v": f"{len(value):,} bytes", "full": hex_preview(value, 64)}
    full = value_summary(value, FULL_CHARS)
    return {"t": "other", "v": _short(full), "full": full}


def column_header(
    name: str, kind: str, stats: Any = None, *, sortable: bool = False, why_not: str = ""
) -> dict:
    """The header of column ``name``: ``{key, label, kind, numeric, sortable, why_not, stats_html}``.
    ``kind`` is the column's cell kind (``"num"``, ``"text"``, ``"img"``...); ``stats`` its
    ColumnStats or None; ``stats_html`` is :func:`~atdata_lab.views.column_stats.column_stats_html`
    (histogram bars with ``data-bin``, top values with ``data-value``: the front end turns a click
    on one into a filter)."""
    return {
        "key": name,
        "label": name,
        "kind": kind,
        "numeric": kind == "num",
        "sortable": sortable,
        "why_not": why_not,
        "stats_html": column_stats_html(stats) if stats is not None else "",
    }
