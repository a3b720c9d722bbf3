"""Batches of large samples from local shards, with their arrays read straight into the batch.

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

import os
import struct
import weakref
from collections.abc import Callable
from typing import NamedTuple

import msgpack
import numpy as np

from .errors import ShardError
from .msgpack_view import unpack_map_views
from .ndarray_codec import NDArrayFormatError, parse_ndarray_header
from .shards import ShardInfo
from .tar import BLOCK, _verify_checksums

__all__ = ["LocalShard", "MemberRef", "read_batch", "sample_sizes_are_large"]

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
        self.spans: list[list[int]] = info.offsets.tolist()  # [data offset, size] per sample
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)
        self.layout: _Layout | None = None
        self.layout_tried = False

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


def _runs(refs: list[MemberRef], longest: int) -> list[tuple[int, int]]:
    """Split a batch into runs of consecutive samples of one shard: ``(first row, end row)``."""
    runs, lo = [], 0
    for i in range(1, len(refs) + 1):
        if (
            i == len(refs)
            or refs[i].shard is not refs[lo].shard
            or refs[i].j != refs[i - 1].j + 1
            or i - lo >= longest
        ):
            runs.append((lo, i))
            lo = i
    return runs


def read_batch(
    refs: list[MemberRef], is_array_field: Callable[[str], bool]
) -> tuple[list[dict], dict[str, np.ndarray]] | None:
    """Read a batch: the samples' fields and the batch arrays of the cut array fields (in the
    fields, those hold just their array header).

    Returns None when the batch does not fit its shards' layouts (the caller then reads whole
    samples); raises ``ShardError`` for a damaged tar header or a file shorter than its index.
    """
    layout: _Layout | None = None
    for ref in refs:
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
    unpackb = msgpack.unpackb
    maps: list[dict] = []
    for lo, hi in _runs(refs, max(1, IOV_MAX // (2 * len(layout.names) + 2))):
        sh = refs[lo].shard
        lay = sh.layout
        assert lay is not None
        spans = sh.spans[refs[lo].j : refs[hi - 1].j + 1]
        cuts = tuple(zip(lay.starts, lay.lengths))
        reach = lay.starts[-1] + lay.lengths[-1]
        if min(size for _off, size in spans) < reach:
            return None  # a sample too small for the layout
        start = spans[0][0] - BLOCK  # from the first sample's tar header
        if start < 0:
            return None
        end = spans[-1][0] + spans[-1][1]
        scratch = bytearray(end - start - lay.cut * (hi - lo))
        sv = memoryview(scratch)
        iov: list[memoryview] = []
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
                    iov.append(sv[spos : spos + gap])
                    spos += gap
                iov.append(rows[k][r * length : (r + 1) * length])
                pos = off + cut_at + length
            gap = off + size - pos
            if gap < 0:
                return None
            if gap:
                iov.append(sv[spos : spos + gap])
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
                if sv[p : p + len(stored)] != stored:
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
    return info.num_samples > 0 and float(np.median(info.offsets[:, 1])) >= threshold
