"""A dataset's summary (``Dataset.describe()``), with its manifest statistics, as text and HTML.

Pure functions of the summary dict: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .text import esc, format_count, html_table, human_bytes

__all__ = ["aggregate_text", "dataset_summary_html", "dataset_summary_text"]

TOP_VALUES = 5  # most frequent values shown for a categorical field
SET_VALUES = 8  # values shown for a set field


def _number(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "?"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    return str(v)


def aggregate_text(agg: Mapping[str, Any] | None) -> str:
    """One line for a field's statistics: ``'2 distinct: dog 60, cat 40'``, ``'min 0.1 · max 0.9 ·
    mean 0.5 (100 values)'``, ``'3 values: a, b, c'``."""
    if not agg:
        return "no statistics (the shards disagree on this field's kind)"
    kind = agg.get("type")
    if kind == "categorical":
        counts = agg.get("value_counts") or {}
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
        more = len(counts) - len(top)
        shown = ", ".join(f"{k} {format_count(n)}" for k, n in top) + (f", … {more} more" if more > 0 else "")
        return f"{format_count(len(counts))} distinct" + (f": {shown}" if shown else "")
    if kind == "numeric":
        n = agg.get("count", 0)
        if not n:
            return "no values"
        return (
            f"min {_number(agg.get('min'))} · max {_number(agg.get('max'))} · mean {_number(agg.get('mean'))} "
            f"({format_count(n)} values)"
        )
    if kind == "set":
        values = list(agg.get("all_values") or [])
        more = len(values) - SET_VALUES
        shown = ", ".join(values[:SET_VALUES]) + (f", … {more} more" if more > 0 else "")
        return f"{format_count(len(values))} values" + (f": {shown}" if shown else "")
    return f"{kind} statistics"


def _field_kind(f: Mapping[str, Any]) -> str:
    if f.get("kind") == "ndarray":
        return f"ndarray{f.get('dtype', '')}{list(f.get('shape') or [])}"
    return str(f.get("kind", "?"))


def _headline(summary: Mapping[str, Any]) -> str:
    n = summary.get("shards", 0)
    return (
        f"Dataset[{summary.get('sample_type', '?')}]: {format_count(summary.get('samples'))} samples in "
        f"{format_count(n)} shard{'s' if n != 1 else ''}, {human_bytes(summary.get('bytes'))}"
    )


def _manifest_note(summary: Mapping[str, Any]) -> str:
    if summary.get("manifest_error"):
        return f"manifests unreadable: {summary['manifest_error']}"
    have, n = summary.get("manifest_shards", 0), summary.get("shards", 0)
    if summary.get("manifest") is None:
        if have:
            return f"manifests: {have} of {n} shards (statistics need all of them)"
        return "no manifests (write with manifest=True, or index.build_manifests(name))"
    return f"manifest statistics over {format_count(n)} shard{'s' if n != 1 else ''}"


def dataset_summary_text(summary: Mapping[str, Any]) -> str:
    """The summary as plain text (the summary's ``repr``)."""
    lines = [_headline(summary)]
    fields = summary.get("fields") or []
    if fields:
        lines.append("fields: " + ", ".join(f"{f.get('name')} {_field_kind(f)}" for f in fields))
    lines.append(_manifest_note(summary))
    stats = summary.get("manifest") or {}
    width = max((len(n) for n in stats), default=0)
    for name, agg in stats.items():
        kind = (agg or {}).get("type", "?")
        lines.append(f"  {name:<{width}}  {kind:<11}  {aggregate_text(agg)}")
    return "\n".join(lines)


def dataset_summary_html(summary: Mapping[str, Any]) -> str:
    """The summary as HTML: a headline, the fields, and a table of manifest statistics."""
    parts = [f"<div class='atdata-dataset-summary'><b>{esc(_headline(summary))}</b>"]
    fields = summary.get("fields") or []
    if fields:
        parts.append(
            "<div class='atdata-summary-fields'>fields: "
            + ", ".join(f"<code>{esc(f.get('name'))}</code> {esc(_field_kind(f))}" for f in fields)
            + "</div>"
        )
    parts.append(f"<div class='atdata-summary-note'>{esc(_manifest_note(summary))}</div>")
    stats = summary.get("manifest") or {}
    if stats:
        rows = [(name, (agg or {}).get("type", "?"), aggregate_text(agg)) for name, agg in stats.items()]
        parts.append(html_table(("field", "statistic", "values"), rows, css_class="atdata-manifest-stats"))
    parts.append("</div>")
    return "".join(parts)
