"""Columnar writes: samples given as columns, encoded straight into shard bytes.

:func:`~atdata_lab.dataset.write_samples` and :meth:`~atdata_lab.index.Index.write` accept, besides
sample objects, a :class:`~atdata_lab.dataset.SampleBatch`, a dict of arrays or lists, a pandas
``DataFrame`` or a pyarrow ``Table``, one column per field of the sample type. The columns are
checked against the type up front (a missing, extra or mistyped column is named, with the fix),
then encoded a chunk of rows at a time: each field becomes one block of msgpack bytes for all the
rows of the chunk, built with numpy (a stacked NDArray column is one strided copy, numbers are
converted in one go), and the blocks are laid side by side in the tar members. No Python object
is made per sample, and the bytes are those of the per-object path (:mod:`atdata_lab.sample`'s
encoding), byte for byte: the same shards, the same checksums, the same CIDs.

Values the vectorised encoders do not cover (lists, dicts, ragged arrays, ``None`` in a column of
numbers) are encoded value by value with the per-object encoder, so they still give those bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import msgpack
import numpy as np

from .errors import InvalidArgumentError, InvalidTypeError
from .ndarray_codec import _ALLOWED_KINDS, _shape_structs
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .sample import DictSample, _encode_value, codec_for
from .schema import Field
from .shards import HintObserver, ShardSetWriter

__all__ = ["Columns", "as_columns", "is_columnar"]

CHUNK_BYTES = 16 << 20  # payload bytes encoded at once at most (bounds memory on large columns)
CHUNK_ROWS = 1 << 16
_U8 = np.uint8


def is_columnar(obj: Any) -> bool:
    """Whether ``obj`` is columns (a SampleBatch, a dict, a pandas DataFrame, a pyarrow Table)
    rather than an iterable of samples."""
    if isinstance(obj, Mapping) or _is_batch(obj):
        return True
    mod = type(obj).__module__ or ""
    name = type(obj).__name__
    return (mod.startswith("pandas") and name == "DataFrame") or (
        mod.startswith("pyarrow") and name in ("Table", "RecordBatch")
    )


def _is_batch(obj: Any) -> bool:
    """A :class:`~atdata_lab.dataset.SampleBatch` (known by its surface: this module sits below
    dataset.py)."""
    return type(obj).__name__ == "SampleBatch" and callable(getattr(obj, "as_dict", None))


class ColumnError(InvalidArgumentError):
    """Columns given to a write do not match the sample type (the message names the column)."""


@dataclasses.dataclass
class Columns:
    """Columns checked against a sample type, ready to encode."""

    sample_type: type
    n: int
    columns: dict[str, Any]  # field name -> np.ndarray (stacked or 1-D), list, or _Text (pyarrow strings)
    fields: tuple[Field, ...]

    def samples(self) -> Iterator[Any]:
        """The rows as sample objects (for what needs them: manifests)."""
        cls = self.sample_type
        for i in range(self.n):
            yield cls(**{f.name: self.columns[f.name][i] for f in self.fields})

    def observe(self, observer: HintObserver) -> None:
        """Feed the dtype and shape of every NDArray column to ``observer``."""
        for f in self.fields:
            if f.type.kind != "ndarray" or f.name not in observer.fields:
                continue
            col = self.columns[f.name]
            if isinstance(col, np.ndarray):
                if self.n:
                    observer.observe_array(f.name, col.dtype.str, col.shape[1:])
            else:
                for v in col:
                    if isinstance(v, np.ndarray):
                        observer.observe_array(f.name, v.dtype.str, v.shape)

    def write_into(
        self, writer: ShardSetWriter, *, progress: ProgressLike = False, task: str = "write"
    ) -> int:
        """Encode every row into ``writer``, a chunk of rows at a time. Returns the rows written."""
        report = resolve_progress(progress)
        n = self.n
        step = _chunk_rows(self)
        head = _map_header(len(self.fields))
        keys = {f.name: msgpack.packb(f.name, use_bin_type=True) for f in self.fields}
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            parts: list[bytes | _Piece] = [head]
            for f in self.fields:
                parts.append(keys[f.name])
                parts.extend(_encode_column(f, self.columns[f.name], lo, hi, self.sample_type))
            pieces: list[_Piece] = []
            const = b""
            for p in parts:  # runs of constant bytes become one piece
                if isinstance(p, bytes):
                    const += p
                    continue
                if const:
                    pieces.append(_const(const, hi - lo))
                    const = b""
                pieces.append(p)
            if const:
                pieces.append(_const(const, hi - lo))
            sizes = np.zeros(hi - lo, dtype=np.int64)
            for p in pieces:
                sizes += p.lens
            writer.add_rows(lo, sizes, _Filler(pieces).fill)
            report(ProgressEvent(task, hi, n, "samples"))
        report(ProgressEvent(task, n, n, "samples", finished=True))
        return n


# ------------------------------------------------------------------------------ input forms


def as_columns(data: Any, sample_type: type | None, call: str) -> Columns:
    """Check columns (any form :func:`is_columnar` accepts) against ``sample_type``."""
    st: type | None
    if _is_batch(data):
        st = sample_type or data.sample_type
        raw: dict[str, Any] = data.as_dict()
        n = None  # from the columns (a batch made from columns may have no keys)
    elif isinstance(data, Mapping):
        st, raw, n = sample_type, dict(data), None
    elif type(data).__name__ == "DataFrame":
        st, raw, n = sample_type, {str(c): _from_pandas(data[c]) for c in data.columns}, len(data)
    else:  # pyarrow Table / RecordBatch
        st, raw = sample_type, {name: _from_arrow(data.column(name)) for name in data.column_names}
        n = data.num_rows
    if st is None or st is DictSample or not isinstance(st, type):
        raise InvalidArgumentError(
            f"{call}: columns need a sample type to be written: pass sample_type=MySample "
            "(a @packable class whose fields are the columns)"
        )
    try:
        fields = codec_for(st).fields
    except TypeError as e:
        raise InvalidTypeError(f"{call}: sample_type={st!r} is not a sample type ({e})") from None
    names = [f.name for f in fields]
    missing = [f.name for f in fields if f.name not in raw and not f.optional]
    extra = [c for c in raw if c not in names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no column for field(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"column(s) {', '.join(map(repr, extra))} are not fields of {st.__name__}")
        raise ColumnError(
            f"{call}: {'; '.join(parts)}. The columns must be the fields of {st.__name__} "
            f"({', '.join(names)}): add the missing ones, drop or rename the others"
        )
    cols: dict[str, Any] = {}
    for f in fields:
        if f.name not in raw:  # an Optional field left out: None in every row
            cols[f.name] = None
            continue
        cols[f.name] = _check_column(f, raw[f.name], st, call)
    lengths = {name: len(c) for name, c in cols.items() if c is not None}
    if n is None:
        n = next(iter(lengths.values()), 0)
    bad = {k: v for k, v in lengths.items() if v != n}
    if bad:
        raise ColumnError(
            f"{call}: columns differ in length ({', '.join(f'{k}: {v}' for k, v in lengths.items())}); "
            "every column needs one value per sample"
        )
    if n == 0:
        raise InvalidArgumentError(
            f"{call}: no samples to write (the columns are empty); nothing was written"
        )
    for name, c in cols.items():
        if c is None:
            cols[name] = [None] * n
    return Columns(st, n, cols, tuple(fields))


class _Text:
    """A pyarrow string or binary column without nulls: UTF-8 bytes and row offsets, zero-copy."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, is_str: bool) -> None:
        self.data, self.offsets, self.is_str = data, offsets, is_str

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> Any:
        b = self.data[self.offsets[i] : self.offsets[i + 1]].tobytes()
        return b.decode("utf-8") if self.is_str else b


def _from_pandas(series: Any) -> Any:
    values = series.to_numpy()
    if values.dtype.kind == "O" or values.dtype.kind not in "biuf":
        return series.tolist() if values.dtype.kind != "O" else list(values)
    return values


def _from_arrow(col: Any) -> Any:
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if col.null_count == 0 and (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    ):
        _validity, offs, data = col.buffers()
        odt = np.int64 if (pa.types.is_large_string(t) or pa.types.is_large_binary(t)) else np.int32
        offsets = np.frombuffer(offs, dtype=odt)[col.offset : col.offset + len(col) + 1].astype(np.int64)
        raw = np.frombuffer(data, dtype=_U8) if data is not None else np.zeros(0, _U8)
        return _Text(raw, offsets, pa.types.is_string(t) or pa.types.is_large_string(t))
    if col.null_count == 0 and pa.types.is_fixed_size_list(t):
        shape = [len(col)]
        inner = col
        while pa.types.is_fixed_size_list(inner.type):
            shape.append(inner.type.list_size)
            inner = inner.flatten()
        if (
            pa.types.is_integer(inner.type)
            or pa.types.is_floating(inner.type)
            or pa.types.is_boolean(inner.type)
        ):
            if inner.null_count == 0:
                return inner.to_numpy(zero_copy_only=False).reshape(shape)
    if col.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return col.to_numpy(zero_copy_only=False)
    return col.to_pylist()


_KIND_OK: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int, np.integer),
    "float": (float, int, np.floating, np.integer),
    "bool": (bool, np.bool_),
    "bytes": (bytes, bytearray, memoryview),
    "list": (list, tuple, np.ndarray),
    "dict": (dict,),
    "ndarray": (np.ndarray, list, tuple),
}


def _check_column(f: Field, col: Any, st: type, call: str) -> Any:
    """The column as an ndarray, list or _Text, its values of a kind the field holds."""
    kind = f.type.kind
    where = f"{call}: column {f.name!r}"
    want = f"{st.__name__}.{f.name} is {f.describe()}"
    if isinstance(col, _Text):
        if (kind == "str") != col.is_str or kind not in ("str", "bytes"):
            raise ColumnError(f"{where} holds {'strings' if col.is_str else 'bytes'}, but {want}")
        return col
    if isinstance(col, np.ndarray):
        if col.ndim == 0:
            raise ColumnError(f"{where} is one value, not a column (one value per sample); {want}")
        dk = col.dtype.kind
        if kind == "ndarray":
            if dk in _ALLOWED_KINDS:
                return col
            if dk == "O":
                return list(col)
            raise ColumnError(
                f"{where} is a {col.dtype} array of shape {col.shape}, but {want}: give an array with one "
                "row per sample (shape (n, ...)) or a list of arrays"
            )
        ok = {"int": "iu", "float": "iuf", "bool": "b", "str": "U", "bytes": "S"}.get(kind)
        if ok is not None and col.ndim == 1 and dk in ok:
            return col if kind in ("int", "float", "bool") else col.tolist()
        if dk == "O" and col.ndim == 1:
            col = list(col)
        elif kind in ("list",) and col.ndim >= 1:
            return list(col)
        else:
            raise ColumnError(f"{where} is a {col.dtype} array of shape {col.shape}, but {want}")
    if not isinstance(col, (list, tuple)):
        try:
            col = list(col)
        except TypeError:
            raise ColumnError(
                f"{where} is a {type(col).__name__}, not a column (an array or a list)"
            ) from None
    col = list(col)
    kinds = set(map(type, col))
    if kind == "int" and kinds == {int}:
        try:
            return np.array(col, dtype=np.int64)
        except OverflowError:
            pass
    if kind == "float" and kinds <= {int, float} and kinds:
        try:
            return np.array(col, dtype=np.float64)
        except OverflowError:
            pass
    if kind == "bool" and kinds == {bool}:
        return np.array(col, dtype=bool)
    allowed = _KIND_OK[kind] + ((type(None),) if f.optional else ())
    for t in kinds:
        if not issubclass(t, allowed):
            i = next(i for i, v in enumerate(col) if type(v) is t)
            what = "None" if t is type(None) else f"a {t.__name__}"
            hint = f" (make {st.__name__}.{f.name} Optional to allow None)" if t is type(None) else ""
            raise ColumnError(f"{where}, row {i}: {what}, but {want}{hint}")
    return col


# ------------------------------------------------------------------------------ encoding


class _Piece:
    """A part of every row's payload for a range of rows: ``mat`` (rows, width) when all are one
    width, else the concatenated bytes ``flat`` with per-row ``lens``."""

    __slots__ = ("mat", "flat", "lens", "ends")

    def __init__(self, mat: np.ndarray | None, flat: np.ndarray | None, lens: np.ndarray) -> None:
        self.mat, self.flat, self.lens = mat, flat, lens
        self.ends = None if flat is None else np.cumsum(lens)

    @classmethod
    def var(cls, flat: np.ndarray, lens: np.ndarray) -> _Piece:
        n = len(lens)
        if n and (lens == lens[0]).all():
            return cls(flat.reshape(n, int(lens[0])), None, lens)
        return cls(None, flat, lens)


def _const(b: bytes, n: int) -> _Piece:
    return _Piece(
        np.broadcast_to(np.frombuffer(b, dtype=_U8), (n, len(b))), None, np.full(n, len(b), np.int64)
    )


class _Filler:
    """Lays pieces side by side in the members of a tar block (see ShardSetWriter.add_rows)."""

    def __init__(self, pieces: list[_Piece]) -> None:
        self.pieces = pieces

    def fill(self, block: np.ndarray, starts: np.ndarray, lo: int, hi: int, rows: np.ndarray | None) -> None:
        off = np.zeros(hi - lo, dtype=np.int64)  # where the next piece starts in each payload
        for p in self.pieces:
            lens = p.lens[lo:hi]
            if p.mat is not None:
                w = p.mat.shape[1]
                if rows is not None and (off == off[0]).all():  # one strided copy for all the rows
                    o = int(off[0])
                    rows[:, o : o + w] = p.mat[lo:hi]
                elif w:
                    _scatter_fixed(block, starts + off, p.mat[lo:hi])
            elif p.flat is not None:
                sl = _flat_range(p, lo, hi)
                _scatter_var(block, starts + off, p.flat[sl], lens)
            off += lens


SCATTER = 1 << 20  # bytes copied per fancy-indexed assignment at most (its index array is 8x that)


def _scatter_fixed(block: np.ndarray, pos: np.ndarray, mat: np.ndarray) -> None:
    """``mat[i]`` into ``block`` at ``pos[i]``, each row its own place."""
    w = mat.shape[1]
    if w >= 4096:
        for i, p in enumerate(pos.tolist()):
            block[p : p + w] = mat[i]
        return
    step = max(1, SCATTER // w)
    ar = np.arange(w)
    for a in range(0, len(pos), step):
        block[pos[a : a + step, None] + ar] = mat[a : a + step]


def _scatter_var(block: np.ndarray, pos: np.ndarray, flat: np.ndarray, lens: np.ndarray) -> None:
    """Rows of ``flat`` (``lens`` bytes each, back to back) into ``block`` at ``pos``."""
    ends = np.cumsum(lens)
    begins = ends - lens
    a, n = 0, len(lens)
    while a < n:
        b = max(a + 1, int(np.searchsorted(ends, int(begins[a]) + SCATTER, side="right")))
        b = min(b, n)
        if b == a + 1:
            s, m = int(begins[a]), int(lens[a])
            block[int(pos[a]) : int(pos[a]) + m] = flat[s : s + m]
        else:
            src = flat[int(begins[a]) : int(ends[b - 1])]
            if len(src):
                rel = np.repeat(pos[a:b] - (begins[a:b] - begins[a]), lens[a:b])
                block[rel + np.arange(len(src))] = src
        a = b


def _flat_range(p: _Piece, lo: int, hi: int) -> slice:
    ends = p.ends
    assert ends is not None
    start = int(ends[lo - 1]) if lo else 0
    return slice(start, int(ends[hi - 1]) if hi else 0)


def _map_header(n: int) -> bytes:
    return msgpack.Packer().pack_map_header(n)


def _chunk_rows(c: Columns) -> int:
    est = 64
    for f in c.fields:
        col = c.columns[f.name]
        if isinstance(col, np.ndarray) and col.ndim >= 2:
            est += col[0].nbytes if c.n else 0
    return max(1, min(CHUNK_ROWS, CHUNK_BYTES // est))


def _encode_column(f: Field, col: Any, lo: int, hi: int, st: type) -> list[bytes | _Piece]:
    """Rows ``lo:hi`` of one field as pieces (constant ``bytes`` or :class:`_Piece`)."""
    kind = f.type.kind
    n = hi - lo
    if isinstance(col, np.ndarray):
        part = col[lo:hi]
        if kind == "ndarray":
            return _ndarray_pieces(part)
        if kind == "float":
            mat = np.empty((n, 9), dtype=_U8)
            mat[:, 0] = 0xCB
            mat[:, 1:] = part.astype(">f8").view(_U8).reshape(n, 8)
            return [_Piece(mat, None, np.full(n, 9, np.int64))]
        if kind == "bool":
            return [_Piece(np.where(part, 0xC3, 0xC2).astype(_U8).reshape(n, 1), None, np.ones(n, np.int64))]
        if kind == "int":
            return [_int_piece(part)]
    if isinstance(col, _Text):
        return _text_pieces(col, lo, hi)
    values = col[lo:hi]
    if kind == "ndarray" and values and all(type(v) is np.ndarray for v in values):
        dt, shape = values[0].dtype, values[0].shape
        if all(v.dtype == dt and v.dtype.str == dt.str and v.shape == shape for v in values):
            return _ndarray_pieces(np.stack(values))  # arrays of one dtype and shape (a DataFrame's)
    if kind in ("str", "bytes") and values and set(map(type, values)) == {str if kind == "str" else bytes}:
        return _text_list_pieces(values, kind == "str")
    return [_packed_values(f, values, lo, st)]


def _text_list_pieces(values: list, is_str: bool) -> list[bytes | _Piece]:
    """A list of str (or bytes) as msgpack str (bin) headers and the UTF-8 bytes, back to back."""
    n = len(values)
    if is_str:
        text = "".join(values)
        flat = text.encode("utf-8")
        if len(flat) == len(text):  # ASCII: each value's bytes are its characters
            lens = np.fromiter(map(len, values), dtype=np.int64, count=n)
        else:
            raw = [v.encode("utf-8") for v in values]
            lens = np.fromiter(map(len, raw), dtype=np.int64, count=n)
    else:
        flat = b"".join(values)
        lens = np.fromiter(map(len, values), dtype=np.int64, count=n)
    return [*_len_header(lens, is_str), _Piece.var(np.frombuffer(flat, dtype=_U8), lens)]


def _packed_values(f: Field, values: list, lo: int, st: type) -> _Piece:
    """Each value packed by the per-object encoder (lists, dicts, ragged arrays, None...)."""
    packb = msgpack.Packer(use_bin_type=True).pack
    out = []
    for i, v in enumerate(values):
        try:
            out.append(packb(_encode_value(f, v)))
        except (TypeError, ValueError) as e:
            raise ColumnError(
                f"column {f.name!r}, row {lo + i}: {e} ({st.__name__}.{f.name} is {f.describe()})"
            ) from e
    lens = np.fromiter(map(len, out), dtype=np.int64, count=len(out))
    return _Piece.var(np.frombuffer(b"".join(out), dtype=_U8), lens)


def _bin_header(size: int) -> bytes:
    if size < 1 << 8:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 1 << 16:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def _ndarray_pieces(part: np.ndarray) -> list[bytes | _Piece]:
    """A stacked NDArray column: one header for every row, then each row's C-order bytes."""
    n = len(part)
    row_shape = part.shape[1:]
    ds = part.dtype.str.encode("ascii")
    head = bytes((len(ds),)) + ds + bytes((len(row_shape),)) + _shape_structs[len(row_shape)].pack(*row_shape)
    nbytes = part.dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
    const = _bin_header(len(head) + nbytes) + head
    data = np.ascontiguousarray(part).reshape(n, -1).view(_U8) if nbytes else np.zeros((n, 0), _U8)
    return [const, _Piece(data, None, np.full(n, nbytes, np.int64))]


def _len_header(lens: np.ndarray, is_str: bool) -> list[bytes | _Piece]:
    """msgpack str (or bin) headers for payloads of ``lens`` bytes."""
    n = len(lens)
    if n and (lens == lens[0]).all():
        m = int(lens[0])
        return [msgpack.packb("x" * m)[: -m or None] if is_str else _bin_header(m)]
    mat = np.zeros((n, 5), dtype=_U8)
    be = lens.astype(">u4").view(_U8).reshape(n, 4)
    hl = np.empty(n, np.int64)
    if is_str:
        small = lens < 32
        b8, b16 = (lens >= 32) & (lens < 1 << 8), (lens >= 1 << 8) & (lens < 1 << 16)
        codes = (0xD9, 0xDA, 0xDB)
        mat[small, 0] = 0xA0 | lens[small]
        hl[small] = 1
    else:
        small = np.zeros(n, bool)
        b8, b16 = lens < 1 << 8, (lens >= 1 << 8) & (lens < 1 << 16)
        codes = (0xC4, 0xC5, 0xC6)
    b32 = lens >= 1 << 16
    for mask, code, w in ((b8, codes[0], 1), (b16, codes[1], 2), (b32, codes[2], 4)):
        mat[mask, 0] = code
        mat[mask, 1 : 1 + w] = be[mask, 4 - w :]
        hl[mask] = 1 + w
    return [_Piece.var(mat[np.arange(5) < hl[:, None]], hl)]


def _text_pieces(col: _Text, lo: int, hi: int) -> list[bytes | _Piece]:
    offs = col.offsets[lo : hi + 1]
    lens = np.diff(offs)
    flat = col.data[int(offs[0]) : int(offs[-1])]
    return [*_len_header(lens, col.is_str), _Piece.var(flat, lens)]


def _int_piece(part: np.ndarray) -> _Piece:
    """msgpack ints as msgpack-python packs them: the smallest form, unsigned for v >= 0."""
    n = len(part)
    if part.dtype.kind == "u" and part.dtype.itemsize == 8 and n and part.max() > np.iinfo(np.int64).max:
        big = part > np.iinfo(np.int64).max
        v = part.astype(np.int64)  # wraps; the wrapped rows are written as uint64 below
    else:
        big = None
        v = part.astype(np.int64)
    be = v.astype(">i8").view(_U8).reshape(n, 8)
    mat = np.zeros((n, 9), dtype=_U8)
    lens = np.empty(n, np.int64)
    fix = (v >= -32) & (v < 128)
    mat[fix, 0] = be[fix, 7]
    lens[fix] = 1
    forms = (
        ((v >= 128) & (v < 1 << 8), 0xCC, 1),
        ((v >= 1 << 8) & (v < 1 << 16), 0xCD, 2),
        ((v >= 1 << 16) & (v < 1 << 32), 0xCE, 4),
        (v >= 1 << 32, 0xCF, 8),
        ((v >= -(1 << 7)) & (v < -32), 0xD0, 1),
        ((v >= -(1 << 15)) & (v < -(1 << 7)), 0xD1, 2),
        ((v >= -(1 << 31)) & (v < -(1 << 15)), 0xD2, 4),
        (v < -(1 << 31), 0xD3, 8),
    )
    for mask, code, w in forms:
        if big is not None:
            mask = mask & ~big
        mat[mask, 0] = code
        mat[mask, 1 : 1 + w] = be[mask, 8 - w :]
        lens[mask] = 1 + w
    if big is not None:
        mat[big, 0] = 0xCF
        mat[big, 1:] = be[big]
        lens[big] = 9
    if n and (lens == lens[0]).all():
        w = int(lens[0])
        return _Piece(np.ascontiguousarray(mat[:, :w]), None, lens)
    return _Piece(None, mat[np.arange(9) < lens[:, None]], lens)
