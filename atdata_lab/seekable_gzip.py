"""Compact shards: ``.tar.gz`` files that any gzip reader reads as one stream and that we read one
block at a time.

A compressed shard is ONE gzip member whose deflate stream is cut by full flushes (``Z_FULL_FLUSH``)
into blocks of about :data:`BLOCK_TAR_BYTES` tar bytes, always between two tar members. A full flush
ends the block byte-aligned and forgets the history, so raw inflate started at a block's first byte
rebuilds exactly that block's tar bytes, alone. One member, not a series of members (BGZF's way):
Python's ``tarfile`` in stream mode (``"r|*"``, what webdataset and so atdata 0.7 read with) stops
after the first member of a multi-member file without a word, and would silently drop every sample
after the first block.

The writer records each block as a row of the shard's block table (in its offset index):
``(compressed start, compressed length, tar start, tar length, crc32 of the tar bytes)``. A sample's
offsets stay positions in the tar stream; random access finds the block holding it, reads that
block's compressed bytes only, inflates them with a bound (the table's length) and checks the crc32.
A shard scanned without a table (written elsewhere) gets one row per gzip member.

Bounds against forged files: a block is inflated to at most its recorded length plus one byte
(more is refused), no block larger than :data:`BLOCK_MAX` is inflated whole, and a tar member read
from a gzip stream may not exceed :data:`BLOCK_MAX` (the streaming reader's memory stays one read
chunk plus one member however far a small file would inflate).
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ShardError

__all__ = [
    "GZIP_MAGIC",
    "BLOCK_TAR_BYTES",
    "BLOCK_MAX",
    "GzipBlockWriter",
    "GunzipReader",
    "open_maybe_gzip",
    "read_span",
    "is_gzip_name",
    "find_blocks",
]

GZIP_MAGIC = b"\x1f\x8b"
# deflate, no flags, mtime 0, no extra flags, OS "unknown": the same bytes on every machine
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
BLOCK_TAR_BYTES = 32 << 10  # tar bytes per block (cut at the first member boundary past this)
LEVEL = 3  # small samples (benchmarks, 32 KiB blocks): 262 B each and 1.4x the write speed of level 6 (265 B)
BLOCK_MAX = 256 << 20  # bytes one block (or one tar member of a gzip stream) may inflate to
INPUT_CHUNK = 1 << 20
CACHE_BYTES = 32 << 20  # inflated blocks kept for random access (least recently used out first)
COLUMNS = 5  # c_start, c_len, d_start, d_len, crc32


def is_gzip_name(url: str) -> bool:
    """Whether a shard's name says it is compressed (``.tar.gz``, ``.tgz``)."""
    u = url.split("?", 1)[0].lower()
    return u.endswith((".gz", ".tgz"))


class GzipBlockWriter:
    """Compresses a shard's tar bytes into one gzip member cut into independently inflatable blocks.

    ``header()`` first, then ``compress(tar bytes)`` any number of times with ``end_block()``
    between two tar members, then ``finish()``; every call returns the bytes to write, in order.
    ``table()`` is the block table.
    """

    def __init__(self, level: int = LEVEL) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._crc = 0  # of all the tar bytes (the gzip trailer)
        self._size = 0
        self._cpos = 0  # compressed bytes returned so far (the header included)
        self._block_crc = 0
        self._block_c = len(HEADER)
        self._block_d = 0
        self._rows: list[tuple[int, int, int, int, int]] = []

    @property
    def block_bytes(self) -> int:
        """Tar bytes in the current block so far."""
        return self._size - self._block_d

    def header(self) -> bytes:
        self._cpos = len(HEADER)
        return HEADER

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        self._crc = zlib.crc32(data, self._crc)
        self._block_crc = zlib.crc32(data, self._block_crc)
        self._size += len(data)
        out = self._c.compress(data)
        self._cpos += len(out)
        return out

    def _close_row(self) -> None:
        """The current block's row of the table: where it is compressed, what it inflates to."""
        c_len, d_len = self._cpos - self._block_c, self._size - self._block_d
        self._rows.append((self._block_c, c_len, self._block_d, d_len, self._block_crc))

    def end_block(self) -> bytes:
        """Close the current block (a full flush); nothing when it is empty."""
        if self._size == self._block_d:
            return b""
        out = self._c.flush(zlib.Z_FULL_FLUSH)
        self._cpos += len(out)
        self._close_row()
        self._block_c, self._block_d, self._block_crc = self._cpos, self._size, 0
        return out

    def finish(self) -> bytes:
        """The last block (ended by the end of the deflate stream, not by a flush) and the gzip trailer."""
        out = self._c.flush(zlib.Z_FINISH)
        self._cpos += len(out)
        if self._size > self._block_d or not self._rows:
            self._close_row()
        trailer = (self._crc & 0xFFFFFFFF).to_bytes(4, "little") + (self._size & 0xFFFFFFFF).to_bytes(
            4, "little"
        )
        self._cpos += len(trailer)
        return out + trailer

    def table(self) -> np.ndarray:
        return np.asarray(self._rows, dtype=np.int64).reshape(-1, COLUMNS)


class GunzipReader:
    """A file-like ``read(n)`` over a gzip stream (one member or several): never inflates more
    than asked for, checks every member's crc32 and length, and notes each member as a block row
    (``table()``) for random access later. Damage is a :class:`ShardError` naming the shard."""

    def __init__(self, f: Any, shard: str, first: bytes = b"", *, table: bool = True) -> None:
        self.f = f
        self.shard = shard
        self._track = table  # compute each member's crc32 for its table row (zlib checks it anyway)
        self._in = first  # compressed bytes read but not consumed yet
        self._pos = 0  # file position of ``_in[0]``
        self._d: Any = None  # the current member's inflater (None between members)
        self._member_c = 0
        self._member_d = 0
        self._crc = 0
        self._out = 0  # tar bytes produced
        self._rows: list[tuple[int, int, int, int, int]] = []
        self._done = False

    def _more(self) -> bool:
        chunk = self.f.read(INPUT_CHUNK)
        if not chunk:
            return False
        self._in = self._in + chunk if self._in else chunk
        return True

    def _start_member(self) -> bool:
        """Skip zero padding; start the next member (False: the stream has ended)."""
        while True:
            stripped = self._in.lstrip(b"\x00")
            self._pos += len(self._in) - len(stripped)
            self._in = stripped
            if len(self._in) >= 2 or not self._more():
                break
        if not self._in:
            return False
        if self._in[:2] != GZIP_MAGIC:
            raise ShardError(
                f"shard {self.shard}: bytes at compressed byte {self._pos} are not gzip data; the file is "
                "damaged: re-download or re-write it"
            )
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member_c, self._member_d, self._crc = self._pos, self._out, 0
        return True

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n > 0 else INPUT_CHUNK
        while not self._done:
            if self._d is None and not self._start_member():
                self._done = True
                break
            if not self._in and not self._more():
                raise ShardError(
                    f"shard {self.shard}: the gzip stream is truncated (it ends inside a block); the file is "
                    "incomplete: re-download or re-write it"
                )
            data = self._in
            try:
                out = self._d.decompress(data, want)
            except zlib.error as e:
                raise ShardError(
                    f"shard {self.shard}: corrupt gzip data near compressed byte {self._pos} ({e}); the file is "
                    "damaged: re-download or re-write it"
                ) from None
            rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            self._pos += len(data) - len(rest)
            self._in = rest
            if out:
                if self._track:
                    self._crc = zlib.crc32(out, self._crc)
                self._out += len(out)
            if self._d.eof:
                self._rows.append(
                    (
                        self._member_c,
                        self._pos - self._member_c,
                        self._member_d,
                        self._out - self._member_d,
                        self._crc,
                    )
                )
                self._d = None
            if out:
                return out
        return b""

    def drain(self) -> None:
        """Read to the end (checking every member's crc32)."""
        while self.read(INPUT_CHUNK):
            pass

    def table(self) -> np.ndarray:
        return np.asarray(self._rows, dtype=np.int64).reshape(-1, COLUMNS)


def _deflate_start(data: Any, at: int) -> int:
    """Where the deflate data of the gzip member at ``at`` starts (after its header's optional fields)."""
    flags = data[at + 3]
    pos = at + 10
    if flags & 4:  # FEXTRA
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            pos = data.find(b"\x00", pos) + 1
            if pos == 0:
                raise ShardError("unterminated gzip header field")
    return pos + (2 if flags & 2 else 0)  # FHCRC


def find_blocks(data: Any, member: np.ndarray, header_at: dict[str, int]) -> np.ndarray | None:
    """The blocks of one gzip member that start at full-flush points (as our writer makes them), for
    a shard scanned without its table: ``data`` is the whole file (a buffer), ``member`` its row
    from :class:`GunzipReader`, ``header_at`` the tar position of each msgpack member's header by
    name. None when there is nothing to split (or the split does not rebuild the member exactly).

    A candidate is the byte after each ``00 00 ff ff`` (the empty stored block a flush ends with)
    whose first 512 inflated bytes are the tar header of a known member; the blocks between the
    candidates are each inflated alone, and must add up to the member's length and crc32.
    """
    c0, c_len, d0, d_len, crc_all = (int(v) for v in member)
    if d_len > BLOCK_MAX * 64:
        return None
    try:
        start = _deflate_start(data, c0)
    except (ValueError, IndexError):
        return None
    end = c0 + c_len - 8  # the gzip trailer
    found = [(start, d0)]
    i = data.find(b"\x00\x00\xff\xff", start, end)
    while i >= 0:
        c = i + 4
        try:
            head = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[c : c + 4096], 512)
        except zlib.error:
            head = b""
        if len(head) == 512:
            name = head[:100].split(b"\x00", 1)[0].decode("utf-8", "replace")
            d = header_at.get(name)
            if d is not None and d > found[-1][1] and head == ustar_like(head):
                found.append((c, d))
        i = data.find(b"\x00\x00\xff\xff", c, end)
    if len(found) < 2:
        return None
    found.append((end, d0 + d_len))
    rows, crc = [], 0
    for (c, d), (c2, d2) in zip(found, found[1:]):
        try:
            out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[c:c2], d2 - d + 1)
        except zlib.error:
            return None
        if len(out) != d2 - d:
            return None
        crc = zlib.crc32(out, crc)
        rows.append((c, c2 - c, d, d2 - d, zlib.crc32(out)))
    if crc != crc_all:
        return None
    return np.asarray(rows, dtype=np.int64).reshape(-1, COLUMNS)


def ustar_like(head: bytes) -> bytes:
    """``head`` if it is a tar header with a valid checksum, else empty."""
    try:
        stored = int(head[148:156].split(b"\x00", 1)[0].strip(b" ") or b"-1", 8)
    except ValueError:
        return b""
    return head if stored == sum(head[:148]) + 8 * 32 + sum(head[156:]) else b""


class _Prefixed:
    """A reader whose first bytes were already read to look at them."""

    def __init__(self, f: Any, first: bytes) -> None:
        self.f = f
        self.first = first

    def read(self, n: int = -1) -> bytes:
        if self.first:
            head, self.first = self.first, b""
            return head
        return self.f.read(n)


def open_maybe_gzip(f: Any, shard: str, *, table: bool = True) -> tuple[Any, GunzipReader | None]:
    """``(reader, gunzip)``: the tar bytes of ``f`` (inflated when it starts like gzip), and the
    inflating reader (None for a plain tar; ``table=False``: its table's crc32s are not computed)."""
    first = f.read(2)
    if first[:2] == GZIP_MAGIC:
        g = GunzipReader(f, shard, first, table=table)
        return g, g
    return _Prefixed(f, first), None


_cache: OrderedDict[tuple, bytes] = OrderedDict()
_cache_bytes = 0
_cache_lock = threading.Lock()


def _inflate_block(comp: bytes, row: np.ndarray, shard: str) -> bytes:
    c_start, _c_len, d_start, d_len, crc = (int(v) for v in row)
    # a writer's block is raw deflate; a scanned shard's block is a whole gzip member (raw deflate
    # never starts with 0x1f: its block type bits would be the reserved 11)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS if comp[:2] == GZIP_MAGIC else -zlib.MAX_WBITS)
    try:
        out = d.decompress(comp, d_len + 1)  # bounded: never more than the table says, plus one byte
    except zlib.error as e:
        raise ShardError(
            f"shard {shard}: the gzip block at compressed byte {c_start} is corrupt ({e}); the file is damaged "
            "or changed since it was indexed: re-download or re-write it"
        ) from None
    if len(out) > d_len:
        raise ShardError(
            f"shard {shard}: the gzip block at compressed byte {c_start} inflates to more than the {d_len} "
            "bytes its offset index records (a forged or damaged file); refused"
        )
    if len(out) != d_len or zlib.crc32(out) != crc:
        raise ShardError(
            f"shard {shard}: the gzip block at compressed byte {c_start} (tar bytes {d_start}..{d_start + d_len}) "
            "does not inflate to the bytes its offset index records (crc32 or length differs); the file is "
            "damaged or changed since it was indexed: re-download or re-write it"
        )
    return out


def _block(blocks: np.ndarray, b: int, key: str, shard: str, fetch: Callable[[int, int], bytes]) -> bytes:
    global _cache_bytes
    row = blocks[b]
    c_start, c_len, _d_start, d_len = (int(v) for v in row[:4])
    if d_len > BLOCK_MAX:
        raise ShardError(
            f"shard {shard}: a gzip block of {d_len} bytes is past the {BLOCK_MAX}-byte bound of random access "
            "(a shard compressed elsewhere as one stream, or a forged file); read it in order, or re-write it "
            "with compression='gzip'"
        )
    ck = (key, c_start)
    with _cache_lock:
        got = _cache.get(ck)
        if got is not None:
            _cache.move_to_end(ck)
            return got
    comp = fetch(c_start, c_len)
    if len(comp) != c_len:
        raise ShardError(
            f"shard {shard} is shorter than its offset index says (gzip block at byte {c_start}); the file "
            "changed since it was indexed: re-insert the dataset"
        )
    out = _inflate_block(comp, row, shard)
    with _cache_lock:
        if ck not in _cache:
            _cache[ck] = out
            _cache_bytes += len(out)
            while _cache_bytes > CACHE_BYTES and len(_cache) > 1:
                _, old = _cache.popitem(last=False)
                _cache_bytes -= len(old)
    return out


def read_span(
    blocks: np.ndarray, key: str, shard: str, offset: int, size: int, fetch: Callable[[int, int], bytes]
) -> bytes:
    """``size`` tar bytes at tar position ``offset``, inflating only the block(s) holding them.

    ``blocks`` is the shard's block table, ``key`` names this version of the shard in the cache
    (its sha256), ``fetch(offset, size)`` reads compressed bytes of the file.
    """
    if size > BLOCK_MAX:
        raise ShardError(f"shard {shard}: a member of {size} bytes is past the {BLOCK_MAX}-byte bound")
    starts = blocks[:, 2]
    b = int(np.searchsorted(starts, offset, side="right")) - 1
    if b < 0 or size < 0:
        raise ShardError(f"shard {shard}: tar byte {offset} is in no gzip block of its offset index")
    parts: list[bytes] = []
    pos, end = offset, offset + size
    while pos < end or not parts:
        if b >= len(blocks):
            raise ShardError(
                f"shard {shard}: tar bytes {offset}..{end} run past the last gzip block of its offset index"
            )
        data = _block(blocks, b, key, shard, fetch)
        d_start = int(blocks[b, 2])
        lo = pos - d_start
        hi = min(end - d_start, len(data))
        parts.append(data[lo:hi])
        pos = d_start + hi
        b += 1
        if size == 0:
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)
