"""The NDArray byte format shared with atdata 0.7.

An NDArray field is stored as a msgpack ``bin`` holding::

    u8 len(dtype.str) | dtype.str (ASCII, e.g. "<f4") | u8 ndim | ndim x int64 LE shape | C-order bytes

A payload that starts with ``b"\\x93NUMPY"`` is a ``.npy`` file instead (read with
``allow_pickle=False``). Every declared size is checked against the bytes present before
anything is allocated, so hostile input cannot make the reader allocate or hang.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from .errors import AtdataLabError

__all__ = ["encode_ndarray", "decode_ndarray", "parse_ndarray_header", "NDArrayFormatError", "MAX_NDIM"]

MAX_NDIM = 32  # numpy's own limit is 64; no real dataset comes near 32
_NPY_MAGIC = b"\x93NUMPY"
# Kinds a stored array may have: bool, signed/unsigned int, float, complex, bytes, unicode,
# datetime, timedelta. Never object ("O") or structured/void ("V").
_ALLOWED_KINDS = frozenset("biufcSUmM")
_dtype_cache: dict[bytes, np.dtype] = {}
_shape_structs = [struct.Struct(f"<{n}q") for n in range(MAX_NDIM + 1)]


class NDArrayFormatError(AtdataLabError, ValueError):
    """The bytes of an NDArray field are not a valid array payload."""


def _dtype_from_str(raw: bytes) -> np.dtype:
    dt = _dtype_cache.get(raw)
    if dt is not None:
        return dt
    try:
        text = raw.decode("ascii")
        dt = np.dtype(text)
    except (UnicodeDecodeError, TypeError, ValueError) as e:
        raise NDArrayFormatError(f"array header names an invalid dtype {raw!r}") from e
    if dt.kind not in _ALLOWED_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise NDArrayFormatError(f"array dtype {text!r} is not allowed (object and structured dtypes never are)")
    if len(_dtype_cache) < 256:
        _dtype_cache[raw] = dt
    return dt


def encode_ndarray(arr: np.ndarray) -> bytes:
    """Serialize an array in atdata's compact NDArray format (byte order preserved)."""
    arr = np.asarray(arr)
    dt = arr.dtype
    if dt.kind not in _ALLOWED_KINDS or dt.fields is not None:
        raise NDArrayFormatError(f"cannot store an array of dtype {dt} (object/structured arrays are not supported)")
    ds = dt.str.encode("ascii")
    shape = arr.shape
    head = bytes((len(ds),)) + ds + bytes((len(shape),)) + _shape_structs[len(shape)].pack(*shape)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return head + arr.tobytes()


def parse_ndarray_header(buf: bytes | memoryview) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return ``(dtype, shape, data_offset)`` of a compact NDArray payload, all sizes checked."""
    n = len(buf)
    if n < 2:
        raise NDArrayFormatError(f"array payload of {n} bytes is too short for a header")
    dlen = buf[0]
    if dlen == 0 or 1 + dlen + 1 > n:
        raise NDArrayFormatError(f"array header declares a dtype of {dlen} bytes in a {n}-byte payload")
    dt = _dtype_from_str(bytes(buf[1 : 1 + dlen]))
    ndim = buf[1 + dlen]
    if ndim > MAX_NDIM:
        raise NDArrayFormatError(f"array header declares {ndim} dimensions; at most {MAX_NDIM} are allowed")
    off = 2 + dlen
    end = off + 8 * ndim
    if end > n:
        raise NDArrayFormatError(f"array header declares {ndim} dimensions but the payload ends at byte {n}")
    shape = _shape_structs[ndim].unpack_from(buf, off)
    count = 1
    for s in shape:
        if s < 0:
            raise NDArrayFormatError(f"array header declares a negative dimension in shape {shape}")
        count *= s
    expected = count * dt.itemsize
    if expected != n - end:
        raise NDArrayFormatError(
            f"array header declares {dt.str}{list(shape)} = {expected} bytes but {n - end} bytes follow"
        )
    return dt, shape, end


def decode_ndarray(buf: bytes | memoryview, *, copy: bool = True) -> np.ndarray:
    """Decode an NDArray field (compact format or ``.npy``).

    Args:
        buf: The field's bytes.
        copy: Return a writable array that owns its memory (default). With ``False`` the
            result is a read-only view of ``buf``.
    """
    if buf[:6] == _NPY_MAGIC:
        try:
            arr = np.load(io.BytesIO(bytes(buf)), allow_pickle=False)
        except Exception as e:  # numpy raises ValueError/EOFError/OSError on bad .npy
            raise NDArrayFormatError(f"invalid .npy array payload: {e}") from e
        if arr.dtype.kind not in _ALLOWED_KINDS:
            raise NDArrayFormatError(f".npy payload has disallowed dtype {arr.dtype}")
        return arr
    dt, shape, off = parse_ndarray_header(buf)
    arr = np.frombuffer(buf, dtype=dt, offset=off).reshape(shape)
    return arr.copy() if copy else arr
