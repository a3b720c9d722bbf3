"""Builders and parsers for the ``science.alt.dataset.*`` records, plus TIDs, rkeys and AT-URIs.

Every builder validates its result against the bundled lexicon before returning, so a bad value
(too long, too many tags, a float, a malformed AT-URI) fails here, at plan time, with a
:class:`~atdata_lab.errors.RecordValidationError` naming the field and the limit.

Decisions (interoperating with atdata 0.7 both ways):

* **Schema records** are exactly atdata's shape (``$type``, ``name``, ``version``,
  ``schemaType: "jsonSchema"``, ``schema`` = a draft-07 JSON Schema object with ``$type``
  ``science.alt.dataset.schema#jsonSchemaFormat``, ``properties``, ``required`` and
  ``arrayFormatVersions: {"ndarrayBytes": "1.0.0"}``, ``createdAt``, ``atdataSchemaVersion: 1``,
  optional ``description``) plus extras atdata's reader ignores: ``"dtype"`` (numpy
  ``dtype.str``) and ``"shape"`` (ints, ``null`` for a varying dim) on NDArray properties when
  known; ``schema.propertyOrder`` (the PDS stores records as DAG-CBOR, which sorts map keys, so
  the field order is otherwise lost); and ``metadata.contentCid`` (the local schema's content
  CID; ``metadata`` is the open ``schemaMetadata`` object, next to ``license`` and ``tags``).
* **Entry metadata** is written as a plain JSON object, as atdata 0.7 does (the lexicon says
  msgpack ``bytes``; atdata writes a dict and reads dict, ``{"$bytes": ...}`` msgpack, or raw
  bytes). We use atdata's structured layout so atdata reads it back unchanged: the well-known keys
  ``split``, ``version``, ``source_uri``, ``created_by``, ``processing_steps`` go to the top
  level (camelCase), every other key under ``custom``. :func:`decode_entry_metadata` reads all
  three forms back to the flat dict the user wrote. Floats are rejected (ATProto has no floats).
* **Entry extras**: the local entry's content CID goes in ``contentMetadata.atdataLabCid``
  (``contentMetadata`` is an open object in the lexicon; atdata passes it through untouched).
* **Shard manifests** (``manifests``, optional, atdata's later ``shardManifestRef`` list): per
  shard, in the storage's order, ``{"header": <blob>, "samples": <blob>}``: the manifest's JSON
  header (``application/json``) and Parquet rows (``application/vnd.apache.parquet``) as PDS
  blobs. Records without them are as before (no ``manifests`` key).
* **Shard checksums** are ``{"algorithm": "sha256", "digest": <64 hex>}``; atdata's
  ``"none"`` checksums are read but never written.
* **Record keys**: entries and labels use TIDs (:func:`make_tid`, made on the client so that a
  retried create is idempotent). Schema records have key type ``any``; the lexicon suggests
  ``{NSID}@{semver}`` but ``@`` is not a legal record-key character, so pick a TID or a
  deterministic key such as :func:`schema_rkey`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from atdata_lab.atmosphere.lexicon import _is_did, _is_handle, _is_rkey, check_data_model, validate_record
from atdata_lab.errors import RecordValidationError
from atdata_lab.schema import normalize_dtype

from ..errors import InvalidArgumentError

__all__ = [
    "ENTRY_NSID",
    "LABEL_NSID",
    "LENS_NSID",
    "LENS_VERIFICATION_NSID",
    "NDARRAY_REF",
    "SCHEMA_NSID",
    "AtUri",
    "blob_cid",
    "code_reference",
    "dag_cbor_encode",
    "decode_entry_metadata",
    "encode_entry_metadata",
    "entry_from_record",
    "entry_record",
    "is_valid_rkey",
    "is_valid_tid",
    "label_from_record",
    "label_record",
    "lens_record",
    "lens_verification_record",
    "local_schema_from_record",
    "make_tid",
    "manifest_ref",
    "now_iso",
    "parse_manifests",
    "parse_storage",
    "record_cid",
    "schema_record",
    "schema_rkey",
    "storage_blobs",
    "storage_http",
    "storage_s3",
    "tid_timestamp_us",
]

SCHEMA_NSID = "science.alt.dataset.schema"
ENTRY_NSID = "science.alt.dataset.entry"
LABEL_NSID = "science.alt.dataset.label"
LENS_NSID = "science.alt.dataset.lens"
LENS_VERIFICATION_NSID = "science.alt.dataset.lensVerification"
STORAGE_HTTP = "science.alt.dataset.storageHttp"
STORAGE_S3 = "science.alt.dataset.storageS3"
STORAGE_BLOBS = "science.alt.dataset.storageBlobs"
STORAGE_EXTERNAL = "science.alt.dataset.storageExternal"
#: The MIME types of a shard manifest's two blobs (the PDS sniffs Parquet as this type too).
MANIFEST_HEADER_MIME = "application/json"
MANIFEST_ROWS_MIME = "application/vnd.apache.parquet"
JSON_SCHEMA_FORMAT = "science.alt.dataset.schema#jsonSchemaFormat"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
#: The JSON-Schema ``$ref`` atdata writes for an NDArray property.
NDARRAY_REF = "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray"
_NDARRAY_REF_RE = re.compile(r"^https?://[^/]+/schemas/atdata-ndarray-bytes/[^/#]+#/\$defs/ndarray\Z")
_PRIMITIVES = ("str", "int", "float", "bool", "bytes")

# ------------------------------------------------------------------------------------------------
# Time, TIDs, record keys, AT-URIs
# ------------------------------------------------------------------------------------------------

_B32_SORT = "234567abcdefghijklmnopqrstuvwxyz"
_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}\Z")
_CLOCK_ID = int.from_bytes(os.urandom(2), "big") & 0x3FF
_COLLECTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*\Z")  # an NSID, or "blob" in blob URIs
_tid_lock = threading.Lock()
_last_tid_us = 0


def now_iso() -> str:
    """Current UTC time as an ATProto datetime string, e.g. ``2026-01-02T03:04:05.678Z``."""
    return _iso(datetime.now(UTC))


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise RecordValidationError(
            "createdAt: the datetime has no timezone (use datetime.now(timezone.utc))"
        )
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _created_at(value: str | datetime | None) -> str:
    if value is None:
        return now_iso()
    if isinstance(value, datetime):
        return _iso(value)
    return value


def make_tid(timestamp_us: int | None = None, clock_id: int | None = None) -> str:
    """Make a TID: a 13-character, base32-sortable timestamp identifier (a valid record key).

    Args:
        timestamp_us: Microseconds since the Unix epoch. Default: now, and strictly increasing
            within this process (two calls never return the same TID).
        clock_id: 0-1023; default: a random per-process value.

    Returns:
        The TID string.

    Raises:
        ValueError: Arguments out of range.
    """
    global _last_tid_us
    if timestamp_us is None:
        with _tid_lock:
            ts = max(time.time_ns() // 1000, _last_tid_us + 1)
            _last_tid_us = ts
    else:
        ts = int(timestamp_us)
    if not 0 <= ts < 1 << 53:
        raise InvalidArgumentError(f"timestamp_us out of range: {ts}")
    cid = _CLOCK_ID if clock_id is None else int(clock_id)
    if not 0 <= cid < 1024:
        raise InvalidArgumentError(f"clock_id must be 0-1023, got {cid}")
    v = (ts << 10) | cid
    return "".join(_B32_SORT[(v >> (5 * i)) & 31] for i in range(12, -1, -1))


def is_valid_tid(s: object) -> bool:
    """True if ``s`` is a syntactically valid TID."""
    return isinstance(s, str) and bool(_TID_RE.match(s))


def tid_timestamp_us(tid: str) -> int:
    """The timestamp (microseconds since epoch) inside a TID."""
    if not is_valid_tid(tid):
        raise InvalidArgumentError(f"not a TID: {tid!r}")
    v = 0
    for ch in tid:
        v = (v << 5) | _B32_SORT.index(ch)
    return v >> 10


def is_valid_rkey(s: object) -> bool:
    """True if ``s`` is a valid record key: 1-512 of ``A-Za-z0-9 . - _ : ~``, not ``.``/``..``."""
    return isinstance(s, str) and _is_rkey(s)


def schema_rkey(name: str, version: str) -> str:
    """A deterministic, legal record key for a schema: ``{name}-{version}``, sanitised.

    Characters outside the record-key alphabet become ``_``; long keys are shortened with a hash.
    """
    raw = f"{name}-{version}"
    key = re.sub(r"[^A-Za-z0-9._:~-]", "_", raw)
    if key != raw or len(key) > 200:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]
        key = f"{key[:180]}-{digest}"
    if key in (".", ".."):
        key = f"_{key}"
    return key


@dataclass(frozen=True)
class AtUri:
    """An ``at://authority/collection/rkey`` URI (collection and rkey optional).

    Example:
        >>> u = AtUri.parse("at://did:plc:abc/science.alt.dataset.entry/3kabc")
        >>> (u.did, u.collection, u.rkey)
        ('did:plc:abc', 'science.alt.dataset.entry', '3kabc')
        >>> str(u)
        'at://did:plc:abc/science.alt.dataset.entry/3kabc'
    """

    authority: str
    collection: str | None = None
    rkey: str | None = None

    def __post_init__(self) -> None:  # AtUri(authority, collection, rkey) is checked like parse()
        shown = f"at://{self.authority}/{self.collection}/{self.rkey}"
        if not isinstance(self.authority, str) or not (_is_did(self.authority) or _is_handle(self.authority)):
            raise RecordValidationError(f"{shown!r:.200}: {self.authority!r:.100} is not a DID or handle")
        if self.collection is not None and (
            not isinstance(self.collection, str) or not _COLLECTION_RE.match(self.collection)
        ):
            raise RecordValidationError(
                f"{shown!r:.200}: {self.collection!r:.100} is not a collection (an NSID like science.alt.dataset.entry)"
            )
        if self.rkey is not None and (self.collection is None or not is_valid_rkey(self.rkey)):
            raise RecordValidationError(f"{shown!r:.200}: {self.rkey!r:.100} is not a valid record key")

    @classmethod
    def parse(cls, uri: str) -> AtUri:
        """Parse an AT-URI. Raises :class:`RecordValidationError` if it is malformed."""
        if not isinstance(uri, str) or not uri.startswith("at://"):
            raise RecordValidationError(f"{uri!r} is not an AT-URI (expected at://did/collection/rkey)")
        body = uri[5:].split("#", 1)[0].split("?", 1)[0]
        parts = body.split("/")
        if len(parts) > 3 or not parts[0] or any(p == "" for p in parts[1:]):
            raise RecordValidationError(f"{uri!r} is not an AT-URI (expected at://did/collection/rkey)")
        authority = parts[0]
        if not (_is_did(authority) or _is_handle(authority)):
            raise RecordValidationError(f"{uri!r}: {authority!r} is not a DID or handle")
        collection = parts[1] if len(parts) > 1 else None
        rkey = parts[2] if len(parts) > 2 else None
        if rkey is not None and not is_valid_rkey(rkey):
            raise RecordValidationError(f"{uri!r}: {rkey!r} is not a valid record key")
        return cls(authority, collection, rkey)

    @classmethod
    def make(cls, did: str, collection: str, rkey: str) -> AtUri:
        """Build from parts (validated)."""
        return cls.parse(f"at://{did}/{collection}/{rkey}")

    @property
    def did(self) -> str | None:
        """The authority if it is a DID, else None (a handle)."""
        return self.authority if self.authority.startswith("did:") else None

    def __str__(self) -> str:
        s = f"at://{self.authority}"
        if self.collection:
            s += f"/{self.collection}"
            if self.rkey:
                s += f"/{self.rkey}"
        return s


# ------------------------------------------------------------------------------------------------
# Record CIDs (DAG-CBOR, sha2-256, CIDv1) — computed locally, equal to what the PDS reports
# ------------------------------------------------------------------------------------------------


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([(major << 5) | n])
    if n < 1 << 8:
        return bytes([(major << 5) | 24, n])
    if n < 1 << 16:
        return bytes([(major << 5) | 25]) + n.to_bytes(2, "big")
    if n < 1 << 32:
        return bytes([(major << 5) | 26]) + n.to_bytes(4, "big")
    if n < 1 << 64:
        return bytes([(major << 5) | 27]) + n.to_bytes(8, "big")
    raise RecordValidationError(f"integer {n} does not fit in 64 bits")


def _cid_bytes(cid: str) -> bytes:
    if not isinstance(cid, str) or not cid.startswith("b"):
        raise RecordValidationError(f"{cid!r}: only base32 CIDv1 strings ('b...') are supported")
    body = cid[1:].upper()
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise RecordValidationError(f"{cid!r} is not a valid base32 CID") from None


def _dag_cbor(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        out += _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    elif isinstance(value, str):
        b = value.encode("utf-8")
        out += _cbor_head(3, len(b)) + b
    elif isinstance(value, (bytes, bytearray)):
        out += _cbor_head(2, len(value)) + bytes(value)
    elif isinstance(value, (list, tuple)):
        out += _cbor_head(4, len(value))
        for v in value:
            _dag_cbor(v, out)
    elif isinstance(value, Mapping):
        if set(value) == {"$link"} and isinstance(value["$link"], str):
            raw = b"\x00" + _cid_bytes(value["$link"])
            out += b"\xd8\x2a" + _cbor_head(2, len(raw)) + raw
            return
        if set(value) == {"$bytes"} and isinstance(value["$bytes"], str):
            s = value["$bytes"]
            try:
                b = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise RecordValidationError("$bytes: not valid base64") from None
            out += _cbor_head(2, len(b)) + b
            return
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        out += _cbor_head(5, len(keys))
        for k in keys:
            kb = k.encode("utf-8")
            out += _cbor_head(3, len(kb)) + kb
            _dag_cbor(value[k], out)
    else:
        raise RecordValidationError(f"a {type(value).__name__} cannot be encoded as DAG-CBOR")


def dag_cbor_encode(value: Any) -> bytes:
    """Encode ATProto JSON (``$link``/``$bytes`` forms understood) as canonical DAG-CBOR."""
    check_data_model(value, "record")
    out = bytearray()
    _dag_cbor(value, out)
    return bytes(out)


def record_cid(record: Mapping[str, Any]) -> str:
    """The CID the PDS will give ``record``: CIDv1, dag-cbor, sha2-256, base32 (``bafyrei...``).

    Lets a caller check, without a round trip, that a published record holds exactly this value.
    """
    digest = hashlib.sha256(dag_cbor_encode(record)).digest()
    raw = bytes([0x01, 0x71, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


# ------------------------------------------------------------------------------------------------
# Schema records
# ------------------------------------------------------------------------------------------------


def _normalize_shape(shape: Any, path: str) -> list[int | None] | None:
    if shape is None:
        return None
    if not isinstance(shape, (list, tuple)) or len(shape) > 64:
        raise RecordValidationError(f"{path}: shape must be a list of ints (or null for a varying dim)")
    out: list[int | None] = []
    for i, d in enumerate(shape):
        if d is None:
            out.append(None)
        elif isinstance(d, int) and not isinstance(d, bool) and d >= 0:
            out.append(d)
        else:
            raise RecordValidationError(f"{path}[{i}]: {d!r} is not a dimension (a non-negative int or null)")
    return out


def _field_to_json_schema(ft: Any, path: str, depth: int = 0) -> dict[str, Any]:
    if depth > 32:
        raise RecordValidationError(f"{path}: nested more than 32 levels deep")
    if not isinstance(ft, Mapping):
        raise RecordValidationError(f"{path}: a fieldType must be an object, got {type(ft).__name__}")
    kind = ft.get("$type")
    if kind == "local#primitive":
        prim = ft.get("primitive")
        if prim == "str":
            return {"type": "string"}
        if prim == "int":
            return {"type": "integer"}
        if prim == "float":
            return {"type": "number"}
        if prim == "bool":
            return {"type": "boolean"}
        if prim == "bytes":
            return {"type": "string", "format": "byte", "contentEncoding": "base64"}
        raise RecordValidationError(f"{path}.primitive: {prim!r} is not one of {list(_PRIMITIVES)}")
    if kind == "local#ndarray":
        prop: dict[str, Any] = {"$ref": NDARRAY_REF}
        dtype = normalize_dtype(ft.get("dtype"), f"{path}.dtype")
        shape = _normalize_shape(ft.get("shape"), f"{path}.shape")
        if dtype is not None:
            prop["dtype"] = dtype
        if shape is not None:
            prop["shape"] = shape
        return prop
    if kind == "local#array":
        if ft.get("items") is None:  # a list of anything
            return {"type": "array"}
        return {"type": "array", "items": _field_to_json_schema(ft.get("items"), f"{path}.items", depth + 1)}
    if kind == "local#dict":
        return {"type": "object"}
    raise RecordValidationError(
        f"{path}.$type: {kind!r} is not a known field type (local#primitive, local#ndarray, local#array, local#dict)"
    )


def schema_record(
    local_schema: Mapping[str, Any],
    *,
    created_at: str | datetime | None = None,
    license: str | None = None,
    tags: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build a ``science.alt.dataset.schema`` record from a local schema dict.

    Args:
        local_schema: ``{"name", "version", "fields": [{"name", "fieldType", "optional"}],
            "description"?, "createdAt"?, "contentCid"?}`` (atdata's local format is a subset).
        created_at: The record's ``createdAt``; default: the local schema's ``createdAt``, else now.
        license: Optional ``metadata.license`` (SPDX id).
        tags: Optional ``metadata.tags``.

    Returns:
        The record dict (validated against the lexicon).

    Raises:
        RecordValidationError: Bad field types, names, lengths, or a non-semver version.
    """
    if not isinstance(local_schema, Mapping):
        raise RecordValidationError(f"schema: expected a dict, got {type(local_schema).__name__}")
    fields = local_schema.get("fields")
    if not isinstance(fields, (list, tuple)):
        raise RecordValidationError("schema.fields: required list of fields is missing")
    properties: dict[str, Any] = {}
    required: list[str] = []
    order: list[str] = []
    for i, f in enumerate(fields):
        if not isinstance(f, Mapping):
            raise RecordValidationError(f"schema.fields[{i}]: expected an object")
        fname = f.get("name")
        if not isinstance(fname, str) or not fname:
            raise RecordValidationError(f"schema.fields[{i}].name: a non-empty string is required")
        if fname in properties:
            raise RecordValidationError(f"schema.fields[{i}].name: duplicate field {fname!r}")
        properties[fname] = _field_to_json_schema(f.get("fieldType"), f"schema.fields[{i}].fieldType")
        order.append(fname)
        if not f.get("optional", False):
            required.append(fname)
    record: dict[str, Any] = {
        "$type": SCHEMA_NSID,
        "name": local_schema.get("name"),
        "version": local_schema.get("version"),
        "schemaType": "jsonSchema",
        "schema": {
            "$type": JSON_SCHEMA_FORMAT,
            "$schema": DRAFT_07,
            "type": "object",
            "properties": properties,
            "required": required,
            "arrayFormatVersions": {"ndarrayBytes": "1.0.0"},
            "propertyOrder": order,
        },
        "createdAt": _created_at(created_at if created_at is not None else local_schema.get("createdAt")),
        "atdataSchemaVersion": 1,
    }
    if local_schema.get("description") is not None:
        record["description"] = local_schema["description"]
    metadata: dict[str, Any] = {}
    if license is not None:
        metadata["license"] = license
    if tags is not None:
        metadata["tags"] = list(tags)
    if local_schema.get("contentCid") is not None:
        metadata["contentCid"] = local_schema["contentCid"]
    if metadata:
        record["metadata"] = metadata
    validate_record(record, SCHEMA_NSID)
    return record


def _json_schema_to_field(prop: Any, path: str, depth: int = 0) -> tuple[dict[str, Any], bool]:
    """JSON-Schema property -> (local fieldType, nullable)."""
    if depth > 32:
        raise RecordValidationError(f"{path}: nested more than 32 levels deep")
    if not isinstance(prop, Mapping):
        raise RecordValidationError(f"{path}: expected a JSON-Schema object, got {type(prop).__name__}")
    ref = prop.get("$ref")
    if ref is not None:
        if isinstance(ref, str) and _NDARRAY_REF_RE.match(ref):
            nd: dict[str, Any] = {
                "$type": "local#ndarray",
                "dtype": normalize_dtype(prop.get("dtype"), f"{path}.dtype"),
            }
            shape = _normalize_shape(prop.get("shape"), f"{path}.shape")
            if shape is not None:
                nd["shape"] = shape
            return nd, False
        raise RecordValidationError(
            f"{path}.$ref: {ref!r} is not a supported type (only the atdata NDArray shim)"
        )
    for key in ("anyOf", "oneOf"):
        alts = prop.get(key)
        if alts is not None:
            if not isinstance(alts, list):
                raise RecordValidationError(f"{path}.{key}: expected a list")
            non_null = [a for a in alts if not (isinstance(a, Mapping) and a.get("type") == "null")]
            if len(non_null) != 1:
                raise RecordValidationError(f"{path}.{key}: only 'X or null' unions are supported")
            ft, _ = _json_schema_to_field(non_null[0], f"{path}.{key}", depth + 1)
            return ft, len(non_null) != len(alts)
    t = prop.get("type")
    nullable = False
    if isinstance(t, list):
        non_null_t = [x for x in t if x != "null"]
        nullable = len(non_null_t) != len(t)
        if len(non_null_t) != 1:
            raise RecordValidationError(
                f"{path}.type: {t!r} — only one type (optionally with null) is supported"
            )
        t = non_null_t[0]
    if t == "string":
        if prop.get("format") == "byte" or prop.get("contentEncoding") == "base64":
            return {"$type": "local#primitive", "primitive": "bytes"}, nullable
        return {"$type": "local#primitive", "primitive": "str"}, nullable
    if t == "integer":
        return {"$type": "local#primitive", "primitive": "int"}, nullable
    if t == "number":
        return {"$type": "local#primitive", "primitive": "float"}, nullable
    if t == "boolean":
        return {"$type": "local#primitive", "primitive": "bool"}, nullable
    if t == "array":
        if prop.get("items") is None:
            return {"$type": "local#array", "items": None}, nullable
        items, _ = _json_schema_to_field(prop["items"], f"{path}.items", depth + 1)
        return {"$type": "local#array", "items": items}, nullable
    if t == "object":
        return {"$type": "local#dict"}, nullable
    raise RecordValidationError(f"{path}.type: {t!r} is not a supported JSON-Schema type")


def local_schema_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a ``science.alt.dataset.schema`` record (ours or atdata 0.7's) to a local schema dict.

    Field order: ``schema.propertyOrder`` when it lists exactly the properties; otherwise (atdata's
    records) the ``required`` order, then the remaining properties. A field is optional when it is
    not required (or its JSON type allows null). NDArray ``dtype`` may be a numpy name
    (``"float32"``) or ``dtype.str``; it is returned as ``dtype.str`` (``None`` when unknown).

    Raises:
        RecordValidationError: The record is not a schema record this library can represent.
    """
    if not isinstance(record, Mapping):
        raise RecordValidationError(f"schema: expected a record dict, got {type(record).__name__}")
    name, version = record.get("name"), record.get("version")
    if not isinstance(name, str) or not name:
        raise RecordValidationError("schema.name: required field is missing")
    if not isinstance(version, str) or not version:
        raise RecordValidationError("schema.version: required field is missing")
    stype = record.get("schemaType", "jsonSchema")
    if stype != "jsonSchema":
        raise RecordValidationError(f"schema.schemaType: {stype!r} is not supported (only 'jsonSchema')")
    body = record.get("schema")
    if not isinstance(body, Mapping):
        raise RecordValidationError("schema.schema: required object is missing")
    props = body.get("properties")
    if not isinstance(props, Mapping):
        raise RecordValidationError("schema.schema.properties: required object is missing")
    req = body.get("required", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise RecordValidationError("schema.schema.required: expected a list of property names")
    req_set = set(req)
    for r in req:
        if r not in props:
            raise RecordValidationError(f"schema.schema.required: {r!r} is not a property")
    order_hint = body.get("propertyOrder")
    if (
        isinstance(order_hint, list)
        and all(isinstance(o, str) for o in order_hint)
        and len(order_hint) == len(props)
        and set(order_hint) == set(props)
    ):
        order = list(order_hint)
    else:
        seen: set[str] = set()
        order = []
        for n in [*req, *props]:
            if n not in seen:
                seen.add(n)
                order.append(n)
    fields = []
    for n in order:
        if not isinstance(n, str) or not n:
            raise RecordValidationError(f"schema.schema.properties: {n!r} is not a field name")
        ft, nullable = _json_schema_to_field(props[n], f"schema.schema.properties.{n}")
        fields.append({"name": n, "fieldType": ft, "optional": nullable or n not in req_set})
    out: dict[str, Any] = {"name": name, "version": version, "fields": fields}
    if isinstance(record.get("description"), str):
        out["description"] = record["description"]
    if isinstance(record.get("createdAt"), str):
        out["createdAt"] = record["createdAt"]
    meta = record.get("metadata")
    if isinstance(meta, Mapping):
        if isinstance(meta.get("contentCid"), str):
            out["contentCid"] = meta["contentCid"]
        if isinstance(meta.get("license"), str):
            out["license"] = meta["license"]
        if isinstance(meta.get("tags"), list):
            out["tags"] = [t for t in meta["tags"] if isinstance(t, str)]
    return out


# ------------------------------------------------------------------------------------------------
# Entry records
# ------------------------------------------------------------------------------------------------

# user key (snake_case) -> atdata's structured metadata key (camelCase)
_META_KNOWN = {
    "split": "split",
    "version": "version",
    "source_uri": "sourceUri",
    "created_by": "createdBy",
    "processing_steps": "processingSteps",
}
_META_KNOWN_BACK = {v: k for k, v in _META_KNOWN.items()}


def encode_entry_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """User metadata dict -> the JSON object stored in ``entry.metadata`` (atdata's layout).

    Raises:
        RecordValidationError: A float (or other non-ATProto value) anywhere, naming the key.
    """
    if not isinstance(metadata, Mapping):
        raise RecordValidationError(f"entry.metadata: expected a dict, got {type(metadata).__name__}")
    check_data_model(dict(metadata), "entry.metadata")
    out: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for k, v in metadata.items():
        if k in _META_KNOWN and v is not None:
            out[_META_KNOWN[k]] = v
        else:
            custom[k] = v
    if custom:
        out["custom"] = custom
    return out


def decode_entry_metadata(raw: Any) -> dict[str, Any] | None:
    """``entry.metadata`` in any form atdata writes -> the flat user dict.

    Accepts our/atdata's structured JSON object, ``{"$bytes": base64-msgpack}`` (the lexicon's
    form), or raw msgpack ``bytes``. Returns ``None`` when absent.
    """
    if raw is None:
        return None
    if isinstance(raw, Mapping) and set(raw) == {"$bytes"}:
        s = raw["$bytes"]
        try:
            raw = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise RecordValidationError("entry.metadata.$bytes: not valid base64") from None
    if isinstance(raw, (bytes, bytearray)):
        import msgpack

        try:
            value = msgpack.unpackb(bytes(raw), raw=False)
        except Exception:
            raise RecordValidationError("entry.metadata: bytes are not a msgpack map") from None
        if not isinstance(value, dict):
            raise RecordValidationError("entry.metadata: msgpack value is not a map")
        return value
    if not isinstance(raw, Mapping):
        raise RecordValidationError(f"entry.metadata: unexpected {type(raw).__name__}")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "custom":
            continue
        out[_META_KNOWN_BACK.get(k) or k] = v
    custom = raw.get("custom")
    if isinstance(custom, Mapping):
        for k, v in custom.items():
            out.setdefault(k, v)
    elif custom is not None:
        out["custom"] = custom
    return out


def _checksum(sha256: str | None, checksum: Mapping[str, Any] | None, path: str) -> dict[str, str]:
    if checksum is not None:
        if not isinstance(checksum, Mapping):
            raise RecordValidationError(f"{path}: expected {{'algorithm', 'digest'}}")
        return {"algorithm": str(checksum.get("algorithm", "")), "digest": str(checksum.get("digest", ""))}
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise RecordValidationError(
            f"{path}: a sha256 hex digest (64 lowercase hex chars) is required, got {sha256!r}"
        )
    return {"algorithm": "sha256", "digest": sha256}


def storage_http(shards: Iterable[Mapping[str, Any] | tuple[str, str]]) -> dict[str, Any]:
    """A ``storageHttp`` value from shards ``{"url", "sha256"}`` (or ``{"url", "checksum"}``, or ``(url, sha256)``)."""
    out = []
    for i, s in enumerate(shards):
        if isinstance(s, tuple):
            s = {"url": s[0], "sha256": s[1]}
        out.append(
            {
                "url": s.get("url"),
                "checksum": _checksum(s.get("sha256"), s.get("checksum"), f"storage.shards[{i}].checksum"),
            }
        )
    return {"$type": STORAGE_HTTP, "shards": out}


def storage_s3(
    bucket: str,
    shards: Iterable[Mapping[str, Any] | tuple[str, str]],
    *,
    region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """A ``storageS3`` value from shards ``{"key", "sha256"}`` (or ``(key, sha256)``)."""
    out = []
    for i, s in enumerate(shards):
        if isinstance(s, tuple):
            s = {"key": s[0], "sha256": s[1]}
        out.append(
            {
                "key": s.get("key"),
                "checksum": _checksum(s.get("sha256"), s.get("checksum"), f"storage.shards[{i}].checksum"),
            }
        )
    value: dict[str, Any] = {"$type": STORAGE_S3, "bucket": bucket, "shards": out}
    if region is not None:
        value["region"] = region
    if endpoint is not None:
        value["endpoint"] = endpoint
    return value


def storage_blobs(blobs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``storageBlobs`` value from ``{"blob": <blob ref from upload_blob>, "sha256"?}`` items."""
    out = []
    for i, b in enumerate(blobs):
        item: dict[str, Any] = {"blob": b.get("blob")}
        if b.get("sha256") is not None or b.get("checksum") is not None:
            item["checksum"] = _checksum(b.get("sha256"), b.get("checksum"), f"storage.blobs[{i}].checksum")
        out.append(item)
    return {"$type": STORAGE_BLOBS, "blobs": out}


def manifest_ref(header: Mapping[str, Any], samples: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One shard's ``shardManifestRef``: the blob references of its header and (optional) rows."""
    out: dict[str, Any] = {"header": dict(header)}
    if samples is not None:
        out["samples"] = dict(samples)
    return out


def entry_record(
    name: str,
    schema_ref: str,
    storage: Mapping[str, Any],
    *,
    description: str | None = None,
    tags: Sequence[str] | None = None,
    license: str | None = None,
    size: Mapping[str, int] | None = None,
    metadata: Mapping[str, Any] | None = None,
    content_cid: str | None = None,
    content_metadata: Mapping[str, Any] | None = None,
    metadata_schema_ref: str | None = None,
    created_at: str | datetime | None = None,
    manifests: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build a ``science.alt.dataset.entry`` record.

    Args:
        name: Dataset name (<= 200 bytes).
        schema_ref: AT-URI of the schema record.
        storage: From :func:`storage_http`, :func:`storage_s3` or :func:`storage_blobs`.
        description: Optional, <= 5000 bytes.
        tags: Optional, <= 30 tags of <= 150 bytes.
        license: Optional SPDX id or URL.
        size: Optional ``{"samples", "bytes", "shards"}`` (ints).
        metadata: Optional user dict; stored in atdata's layout (see module docs). No floats.
        content_cid: The local entry's content CID (stored as ``contentMetadata.atdataLabCid``).
        content_metadata: Optional open dataset-level object (``contentMetadata``).
        metadata_schema_ref: Optional AT-URI of a schema for ``contentMetadata``.
        created_at: Default now.
        manifests: Optional, one :func:`manifest_ref` per shard in the storage's order.

    Returns:
        The record dict (validated against the lexicon).

    Raises:
        RecordValidationError: Naming the field and the limit.
    """
    record: dict[str, Any] = {
        "$type": ENTRY_NSID,
        "name": name,
        "schemaRef": schema_ref,
        "storage": dict(storage) if isinstance(storage, Mapping) else storage,
        "createdAt": _created_at(created_at),
    }
    if description is not None:
        record["description"] = description
    if tags is not None:
        if isinstance(tags, str):
            raise RecordValidationError("entry.tags: expected a list of strings, got one string")
        record["tags"] = list(tags)
    if license is not None:
        record["license"] = license
    if size is not None:
        record["size"] = {k: v for k, v in dict(size).items() if v is not None}
    if metadata is not None:
        record["metadata"] = encode_entry_metadata(metadata)
    cm: dict[str, Any] = {}
    if content_metadata is not None:
        if not isinstance(content_metadata, Mapping):
            raise RecordValidationError("entry.contentMetadata: expected a dict")
        cm.update(content_metadata)
    if content_cid is not None:
        cm["atdataLabCid"] = content_cid
    if cm or content_metadata is not None:
        record["contentMetadata"] = cm
    if metadata_schema_ref is not None:
        record["metadataSchemaRef"] = metadata_schema_ref
    if manifests is not None:
        record["manifests"] = [dict(m) for m in manifests]
    validate_record(record, ENTRY_NSID)
    return record


def _parse_checksum(c: Any) -> dict[str, str] | None:
    if isinstance(c, Mapping) and isinstance(c.get("algorithm"), str) and isinstance(c.get("digest"), str):
        if c["algorithm"] in ("", "none"):
            return None
        return {"algorithm": c["algorithm"], "digest": c["digest"]}
    return None


def blob_cid(blob: Any) -> str | None:
    """The CID string of a blob reference (new ``{"ref": {"$link"}}`` or legacy ``{"cid"}`` form)."""
    if not isinstance(blob, Mapping):
        return None
    ref = blob.get("ref")
    if isinstance(ref, Mapping) and isinstance(ref.get("$link"), str):
        return ref["$link"]
    if isinstance(ref, str):
        return ref
    return blob.get("cid") if isinstance(blob.get("cid"), str) else None


def parse_storage(storage: Any) -> dict[str, Any]:
    """Parse an entry's ``storage`` union into ``{"kind", "shards": [...], ...}``.

    * ``http``: shards ``{"url", "checksum"}``;
    * ``s3``: ``bucket``, ``region``, ``endpoint``, shards ``{"key", "url": "s3://bucket/key", "checksum"}``;
    * ``blobs``: shards ``{"blob", "cid", "size", "mimeType", "checksum"}``;
    * ``external`` (atdata's deprecated form): shards ``{"url", "checksum": None}``.

    ``checksum`` is ``{"algorithm", "digest"}`` or ``None`` when absent or atdata's ``"none"``.
    """
    if not isinstance(storage, Mapping):
        raise RecordValidationError("entry.storage: expected an object")
    t = storage.get("$type")
    if t == STORAGE_HTTP:
        shards = _as_list(storage.get("shards"), "entry.storage.shards")
        return {
            "kind": "http",
            "shards": [
                {
                    "url": _req_str(s, "url", f"entry.storage.shards[{i}]"),
                    "checksum": _parse_checksum(s.get("checksum")),
                }
                for i, s in enumerate(shards)
            ],
        }
    if t == STORAGE_S3:
        bucket = _req_str(storage, "bucket", "entry.storage")
        shards = _as_list(storage.get("shards"), "entry.storage.shards")
        out_shards = []
        for i, s in enumerate(shards):
            key = _req_str(s, "key", f"entry.storage.shards[{i}]")
            out_shards.append(
                {"key": key, "url": f"s3://{bucket}/{key}", "checksum": _parse_checksum(s.get("checksum"))}
            )
        return {
            "kind": "s3",
            "bucket": bucket,
            "region": storage.get("region"),
            "endpoint": storage.get("endpoint"),
            "shards": out_shards,
        }
    if t == STORAGE_BLOBS:
        blobs = _as_list(storage.get("blobs"), "entry.storage.blobs")
        out_blobs = []
        for i, b in enumerate(blobs):
            blob = b.get("blob")
            cid = blob_cid(blob)
            if cid is None:
                raise RecordValidationError(f"entry.storage.blobs[{i}].blob: not a blob reference")
            out_blobs.append(
                {
                    "blob": dict(blob),
                    "cid": cid,
                    "size": blob.get("size"),
                    "mimeType": blob.get("mimeType"),
                    "checksum": _parse_checksum(b.get("checksum")),
                }
            )
        return {"kind": "blobs", "shards": out_blobs}
    if t == STORAGE_EXTERNAL:
        urls = _as_list(storage.get("urls"), "entry.storage.urls", of=str)
        return {"kind": "external", "shards": [{"url": u, "checksum": None} for u in urls]}
    raise RecordValidationError(f"entry.storage.$type: {t!r} is not a known storage type")


def _manifest_blob(blob: Any, path: str) -> dict[str, Any]:
    cid = blob_cid(blob)
    if cid is None:
        raise RecordValidationError(f"{path}: not a blob reference")
    size = blob.get("size")
    return {
        "cid": cid,
        "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
        "mimeType": blob.get("mimeType") if isinstance(blob.get("mimeType"), str) else None,
    }


def parse_manifests(raw: Any) -> list[dict[str, Any]] | None:
    """An entry's ``manifests`` as ``[{"header": {"cid", "size", "mimeType"}, "samples": {...} or
    None}]`` (``None`` when the record has none). The CIDs are the record's text: parse them
    (:func:`~atdata_lab.cid.parse_blob_cid`) before use.

    Raises:
        RecordValidationError: Not a list of ``{"header": <blob>, "samples"?: <blob>}``.
    """
    if raw is None:
        return None
    items = _as_list(raw, "entry.manifests")
    out = []
    for i, m in enumerate(items):
        samples = m.get("samples")
        out.append(
            {
                "header": _manifest_blob(m.get("header"), f"entry.manifests[{i}].header"),
                "samples": None
                if samples is None
                else _manifest_blob(samples, f"entry.manifests[{i}].samples"),
            }
        )
    return out


def _as_list(v: Any, path: str, of: Any = Mapping) -> list[Any]:
    if not isinstance(v, list) or not all(isinstance(x, of) for x in v):
        raise RecordValidationError(f"{path}: expected a list")
    return v


def _req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str):
        raise RecordValidationError(f"{path}.{key}: required string is missing")
    return v


def entry_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Parse a ``science.alt.dataset.entry`` record (ours or atdata's) into a plain dict.

    Returns:
        ``{"name", "schemaRef", "storage": <parse_storage()>, "createdAt", "description",
        "tags", "license", "size", "metadata" (flat user dict or None), "contentCid",
        "contentMetadata" (without our ``atdataLabCid``), "metadataSchemaRef",
        "manifests" (the raw list, or None: parse it with :func:`parse_manifests`)}``.

    Raises:
        RecordValidationError: Required fields missing or storage unreadable.
    """
    if not isinstance(record, Mapping):
        raise RecordValidationError("entry: expected a record dict")
    name = _req_str(record, "name", "entry")
    schema_ref = _req_str(record, "schemaRef", "entry")
    cm = record.get("contentMetadata")
    content_cid = None
    if isinstance(cm, Mapping):
        content_cid = cm.get("atdataLabCid") if isinstance(cm.get("atdataLabCid"), str) else None
        cm = {k: v for k, v in cm.items() if k != "atdataLabCid"} or None
    size = record.get("size")
    return {
        "name": name,
        "schemaRef": schema_ref,
        "storage": parse_storage(record.get("storage")),
        "createdAt": record.get("createdAt"),
        "description": record.get("description"),
        "tags": list(record["tags"]) if isinstance(record.get("tags"), list) else [],
        "license": record.get("license"),
        "size": dict(size) if isinstance(size, Mapping) else None,
        "metadata": decode_entry_metadata(record.get("metadata")),
        "contentCid": content_cid,
        "contentMetadata": cm,
        "metadataSchemaRef": record.get("metadataSchemaRef"),
        "manifests": record.get("manifests"),
    }


# ------------------------------------------------------------------------------------------------
# Label records
# ------------------------------------------------------------------------------------------------


def label_record(
    name: str,
    dataset_uri: str,
    *,
    version: str | None = None,
    description: str | None = None,
    created_at: str | datetime | None = None,
) -> dict[str, Any]:
    """Build a ``science.alt.dataset.label`` record pointing ``name`` at an entry's AT-URI.

    Raises:
        RecordValidationError: Naming the field and the limit.
    """
    record: dict[str, Any] = {
        "$type": LABEL_NSID,
        "name": name,
        "datasetUri": dataset_uri,
        "createdAt": _created_at(created_at),
    }
    if version is not None:
        record["version"] = version
    if description is not None:
        record["description"] = description
    validate_record(record, LABEL_NSID)
    return record


def label_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Parse a label record into ``{"name", "datasetUri", "version", "description", "createdAt"}``."""
    if not isinstance(record, Mapping):
        raise RecordValidationError("label: expected a record dict")
    return {
        "name": _req_str(record, "name", "label"),
        "datasetUri": _req_str(record, "datasetUri", "label"),
        "version": record.get("version"),
        "description": record.get("description"),
        "createdAt": record.get("createdAt"),
    }


# ------------------------------------------------------------------------------------------------
# Lens and lens-verification records
# ------------------------------------------------------------------------------------------------


def code_reference(
    repository: str, commit: str, path: str, *, branch: str | None = None, language: str | None = None
) -> dict[str, str]:
    """A ``science.alt.dataset.lens#codeReference``: where a function's code is (never the code)."""
    out = {"repository": repository, "commit": commit, "path": path}
    if branch is not None:
        out["branch"] = branch
    if language is not None:
        out["language"] = language
    return out


def lens_record(
    name: str,
    source_schema: str,
    target_schema: str,
    getter_code: Mapping[str, Any],
    putter_code: Mapping[str, Any],
    *,
    description: str | None = None,
    language: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    source_schema_version: str | None = None,
    target_schema_version: str | None = None,
    created_at: str | datetime | None = None,
) -> dict[str, Any]:
    """Build a ``science.alt.dataset.lens`` record: two schema AT-URIs and the getter/putter
    :func:`code_reference` (repository, commit, path). Lens code is referenced, never embedded.

    Raises:
        RecordValidationError: Naming the field and the limit.
    """
    record: dict[str, Any] = {
        "$type": LENS_NSID,
        "name": name,
        "sourceSchema": source_schema,
        "targetSchema": target_schema,
        "getterCode": dict(getter_code) if isinstance(getter_code, Mapping) else getter_code,
        "putterCode": dict(putter_code) if isinstance(putter_code, Mapping) else putter_code,
        "createdAt": _created_at(created_at),
    }
    for key, value in (
        ("description", description),
        ("language", language),
        ("sourceSchemaVersion", source_schema_version),
        ("targetSchemaVersion", target_schema_version),
    ):
        if value is not None:
            record[key] = value
    if metadata is not None:
        record["metadata"] = dict(metadata) if isinstance(metadata, Mapping) else metadata
    validate_record(record, LENS_NSID)
    return record


def lens_verification_record(
    lens: str,
    lens_commit: str,
    verification_method: str,
    *,
    code_hash: Mapping[str, Any] | None = None,
    proof_ref: Mapping[str, Any] | None = None,
    description: str | None = None,
    created_at: str | datetime | None = None,
) -> dict[str, Any]:
    """Build a ``science.alt.dataset.lensVerification`` record: who verified which lens record
    version (``lens_commit``: the lens record's CID), how (``codeReview``, ``formalProof``,
    ``signedHash``, ``automatedTest``), with an optional ``codeHash`` ``{"algorithm", "digest"}``
    and ``proofRef`` :func:`code_reference`.

    Raises:
        RecordValidationError: Naming the field and the limit.
    """
    record: dict[str, Any] = {
        "$type": LENS_VERIFICATION_NSID,
        "lens": lens,
        "lensCommit": lens_commit,
        "verificationMethod": verification_method,
        "createdAt": _created_at(created_at),
    }
    if code_hash is not None:
        record["codeHash"] = dict(code_hash) if isinstance(code_hash, Mapping) else code_hash
    if proof_ref is not None:
        record["proofRef"] = dict(proof_ref) if isinstance(proof_ref, Mapping) else proof_ref
    if description is not None:
        record["description"] = description
    validate_record(record, LENS_VERIFICATION_NSID)
    return record
