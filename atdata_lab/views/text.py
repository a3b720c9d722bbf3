"""Text and small HTML pieces every view uses: sizes, counts, dates, labels, escaping, tables
(HTML tables, and plain aligned text tables for the terminal).

Pure functions of their arguments (no widget, no I/O, no index).
"""

from __future__ import annotations

import html
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "badge_html",
    "details_html",
    "dtype_text",
    "esc",
    "format_count",
    "format_created",
    "html_table",
    "human_bytes",
    "kv_text",
    "list_html",
    "masked_url",
    "page_label",
    "plain",
    "progress_text",
    "provider_label",
    "record_json",
    "schema_label",
    "shape_text",
    "shard_label",
    "text_table",
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


def dtype_text(dtype: str | None) -> str:
    """A numpy dtype string as people read it: ``'|u1' -> 'uint8'``, ``'<f4' -> 'float32'``; the
    byte order is named only when it is not this machine's (``'>f4' -> 'float32 (big-endian)'``).
    Non-numeric dtypes (``'<U8'``), None and unparsable text stay as they are (``''`` for None)."""
    if not dtype:
        return ""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        return dtype
    if dt.kind not in "biufc":  # strings, objects, records: numpy's own spelling says more
        return dtype
    if dt.byteorder in ("<", ">") and not dt.isnative:
        return f"{dt.name} ({'big' if dt.byteorder == '>' else 'little'}-endian)"
    return dt.name


def provider_label(provider: Any) -> str:
    """Where an index keeps its entries, in words: ``'SQLite index at /data/index.db'``,
    ``'Redis index at redis://host:6379/0'`` (passwords masked), ``'Postgres index at …'``."""
    kind = type(provider).__name__.removesuffix("Provider") or "an"
    kind = {"Sqlite": "SQLite"}.get(kind, kind)
    where = getattr(provider, "path", None) or getattr(provider, "where", None)
    return f"{kind} index" + (f" at {masked_url(str(where))}" if where else "")


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


def shape_text(shape: Sequence[int | None]) -> str:
    """``(64,)``, ``(28, 28)``, ``()``; an unknown size (None) is ``?``."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


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


# ---------------------------------------------------------------------------------------------
# plain text for a terminal
# ---------------------------------------------------------------------------------------------
# C0 and C1 control characters and DEL: a record's text could otherwise move the cursor, recolour
# or retitle the terminal (ANSI escape sequences) or hide a line behind a carriage return.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(value: Any, limit: int | None = None) -> str:
    """``str(value)`` safe to print to a terminal, on one line: control characters (escape
    sequences, newlines, tabs) become ``\\xNN``; ``None`` is ``""``; with ``limit``, cut to at most
    that many characters, ending in ``…``."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def text_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = (), indent: str = ""
) -> str:
    """Rows as plain text in aligned columns under ``headers`` (cells through :func:`plain`).

    ``right`` are the indexes of the columns aligned right (numbers); trailing spaces are dropped.
    """
    cells = [[plain(h) for h in headers]] + [[plain(v) for v in r] for r in rows]
    width = [max(len(r[i]) if i < len(r) else 0 for r in cells) for i in range(len(headers))]
    right = set(right)
    lines = []
    for r in cells:
        parts = [
            (c.rjust(width[i]) if i in right else c.ljust(width[i])) for i, c in enumerate(r[: len(width)])
        ]
        lines.append((indent + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def kv_text(pairs: Iterable[tuple[str, Any]], *, indent: str = "") -> str:
    """``label:  value`` lines, the values aligned (both through :func:`plain`)."""
    items = [(plain(k), plain(v)) for k, v in pairs]
    if not items:
        return ""
    width = max(len(k) for k, _ in items) + 1
    return "\n".join(f"{indent}{(k + ':').ljust(width)}  {v}".rstrip() for k, v in items)


def masked_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``
    (``redis://:s3cret@host:6379/0 -> redis://:***@host:6379/0``); other text as it is."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
