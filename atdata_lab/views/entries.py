"""Views of index entries: table rows and columns, detail rows, list labels, the entry card,
whose publication an entry's ``published_uri`` is, and the plain-text descriptions the command
line prints (of an entry, and of a dataset read from shard files, ``Dataset.describe()``).

Pure functions of their arguments (no widget, no I/O, no index): an entry is read through its
attributes only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .text import (
    esc,
    format_count,
    format_created,
    html_table,
    human_bytes,
    kv_text,
    plain,
    schema_label,
    shape_text,
    text_table,
)

if TYPE_CHECKING:
    from ..entry import IndexEntry

__all__ = [
    "ENTRY_COLUMNS",
    "PUBLICATION_BADGES",
    "EntryColumn",
    "Publication",
    "checksum_text",
    "description_text",
    "entry_detail_html",
    "entry_detail_rows",
    "entry_option_label",
    "entry_row",
    "entry_summary_html",
    "entry_text",
    "entry_title_html",
    "publication_state",
    "record_html",
    "record_rows",
    "shard_rows",
    "shards_html",
    "shards_text",
]


# ---------------------------------------------------------------------------------------------
# the entry table (the index browser)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryColumn:
    """A column of the entry table: ``key`` in :func:`entry_row`, header ``label``, and the
    index's sort column (``None``: not sortable; tags sort by their first tag)."""

    key: str
    label: str
    sort: str | None
    numeric: bool = False


ENTRY_COLUMNS: tuple[EntryColumn, ...] = (
    EntryColumn("name", "Name", "name"),
    EntryColumn("schema", "Schema", "schema_ref"),
    EntryColumn("samples", "Samples", "num_samples", True),
    EntryColumn("shards", "Shards", "num_shards", True),
    EntryColumn("size", "Size", "size_bytes", True),
    EntryColumn("created", "Created", "created_at"),
    EntryColumn("tags", "Tags", "tags"),
    EntryColumn("license", "License", "license"),
    EntryColumn("published", "Published", "published_uri"),
)


def entry_row(entry: IndexEntry) -> dict[str, str]:
    """One table row of ``entry``, every cell a display string.

    ``published`` is ``"published"`` or ``""``; ``uri`` is the at:// URI (or ``""``).
    """
    return {
        "name": entry.name,
        "schema": schema_label(entry.schema_ref),
        "samples": format_count(entry.num_samples),
        "shards": format_count(entry.num_shards),
        "size": human_bytes(entry.size_bytes),
        "created": format_created(entry.created_at),
        "tags": ", ".join(entry.tags),
        "license": entry.license or "",
        "published": "published" if entry.published_uri else "",
        "uri": entry.published_uri or "",
    }


def entry_detail_rows(entry: IndexEntry) -> list[tuple[str, str]]:
    """``(label, value)`` pairs describing ``entry`` for a detail panel (no "Metadata" row when it
    has none)."""
    meta = json.dumps(entry.metadata, sort_keys=True, default=str) if entry.metadata else ""
    rows = [
        ("Name", entry.name),
        ("Description", entry.description or ""),
        ("Schema", entry.schema_ref),
        ("Samples", format_count(entry.num_samples)),
        ("Shards", format_count(entry.num_shards)),
        ("Size", human_bytes(entry.size_bytes)),
        ("Created", format_created(entry.created_at)),
        ("Tags", ", ".join(entry.tags)),
        ("License", entry.license or ""),
        ("CID", entry.cid),
        ("Published", entry.published_uri or "not published"),
    ]
    return rows + [("Metadata", meta)] if meta else rows


def shard_rows(shards: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Display rows for shard dicts (``url``, ``size``, ``checksum``, ``num_samples``)."""
    out = []
    for s in shards:
        out.append(
            {
                "url": s.get("url", ""),
                "samples": format_count(s.get("num_samples")),
                "size": human_bytes(s.get("size")),
                "checksum": s.get("checksum") or "",
            }
        )
    return out


def record_rows(published: dict[str, list[dict[str, Any]]]) -> list[dict[str, str]]:
    """Rows of ``index.list_published()``: kind (dataset/schema/label), name, version, at:// URI."""
    kinds = (("entries", "dataset"), ("schemas", "schema"), ("labels", "label"))
    rows = []
    for key, kind in kinds:
        for rec in published.get(key) or []:
            value = rec.get("value") or {}
            rows.append(
                {
                    "kind": kind,
                    "name": str(value.get("name", "")),
                    "version": str(value.get("version", "")),
                    "uri": rec.get("uri", ""),
                    "cid": rec.get("cid", ""),
                }
            )
    return rows


def entry_option_label(entry: IndexEntry) -> str:
    """One line for a list of entries: samples, size, schema, and whether it is published."""
    r = entry_row(entry)
    return (
        f"{r['name']} — {r['samples']} samples · {r['shards']} shards · {r['size']} · {r['schema']} · "
        f"{'published' if entry.published_uri else 'not published'}"
    )


def entry_summary_html(entry: IndexEntry) -> str:
    """A short card for one entry: the entry's ``_repr_html_`` and the wizard's selected dataset."""
    rows = [
        ("samples", entry.num_samples),
        ("shards", entry.num_shards),
        ("size", human_bytes(entry.size_bytes)),
        ("schema", entry.schema_ref),
        ("cid", entry.cid),
        ("tags", ", ".join(entry.tags) or "—"),
        ("license", entry.license or "—"),
        ("published", entry.published_uri or "no"),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
    return (
        f"<table class='atdata-entry-card' data-entry='{esc(entry.name)}'><caption>{esc(entry.name)}</caption>"
        f"{body}</table>"
    )


# ---------------------------------------------------------------------------------------------
# whose publication it is
# ---------------------------------------------------------------------------------------------
#: Cell text of the index browser's Published column -> badge style.
PUBLICATION_BADGES = {"published": "ok", "other account": "warn", "log in to check": "info"}


def _did_of(uri: str) -> str:
    return uri[len("at://") :].split("/", 1)[0] if uri.startswith("at://") else ""


@dataclass(frozen=True)
class Publication:
    """An entry's publication seen from the attached account.

    An entry remembers one ``published_uri`` (``at://<did>/...``), whichever account published it
    last. It counts as "published" only when that account is the attached one: logged in as
    someone else, or after a kernel restart on a new sandbox DID, the same entry reads "not
    published by this account"; with no account attached, "log in to check".

    Attributes:
        state: ``"published"`` (by the attached account), ``"other account"``, ``"log in to check"``
            (no account attached) or ``""`` (never published).
        uri: The entry's ``published_uri`` ("" when never published).
        did: The DID that URI names.
        account: The attached account's DID ("" when none).
    """

    state: str
    uri: str = ""
    did: str = ""
    account: str = ""

    @property
    def mine(self) -> bool:
        return self.state == "published"

    @property
    def text(self) -> str:
        """A phrase for lists and detail rows."""
        if self.state == "published":
            return "published"
        if self.state == "other account":
            return f"not published by this account (published by {self.did})"
        if self.state == "log in to check":
            return f"published by {self.did} (log in to check that it is yours)"
        return "not published"

    def badge_html(self) -> str:
        style = PUBLICATION_BADGES.get(self.state)
        if style is None:
            return "<span class='atdata-badge'>local</span>"
        return f"<span class='atdata-badge atdata-badge-{style}'>{esc(self.state)}</span>"


def publication_state(published_uri: str | None, account: str, mine: str | None = None) -> Publication:
    """The :class:`Publication` of an entry whose ``published_uri`` is given, for the attached
    ``account`` DID ("" when none); ``mine`` is the URI that account's own promotion of the entry
    recorded (it wins: each account's promotions are recorded apart)."""
    if mine:
        return Publication("published", mine, account, account)
    uri = published_uri or ""
    if not uri:
        return Publication("")
    did = _did_of(uri)
    if not account:
        return Publication("log in to check", uri, did)
    return Publication("published" if did == account else "other account", uri, did, account)


# ---------------------------------------------------------------------------------------------
# the detail panel (the index browser)
# ---------------------------------------------------------------------------------------------
def entry_title_html(entry: IndexEntry, pub: Publication) -> str:
    """The entry's name with its publication badge, and the at:// URI (with whose it is) when published."""
    note = "" if pub.mine else f" — {pub.text}"
    return f"<div class='atdata-section-title'>{esc(entry.name)} {pub.badge_html()}</div>" + (
        f"<div class='atdata-muted atdata-wrap atdata-index-browser-published-uri'>"
        f"{esc(pub.uri)}{esc(note)}</div>"
        if pub.uri
        else ""
    )


def entry_detail_html(entry: IndexEntry, pub: Publication) -> str:
    """:func:`entry_detail_rows` as a key/value table; "Published" says whose publication it is."""
    rows = [
        (k, pub.text if k == "Published" and pub.uri and not pub.mine else v)
        for k, v in entry_detail_rows(entry)
    ]
    return html_table(["", ""], rows, css_class="atdata-kv")


def shards_html(shards: Iterable[dict[str, Any]]) -> str:
    """The shards of an entry (``index.get_shards(entry)``): url, samples, size, sha256."""
    rows = shard_rows(shards)
    return f"<div class='atdata-section-title'>Shards ({len(rows)})</div>" + html_table(
        ["url", "samples", "size", "sha256"],
        [[s["url"], s["samples"], s["size"], s["checksum"]] for s in rows],
        css_class="atdata-index-browser-shards-table",
    )


def record_html(kind: str, rec: dict[str, Any]) -> str:
    """A published record (a row of ``index.list_published()``): its at:// URI, CID and raw JSON."""
    raw = json.dumps(rec.get("value"), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return (
        f"<div class='atdata-section-title'>{esc(kind)} record</div>"
        + html_table(
            ["", ""], [("at:// URI", rec.get("uri", "")), ("CID", rec.get("cid", ""))], css_class="atdata-kv"
        )
        + f"<details open class='atdata-json'><summary>Record JSON</summary><pre>{esc(raw)}</pre></details>"
    )


# ---------------------------------------------------------------------------------------------
# plain text (the command line)
# ---------------------------------------------------------------------------------------------
_DIGEST_SHOWN = 16  # hex characters of a sha256 shown in a shard table


def checksum_text(checksums: Iterable[str | None], num_shards: int) -> str:
    """``'sha256 for 2 of 2 shards'``; ``'none'`` when no shard has one."""
    have = sum(1 for c in checksums if c)
    return f"sha256 for {have:,} of {num_shards:,} shards" if have else "none"


def shards_text(shards: Iterable[dict[str, Any]], limit: int | None = None) -> str:
    """Shard dicts (``url``, ``num_samples``, ``size``, ``checksum``) as an aligned table under a
    ``Shards (n)`` title; columns nobody knows (all ``?`` or empty) are left out, digests are cut;
    with ``limit``, the first ``limit`` shards and a line saying how many more there are."""
    every = shard_rows(shards)
    rows = every if limit is None else every[:limit]
    for r in rows:
        if len(r["checksum"]) > _DIGEST_SHOWN:
            r["checksum"] = r["checksum"][:_DIGEST_SHOWN] + "…"
    cols = [("url", "url"), ("samples", "samples"), ("size", "size"), ("checksum", "sha256")]
    cols = [(k, h) for k, h in cols if k == "url" or any(r[k] not in ("", "?") for r in rows)]
    right = [i for i, (k, _) in enumerate(cols) if k in ("samples", "size")]
    table = text_table(
        [h for _, h in cols], [[r[k] for k, _ in cols] for r in rows], right=right, indent="  "
    )
    more = f"\n  … and {len(every) - len(rows):,} more" if len(rows) < len(every) else ""
    return f"Shards ({len(every):,})\n{table}{more}"


def entry_text(
    entry: IndexEntry,
    shards: Iterable[dict[str, Any]] | None = None,
    *,
    sample_type: str | None = None,
    storage: str | None = None,
    shard_limit: int | None = None,
) -> str:
    """An entry as plain text: :func:`entry_detail_rows` (with ``Sample type``, the schema's
    ``Name@version``, when given; the checksums present; ``storage``, a line describing where the
    shards live, when given), then the shards (default: its URLs and checksums; at most
    ``shard_limit`` of them)."""
    rows: list[tuple[str, str]] = []
    for label, value in entry_detail_rows(entry):
        if label == "Metadata":
            value = plain(value, 300)
        rows.append((label, value))
        if label == "Schema" and sample_type:
            rows.append(("Sample type", sample_type))
        if label == "Size":
            rows.append(("Checksums", checksum_text(entry.shard_checksums, entry.num_shards)))
            if storage:
                rows.append(("Storage", storage))
    if shards is None:
        sums = list(entry.shard_checksums) + [""] * entry.num_shards
        shards = [{"url": u, "checksum": c} for u, c in zip(entry.data_urls, sums)]
    return kv_text(rows) + "\n\n" + shards_text(shards, shard_limit)


def description_text(
    description: dict[str, Any],
    shards: Iterable[dict[str, Any]],
    *,
    where: str = "",
    shard_limit: int | None = None,
) -> str:
    """A dataset read from shard files (``Dataset.describe()``) as plain text: sample type,
    counts, that no checksum is recorded, the fields of its first sample, then the shards."""
    st = description.get("sample_type") or "?"
    rows = [
        ("Path", where),
        ("Sample type", f"{st} (shard files carry no schema)" if st == "DictSample" else st),
        ("Samples", format_count(description.get("samples"))),
        ("Shards", format_count(description.get("shards"))),
        ("Size", human_bytes(description.get("bytes"))),
        ("Checksums", "none recorded (plain shard files; an index records sha256 per shard)"),
    ]
    fields = description.get("fields") or []
    table = text_table(
        ["field", "kind", "dtype", "shape"],
        [
            [
                f.get("name", ""),
                f.get("kind", ""),
                f.get("dtype", ""),
                shape_text(f["shape"]) if "shape" in f else "",
            ]
            for f in fields
        ],
        indent="  ",
    )
    return (
        kv_text([(k, v) for k, v in rows if v])
        + f"\n\nFields of the first sample ({len(fields)})\n{table}\n\n"
        + shards_text(shards, shard_limit)
    )
