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

from .errors import AtdataLabError, InvalidArgumentError

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
        raise NDArrayFormatError(
            f"array dtype {text!r} is not allowed (object and structured dtypes never are)"
        )
    if dt.itemsize == 0:
        raise NDArrayFormatError(
            f"array dtype {text!r} has no size (e.g. 'U0'); numpy cannot hold such an array"
        )
    if len(_dtype_cache) < 256:
        _dtype_cache[raw] = dt
    return dt


def encode_ndarray(arr: np.ndarray) -> bytes:
    """Serialize an array in atdata's compact NDArray format (byte order preserved)."""
    arr = np.asarray(arr)
    dt = arr.dtype
    if dt.kind not in _ALLOWED_KINDS or dt.fields is not None:
        raise NDArrayFormatError(
            f"cannot store an array of dtype {dt} (object/structured arrays are not supported)"
        )
    ds = dt.str.encode("ascii")
    shape = arr.shape
    head = bytes((len(ds),)) + ds + bytes((len(shape),)) + _shape_structs[len(shape)].pack(*shape)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    # one copy of the data (head + tobytes() made two); datetimes have no buffer: seen as bytes
    return b"".join((head, arr.reshape(-1).view(np.uint8).data))


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


def _parse_npy_header(buf: bytes | memoryview) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, data_offset)`` of a ``.npy`` payload, sizes checked.

    The declared shape is checked against the bytes present before anything is allocated
    (``np.load`` would allocate the declared size first).
    """
    from numpy.lib import format as npy

    f = io.BytesIO(buf[: 65536 + 12])  # the largest header numpy reads without max_header_size
    try:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, fortran, dt = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dt = npy.read_array_header_2_0(f)
        else:
            raise InvalidArgumentError(f"version {version} is not supported (1.0 and 2.0 are)")
    except Exception as e:  # numpy raises ValueError/EOFError/SyntaxError... on a bad header
        raise NDArrayFormatError(f"invalid .npy array payload: {e}") from None
    if dt.kind not in _ALLOWED_KINDS or dt.fields is not None or dt.subdtype is not None or dt.itemsize == 0:
        raise NDArrayFormatError(f".npy payload has disallowed dtype {dt}")
    if len(shape) > MAX_NDIM:
        raise NDArrayFormatError(
            f".npy payload declares {len(shape)} dimensions; at most {MAX_NDIM} are allowed"
        )
    count = 1
    for s in shape:
        if not isinstance(s, int) or s < 0:
            raise NDArrayFormatError(f".npy payload declares an invalid shape {shape}")
        count *= s
    off = f.tell()
    expected = count * dt.itemsize
    if expected != len(buf) - off:
        raise NDArrayFormatError(
            f".npy payload declares {dt.str}{list(shape)} = {expected} bytes but {len(buf) - off} bytes follow"
        )
    return dt, tuple(shape), bool(fortran), off


def decode_ndarray(buf: bytes | memoryview, *, copy: bool = True) -> np.ndarray:
    """Decode an NDArray field (compact format or ``.npy``).

    Args:
        buf: The field's bytes.
        copy: Return a writable array that owns its memory (default). With ``False`` the
            result is a read-only view of ``buf``.
    """
    if buf[:6] == _NPY_MAGIC:
        dt, shape, fortran, off = _parse_npy_header(buf)
        count = 1
        for s in shape:
            count *= s
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=off)
        arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
        return arr.copy(order="K") if copy else arr
    dt, shape, off = parse_ndarray_header(buf)
    arr = np.frombuffer(buf, dtype=dt, offset=off).reshape(shape)
    return arr.copy() if copy else arr
