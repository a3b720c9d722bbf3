"""Text and small HTML pieces every view uses: sizes, counts, dates, labels, escaping, tables.

Pure functions of their arguments (no widget, no I/O, no index).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "badge_html",
    "details_html",
    "esc",
    "format_count",
    "format_created",
    "html_table",
    "human_bytes",
    "list_html",
    "page_label",
    "progress_text",
    "record_json",
    "schema_label",
    "shard_label",
]


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    """``html.escape(str(value))``; ``None`` is the empty string."""
    return "" if value is None else html.escape(str(value))


def html_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, css_class: str = "", raw: bool = False
) -> str:
    """An ``atdata-table`` HTML table. Cells are escaped unless ``raw`` (then they are HTML)."""
    cell = (lambda v: "" if v is None else str(v)) if raw else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    cls = f"atdata-table {css_class}".strip()
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def badge_html(text: str, style: str = "") -> str:
    """``<span class='atdata-badge atdata-badge-<style>'>text</span>`` (no style: a plain badge)."""
    cls = "atdata-badge" + (f" atdata-badge-{style}" if style else "")
    return f"<span class='{cls}'>{esc(text)}</span>"


def details_html(summary: str, body: str, cls: str) -> str:
    """A collapsed ``<details>`` with ``summary`` (escaped) over ``body`` (HTML)."""
    return f"<details class='{cls}'><summary>{esc(summary)}</summary>{body}</details>"


def list_html(items: list[str], cls: str) -> str:
    """``<ul class=cls>`` of the escaped ``items``; ``""`` when there are none."""
    if not items:
        return ""
    return f"<ul class='{cls}'>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def record_json(record: Any) -> str:
    """A record as indented JSON (the exact values; non-JSON values as their ``str``)."""
    return json.dumps(record, indent=2, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------
# numbers and labels
# ---------------------------------------------------------------------------------------------
def human_bytes(n: int | None) -> str:
    """``1536 -> '1.5 KB'`` (powers of 1024, one decimal)."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def format_count(n: int | None) -> str:
    """``10000 -> '10,000'``; ``None -> '?'``."""
    return "?" if n is None else f"{int(n):,}"


def page_label(offset: int, shown: int, total: int) -> str:
    """``page_label(0, 25, 10000) == '1–25 of 10,000'`` (an en dash); ``'0 of 0'`` when empty."""
    if total <= 0 or shown <= 0:
        return f"0 of {format_count(max(total, 0))}"
    return f"{offset + 1:,}–{offset + shown:,} of {total:,}"


def format_created(iso: str | None) -> str:
    """An ISO-8601 timestamp as ``'2026-01-31 14:05'`` (UTC as stored); unparsable text as is."""
    if not iso:
        return ""
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return dt.strftime("%Y-%m-%d %H:%M")


def schema_label(ref: str | None) -> str:
    """``'atdata://local/schema/Img@1.2.0' -> 'Img@1.2.0'``; an at:// URI keeps its record key."""
    if not ref:
        return ""
    return ref.rsplit("/", 1)[-1]


def shard_label(url: str) -> str:
    """The file name of a shard URL (``'/data/x/x-000001.tar' -> 'x-000001.tar'``)."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return os.path.basename(tail) or url


def progress_text(event: Any) -> str:
    """``'write: 500 / 1,000 samples · shard 2'`` for a :class:`~atdata_lab.progress.ProgressEvent`."""
    unit = event.unit
    if unit == "bytes":
        amount = human_bytes(event.done) + (f" / {human_bytes(event.total)}" if event.total else "")
    else:
        amount = f"{event.done:,}" + (f" / {event.total:,}" if event.total else "") + f" {unit}"
    text = f"{event.task}: {amount}"
    if event.message:
        text += f" · {event.message}"
    if event.finished:
        text += " · done"
    return text
