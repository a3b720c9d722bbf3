"""Network answers -> :class:`SearchResult`: every field validated and bounded first.

An AppView (or a PDS) is not trusted: an entry it serves becomes a result only when

* its ``uri`` is ``at://<did>/science.alt.dataset.entry/<rkey>`` (a DID authority, a valid key),
  and a ``did`` it states equals that authority (no dataset credited to someone else);
* the record rebuilt from it passes the bundled ``science.alt.dataset.entry`` lexicon (the same
  validator every record we write passes: lengths, counts, formats, no floats) and its storage
  parses; the schema reference is an ``at://`` URI of a ``science.alt.dataset.schema`` record;
* the ``cid`` it states, if any, looks like a CID; the sizes are non-negative integers.

Anything else is dropped with a logged warning that names the item, never raised: one bad entry
does not hide the others. The warning is bounded (no untrusted text longer than 200 characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atdata_lab.atmosphere import records as rec
from atdata_lab.atmosphere.lexicon import _CID_RE, _is_did, bundled_lexicons
from atdata_lab.errors import RecordValidationError
from atdata_lab.logs import logger
from atdata_lab.search._results import SearchResult

__all__ = ["result_from_record", "result_from_view"]

log = logger("atdata_lab.search")

#: The keys of an AppView entry view that belong to the record (the rest: uri, cid, did, indexedAt...).
_RECORD_KEYS = ("name", "schemaRef", "storage", "createdAt", "description", "tags", "license", "size")
_MAX_SIZE = 2**63 - 1


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_SIZE else None


def _entry_uri(uri: Any) -> rec.AtUri:
    if not isinstance(uri, str) or len(uri) > 8192:
        raise RecordValidationError("uri: not an at:// URI string")
    u = rec.AtUri.parse(uri)
    if u.did is None or not _is_did(u.did) or u.collection != rec.ENTRY_NSID or not u.rkey:
        raise RecordValidationError(f"uri: not at://<did>/{rec.ENTRY_NSID}/<rkey>")
    return u


def result_from_record(
    uri: Any, record: Any, *, source: str, cid: Any = None, extra: Mapping[str, Any] | None = None
) -> SearchResult:
    """A result from an entry record read from the network (validated; see the module doc).

    Args:
        uri: The record's at:// URI.
        record: The record (``$type`` added when missing).
        source: ``"atmosphere"`` (the AppView) or ``"pds"``.
        cid: The record's CID as the server stated it.
        extra: The server's view around the record (kept in ``result.record`` under ``"view"``).

    Raises:
        RecordValidationError: Any check fails (the message names the field; no untrusted text
            beyond 200 characters).
    """
    u = _entry_uri(uri)
    if not isinstance(record, Mapping):
        raise RecordValidationError("record: not an object")
    body = dict(record)
    body.setdefault("$type", rec.ENTRY_NSID)
    if body["$type"] != rec.ENTRY_NSID:
        raise RecordValidationError(f"$type: not {rec.ENTRY_NSID}")
    bundled_lexicons().validate_record(rec.ENTRY_NSID, body, check_size=False)  # read, not written
    parsed = rec.entry_from_record(body)
    if not parsed["name"].strip() or not parsed["name"].isprintable():
        raise RecordValidationError("name: empty, or holds control characters")
    schema = rec.AtUri.parse(parsed["schemaRef"])
    if schema.collection != rec.SCHEMA_NSID or not schema.rkey:
        raise RecordValidationError(f"schemaRef: not an at:// URI of a {rec.SCHEMA_NSID} record")
    if cid is not None and (not isinstance(cid, str) or len(cid) > 256 or not _CID_RE.match(cid)):
        raise RecordValidationError("cid: not a CID")
    size = parsed.get("size") or {}
    view = {k: v for k, v in (extra or {}).items() if k in ("uri", "cid", "did", "indexedAt")}
    return SearchResult(
        uri=str(u),
        name=parsed["name"],
        description=parsed["description"],
        tags=list(parsed["tags"]),
        schema_ref=parsed["schemaRef"],
        source=source,
        record={"uri": str(u), "cid": cid, "value": body, **({"view": view} if view else {})},
        did=u.did,
        cid=cid,
        license=parsed["license"],
        num_samples=_count(size.get("samples")),
        size_bytes=_count(size.get("bytes")),
        num_shards=_count(size.get("shards")),
        storage=parsed["storage"]["kind"],
        created_at=parsed["createdAt"],
    )


def result_from_view(view: Any, *, source: str = "atmosphere") -> SearchResult | None:
    """A result from one AppView entry view (``getEntry``/``searchDatasets``/``listEntries`` items),
    or None (with a logged warning) when it is malformed."""
    try:
        if not isinstance(view, Mapping):
            raise RecordValidationError(f"not an object but {type(view).__name__}")
        u = _entry_uri(view.get("uri"))
        did = view.get("did")
        if did is not None and did != u.did:
            raise RecordValidationError("did: differs from the uri's DID")
        record = {k: view[k] for k in _RECORD_KEYS if k in view and view[k] is not None}
        return result_from_record(str(u), record, source=source, cid=view.get("cid"), extra=view)
    except (RecordValidationError, TypeError, ValueError, KeyError) as e:
        where = view.get("uri") if isinstance(view, Mapping) else None
        log.warning(
            "dropped a malformed dataset entry from the %s (%s): %.200s",
            "AppView" if source == "atmosphere" else source.upper(),
            f"{where!r:.120}" if where is not None else "no uri",
            str(e),
        )
        return None
