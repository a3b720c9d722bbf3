"""A small, generic ATProto Lexicon validator driven by the bundled lexicon JSON files.

It checks a record against its lexicon without touching the network, and reports the first
problem as a :class:`~atdata_lab.errors.RecordValidationError` whose message names the field path
and the limit, e.g. ``entry.tags[3]: 162 characters, the limit is 150``.

What it checks (Lexicon spec semantics):

* ``required`` properties, ``nullable``, and the JSON type of every value;
* strings: ``maxLength`` / ``minLength`` in **UTF-8 bytes**, ``maxGraphemes`` / ``minGraphemes``
  in grapheme clusters (approximated without the ``regex`` module: combining marks, variation
  selectors, skin-tone modifiers and ZWJ-joined code points count with their base), ``const``,
  ``enum``, ``pattern`` (a non-standard keyword atdata's lexicons use for semver) and ``format``
  (``at-uri``, ``datetime``, ``did``, ``handle``, ``at-identifier``, ``nsid``, ``cid``, ``tid``,
  ``record-key``, ``uri``, ``language``); ``knownValues`` is advisory and not enforced;
* integers: ``minimum``, ``maximum``, ``const``, ``enum`` (``bool`` is not an integer);
* arrays: ``maxLength`` / ``minLength`` (element counts) and ``items``;
* ``ref`` and ``union`` (``$type`` membership when ``closed``; open unions accept unknown
  ``$type`` values unchecked), ``unknown`` (any object), ``bytes`` (``{"$bytes": base64}`` or
  Python ``bytes``), ``cid-link`` (``{"$link": cid}``), ``blob`` (``accept``, ``maxSize``);
* the ATProto data model everywhere, including inside ``unknown`` values: **no floats**, string
  map keys only;
* the total size of the record as compact JSON (:data:`MAX_RECORD_JSON_BYTES`).

Objects are open: properties not in the lexicon are allowed (that is how atdata-lab adds its
extras such as ``propertyOrder`` or ``metadata.contentCid``).

One documented compatibility override (:data:`COMPAT_ALTERNATIVES`): the entry lexicon types
``science.alt.dataset.entry#main.metadata`` as ``bytes`` (msgpack), but atdata 0.7 writes a plain
JSON object there; both forms are accepted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import resources
from typing import Any

from atdata_lab.errors import RecordSizeError, RecordValidationError

from ..errors import InvalidTypeError

__all__ = [
    "COMPAT_ALTERNATIVES",
    "MAX_RECORD_JSON_BYTES",
    "Lexicons",
    "bundled_lexicons",
    "check_data_model",
    "record_json_size",
    "validate_record",
]

#: The PDS caps createRecord/putRecord/applyWrites JSON bodies at 1,000,000 bytes (PDS 0.5.x).
#: A record's compact JSON must stay below this (the request envelope needs a little room too).
MAX_RECORD_JSON_BYTES = 1_000_000

#: Extra accepted schemas for specific lexicon properties, keyed ``"nsid#def.property"``.
#: A value that fails the lexicon's own schema is accepted if it passes one of these.
COMPAT_ALTERNATIVES: dict[str, list[dict[str, Any]]] = {
    # atdata 0.7 writes entry.metadata as a plain JSON object, not msgpack bytes.
    "science.alt.dataset.entry#main.metadata": [{"type": "unknown"}],
}

# --- formats -----------------------------------------------------------------------------------

_DID_RE = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]\Z")
_HANDLE_RE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\Z"
)
_NSID_RE = re.compile(
    r"^[a-zA-Z]([a-zA-Z0-9-]{0,62}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}[a-zA-Z0-9])?)+"
    r"(\.[a-zA-Z]([a-zA-Z0-9]{0,62})?)\Z"
)
_DATETIME_RE = re.compile(
    r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,20})?"
    r"(Z|([+-][0-2][0-9]:[0-5][0-9]))\Z"
)
_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}\Z")
_RKEY_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,512}\Z")
_CID_RE = re.compile(r"^(b[a-z2-7]{8,}|z[1-9A-HJ-NP-Za-km-z]{8,}|Qm[1-9A-HJ-NP-Za-km-z]{44})\Z")
_URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+\Z")
_LANG_RE = re.compile(r"^(i|[a-z]{2,3})(-[a-zA-Z0-9]+)*\Z")


@functools.lru_cache(maxsize=64)
def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A lexicon ``pattern`` (ECMAScript syntax) compiled for Python: its ``$`` means the end of the
    text, as in JavaScript, so every ``$`` outside a character class becomes ``\\Z`` (Python's ``$``
    also matches before a final newline)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append("\\Z" if ch == "$" and not in_class else ch)
        i += 1
    return re.compile("".join(out))


def _is_did(s: str) -> bool:
    return len(s) <= 2048 and bool(_DID_RE.match(s))


def _is_handle(s: str) -> bool:
    return len(s) <= 253 and bool(_HANDLE_RE.match(s))


def _is_rkey(s: str) -> bool:
    return bool(_RKEY_RE.match(s)) and s not in (".", "..")


def _is_at_uri(s: str) -> bool:
    """``at://AUTHORITY[/COLLECTION[/RKEY]]`` with a DID or handle authority (no query/fragment)."""
    if not s.startswith("at://") or len(s) > 8192:
        return False
    parts = s[5:].split("/")
    if not parts or not (_is_did(parts[0]) or _is_handle(parts[0])):
        return False
    if len(parts) >= 2 and not _NSID_RE.match(parts[1]):
        return False
    if len(parts) >= 3 and not _is_rkey(parts[2]):
        return False
    return len(parts) <= 3


def _is_datetime(s: str) -> bool:
    if not _DATETIME_RE.match(s) or s.endswith("-00:00"):
        return False
    try:
        datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        # Python < 3.11 rejects >6 fractional digits; the regex already vetted the shape.
        core = re.sub(r"\.[0-9]+", "", s).replace("Z", "+00:00")
        try:
            datetime.fromisoformat(core)
        except ValueError:
            return False
    return True


_FORMATS = {
    "at-uri": _is_at_uri,
    "datetime": _is_datetime,
    "did": _is_did,
    "handle": _is_handle,
    "at-identifier": lambda s: _is_did(s) or _is_handle(s),
    "nsid": lambda s: len(s) <= 317 and bool(_NSID_RE.match(s)),
    "cid": lambda s: bool(_CID_RE.match(s)),
    "tid": lambda s: bool(_TID_RE.match(s)),
    "record-key": _is_rkey,
    "uri": lambda s: len(s) <= 8192 and bool(_URI_RE.match(s)),
    "language": lambda s: bool(_LANG_RE.match(s)),
}

_FORMAT_HINTS = {
    "at-uri": "an AT-URI like at://did:plc:abc/collection/rkey",
    "datetime": "an RFC 3339 datetime with timezone, e.g. 2024-01-01T00:00:00.000Z",
    "did": "a DID like did:plc:abc123",
    "handle": "a handle like alice.example.com",
    "uri": "a URI with a scheme, e.g. https://example.org/x",
}


def grapheme_count(s: str) -> int:
    """Approximate the number of user-perceived characters (grapheme clusters) in ``s``."""
    count = 0
    joined = False
    for ch in s:
        cp = ord(ch)
        if joined:
            joined = False
            if ch == "\u200d":
                joined = True
            continue
        if ch == "\u200d":
            joined = True
            continue
        if unicodedata.combining(ch) or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF:
            if count == 0:
                count = 1
            continue
        if unicodedata.category(ch) in ("Mn", "Me") and count:
            continue
        count += 1
    return count


# --- the data model --------------------------------------------------------------------------


def _float_error(path: str, value: float) -> RecordValidationError:
    shown = repr(value) if math.isfinite(value) else str(value)
    return RecordValidationError(
        f"{path}: the float {shown} is not allowed — the ATProto data model has no floats. "
        f"Encode it as a string (e.g. {json.dumps(repr(value))}) or as a scaled integer."
    )


def check_data_model(value: Any, path: str = "record", *, _depth: int = 0) -> None:
    """Check ``value`` is valid ATProto data-model JSON: no floats, string keys, known types.

    Args:
        value: The value to check (records are dicts).
        path: The name of ``value`` in error messages.

    Raises:
        RecordValidationError: Naming the path of the first float or unsupported value.
    """
    if _depth > 64:
        raise RecordValidationError(f"{path}: nested more than 64 levels deep")
    if isinstance(value, str):
        _check_unicode(value, path)
        return
    if value is None or isinstance(value, (bool, int, bytes)):
        return
    if isinstance(value, float):
        raise _float_error(path, value)
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise RecordValidationError(
                    f"{path}: map key {k!r} is not a string (ATProto maps need string keys)"
                )
            _check_unicode(k, f"{path} (a key)")
            check_data_model(v, _join(path, k), _depth=_depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_data_model(v, f"{path}[{i}]", _depth=_depth + 1)
        return
    raise RecordValidationError(
        f"{path}: a {type(value).__name__} cannot be stored in an ATProto record "
        "(use str, int, bool, None, bytes, list or dict)"
    )


def _check_unicode(s: str, path: str) -> None:
    """Records are UTF-8: a lone surrogate (e.g. from a bad decode) cannot be sent."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordValidationError(
            f"{path}: not valid Unicode (a lone surrogate {s[e.start]!r} at character {e.start}); "
            "ATProto strings are UTF-8"
        ) from None


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes):
        return {"$bytes": base64.b64encode(o).decode("ascii").rstrip("=")}
    raise InvalidTypeError(type(o).__name__)


def record_json_size(record: Any) -> int:
    """Size in bytes of ``record`` serialised as compact UTF-8 JSON (what the PDS body carries)."""
    try:
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_json_default)
        return len(text.encode("utf-8"))
    except (TypeError, ValueError) as e:  # UnicodeEncodeError is a ValueError
        raise RecordValidationError(f"record: cannot be serialised as JSON ({e})") from None


def _join(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


# --- lexicons ----------------------------------------------------------------------------------


class Lexicons:
    """A set of lexicon documents and a validator over them.

    Args:
        docs: Lexicon documents (parsed JSON dicts with ``lexicon``, ``id`` and ``defs``).
    """

    def __init__(self, docs: Iterable[Mapping[str, Any]]) -> None:
        self._docs: dict[str, Mapping[str, Any]] = {}
        for doc in docs:
            if doc.get("lexicon") != 1 or "id" not in doc:
                continue
            self._docs[str(doc["id"])] = doc

    def __contains__(self, nsid: object) -> bool:
        return nsid in self._docs

    @property
    def ids(self) -> list[str]:
        """The NSIDs of the loaded lexicons."""
        return sorted(self._docs)

    def get_def(self, ref: str, *, context: str | None = None) -> tuple[str, str, Mapping[str, Any]]:
        """Resolve a ref (``nsid``, ``nsid#def`` or ``#def`` relative to ``context``).

        Returns:
            ``(nsid, def_name, definition)``.

        Raises:
            RecordValidationError: The lexicon or def is not loaded.
        """
        if ref.startswith("#"):
            if context is None:
                raise RecordValidationError(f"lexicon: local ref {ref!r} has no context")
            nsid, name = context, ref[1:]
        elif "#" in ref:
            nsid, name = ref.split("#", 1)
        else:
            nsid, name = ref, "main"
        doc = self._docs.get(nsid)
        if doc is None:
            raise RecordValidationError(f"lexicon: unknown lexicon {nsid!r}")
        d = doc.get("defs", {}).get(name)
        if d is None:
            raise RecordValidationError(f"lexicon: {nsid} has no def {name!r}")
        return nsid, name, d

    def validate_record(self, collection: str, record: Any, *, check_size: bool = True) -> None:
        """Validate ``record`` against the record lexicon ``collection``.

        Args:
            collection: The record's NSID, e.g. ``science.alt.dataset.entry``.
            record: The record value (a dict with ``$type``).
            check_size: Also check the compact-JSON size against :data:`MAX_RECORD_JSON_BYTES`.

        Raises:
            RecordValidationError: Naming the field path and the limit that was broken.
            RecordSizeError: The record is too large for the PDS (also a RecordValidationError).
        """
        label = collection.rsplit(".", 1)[-1]
        nsid, _, d = self.get_def(collection)
        if d.get("type") != "record":
            raise RecordValidationError(f"lexicon: {collection} is not a record lexicon")
        if not isinstance(record, Mapping):
            raise RecordValidationError(f"{label}: a record must be an object, got {_kind(record)}")
        check_data_model(record, label)
        rtype = record.get("$type")
        if rtype is not None and rtype != collection:
            raise RecordValidationError(
                f"{label}.$type: {rtype!r} does not match the collection {collection!r}"
            )
        self._validate(d["record"], record, label, nsid, "main")
        if check_size:
            size = record_json_size(record)
            if size >= MAX_RECORD_JSON_BYTES:
                raise RecordSizeError(
                    f"{label}: the record is {size:,} bytes as JSON, the limit is "
                    f"{MAX_RECORD_JSON_BYTES:,} (the PDS caps request bodies). Move bulk data to "
                    "shards or blobs."
                )

    def validate_value(self, ref: str, value: Any, *, path: str = "value") -> None:
        """Validate ``value`` against any def (``nsid#name``), e.g. a storage object."""
        nsid, name, d = self.get_def(ref)
        check_data_model(value, path)
        self._validate(d, value, path, nsid, name)

    # -- internals ------------------------------------------------------------------------------

    def _validate(self, schema: Mapping[str, Any], value: Any, path: str, nsid: str, defname: str) -> None:
        t = schema.get("type")
        if t in ("object", "params"):
            self._object(schema, value, path, nsid, defname)
        elif t == "record":
            self._validate(schema["record"], value, path, nsid, defname)
        elif t == "string":
            self._string(schema, value, path)
        elif t == "integer":
            self._integer(schema, value, path)
        elif t == "boolean":
            if not isinstance(value, bool):
                raise RecordValidationError(f"{path}: expected a boolean, got {_kind(value)}")
            if "const" in schema and value != schema["const"]:
                raise RecordValidationError(f"{path}: must be {json.dumps(schema['const'])}")
        elif t == "array":
            self._array(schema, value, path, nsid, defname)
        elif t == "ref":
            rnsid, rname, rdef = self.get_def(schema["ref"], context=nsid)
            self._validate(rdef, value, path, rnsid, rname)
        elif t == "union":
            self._union(schema, value, path, nsid)
        elif t == "unknown":
            if not isinstance(value, Mapping):
                raise RecordValidationError(f"{path}: expected an object, got {_kind(value)}")
        elif t == "bytes":
            self._bytes(schema, value, path)
        elif t == "cid-link":
            if not (isinstance(value, Mapping) and isinstance(value.get("$link"), str)):
                raise RecordValidationError(f'{path}: expected a CID link {{"$link": "bafy..."}}')
        elif t == "blob":
            self._blob(schema, value, path)
        elif t == "null":
            if value is not None:
                raise RecordValidationError(f"{path}: expected null, got {_kind(value)}")
        elif t == "token":
            raise RecordValidationError(f"{path}: a token ({nsid}#{defname}) cannot hold a value")
        else:
            raise RecordValidationError(f"{path}: the lexicon type {t!r} is not supported")

    def _object(self, schema: Mapping[str, Any], value: Any, path: str, nsid: str, defname: str) -> None:
        if not isinstance(value, Mapping):
            raise RecordValidationError(f"{path}: expected an object, got {_kind(value)}")
        props: Mapping[str, Any] = schema.get("properties", {})
        nullable = set(schema.get("nullable", []))
        for req in schema.get("required", []):
            if req not in value or (value[req] is None and req not in nullable):
                raise RecordValidationError(f"{_join(path, req)}: required field is missing")
        for key, sub in props.items():
            if key not in value:
                continue
            v = value[key]
            if v is None:
                if key in nullable:
                    continue
                raise RecordValidationError(f"{_join(path, key)}: null is not allowed here (omit the field)")
            alternatives = COMPAT_ALTERNATIVES.get(f"{nsid}#{defname}.{key}")
            try:
                self._validate(sub, v, _join(path, key), nsid, defname)
            except RecordValidationError:
                if not alternatives:
                    raise
                for alt in alternatives:
                    try:
                        self._validate(alt, v, _join(path, key), nsid, defname)
                        break
                    except RecordValidationError:
                        continue
                else:
                    raise

    def _string(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise RecordValidationError(f"{path}: expected a string, got {_kind(value)}")
        if "const" in schema and value != schema["const"]:
            raise RecordValidationError(f"{path}: must be {json.dumps(schema['const'])}, got {_short(value)}")
        if "enum" in schema and value not in schema["enum"]:
            raise RecordValidationError(f"{path}: {_short(value)} is not one of {schema['enum']}")
        nbytes = len(value.encode("utf-8", "surrogatepass"))
        if "maxLength" in schema and nbytes > schema["maxLength"]:
            raise RecordValidationError(
                f"{path}: {_len_phrase(value, nbytes)}, the limit is {schema['maxLength']}"
                + ("" if nbytes == len(value) else " bytes")
            )
        if "minLength" in schema and nbytes < schema["minLength"]:
            raise RecordValidationError(
                f"{path}: {_len_phrase(value, nbytes)}, the minimum is {schema['minLength']}"
            )
        if "maxGraphemes" in schema or "minGraphemes" in schema:
            g = grapheme_count(value)
            if "maxGraphemes" in schema and g > schema["maxGraphemes"]:
                raise RecordValidationError(f"{path}: {g} characters, the limit is {schema['maxGraphemes']}")
            if "minGraphemes" in schema and g < schema["minGraphemes"]:
                raise RecordValidationError(
                    f"{path}: {g} characters, the minimum is {schema['minGraphemes']}"
                )
        pattern = schema.get("pattern")
        if pattern and not _ecma_pattern(pattern).search(value):
            hint = " (a semantic version like 1.0.0)" if "(0|[1-9]\\d*)\\." in pattern else ""
            raise RecordValidationError(f"{path}: {_short(value)} does not match the required pattern{hint}")
        fmt = schema.get("format")
        if fmt:
            check = _FORMATS.get(fmt)
            if check is not None and not check(value):
                hint = _FORMAT_HINTS.get(fmt, f"format {fmt}")
                raise RecordValidationError(f"{path}: {_short(value)} is not a valid {fmt} (expected {hint})")

    def _integer(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if isinstance(value, float):
            raise _float_error(path, value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RecordValidationError(f"{path}: expected an integer, got {_kind(value)}")
        if "const" in schema and value != schema["const"]:
            raise RecordValidationError(f"{path}: must be {schema['const']}, got {value}")
        if "enum" in schema and value not in schema["enum"]:
            raise RecordValidationError(f"{path}: {value} is not one of {schema['enum']}")
        if "minimum" in schema and value < schema["minimum"]:
            raise RecordValidationError(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise RecordValidationError(f"{path}: {value} is above the maximum {schema['maximum']}")

    def _array(self, schema: Mapping[str, Any], value: Any, path: str, nsid: str, defname: str) -> None:
        if not isinstance(value, (list, tuple)):
            raise RecordValidationError(f"{path}: expected an array, got {_kind(value)}")
        n = len(value)
        if "maxLength" in schema and n > schema["maxLength"]:
            raise RecordValidationError(f"{path}: {n} items, the limit is {schema['maxLength']}")
        if "minLength" in schema and n < schema["minLength"]:
            raise RecordValidationError(f"{path}: {n} items, at least {schema['minLength']} required")
        items = schema.get("items")
        if items:
            for i, v in enumerate(value):
                self._validate(items, v, f"{path}[{i}]", nsid, defname)

    def _union(self, schema: Mapping[str, Any], value: Any, path: str, nsid: str) -> None:
        if not isinstance(value, Mapping):
            raise RecordValidationError(f"{path}: expected an object with a $type, got {_kind(value)}")
        vtype = value.get("$type")
        if not isinstance(vtype, str) or not vtype:
            raise RecordValidationError(
                f"{path}.$type: required in a union value (one of {schema.get('refs', [])})"
            )
        refs: list[str] = list(schema.get("refs", []))
        full = {self._full_ref(r, nsid): r for r in refs}
        key = vtype if "#" in vtype else f"{vtype}#main"
        if key not in full:
            if schema.get("closed"):
                raise RecordValidationError(f"{path}.$type: {vtype!r} is not one of {refs}")
            return  # open union: unknown members are accepted unchecked
        rnsid, rname, rdef = self.get_def(full[key], context=nsid)
        self._validate(rdef, value, path, rnsid, rname)

    @staticmethod
    def _full_ref(ref: str, nsid: str) -> str:
        if ref.startswith("#"):
            return f"{nsid}{ref}"
        return ref if "#" in ref else f"{ref}#main"

    def _bytes(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, Mapping) and isinstance(value.get("$bytes"), str) and len(value) == 1:
            s = value["$bytes"]
            try:
                data = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise RecordValidationError(f"{path}.$bytes: not valid base64") from None
        else:
            raise RecordValidationError(
                f'{path}: expected bytes ({{"$bytes": "<base64>"}}), got {_kind(value)}'
            )
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            raise RecordValidationError(f"{path}: {len(data)} bytes, the limit is {schema['maxLength']}")
        if "minLength" in schema and len(data) < schema["minLength"]:
            raise RecordValidationError(f"{path}: {len(data)} bytes, the minimum is {schema['minLength']}")

    def _blob(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise RecordValidationError(f"{path}: expected a blob reference, got {_kind(value)}")
        if value.get("$type") == "blob":
            ref = value.get("ref")
            if not (isinstance(ref, Mapping) and isinstance(ref.get("$link"), str)):
                raise RecordValidationError(f'{path}.ref: expected {{"$link": "<cid>"}}')
            size = value.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise RecordValidationError(f"{path}.size: expected a non-negative integer")
        elif isinstance(value.get("cid"), str):  # legacy blob form
            size = None
        else:
            raise RecordValidationError(
                f'{path}: expected a blob reference {{"$type": "blob", "ref": ..., ...}}'
            )
        mime = value.get("mimeType")
        if not isinstance(mime, str) or not mime:
            raise RecordValidationError(f"{path}.mimeType: required")
        accept = schema.get("accept")
        if accept and not any(_mime_match(a, mime) for a in accept):
            raise RecordValidationError(
                f"{path}.mimeType: {mime!r} is not accepted (expected one of {accept})"
            )
        if size is not None and "maxSize" in schema and size > schema["maxSize"]:
            raise RecordValidationError(f"{path}.size: {size:,} bytes, the limit is {schema['maxSize']:,}")


def _mime_match(pattern: str, mime: str) -> bool:
    if pattern in ("*/*", "*"):
        return True
    if pattern.endswith("/*"):
        return mime.split("/", 1)[0] == pattern[:-2]
    return mime == pattern


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    return f"a {type(value).__name__}"


def _short(value: str, n: int = 60) -> str:
    return json.dumps(value if len(value) <= n else value[:n] + "…", ensure_ascii=False)


def _len_phrase(value: str, nbytes: int) -> str:
    if nbytes == len(value):
        return f"{nbytes} characters"
    return f"{len(value)} characters = {nbytes} UTF-8 bytes"


@functools.lru_cache(maxsize=1)
def bundled_lexicons() -> Lexicons:
    """The lexicons shipped in ``atdata_lab/atmosphere/lexicons/`` (cached)."""
    docs = []
    for entry in resources.files("atdata_lab.atmosphere").joinpath("lexicons").iterdir():
        if entry.name.endswith(".json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("lexicon") == 1:
                docs.append(doc)
    return Lexicons(docs)


def validate_record(
    record: Mapping[str, Any], collection: str | None = None, *, check_size: bool = True
) -> None:
    """Validate ``record`` against the bundled lexicon for its collection (no network).

    Args:
        record: The record (its ``$type`` names the collection unless ``collection`` is given).
        collection: The collection NSID; defaults to ``record["$type"]``.
        check_size: Also check the JSON size limit.

    Raises:
        RecordValidationError: The record breaks its lexicon; the message names field and limit.
    """
    if collection is None:
        collection = record.get("$type") if isinstance(record, Mapping) else None
        if not isinstance(collection, str):
            raise RecordValidationError("record.$type: required to know which lexicon applies")
    bundled_lexicons().validate_record(collection, record, check_size=check_size)
