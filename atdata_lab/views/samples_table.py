"""The cells and column headers of a samples table, as plain data a front end draws.

A cell is ``{"t": kind, "v": text shown, "full": the whole value as text (hover, selection),
"src": a PNG data URL}``: images (and higher-D arrays: their first slice) as thumbnails, other
arrays as their dtype and shape, text cut to one line, numbers as they read (right-aligned, never
wrapped, by the front end). A header is the column's name, kind, whether it sorts, and a summary
of its statistics (:class:`~atdata_lab.column_stats.ColumnStats`, read by attribute): histogram
bins and top values, each clickable into a filter.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from .samples import array_stats, classify, hex_preview, thumbnail_png, value_summary, value_text
from .text import plain

__all__ = ["column_header", "table_cell", "TEXT_CELL_CHARS", "THUMBNAIL_PX"]

TEXT_CELL_CHARS = 80  # characters of a text shown in a cell (all of it on hover / selection)
FULL_CHARS = 2000  # characters of a value kept for hover and selection
THUMBNAIL_PX = 32


def _short(text: str, limit: int = TEXT_CELL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_cell(value: Any, *, thumbnail_px: int = THUMBNAIL_PX, cmap: str = "viridis") -> dict[str, str]:
    """One cell of the table: ``{"t": "num"|"text"|"img"|"arr"|"none"|"other", "v", "full", "src"}``."""
    kind = classify(value)
    if value is None:
        return {"t": "none", "v": "None", "full": "None"}
    if isinstance(value, np.ndarray):
        if kind == "scalar":
            text = value_text(value.item())
            return {"t": "num", "v": text, "full": text}
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
        return {"t": "num", "v": text, "full": text}
    if isinstance(value, str):
        full = plain(value, FULL_CHARS)
        return {"t": "text", "v": _short(plain(value, TEXT_CELL_CHARS * 2)), "full": full}
    if kind == "bytes":
        return {"t": "other", "v": f"{len(value):,} bytes", "full": hex_preview(value, 64)}
    full = value_summary(value, FULL_CHARS)
    return {"t": "other", "v": _short(full), "full": full}


def _num(v: Any) -> str:
    if v is None:
        return ""
    f = float(v)
    if f.is_integer() and abs(f) < 1e15:
        return f"{int(f):,}"
    return f"{f:.4g}"


def column_header(
    name: str, kind: str, stats: Any = None, *, sortable: bool = False, why_not: str = ""
) -> dict:
    """The header of column ``name``: ``{key, label, kind, sortable, why_not, numeric, summary,
    bins: [{low, high, count, label}], tops: [{value, count}], nulls}``. ``kind`` is the column's
    cell kind (``"num"``, ``"text"``, ``"img"``...); ``stats`` its ColumnStats, or None."""
    out: dict[str, Any] = {
        "key": name,
        "label": name,
        "kind": kind,
        "numeric": kind == "num",
        "sortable": sortable,
        "why_not": why_not,
        "summary": "",
        "bins": [],
        "tops": [],
        "nulls": 0,
        "count": 0,
    }
    if stats is None:
        return out
    count, nulls = int(getattr(stats, "count", 0) or 0), int(getattr(stats, "nulls", 0) or 0)
    out["nulls"], out["count"] = nulls, count
    parts: list[str] = []
    skind = getattr(stats, "kind", "")
    if skind == "numeric" and getattr(stats, "minimum", None) is not None:
        parts.append(f"{_num(stats.minimum)} – {_num(stats.maximum)}")
        if getattr(stats, "mean", None) is not None:
            parts.append(f"mean {_num(stats.mean)}")
    hist = list(getattr(stats, "histogram", ()) or ())
    out["bins"] = [
        {
            "low": float(lo),
            "high": float(hi),
            "count": int(c),
            "label": f"{_num(lo)} – {_num(hi)}: {int(c):,}",
        }
        for lo, hi, c in hist
    ]
    tops = list(getattr(stats, "top_values", ()) or ())
    out["tops"] = [{"value": plain(str(v), 200), "count": int(c)} for v, c in tops[:5]]
    distinct = getattr(stats, "distinct", None)
    if distinct is not None and skind in ("categorical", "text"):
        parts.append(f"{distinct:,} distinct")
    shapes = list(getattr(stats, "shapes", ()) or ())
    if shapes:
        shape, n = shapes[0]
        dtype = getattr(stats, "dtype", None) or ""
        more = f" (+{len(shapes) - 1} shapes)" if len(shapes) > 1 else ""
        parts.append(f"{dtype} {tuple(shape)}{more}".strip() if n else "")
    elif getattr(stats, "lengths", None) and skind in ("text", "bytes", "array"):
        lo, mean, hi = stats.lengths
        parts.append(f"length {lo:,}–{hi:,}")
    if nulls:
        parts.append(f"{nulls:,} null")
    out["summary"] = " · ".join(p for p in parts if p)
    return out
