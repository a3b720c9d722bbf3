"""Views of datasets found on the network (the index browser's Network tab): table rows of search
results, the detail card of one (its records, the ``load_dataset`` line), and whether the AppView
already knows a name (the promotion preview).

Everything shown here came from other people's repositories through an AppView: every value is
untrusted. Cells are plain strings cut to a bounded length (the table sets them as text); HTML is
built only with :func:`~.text.esc`. Pure functions of their arguments (no widget, no I/O).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..schema import version_key
from .text import (
    badge_html,
    esc,
    format_count,
    format_created,
    html_table,
    human_bytes,
    plain,
    record_json,
    schema_label,
)

if TYPE_CHECKING:
    from ..promotion.network import AppViewCheck, NetworkRecords

__all__ = [
    "NETWORK_COLUMNS",
    "NetworkColumn",
    "appview_check_html",
    "load_line",
    "network_detail_html",
    "network_diff_options",
    "network_row",
    "network_rows",
    "network_status_text",
    "publisher_did",
    "publisher_handle",
    "publisher_label",
]

#: Longest cell text of the Network table (longer untrusted text is cut, ending in ``…``).
CELL_LIMIT = 200


@dataclass(frozen=True)
class NetworkColumn:
    """A column of the Network table: ``key`` in :func:`network_row`, header ``label``."""

    key: str
    label: str
    numeric: bool = False


NETWORK_COLUMNS: tuple[NetworkColumn, ...] = (
    NetworkColumn("name", "Name"),
    NetworkColumn("publisher", "Publisher"),
    NetworkColumn("schema", "Schema"),
    NetworkColumn("samples", "Samples", True),
    NetworkColumn("size", "Size", True),
    NetworkColumn("license", "License"),
    NetworkColumn("created", "Created"),
)


def _did_of(uri: str) -> str:
    return uri[len("at://") :].split("/", 1)[0] if isinstance(uri, str) and uri.startswith("at://") else ""


def _text(v: Any) -> str:
    return plain(v, CELL_LIMIT) if isinstance(v, str) else ""


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _record(result: Any) -> dict[str, Any]:
    r = getattr(result, "record", None)
    return r if isinstance(r, dict) else {}


def _field(result: Any, attr: str, key: str) -> Any:
    """``result.<attr>`` (our SearchResult's validated field), else the record's ``key``."""
    v = getattr(result, attr, None)
    return v if v is not None else _record(result).get(key)


def publisher_did(result: Any) -> str:
    """The publisher of a search result: its ``did``, else the record's, else its URI's authority."""
    did = _field(result, "did", "did")
    return did if isinstance(did, str) and did.startswith("did:") else _did_of(result.uri)


def publisher_handle(result: Any, handles: Mapping[str, str] | None = None) -> str | None:
    """The handle of a result's publisher: ``handles[did]``, else the result's ``handle`` (set by the
    search when it resolved back to the DID), else None."""
    h = (handles or {}).get(publisher_did(result)) or getattr(result, "handle", None)
    return h if isinstance(h, str) and h else None


def publisher_label(did: str, handle: str | None = None) -> str:
    """``@alice.test`` when the handle is known (it resolved back to ``did``), else the DID."""
    return f"@{handle}" if handle else did


def network_row(result: Any, handles: Mapping[str, str] | None = None) -> dict[str, str]:
    """One Network table row of a search result (``atdata_lab.search.SearchResult``), every cell a
    bounded plain string: name, publisher (``@handle`` when known, else the DID; the DID also as
    ``did``), schema, samples, size, license, created, and ``uri`` (the row's id)."""
    rec = _record(result)
    did = publisher_did(result)
    handle = publisher_handle(result, handles)
    raw_size = rec.get("size")
    size: dict[str, Any] = raw_size if isinstance(raw_size, dict) else {}
    samples = getattr(result, "num_samples", None)
    nbytes = getattr(result, "size_bytes", None)
    created = _field(result, "created_at", "createdAt")
    return {
        "uri": plain(result.uri, 1000),
        "name": _text(result.name),
        "publisher": plain(publisher_label(did, handle), CELL_LIMIT),
        "did": plain(did, CELL_LIMIT),
        "schema": _text(schema_label(result.schema_ref) if isinstance(result.schema_ref, str) else ""),
        "samples": format_count(_count(samples if samples is not None else size.get("samples"))),
        "size": human_bytes(_count(nbytes if nbytes is not None else size.get("bytes"))),
        "license": _text(_field(result, "license", "license")),
        "created": _text(format_created(created) if isinstance(created, str) else ""),
        "source": _text(getattr(result, "source", "")),
    }


def network_rows(results: Iterable[Any], handles: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """:func:`network_row` of each result; results without an at:// URI are left out, and a URI
    seen twice (an aggregated search) shows once."""
    seen: set[str] = set()
    rows = []
    for r in results:
        uri = getattr(r, "uri", "")
        if not isinstance(uri, str) or not uri.startswith("at://") or uri in seen:
            continue
        seen.add(uri)
        rows.append(network_row(r, handles))
    return rows


def load_line(publisher: str, name: str) -> str:
    """The line that loads a published dataset: ``load_dataset("@alice.test/mnist")``.

    ``publisher`` is a handle (``@`` optional) or a DID; the path is written as a Python string
    literal (quotes and backslashes in an untrusted name are escaped, never closing the string).
    """
    who = publisher[1:] if publisher.startswith("@") else publisher
    path = f"@{who}/{name}"
    return f"load_dataset({json.dumps(path, ensure_ascii=False)})"


def network_status_text(
    shown: int,
    *,
    query: str = "",
    source: str = "",
    polling: float | None = None,
    warnings: Iterable[str] = (),
) -> str:
    """The Network tab's status line: how many datasets, for what, from where, the polling, and
    what the search warned about (e.g. an AppView that was down, so a PDS was read instead)."""
    what = f"{shown:,} dataset{'s' if shown != 1 else ''}"
    if query:
        what += f" matching {plain(query, 80)!r}"
    if source:
        what += f" from {plain(source, 80)}"
    if polling:
        what += f" · checking for new records every {polling:g} s"
    for w in list(warnings)[:3]:
        what += f" · {plain(w, 300)}"
    return what


def _labels_html(labels: list[dict[str, Any]]) -> str:
    if not labels:
        return "<p class='atdata-muted'>No label records name this dataset.</p>"
    rows = []
    for lab in labels:
        raw = lab.get("value")
        v: dict[str, Any] = raw if isinstance(raw, dict) else {}
        rows.append([_text(v.get("name")), _text(v.get("version")), _text(lab.get("uri"))])
    return html_table(["label", "version", "at:// URI"], rows, css_class="atdata-network-labels")


def _record_block(title: str, rec: dict[str, Any] | None, cls: str, missing: str = "") -> str:
    if rec is None:
        return (
            f"<details class='atdata-json {cls}'><summary>{esc(title)}</summary>"
            f"<p class='atdata-muted'>{esc(missing)}</p></details>"
        )
    return (
        f"<details class='atdata-json {cls}'><summary>{esc(title)} · {esc(plain(rec.get('uri'), 300))}"
        f"</summary><pre>{esc(record_json(rec.get('value')))}</pre></details>"
    )


def network_detail_html(
    result: Any, records: NetworkRecords | None = None, handle: str | None = None, *, error: str = ""
) -> str:
    """The detail card of a network dataset: what the AppView says (publisher, schema, counts,
    license, created, description, tags, URI), the copyable ``load_dataset`` line, and its records
    (entry, schema, labels) as the publisher's PDS holds them (``records``; while None: ``error``
    when reading them failed, else "reading")."""
    rec = _record(result)
    handle = handle or publisher_handle(result)
    row = network_row(result, {publisher_did(result): handle} if handle else None)
    line = load_line(handle or row["did"], result.name if isinstance(result.name, str) else "")
    tags = getattr(result, "tags", None) or []
    kv = [
        ("Publisher", row["publisher"] + (f" ({row['did']})" if handle else "")),
        ("Schema", plain(result.schema_ref, 300) if isinstance(result.schema_ref, str) else ""),
        ("Samples", row["samples"]),
        ("Size", row["size"]),
        ("License", row["license"]),
        ("Created", row["created"]),
        ("Description", plain(result.description, 1000) if isinstance(result.description, str) else ""),
        ("Tags", ", ".join(_text(t) for t in tags if isinstance(t, str))),
        ("at:// URI", row["uri"]),
        ("Found by", row["source"]),
    ]
    head = f"<div class='atdata-section-title'>{esc(row['name'])} {badge_html('network', 'info')}</div>"
    load = (
        "<div class='atdata-network-load'><span class='atdata-muted'>Load it with</span>"
        f"<pre class='atdata-network-load-line'>{esc(line)}</pre></div>"
    )
    if records is not None:
        body = (
            "<div class='atdata-section-title'>Records</div>"
            + _record_block("entry", records.entry, "atdata-network-entry-record")
            + _record_block(
                "schema", records.schema, "atdata-network-schema-record", records.schema_error or "not read"
            )
            + f"<div class='atdata-network-label-records'>{_labels_html(records.labels)}</div>"
        )
    elif error:
        body = f"<p class='atdata-network-records-error'>Could not read its records: {esc(error)}</p>"
    else:
        body = "<p class='atdata-muted'>Reading its records from the publisher's PDS…</p>"
    summary = html_table(["", ""], kv, css_class="atdata-kv")
    note = "" if rec else "<p class='atdata-muted'>The search backend returned no record for this result.</p>"
    return f"<div class='atdata-network-detail'>{head}{load}{summary}{note}{body}</div>"


def network_diff_options(schema_records: Iterable[dict[str, Any]], name: str = "") -> list[tuple[str, str]]:
    """The local schemas a network dataset's schema can be compared with, as ``(label, ref)``:
    those named ``name`` first (newest version first), then the others by name.
    ``schema_records`` is ``index.list_schemas()``."""
    records = [r for r in schema_records if isinstance(r.get("$ref"), str)]
    records.sort(key=lambda r: version_key(str(r.get("version", ""))), reverse=True)
    records.sort(key=lambda r: (r.get("name") != name, str(r.get("name", ""))))
    return [(f"{r.get('name')}@{r.get('version')} (local)", r["$ref"]) for r in records]


_APPVIEW_BADGES = {"known": "warn", "unknown": "ok", "not configured": "info", "unavailable": "info"}


def appview_check_html(check: AppViewCheck | None) -> str:
    """The promotion preview's line about the AppView: it already knows this name from this
    publisher (with the URIs), knows none yet, is not configured, or could not be asked."""
    if check is None:
        return ""
    badge = badge_html(f"AppView: {check.state}", _APPVIEW_BADGES.get(check.state, ""))
    return (
        f"<p class='atdata-plan-appview atdata-plan-appview-{esc(check.state).replace(' ', '-')}' "
        f"data-state='{esc(check.state)}'>{badge} {esc(check.describe())}</p>"
    )
