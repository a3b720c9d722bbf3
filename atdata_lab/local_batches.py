"""Batches from local shards through their offset index: large samples with their arrays read
straight into the batch (:func:`read_batch`), small ones decoded by columns, a block of samples at
a time (:func:`read_small_batch`, described further down).

A batch of images read through a memory map costs one copy per image plus the page faults of
touching the mapping. Here a run of consecutive samples of one shard is read with one
``preadv``: the data bytes of each array go from the page cache straight into their row of the
batch array (one kernel copy, no faults), and everything else (tar headers, msgpack framing, the
other fields, array headers) into a small scratch buffer, where it is checked and decoded.

Where the array bytes sit inside a sample is taken from the first sample read of the shard (the
*layout*) and checked for every sample:

- the tar header checksum of the first sample of each read (the offset index still describes the
  file);
- the msgpack ``bin`` header of each cut array, which must be the layout's. It is then rewritten
  to the length of the bytes kept (the array header), so that the sample without its array data
  is valid msgpack, and the C unpacker decodes all of it: any other structure fails there;
- each array header, which must be the layout's (same dtype and shape).

A batch that does not fit the layout (arrays of different shapes, optional arrays that are
missing, anything unexpected) is not read this way: :func:`read_batch` returns None and the caller
decodes whole samples as usual, so errors are reported exactly as on the ordinary path.
"""

from __future__ import annotations

import functools
import itertools
import mmap
import operator
import os
import struct
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import msgpack
import numpy as np

from .errors import ShardError
from .msgpack_view import unpack_map_views
from .ndarray_codec import NDArrayFormatError, parse_ndarray_header
from .shards import ShardInfo
from .tar import BLOCK, _verify_checksums

__all__ = [
    "LocalShard",
    "MemberRef",
    "SMALL_KINDS",
    "member_refs",
    "read_batch",
    "read_small_batch",
    "sample_sizes_are_large",
]

# arrays smaller than this are not worth a row of their own in the read
MIN_CUT = 4096
IOV_MAX = 1024
_BIN_HEADER = {0xC4: (2, struct.Struct(">B")), 0xC5: (3, struct.Struct(">H")), 0xC6: (5, struct.Struct(">I"))}


class _Layout(NamedTuple):
    names: tuple[str, ...]  # the array fields read straight into the batch, in sample order
    starts: tuple[int, ...]  # where each array's data starts in the sample (after its array header)
    lengths: tuple[int, ...]  # bytes of each array's data
    headers: tuple[bytes, ...]  # each array's header (dtype and shape)
    dtypes: tuple[np.dtype, ...]
    shapes: tuple[tuple[int, ...], ...]
    # per cut array: where its msgpack bin header sits in the sample without the cut bytes, that
    # header as stored, and rewritten to the length kept
    bin_at: tuple[int, ...]
    bin_stored: tuple[bytes, ...]
    bin_kept: tuple[bytes, ...]
    cut: int  # bytes cut from each sample


class LocalShard:
    """One local shard, open for reads by its offset index."""

    def __init__(self, url: str, path: str, info: ShardInfo) -> None:
        self.url = url
        self.keys = info.keys
        self.offsets = np.asarray(info.offsets, dtype=np.int64)  # [data offset, size] per sample
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)
        self.layout: _Layout | None = None
        self.layout_tried = False
        # small samples (read_small_batch): the file mapped, the block of columns decoded last
        self.small = False
        self.u8: np.ndarray | None = None
        self.mv: memoryview | None = None
        self.block: tuple[int, int, dict[str, Any] | None] | None = None
        self.block_n = SMALL_BLOCK
        self.misses = 0

    @functools.cached_property
    def spans(self) -> list[list[int]]:
        """The offsets as lists (faster to index one by one)."""
        return self.offsets.tolist()

    def read_member(self, j: int) -> bytes:
        """Sample ``j``'s msgpack bytes."""
        off, size = self.spans[j]
        data = os.pread(self.fd, size, off)
        if len(data) != size:
            raise ShardError(
                f"shard {self.url}: sample {self.keys[j]!r} is truncated (expected {size} bytes, "
                f"got {len(data)}); the file changed since it was indexed: re-insert the dataset"
            )
        return data

    def find_layout(self, j: int, is_array_field: Callable[[str], bool]) -> _Layout | None:
        """The array layout of sample ``j`` (None: nothing worth cutting out, or not decodable)."""
        data = self.read_member(j)
        try:
            fields = unpack_map_views(data)
        except ValueError:
            return None
        base = np.frombuffer(data, np.uint8, count=0).__array_interface__["data"][0]
        found = []
        for name, value in fields.items():
            if type(value) is not memoryview or not is_array_field(name) or value[:6] == b"\x93NUMPY":
                continue
            try:
                dt, shape, head = parse_ndarray_header(value)
            except NDArrayFormatError:
                continue
            if len(value) - head < MIN_CUT:
                continue
            at = (
                np.frombuffer(value, np.uint8, count=0).__array_interface__["data"][0] - base
            )  # the bin's bytes
            for kind, (hb, fmt) in _BIN_HEADER.items():
                if at >= hb and data[at - hb] == kind and fmt.unpack_from(data, at - hb + 1)[0] == len(value):
                    break
            else:
                continue
            kept = bytes([kind]) + fmt.pack(head)
            found.append(
                (
                    at,
                    name,
                    head,
                    len(value) - head,
                    bytes(value[:head]),
                    dt,
                    tuple(shape),
                    hb,
                    bytes(data[at - hb : at]),
                    kept,
                )
            )
        if not found:
            return None
        found.sort()
        cut, bin_at = 0, []
        for at, _name, _head, length, _h, _dt, _shape, hb, _stored, _kept in found:
            bin_at.append(at - hb - cut)
            cut += length
        return _Layout(
            names=tuple(f[1] for f in found),
            starts=tuple(f[0] + f[2] for f in found),
            lengths=tuple(f[3] for f in found),
            headers=tuple(f[4] for f in found),
            dtypes=tuple(f[5] for f in found),
            shapes=tuple(f[6] for f in found),
            bin_at=tuple(bin_at),
            bin_stored=tuple(f[8] for f in found),
            bin_kept=tuple(f[9] for f in found),
            cut=cut,
        )


class MemberRef(NamedTuple):
    """Sample ``j`` of a :class:`LocalShard`, not read yet."""

    shard: LocalShard
    j: int


def member_refs(shard: LocalShard) -> Iterator[MemberRef]:
    """A :class:`MemberRef` for each sample of ``shard``, in order (made without a Python call
    per sample)."""
    return map(
        tuple.__new__, itertools.repeat(MemberRef), zip(itertools.repeat(shard), range(len(shard.keys)))
    )


def _runs(refs: list[MemberRef], longest: int) -> list[tuple[int, int]]:
    """Split a batch into runs of consecutive samples of one shard: ``(first row, end row)``."""
    first, n = refs[0], len(refs)
    if n <= longest and refs[-1].shard is first.shard and refs[-1].j - first.j == n - 1:
        # the usual batch, one run: checked with C-level loops
        one = all(map(operator.is_, map(_SHARD, refs), itertools.repeat(first.shard)))
        if one and list(map(_J, refs)) == list(range(first.j, first.j + n)):
            return [(0, n)]
    runs, lo = [], 0
    for i in range(1, n + 1):
        if (
            i == n
            or refs[i].shard is not refs[lo].shard
            or refs[i].j != refs[i - 1].j + 1
            or i - lo >= longest
        ):
            runs.append((lo, i))
            lo = i
    return runs


_SHARD, _J = operator.itemgetter(0), operator.itemgetter(1)


def read_batch(
    refs: list[MemberRef], is_array_field: Callable[[str], bool]
) -> tuple[list[dict], dict[str, np.ndarray]] | None:
    """Read a batch: the samples' fields and the batch arrays of the cut array fields (in the
    fields, those hold just their array header).

    Returns None when the batch does not fit its shards' layouts (the caller then reads whole
    samples); raises ``ShardError`` for a damaged tar header or a file shorter than its index.
    """
    layout: _Layout | None = None
    runs = _runs(refs, len(refs))
    for lo, _hi in runs:  # each shard's layout, from its first sample in the batch
        ref = refs[lo]
        sh = ref.shard
        if not sh.layout_tried:
            sh.layout = sh.find_layout(ref.j, is_array_field)
            sh.layout_tried = True
        if sh.layout is None:
            return None
        if layout is None:
            layout = sh.layout
        elif sh.layout is not layout and (sh.layout.names, sh.layout.headers) != (
            layout.names,
            layout.headers,
        ):
            return None  # shards with different array shapes: not one batch array
    assert layout is not None
    n = len(refs)
    arrays = {
        name: np.empty((n, *shape), dtype=dt)
        for name, dt, shape in zip(layout.names, layout.dtypes, layout.shapes)
    }
    rows = [memoryview(arrays[name]).cast("B") for name in layout.names]  # type: ignore[arg-type]
    longest = max(1, IOV_MAX // (2 * len(layout.names) + 2))
    if any(hi - lo > longest for lo, hi in runs):
        runs = [(a, min(a + longest, hi)) for lo, hi in runs for a in range(lo, hi, longest)]
    unpackb = msgpack.unpackb
    maps: list[dict] = []
    for lo, hi in runs:
        sh = refs[lo].shard
        lay = sh.layout
        assert lay is not None
        spans = sh.spans[refs[lo].j : refs[hi - 1].j + 1]
        cuts = tuple(zip(lay.starts, lay.lengths))
        reach = lay.starts[-1] + lay.lengths[-1]
        if min(map(_J, spans)) < reach:
            return None  # a sample too small for the layout
        start = spans[0][0] - BLOCK  # from the first sample's tar header
        if start < 0:
            return None
        end = spans[-1][0] + spans[-1][1]
        scratch = bytearray(end - start - lay.cut * (hi - lo))
        sv = memoryview(scratch)
        iov: list[memoryview] = []
        add = iov.append
        pos, spos = start, 0
        at_of = []
        for r, (off, size) in enumerate(spans, lo):
            if off - BLOCK < pos and r > lo:
                return None  # no tar header between two samples: not an index this reader can trust
            at_of.append(spos + off - pos)
            for k, (cut_at, length) in enumerate(cuts):
                gap = off + cut_at - pos
                if gap < 0:
                    return None
                if gap:
                    add(sv[spos : spos + gap])
                    spos += gap
                add(rows[k][r * length : (r + 1) * length])
                pos = off + cut_at + length
            gap = off + size - pos
            if gap < 0:
                return None
            if gap:
                add(sv[spos : spos + gap])
                spos += gap
            pos = off + size
        got = os.preadv(sh.fd, iov, start)
        if got != end - start:
            raise ShardError(
                f"shard {sh.url} is shorter than its offset index says (read {got} of {end - start} bytes "
                f"at byte {start}); the file changed since it was indexed: re-insert the dataset"
            )
        # the offset index still describes this file: the run's first tar header is where it says
        # (the samples' own bytes are checked below; the other headers are not needed to read them)
        _verify_checksums(scratch, [0], [sh.keys[refs[lo].j]], sh.url, start)
        checks = tuple(zip(lay.bin_at, lay.bin_stored, lay.bin_kept, lay.names, lay.headers))
        for at, (_off, size) in zip(at_of, spans):
            for bin_at, stored, kept, _name, _header in checks:
                p = at + bin_at
                if not scratch.startswith(stored, p):
                    return None
                sv[p : p + len(kept)] = kept
            try:
                fields = unpackb(sv[at : at + size - lay.cut])
            except Exception:  # noqa: BLE001 - any decode failure: not this layout
                return None
            if type(fields) is not dict:
                return None
            for _bin_at, _stored, _kept, name, header in checks:
                if fields.get(name) != header:
                    return None
            maps.append(fields)
    return maps, arrays


def sample_sizes_are_large(info: ShardInfo, threshold: int) -> bool:
    """Whether a shard's samples are large enough for :func:`read_batch` to be worth it."""
    n = info.num_samples
    return n > 0 and float(np.median(info.offsets[:: max(1, n // 1024), 1])) >= threshold


# ---------------------------------------------------------------------------- small samples
#
# Samples of a few hundred bytes cost more in per-sample Python work (one msgpack decode, one
# dict, per-field lists) than in reading. Our encoding is deterministic: samples of one type
# written from values of one shape have the same bytes in the same places, except for the values.
# So a run of samples (a *block*) is decoded column by column: the samples' bytes are seen as the
# rows of a 2-D array (a strided view of the mapped shard when the samples are evenly spaced, as
# tar padding makes them, else one gather), every constant byte of the layout (map header, keys,
# type bytes, array headers) is compared for every row at once, fixed-size values (arrays, floats,
# bools) come out as one slice per column, and variable ones (str, int, bin) are located per row
# with a few array operations; only str and bin values are then made one by one.
#
# The layout is that of the block's first sample. The block ends before the first sample that
# does not fit it (a different field order, array shape, type byte, a truncated value); the
# batches that reach that sample are decoded as usual (:func:`read_small_batch` returns None), so
# whatever is wrong with it is reported exactly as on the ordinary path. The first tar header of
# each block is checked (the offset index still describes the file), as for large samples.

SMALL_BLOCK = 4096  # samples decoded at once at most
SMALL_BLOCK_MIN = 256
SMALL_MISSES = 16  # blocks in a row that fit no layout: decode the shard's samples as usual
GATHER_MAX = 16 << 20  # bytes of samples (with their padding) per block at most
PAD = 16  # bytes read past a sample's end at most (a variable value's header)
# the codec's field kinds this reader decodes; others (list, dict) are decoded as usual
SMALL_KINDS = frozenset({"ndarray", "float", "int", "str", "bool", "bytes"})
_INT_WIDTH = np.zeros(256, dtype=np.int64)
_INT_WIDTH[[0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3]] = [1, 2, 4, 8, 1, 2, 4, 8]
_CONST, _ARRAY, _F64, _BOOL, _STR, _INT, _BIN = range(7)


def _small_layout(s: bytes, kinds: dict[str, str]) -> list[tuple] | None:
    """The layout of one sample's bytes: ``(_CONST, bytes)`` and ``(kind, field name, ...)`` steps;
    None when a value is of a type decoded here for no field (or a field of ``kinds`` is missing)."""
    steps: list[tuple] = []
    const = bytearray()

    def flush() -> None:
        if const:
            steps.append((_CONST, bytes(const)))
            const.clear()

    try:
        t = s[0]
        if 0x80 <= t <= 0x8F:
            count, i = t & 0x0F, 1
        elif t == 0xDE:
            count, i = struct.unpack_from(">H", s, 1)[0], 3
        else:
            return None
        const += s[:i]
        seen: set[str] = set()
        for _ in range(count):
            t = s[i]
            if 0xA0 <= t <= 0xBF:
                end = i + 1 + (t & 0x1F)
            elif t == 0xD9:
                end = i + 2 + s[i + 1]
            else:
                return None
            name = s[i + (1 if t != 0xD9 else 2) : end].decode("utf-8")
            if name in seen:
                return None
            seen.add(name)
            const += s[i:end]
            i = end
            t = s[i]
            kind = kinds.get(name)
            if t == 0xCB and kind in ("float", None):
                const.append(t)
                flush()
                steps.append((_F64, name))
                i += 9
            elif t in (0xC2, 0xC3) and kind in ("bool", None):
                flush()
                steps.append((_BOOL, name))
                i += 1
            elif (0xA0 <= t <= 0xBF or t in (0xD9, 0xDA)) and kind in ("str", None):
                flush()
                steps.append((_STR, name))
                i += (
                    1 + (t & 0x1F)
                    if t <= 0xBF
                    else (2 + s[i + 1] if t == 0xD9 else 3 + (s[i + 1] << 8 | s[i + 2]))
                )
            elif (t <= 0x7F or t >= 0xE0 or 0xCC <= t <= 0xD3) and kind in ("int", None):
                flush()
                steps.append((_INT, name))
                i += 1 if (t <= 0x7F or t >= 0xE0) else 1 + int(_INT_WIDTH[t])
            elif t in _BIN_HEADER and kind in ("bytes", None):
                flush()
                steps.append((_BIN, name))
                hb, fmt = _BIN_HEADER[t]
                i += hb + fmt.unpack_from(s, i + 1)[0]
            elif t in _BIN_HEADER and kind == "ndarray":
                hb, fmt = _BIN_HEADER[t]
                size = fmt.unpack_from(s, i + 1)[0]
                value = s[i + hb : i + hb + size]
                if value[:6] == b"\x93NUMPY":
                    return None
                dt, shape, head = parse_ndarray_header(value)
                const += s[i : i + hb + head]
                flush()
                steps.append((_ARRAY, name, size - head, dt, tuple(shape)))
                i += hb + size
            else:
                return None
        flush()
    except (IndexError, ValueError, struct.error, NDArrayFormatError):
        return None
    if i != len(s) or not set(kinds) <= seen:
        return None
    return steps


def _decode_block(sh: LocalShard, a: int, n: int, kinds: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Decode samples ``a .. a+n`` of a small-sample shard by columns, up to the first that does
    not fit the layout of sample ``a``: ``(how many, {field: column})``."""
    if sh.u8 is None or sh.mv is None:
        size = os.fstat(sh.fd).st_size
        sh.mv = memoryview(mmap.mmap(sh.fd, size, access=mmap.ACCESS_READ) if size else b"")
        sh.u8 = np.frombuffer(sh.mv, np.uint8)
    u8, mv = sh.u8, sh.mv
    spans = sh.offsets[a : a + n]
    most = max(1, GATHER_MAX // (int(spans[:, 1].max()) + PAD))
    if n > most:  # a large sample among small ones: a shorter block (each row is copied out whole)
        n, spans = most, spans[:most]
    offs, sizes = spans[:, 0], spans[:, 1]
    first = int(offs[0])
    if int((offs + sizes).max()) > len(u8):
        raise ShardError(
            f"shard {sh.url} is shorter than its offset index says ({len(u8)} bytes); the file changed "
            "since it was indexed: re-insert the dataset"
        )
    if int(offs.min()) < BLOCK or int(sizes.min()) < 0:
        return 0, {}  # not offsets of tar members: decoded as usual, which reports it
    # the offset index still describes this file: the block's first tar header is where it says
    _verify_checksums(mv, [first - BLOCK], [sh.keys[a]], sh.url, 0)
    steps = _small_layout(u8[first : first + int(sizes[0])].tobytes(), kinds)
    if steps is None:
        return 0, {}
    width = int(sizes.max()) + PAD
    step = int(offs[1] - offs[0]) if n > 1 else 0
    if n == 1 or (step > 0 and bool((np.diff(offs) == step).all())):
        if first + (n - 1) * step + width > len(u8):
            return 0, {}
        rows = np.lib.stride_tricks.as_strided(u8[first:], (n, width), (step, 1), writeable=False)
    else:  # unevenly spaced: each sample's row copied out of a sliding view of the file
        if int(offs.max()) + width > len(u8):
            return 0, {}
        windows = np.lib.stride_tricks.as_strided(u8, (len(u8) - width + 1, width), (1, 1), writeable=False)
        rows = windows[offs]
    every = np.arange(n)[:, None]

    def take(rel: int | np.ndarray, length: int) -> np.ndarray:
        """``length`` bytes of each row from ``rel`` (rows whose ``rel`` is out of reach are
        already marked bad: their bytes are any)."""
        if isinstance(rel, int):
            return rows[:, rel : rel + length]
        return rows[every, np.minimum(rel, width - length)[:, None] + np.arange(length)]

    ok = np.ones(n, dtype=bool)
    rel: int | np.ndarray = 0
    cols: dict[str, Any] = {}
    texts: list[tuple[str, int, np.ndarray, np.ndarray]] = []  # (name, kind, starts, lengths)
    for st in steps:
        kind = st[0]
        need = len(st[1]) if kind == _CONST else st[2] if kind == _ARRAY else 8 if kind == _F64 else PAD
        if (rel if isinstance(rel, int) else 0) + need > width:
            return 0, {}  # the layout does not fit in these samples
        if kind == _CONST:
            c = st[1]
            ok &= (take(rel, len(c)) == np.frombuffer(c, np.uint8)).all(axis=1)
            rel = rel + len(c)
        elif kind == _ARRAY:
            _, name, length, dt, shape = st
            cols[name] = np.array(take(rel, length), order="C").view(dt).reshape((n, *shape))
            rel = rel + length
        elif kind == _F64:
            cols[st[1]] = np.ascontiguousarray(take(rel, 8)).view(">f8")[:, 0]
            rel = rel + 8
        elif kind == _BOOL:
            b = take(rel, 1)[:, 0]
            ok &= (b == 0xC2) | (b == 0xC3)
            cols[st[1]] = b == 0xC3
            rel = rel + 1
        elif kind == _INT:
            h = take(rel, 9)
            t = h[:, 0].astype(np.int64)
            small = (t <= 0x7F) | (t >= 0xE0)
            wide = _INT_WIDTH[t]
            ok &= small | (wide > 0)
            if bool(small.all()):
                vals = np.where(t >= 0xE0, t - 256, t)
            else:
                be = np.ascontiguousarray(h[:, 1:9]).view(">u8")[:, 0].astype(np.uint64)
                vals = (be >> (8 * (8 - np.where(wide > 0, wide, 8))).astype(np.uint64)).view(np.int64)
                ok &= ~((t == 0xCF) & (vals < 0))  # above int64: decoded as usual
                for w in (1, 2, 4):
                    m = (t >= 0xD0) & (wide == w) & (vals >= 1 << (8 * w - 1))
                    vals = np.where(m, vals - (1 << (8 * w)), vals)
                vals = np.where(small, np.where(t >= 0xE0, t - 256, t), vals)
            cols[st[1]] = vals
            rel = rel + np.where(small, 1, 1 + wide)
        else:  # _STR, _BIN
            h = take(rel, 5).astype(np.int64)
            t = h[:, 0]
            if kind == _STR:
                fix = (t & 0xE0) == 0xA0
                hb = np.where(fix, 1, np.where(t == 0xD9, 2, 3))
                length = np.where(fix, t & 0x1F, np.where(t == 0xD9, h[:, 1], h[:, 1] << 8 | h[:, 2]))
                ok &= fix | (t == 0xD9) | (t == 0xDA)
            else:
                hb = np.where(t == 0xC4, 2, np.where(t == 0xC5, 3, 5))
                length = np.where(
                    t == 0xC4,
                    h[:, 1],
                    np.where(
                        t == 0xC5,
                        h[:, 1] << 8 | h[:, 2],
                        h[:, 1] << 24 | h[:, 2] << 16 | h[:, 3] << 8 | h[:, 4],
                    ),
                )
                ok &= (t == 0xC4) | (t == 0xC5) | (t == 0xC6)
            start = rel + hb
            rel = start + length
            ok &= rel <= sizes  # before any later step reads at rel
            texts.append((st[1], kind, offs + start, length))
        if not isinstance(rel, int):
            ok &= rel <= sizes
            np.minimum(rel, width, out=rel)
    ok &= (rel == sizes) if not isinstance(rel, int) else (sizes == rel)
    k = n if bool(ok.all()) else int(np.argmin(ok))
    if k == 0:
        return 0, {}
    for name, kind, starts, lengths in texts:
        raw = _values(u8, mv, starts[:k], lengths[:k])
        if kind == _BIN:
            cols[name] = raw
            continue
        try:
            cols[name] = [v.decode("utf-8") for v in raw]
        except UnicodeDecodeError:
            out: list[str] = []
            try:
                for v in raw:
                    out.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                k = len(out)  # decoded as usual from here, which reports it
                if k == 0:
                    return 0, {}
            cols[name] = out
    result: dict[str, Any] = {}
    for name, kind_of in kinds.items():
        col = cols[name]
        if kind_of == "ndarray":
            result[name] = col[:k]
        elif isinstance(col, np.ndarray):
            result[name] = col[:k].tolist()
        else:
            result[name] = col[:k]
    return k, result


def _values(u8: np.ndarray, mv: memoryview, starts: np.ndarray, lengths: np.ndarray) -> list[bytes]:
    """The bytes at ``starts`` of ``lengths`` in the mapped shard: short ones through one gather
    into a fixed-width bytes array (whose items numpy gives back without their trailing NULs: used
    only when no value ends in one), others one by one."""
    longest = int(lengths.max()) if len(lengths) else 0
    if 0 < longest <= 256 and len(lengths) * longest <= GATHER_MAX:
        cols = np.arange(longest)
        idx = starts[:, None] + cols
        np.minimum(idx, len(u8) - 1, out=idx)
        got = u8[idx]
        got[cols >= lengths[:, None]] = 0
        nonempty = lengths > 0
        if not bool((got[nonempty, lengths[nonempty] - 1] == 0).any()):
            return got.view(f"S{longest}")[:, 0].tolist()
    return [mv[s : s + n].tobytes() for s, n in zip(starts.tolist(), lengths.tolist())]


def read_small_batch(sh: LocalShard, a: int, b: int, kinds: dict[str, str]) -> dict[str, Any] | None:
    """The columns of samples ``a .. b`` of a small-sample shard, decoded a block at a time
    (``kinds``: the sample type's field kinds, all in :data:`SMALL_KINDS`); None when they do not
    fit the layout (the caller decodes them as usual)."""
    blk = sh.block
    if blk is None or not blk[0] <= a < blk[1]:
        if sh.misses >= SMALL_MISSES:
            return None
        n = min(sh.block_n, len(sh.keys) - a)
        k, cols = _decode_block(sh, a, n, kinds)
        if k == 0:
            sh.misses += 1
            sh.block_n = SMALL_BLOCK_MIN
            blk = sh.block = (a, a + 1, None)
        else:
            sh.misses = 0
            sh.block_n = min(SMALL_BLOCK, 2 * sh.block_n) if k == n else max(SMALL_BLOCK_MIN, 2 * k)
            blk = sh.block = (a, a + k, cols)
    lo, hi, got = blk
    if got is None or b > hi:
        return None
    if a == lo and b == hi:
        return got
    return {name: col[a - lo : b - lo] for name, col in got.items()}
