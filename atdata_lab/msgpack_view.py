"""Read a msgpack map without copying its ``bin`` values.

``unpack_map_views(buf)`` returns the top-level map of a sample with every ``bin`` value as a
``memoryview`` into ``buf`` (no copy); other values are decoded by the C msgpack unpacker. The
batch reader uses it for large samples, so an image goes from the shard's page cache straight
into the batch array with one copy. Hostile input fails with ``ValueError`` (bounded depth,
every length checked against the bytes present).
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from .errors import InvalidArgumentError

__all__ = ["unpack_map_views"]

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_F64 = struct.Struct(">d").unpack_from
_keys: dict[bytes, str] = {}
_FIXED = {
    0xC0: 1,
    0xC2: 1,
    0xC3: 1,
    0xCA: 5,
    0xCB: 9,
    0xCC: 2,
    0xCD: 3,
    0xCE: 5,
    0xCF: 9,
    0xD0: 2,
    0xD1: 3,
    0xD2: 5,
    0xD3: 9,
    0xD4: 3,
    0xD5: 4,
    0xD6: 6,
    0xD7: 10,
    0xD8: 18,
}
_MAX_DEPTH = 64


def _skip(b: Any, i: int, depth: int = 0) -> int:
    """Index just past the msgpack object starting at ``i``."""
    if depth > _MAX_DEPTH:
        raise InvalidArgumentError("msgpack nesting is too deep")
    t = b[i]
    if t <= 0x7F or t >= 0xE0:
        return i + 1
    if t <= 0x8F:
        i += 1
        for _ in range(2 * (t & 0x0F)):
            i = _skip(b, i, depth + 1)
        return i
    if t <= 0x9F:
        i += 1
        for _ in range(t & 0x0F):
            i = _skip(b, i, depth + 1)
        return i
    if t <= 0xBF:
        return i + 1 + (t & 0x1F)
    n = _FIXED.get(t)
    if n is not None:
        return i + n
    if t in (0xC4, 0xD9):
        return i + 2 + b[i + 1]
    if t in (0xC5, 0xDA):
        return i + 3 + _U16(b, i + 1)[0]
    if t in (0xC6, 0xDB):
        return i + 5 + _U32(b, i + 1)[0]
    if t == 0xC7:
        return i + 3 + b[i + 1]
    if t == 0xC8:
        return i + 4 + _U16(b, i + 1)[0]
    if t == 0xC9:
        return i + 6 + _U32(b, i + 1)[0]
    if t in (0xDC, 0xDD, 0xDE, 0xDF):
        if t in (0xDC, 0xDE):
            count, i = _U16(b, i + 1)[0], i + 3
        else:
            count, i = _U32(b, i + 1)[0], i + 5
        if t >= 0xDE:
            count *= 2
        if count > len(b) - i:
            raise InvalidArgumentError("msgpack container declares more items than bytes present")
        for _ in range(count):
            i = _skip(b, i, depth + 1)
        return i
    raise InvalidArgumentError(f"invalid msgpack type byte 0x{t:02x}")


def unpack_map_views(buf: bytes | memoryview) -> dict[str, Any]:
    """Decode a msgpack map; ``bin`` values come back as memoryviews into ``buf``.

    Raises:
        ValueError: ``buf`` is not a well-formed msgpack map with str keys.
    """
    b = memoryview(buf)
    n = len(b)
    try:
        t = b[0]
        if 0x80 <= t <= 0x8F:
            count, i = t & 0x0F, 1
        elif t == 0xDE:
            count, i = _U16(b, 1)[0], 3
        elif t == 0xDF:
            count, i = _U32(b, 1)[0], 5
        else:
            raise InvalidArgumentError("a sample must be a msgpack map")
        if count > n:
            raise InvalidArgumentError("msgpack map declares more items than bytes present")
        out: dict[str, Any] = {}
        for _ in range(count):
            t = b[i]
            if 0xA0 <= t <= 0xBF:  # fixstr key: the common case, decoded once and cached
                end = i + 1 + (t & 0x1F)
                raw = b[i + 1 : end].tobytes()
                key = _keys.get(raw)
                if key is None:
                    key = raw.decode("utf-8")
                    if len(_keys) < 4096:
                        _keys[raw] = key
            else:
                end = _skip(b, i)
                if end > n:
                    raise InvalidArgumentError("msgpack data is truncated")
                key = msgpack.unpackb(b[i:end], raw=False)
                if not isinstance(key, str):
                    raise InvalidArgumentError(f"msgpack map key is a {type(key).__name__}, not a str")
            i = end
            t = b[i]
            if t <= 0x7F:  # positive fixint
                out[key] = t
                i += 1
                continue
            if t == 0xCB:  # float64
                out[key] = _F64(b, i + 1)[0]
                i += 9
                continue
            if t == 0xC4:
                start, size = i + 2, b[i + 1]
            elif t == 0xC5:
                start, size = i + 3, _U16(b, i + 1)[0]
            elif t == 0xC6:
                start, size = i + 5, _U32(b, i + 1)[0]
            else:
                start = -1
            if start >= 0:
                end = start + size
                if end > n:
                    raise InvalidArgumentError("msgpack bin value is truncated")
                value: Any = b[start:end]
            else:
                end = _skip(b, i)
                if end > n:
                    raise InvalidArgumentError("msgpack data is truncated")
                value = msgpack.unpackb(b[i:end], raw=False, strict_map_key=False)
            out[key if isinstance(key, str) else str(key)] = value
            i = end
    except (IndexError, struct.error) as e:
        raise InvalidArgumentError(f"msgpack data is truncated ({e})") from None
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(f"invalid msgpack data ({e})") from None
    if i != n:
        raise InvalidArgumentError(f"{n - i} unexpected bytes after the msgpack map")
    return out
