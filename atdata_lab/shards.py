"""Shards: writing samples into WebDataset tars, and reading them back member by member.

This module knows tars, sinks and codecs, not datasets: :func:`~atdata_lab.dataset.write_samples`
and :meth:`~atdata_lab.index.Index.write` drive the writer.

Writing serializes each sample once, straight into the shard bytes, while computing the
shard's sha256 and a per-sample offset index (byte offset and length of each sample's
member), so sample *k* can later be read with one seek. Shards are staged out of sight and
published only when complete.
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import msgpack
import numpy as np

from .errors import InvalidArgumentError, ShardExistsError, ShardNotFoundError
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .seekable_gzip import (
    BLOCK_MAX,
    BLOCK_TAR_BYTES,
    GZIP_MAGIC,
    GzipBlockWriter,
    find_blocks,
    open_maybe_gzip,
)
from .stores.base import ShardSink
from .tar import BLOCK, END_OF_ARCHIVE, iter_members, member_keys, split_key, ustar_header, ustar_headers
from .urls import is_local, local_path, open_url

__all__ = [
    "ShardInfo",
    "ShardRow",
    "ShardSetWriter",
    "SidecarBuilder",
    "HintObserver",
    "encode_samples_into",
    "peek_samples",
    "scan_shard",
    "HashingReader",
    "iter_sample_members",
]

_PADS = [bytes(i) for i in range(BLOCK)]
SYNCS = 4  # files of a shard (the shard and its sidecars) made durable at once
_warned_exts: set[str] = set()


@dataclass
class ShardInfo:
    """What the index knows about one shard.

    Attributes:
        url: Where the shard is.
        checksum: sha256 hex digest of the whole file.
        size: Bytes.
        num_samples: Samples in the shard.
        offsets: ``int64`` array of shape (num_samples, 2): data offset and length of each
            sample's msgpack member, in order.
        keys: The sample keys, in order.
        blocks: For a gzip shard (``compression="gzip"``), its block table (see
            :mod:`atdata_lab.seekable_gzip`): ``int64`` rows of compressed start, compressed length,
            tar start, tar length and crc32 of each independently inflatable block; ``offsets`` are
            then positions in the inflated tar stream. None for a plain tar.
    """

    url: str
    checksum: str
    size: int
    num_samples: int
    offsets: np.ndarray = field(repr=False)
    keys: list[str] = field(repr=False)
    blocks: np.ndarray | None = field(default=None, repr=False)

    def index_blob(self) -> bytes:
        """Offsets and keys (and a gzip shard's block table) packed for storage in an index."""
        d: dict[str, Any] = {"o": np.ascontiguousarray(self.offsets, dtype="<i8").tobytes(), "k": self.keys}
        if self.blocks is not None:
            d["b"] = np.ascontiguousarray(self.blocks, dtype="<i8").tobytes()
        return msgpack.packb(d)

    @staticmethod
    def offsets_from_blob(blob: bytes) -> tuple[np.ndarray, list[str], np.ndarray | None]:
        d = msgpack.unpackb(blob)
        blocks = np.frombuffer(d["b"], dtype="<i8").reshape(-1, 5) if "b" in d else None
        return np.frombuffer(d["o"], dtype="<i8").reshape(-1, 2), d["k"], blocks

    def with_url(self, url: str) -> ShardInfo:
        return ShardInfo(
            url, self.checksum, self.size, self.num_samples, self.offsets, self.keys, self.blocks
        )


class ShardRow(NamedTuple):
    """What an index knows about a shard besides its offset index (fetched when first needed)."""

    url: str
    checksum: str
    size: int
    num_samples: int


class HintObserver:
    """Collects the dtype and shape of each NDArray field across the samples written."""

    def __init__(self, ndarray_fields: Iterable[str]) -> None:
        self.fields = list(ndarray_fields)
        self.dtypes: dict[str, str | None] = {}
        self.shapes: dict[str, tuple | None] = {}
        self._seen: set[str] = set()

    def observe(self, sample: Any) -> None:
        for name in self.fields:
            v = getattr(sample, name, None)
            if isinstance(v, np.ndarray):
                self.observe_array(name, v.dtype.str, v.shape)

    def observe_array(self, name: str, dtype: str, shape: tuple) -> None:
        """One array of field ``name`` (or a column of arrays all of this dtype and shape)."""
        if name not in self._seen:
            self._seen.add(name)
            self.dtypes[name] = dtype
            self.shapes[name] = shape
            return
        if self.dtypes[name] is not None and dtype != self.dtypes[name]:
            self.dtypes[name] = None  # mixed dtypes: record "any"
        old = self.shapes[name]
        if old is not None and old != shape:
            if len(old) != len(shape):
                self.shapes[name] = None
            else:
                self.shapes[name] = tuple(a if a == b else None for a, b in zip(old, shape))


class SidecarBuilder(Protocol):
    """What a shard writer feeds, per shard, to make files that are published with the shard (its
    manifest). ``values(sample)`` (a tuple, of the same length for every sample) is kept of each
    sample as it is written (None: nothing is kept); ``close`` gets them all, one after the other in
    one flat list (no tuple is kept per sample), with the shard's keys and offsets and the sha256
    digest of each sample's encoded bytes, when the shard is complete (a bad value raises there,
    before anything is published); the files are asked for when the shard is committed. Every
    member's tar header is one block, so a member starts ``BLOCK`` bytes before its data. The
    shard's ``checksum`` may not be known yet at ``close`` (it is once the writer has finished)."""

    values: Callable[[Any], tuple[Any, ...]] | None

    def close(self, info: ShardInfo, kept: list[Any], digests: list[bytes]) -> None: ...

    def files(self, shard_url: str, shard_size: int) -> list[tuple[str, bytes]]: ...


class _OpenShard:
    __slots__ = (
        "sink",
        "sha",
        "pos",
        "offsets",
        "offset_blocks",
        "keys",
        "buf",
        "side",
        "keep",
        "kept",
        "digests",
        "async_io",
        "unwritten",
        "unwritten_size",
        "gz",
        "written",
    )

    def __init__(
        self, sink: ShardSink, side: SidecarBuilder | None, gz: GzipBlockWriter | None = None
    ) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.pos = 0  # tar bytes so far
        self.written = 0  # file bytes so far (fewer than ``pos`` for a gzip shard)
        self.gz = gz
        self.offsets: list[tuple[int, int]] = []  # of members added one by one (add)
        self.offset_blocks: list[np.ndarray] = []  # (n, 2) blocks of offsets before ``offsets``
        self.keys: list[str] = []
        self.buf = bytearray()
        self.side = side
        self.keep = side.values if side is not None else None
        self.kept: list[Any] = []
        self.digests: list[bytes] = []
        self.async_io = False  # whether its bytes are hashed and written on the writing thread
        self.unwritten: list[Any] = []  # bytes not yet handed to that thread (nor hashed)
        self.unwritten_size = 0

    def all_offsets(self) -> np.ndarray:
        """The ``(members, 2)`` data offsets and sizes of every member so far, in order."""
        blocks = [*self.offset_blocks, np.asarray(self.offsets, dtype=np.int64).reshape(-1, 2)]
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def fold_offsets(self) -> None:
        """The offsets of members added one by one, as a block (before a block of rows follows)."""
        if self.offsets:
            self.offset_blocks.append(np.asarray(self.offsets, dtype=np.int64).reshape(-1, 2))
            self.offsets = []


class ShardSetWriter:
    """Writes members into a numbered series of shards, honouring maxcount and maxsize.

    Shards are staged; call :meth:`commit` to publish them all, or :meth:`abort`.

    Args:
        url_for: Shard index -> URL.
        open_sink: URL -> :class:`ShardSink`.
        maxcount: Samples per shard at most (None: no limit).
        maxsize: Bytes per shard at most (None: no limit). A single larger sample gets a shard of its own.
        sidecars: Shard URL -> a :class:`SidecarBuilder` (a manifest), fed each sample while the shard
            is written; on :meth:`commit` its files are written through ``open_sink`` and published
            just before their shard, so a shard that can be seen always has them complete.
        exists: URL -> whether a file is there (the store's); lets a commit keep the sidecar files
            already beside an identical shard that is reused.
        compression: None (plain tar) or ``"gzip"``: ``.tar.gz`` shards cut into blocks that inflate
            alone (:mod:`atdata_lab.seekable_gzip`); ``maxsize`` then counts the tar bytes.
    """

    FLUSH = 1 << 20
    DIRECT = 64 << 10  # payloads at least this large go to the sink as they are (not copied into a buffer)
    WRITE_ASYNC = 64 << 10  # from a write this large on, a shard's bytes are written on a second thread
    WRITE_BATCH = 2 << 20  # bytes handed to that thread at once
    IN_FLIGHT = 2  # batches handed to that thread and not yet written, at most (bounds memory)
    ROWS_BLOCK = 2 << 20  # tar bytes of the rows add_rows lays out at once

    def __init__(
        self,
        url_for: Callable[[int], str],
        open_sink: Callable[[str], ShardSink],
        *,
        maxcount: int | None = None,
        maxsize: int | None = None,
        sidecars: Callable[[str], SidecarBuilder] | None = None,
        exists: Callable[[str], bool] | None = None,
        compression: str | None = None,
    ) -> None:
        if compression not in (None, "gzip"):
            raise InvalidArgumentError(f"compression must be None or 'gzip', not {compression!r}")
        self.compression = compression
        if maxcount is not None and (not isinstance(maxcount, int) or maxcount < 1):
            raise InvalidArgumentError(f"maxcount must be a positive integer, not {maxcount!r}")
        if maxsize is not None and (not isinstance(maxsize, int) or maxsize < 2 * BLOCK):
            raise InvalidArgumentError(
                f"maxsize must be an integer of at least {2 * BLOCK} bytes, not {maxsize!r}"
            )
        self.url_for = url_for
        self.open_sink = open_sink
        self.maxcount = maxcount
        self.maxsize = maxsize
        self.sidecars = sidecars
        self.exists = exists
        self.infos: list[ShardInfo] = []
        # each shard, with its sidecar builder and size (the sidecar files are made when committing)
        self._staged: list[tuple[ShardSink, SidecarBuilder | None, int]] = []
        self.created: list[str] = []  # URLs of the shards commit() created (not found identical already)
        self._cur: _OpenShard | None = None
        self._io: ThreadPoolExecutor | None = None  # writes (and syncs) shards beside the encoding
        self._in_flight: deque[Future] = deque()
        self._syncer: ThreadPoolExecutor | None = None  # makes each shard durable once it is written
        self._syncing: deque[Future] = deque()
        self._unsummed: list[tuple[ShardInfo, Any]] = []  # closed shards still hashed on that thread

    def add(self, key: str, payload: bytes, ext: str = "msgpack", sample: Any = None) -> None:
        """Append one member; ``sample`` (the object ``payload`` encodes) feeds the sidecars."""
        cur = self._cur
        size = len(payload)
        padded = (size + BLOCK - 1) & ~(BLOCK - 1)
        if cur is not None and (
            (self.maxcount is not None and len(cur.keys) >= self.maxcount)
            or (self.maxsize is not None and cur.pos + BLOCK + padded + 2 * BLOCK > self.maxsize)
        ):
            self._close_current()
            cur = None
        if cur is None:
            cur = self._open_next()
        buf = cur.buf
        buf += ustar_header(f"{key}.{ext}", size)
        if cur.side is not None:
            cur.digests.append(sha256(payload).digest())
            if cur.keep is not None:
                cur.kept.extend(cur.keep(sample))
        cur.offsets.append((cur.pos + BLOCK, size))
        cur.keys.append(key)
        if size >= self.DIRECT and type(payload) is bytes and cur.gz is None:
            self._flush(cur)
            self._emit(cur, payload)
            buf = cur.buf
        else:
            buf += payload
        if padded != size:
            buf += _PADS[padded - size]
        cur.pos += BLOCK + padded
        if cur.gz is not None:
            if size + BLOCK > BLOCK_MAX:
                raise InvalidArgumentError(
                    f"sample {key!r} is {size} bytes, past the {BLOCK_MAX}-byte bound of a gzip shard's member; "
                    "write samples this large without compression"
                )
            if cur.gz.block_bytes + len(buf) >= BLOCK_TAR_BYTES:  # cut the block between two members
                self._flush(cur)
                self._emit(cur, cur.gz.end_block())
        elif len(buf) >= self.FLUSH:
            self._flush(cur)

    def _open_next(self) -> _OpenShard:
        url = self.url_for(len(self.infos))
        cur = self._cur = _OpenShard(
            self.open_sink(url),
            self.sidecars(url) if self.sidecars is not None else None,
            GzipBlockWriter() if self.compression else None,
        )
        if cur.gz is not None:
            self._emit(cur, cur.gz.header())
        return cur

    def add_rows(
        self, first: int, sizes: np.ndarray, fill: Callable[..., None], ext: str = "msgpack"
    ) -> None:
        """Append ``len(sizes)`` members keyed ``"%06d" % k`` from ``k = first`` on, with the bytes
        :meth:`add` would give them, laid out in tar blocks at once (no sidecars: use :meth:`add`).
        ``fill(block, starts, lo, hi, rows)`` writes the payloads of members ``lo:hi`` into the
        uint8 ``block`` at offsets ``starts``; ``rows`` is a ``(hi - lo, width)`` view of the members'
        data areas when they are all of one padded size (else None)."""
        if self.sidecars is not None:
            raise InvalidArgumentError("add_rows() does not feed sidecars; add() does")
        n = len(sizes)
        member = BLOCK + ((sizes + (BLOCK - 1)) & ~(BLOCK - 1))
        lo = 0
        while lo < n:
            cur = self._cur
            count = len(cur.keys) if cur is not None else 0
            take = n - lo if self.maxcount is None else min(n - lo, self.maxcount - count)
            if self.maxsize is not None:
                ends = (cur.pos if cur is not None else 0) + np.cumsum(member[lo : lo + take]) + 2 * BLOCK
                take = int(np.searchsorted(ends, self.maxsize, side="right"))
            if take <= 0 and cur is not None and count:
                self._close_current()
                continue
            take = max(take, 1)  # a member larger than maxsize gets a shard of its own
            if cur is None:
                cur = self._open_next()
            hi = lo + take
            # blocks of about ROWS_BLOCK bytes: one is hashed and written while the next is built
            ends = np.cumsum(member[lo:hi])
            a, done = lo, 0
            while a < hi:
                b = lo + int(np.searchsorted(ends, done + self.ROWS_BLOCK, side="right"))
                b = min(hi, max(a + 1, b))
                self._add_block(cur, first, sizes[a:b], member[a:b], fill, a, b, ext)
                done, a = int(ends[b - lo - 1]), b
            lo = hi

    def _add_block(
        self,
        cur: _OpenShard,
        first: int,
        sizes: np.ndarray,
        member: np.ndarray,
        fill: Callable[..., None],
        lo: int,
        hi: int,
        ext: str,
    ) -> None:
        total = int(member.sum())
        block = np.zeros(total, dtype=np.uint8)
        if (member == member[0]).all():  # members of one padded size: a (rows, member) grid
            grid = block.reshape(hi - lo, int(member[0]))
            ustar_headers(first + lo, sizes, ext, out=grid[:, :BLOCK])
            starts = np.arange(hi - lo, dtype=np.int64) * int(member[0]) + BLOCK
            fill(block, starts, lo, hi, grid[:, BLOCK:])
        else:
            starts = np.cumsum(member) - member
            block.reshape(-1, BLOCK)[starts // BLOCK] = ustar_headers(first + lo, sizes, ext)
            starts += BLOCK
            fill(block, starts, lo, hi, None)
        cur.fold_offsets()
        cur.offset_blocks.append(np.stack([starts + cur.pos, sizes.astype(np.int64)], axis=1))
        cur.keys.extend(member_keys(first + lo, hi - lo))
        cur.pos += total
        self._flush(cur)
        if cur.gz is None:
            self._emit(cur, block.data)
        else:
            self._compress_members(cur, block, sizes, member)

    def _compress_members(
        self, cur: _OpenShard, block: np.ndarray, sizes: np.ndarray, member: np.ndarray
    ) -> None:
        """Compress members laid out one after another in ``block``, cutting the gzip block after
        the member that brings it to ``BLOCK_TAR_BYTES``, where :meth:`add` cuts it."""
        if int(sizes.max()) + BLOCK > BLOCK_MAX:
            raise InvalidArgumentError(
                f"a sample of {int(sizes.max())} bytes is past the {BLOCK_MAX}-byte bound of a gzip "
                "shard's member; write samples this large without compression"
            )
        gz = cur.gz
        assert gz is not None
        ends = np.cumsum(member)
        start = 0
        while start < len(block):
            j = int(np.searchsorted(ends, start + BLOCK_TAR_BYTES - gz.block_bytes, side="left"))
            if j >= len(ends):
                self._emit(cur, gz.compress(block[start:].data))
                return
            end = int(ends[j])
            self._emit(cur, gz.compress(block[start:end].data))
            self._emit(cur, gz.end_block())
            start = end

    def _flush(self, cur: _OpenShard) -> None:
        if cur.buf:
            data, cur.buf = cur.buf, bytearray()  # handed over whole, never touched again: no copy
            self._emit(cur, memoryview(data) if cur.gz is None else cur.gz.compress(data))

    def _emit(self, cur: _OpenShard, data: bytes | memoryview) -> None:
        """Hash ``data`` and write it. Large writes (and all after them in the shard) are hashed and
        written on a second thread, a few MiB at a time and in order, while this one encodes the next
        samples (hashlib and file writes let go of the GIL: two cores work); ``data`` must not change
        afterwards. The shard's checksum is then known once that thread is done with it (see
        :meth:`_settle`)."""
        if not data:
            return
        cur.written += len(data)
        if not cur.async_io and len(data) < self.WRITE_ASYNC:
            cur.sha.update(data)
            cur.sink.write(data)
            return
        cur.async_io = True
        cur.unwritten.append(data)
        cur.unwritten_size += len(data)
        if cur.unwritten_size >= self.WRITE_BATCH:
            self._hand_over(cur)

    def _hand_over(self, cur: _OpenShard, sync: bool = False) -> None:
        if self._io is None:
            self._io = ThreadPoolExecutor(1, thread_name_prefix="atdata-write")
        while len(self._in_flight) >= self.IN_FLIGHT:  # memory stays bounded if the disk lags
            self._in_flight.popleft().result()  # raises what that batch's hashing or writing raised
        job = self._io.submit(_write_all, cur.sink, cur.sha, cur.unwritten)
        self._in_flight.append(job)
        cur.unwritten, cur.unwritten_size = [], 0
        if sync:  # the shard made durable on a third thread (it waits for the disk, not a core)
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="atdata-sync")
            self._syncing.append(self._syncer.submit(_sync_after, job, cur.sink))
        while self._syncing and self._syncing[0].done():  # a failed sync stops the write early
            self._syncing.popleft().result()

    def _settle(self) -> None:
        """Wait for the batches in flight (raising what their hashing or writing raised), then give
        the shards closed before them their checksums (their last bytes were hashed on that thread)."""
        for waiting in (self._in_flight, self._syncing):
            while waiting:
                waiting[0].result()
                waiting.popleft()
        for info, sha in self._unsummed:
            info.checksum = sha.hexdigest()
        self._unsummed.clear()

    def _stop_io(self, check: bool) -> None:
        """Wait for the writing thread (``check``: raise what a write raised) and stop it."""
        try:
            if check:
                self._settle()
        finally:
            self._in_flight.clear()
            self._syncing.clear()
            for pool in (self._io, self._syncer):
                if pool is not None:
                    pool.shutdown()
            self._io = self._syncer = None

    def _close_current(self) -> None:
        cur = self._cur
        if cur is None:
            return
        cur.buf += END_OF_ARCHIVE
        cur.pos += len(END_OF_ARCHIVE)
        self._flush(cur)
        if cur.gz is not None:
            self._emit(cur, cur.gz.finish())
        if cur.async_io:  # the rest written, then synced (on a third thread) while the next is encoded
            self._hand_over(cur, sync=True)
        self._cur = None
        info = ShardInfo(
            cur.sink.url,
            "" if cur.async_io else cur.sha.hexdigest(),  # else filled in by _settle
            cur.written,
            len(cur.keys),
            cur.all_offsets(),
            cur.keys,
            cur.gz.table() if cur.gz is not None else None,
        )
        if cur.async_io:
            self._unsummed.append((info, cur.sha))
        self._staged.append((cur.sink, cur.side, cur.written))
        self.infos.append(info)
        if cur.side is not None:
            cur.side.close(info, cur.kept, cur.digests)
            cur.kept, cur.digests = [], []

    def finish(self) -> list[ShardInfo]:
        """Close the last shard; return every shard's info (still staged, not published)."""
        self._close_current()
        self._stop_io(check=True)
        return self.infos

    def commit(self) -> None:
        """Publish every staged shard at its final URL, each just after its sidecar files (``created``
        lists the shards this writer created; a store never replaces a different file:
        ``ShardExistsError``)."""
        pool: ThreadPoolExecutor | None = None
        try:
            while self._staged:
                shard, side, size = self._staged[0]
                files = side.files(shard.url, size) if side is not None else []
                if files:
                    pool = pool or ThreadPoolExecutor(SYNCS, thread_name_prefix="atdata-sync")
                    self._publish_sidecars(shard, files, pool)
                if shard.commit():
                    self.created.append(shard.url)
                self._staged.pop(0)
        finally:
            if pool is not None:
                pool.shutdown()

    def _publish_sidecars(
        self, shard: ShardSink, files: list[tuple[str, bytes]], pool: ThreadPoolExecutor
    ) -> None:
        """Publish a shard's sidecar files, in order, once they and the shard are durable (synced
        together: one wait for the disk rather than one per file)."""
        sinks: list[ShardSink] = []
        done = 0
        try:
            for url, data in files:
                sinks.append(self.open_sink(url))
                sinks[-1].write(data)
            list(pool.map(lambda sink: sink.sync(), [shard, *sinks]))
            for sink in sinks:
                try:
                    sink.commit()
                except ShardExistsError:
                    # another file is there: fine beside an identical shard that is reused (it was
                    # published with that shard); anywhere else the write stops, replacing nothing
                    if self.exists is None or not self.exists(shard.url):
                        raise
                finally:
                    done += 1  # a sink whose commit failed has dropped its bytes already
        except BaseException:
            for sink in sinks[done:]:
                sink.abort()
            raise

    def abort(self) -> None:
        """Discard everything staged (and the shard being written)."""
        self._stop_io(check=False)
        sinks = [shard for shard, _side, _size in self._staged]
        if self._cur is not None:
            sinks.append(self._cur.sink)
            self._cur = None
        self._staged.clear()
        for sink in sinks:
            try:
                sink.abort()
            except OSError:
                pass


def _write_all(sink: ShardSink, sha: Any, chunks: list[Any]) -> None:
    for c in chunks:
        sha.update(c)
        sink.write(c)


def _sync_after(written: Future, sink: ShardSink) -> None:
    written.result()  # the shard's last bytes are written (else raise what their write raised)
    sink.sync()


def peek_samples(samples: Iterable[Any], call: str) -> tuple[Any, Iterator[Any], int | None]:
    """``(first sample, all the samples, how many or None)`` of an input about to be written: the
    first tells the sample type before anything is written. ``call`` names the caller in the error
    an empty input raises (nothing was written)."""
    it = iter(samples)
    try:
        first = next(it)
    except StopIteration:
        raise InvalidArgumentError(
            f"{call}: no samples to write (the input is empty); nothing was written"
        ) from None
    try:
        total = len(samples)  # type: ignore[arg-type]
    except TypeError:  # generators, filtered datasets: no length known
        total = None
    return first, itertools.chain([first], it), total


def encode_samples_into(
    writer: ShardSetWriter,
    samples: Iterable[Any],
    codec: Any,
    *,
    observer: HintObserver | None = None,
    progress: ProgressLike = False,
    task: str = "write",
    total: int | None = None,
) -> int:
    """Serialize each sample once into ``writer``. Returns the number of samples written."""
    report = resolve_progress(progress)
    packer = msgpack.Packer(use_bin_type=True)
    to_dict = codec.to_dict
    n = 0
    feed = writer.sidecars is not None
    for n, sample in enumerate(samples, 1):  # noqa: B007
        if observer is not None:
            observer.observe(sample)
        writer.add("%06d" % (n - 1), packer.pack(to_dict(sample)), sample=sample if feed else None)
        if n % 512 == 0:
            report(ProgressEvent(task, n, total, "samples"))
    report(ProgressEvent(task, n, total if total is not None else n, "samples", finished=True))
    return n


class HashingReader:
    """A file wrapper that hashes (sha256) and counts every byte read through it."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def scan_shard(url: str, storage_options: dict[str, Any] | None = None) -> ShardInfo:
    """Read a whole shard once: its sha256, size, and per-sample offset index (a gzip shard is
    inflated as it is read; its block table then has a row per gzip member)."""
    offsets: list[tuple[int, int]] = []
    keys: list[str] = []
    with open_url(url, storage_options) as f:
        reader = HashingReader(f)
        tar, gz = open_maybe_gzip(reader, url)
        bound = BLOCK_MAX if gz is not None else None
        for name, off, size, _ in iter_members(tar, url, with_data=False, max_member=bound):
            key, ext = split_key(name)
            if ext != "msgpack":
                _warn_ext(ext, url)
                continue
            offsets.append((off, size))
            keys.append(key)
        if gz is not None:
            gz.drain()  # to the end of the gzip stream, checking its crc32
        while reader.read(1 << 20):  # hash any trailing bytes after the end-of-archive blocks
            pass
    blocks = gz.table() if gz is not None else None
    if blocks is not None and len(blocks) == 1 and is_local(url):
        # one member: its flush points, if it has them at member boundaries (ours), split it in blocks
        headers = {f"{k}.msgpack": int(o) - BLOCK for k, (o, _s) in zip(keys, offsets)}
        mm = _map_local(local_path(url))
        blocks = find_blocks(mm, blocks[0], headers) if mm else None
        blocks = blocks if blocks is not None else gz.table()  # type: ignore[union-attr]
    return ShardInfo(
        url,
        reader.sha.hexdigest(),
        reader.size,
        len(keys),
        np.asarray(offsets, dtype=np.int64).reshape(-1, 2),
        keys,
        blocks,
    )


def _warn_ext(ext: str, url: str) -> None:
    if ext not in _warned_exts:
        _warned_exts.add(ext)
        warnings.warn(
            f"ignoring tar members with extension {ext!r} (first seen in {url}); "
            "atdata samples are stored as '<key>.msgpack'",
            stacklevel=4,
        )


def _map_local(path: str) -> Any:
    """A read-only mmap of a local shard (``b""`` for an empty file); the fd is closed at once."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_SEQUENTIAL)
    return mm


def iter_sample_members(
    url: str, storage_options: dict[str, Any] | None = None, *, opened: Any = None
) -> Iterator[tuple[str, memoryview]]:
    """Yield ``(key, msgpack bytes)`` for each sample of a shard, in file order.

    Local shards are memory-mapped and parsed in place (members are views, nothing is copied);
    remote ones stream in large chunks. ``opened`` is the remote file, already opened with
    ``open_url`` (e.g. to start fetching it early). Checking a shard against a published sha256
    happens before this is called (see :mod:`atdata_lab.cache`), never while samples are handed out.
    """
    if is_local(url):
        try:
            mm = _map_local(local_path(url))
        except FileNotFoundError:
            raise ShardNotFoundError(f"shard {url} does not exist") from None
        if mm[:2] == GZIP_MAGIC:  # a gzip shard: inflated as it is read, each member bounded
            yield from _iter_msgpack(open_maybe_gzip(mm, url, table=False)[0], url, BLOCK_MAX)
            return
        for name, _off, _size, data in iter_members(mm, url):
            key, ext = split_key(name)
            if ext == "msgpack":
                yield key, data  # type: ignore[misc]
            else:
                _warn_ext(ext, url)
        return
    try:
        f = opened if opened is not None else open_url(url, storage_options)
    except FileNotFoundError:
        raise ShardNotFoundError(f"shard {url} does not exist") from None
    with f:
        tar, gz = open_maybe_gzip(f, url, table=False)
        yield from _iter_msgpack(tar, url, BLOCK_MAX if gz is not None else None)


def _iter_msgpack(f: Any, url: str, bound: int | None) -> Iterator[tuple[str, memoryview]]:
    for name, _off, _size, data in iter_members(f, url, max_member=bound):
        key, ext = split_key(name)
        if ext == "msgpack":
            yield key, data  # type: ignore[misc]
        else:
            _warn_ext(ext, url)


def local_shard_signature(url: str) -> tuple | None:
    """(size, mtime_ns) of a local shard, to key caches of scanned offset indexes."""
    try:
        st = Path(url).stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
