"""The offset index of a local shard built from its tar headers only, and cached on disk.

A shard that no writer or index described still gets random access by position (``ds[k]``,
``len(ds)``) and batched reads without reading it whole: its tar headers are parsed in place
through a memory map (members of at least :data:`PREAD_MIN` bytes: read with one ``pread`` each, so
that the map's fault-around does not bring most of the file into the process's memory), one
512-byte header per member, each payload skipped (never read, never hashed). Regular ustar
members, the shards this package and WebDataset write, take a fast path (the sizes walked in
Python, names and header checksums checked for all members at once); any other archive (PAX or
GNU long-name headers, links, a truncated file) goes through :func:`~atdata_lab.tar.iter_members`,
which reports damage naming the shard and member.

The index is kept in ``$ATDATA_HOME/cache/offsets/<hash of the shard's real path>.idx`` with the
path, size and mtime it describes (and the shard's sha256 when the caller knows it). A cached index
is used only when all of those still match and it passes its checks (bounded size, as many keys as
offsets, offsets increasing, every member inside the file); anything else is ignored and replaced.
Files are written atomically (a staging file, then a rename), mode 0600 in a 0700 folder, and the
folder may be deleted at any time.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from ._journal import clean_stale_temp_files, write_private
from .shards import ShardInfo, _warn_ext
from .stores.local import atdata_home
from .tar import BLOCK, _verify_checksums, iter_members, split_key

__all__ = ["header_offsets", "offsets_cache_path", "scan_headers"]

VERSION = 1
MAX_CACHE_BYTES = 256 << 20  # a cached index larger than this is not read
_ZERO = bytes(BLOCK)
_REGULAR = np.array([0x30, 0x00, 0x37], dtype=np.uint8)  # '0', NUL, '7': regular files
_swept = False


class _Irregular(Exception):
    """Not a plain ustar archive of regular files: parsed by ``iter_members`` instead."""


_OCTAL = 8 ** np.arange(10, -1, -1, dtype=np.int64)  # the 11 digits of a size field
SPECULATE_MAX = 8192


def _fast_members(mm: Any, shard: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, data offsets, sizes)`` of a plain ustar archive (raises :class:`_Irregular`).

    The walk from header to header is sequential (each size says where the next header is), but
    members of one padded size are common: from each header, the next ones are guessed at that
    stride and their size fields read at once; the guesses hold up to the first header whose
    size differs (where the walk goes on one header at a time)."""
    n = len(mm)
    blocks = np.frombuffer(mm, dtype=np.uint8)[: n // BLOCK * BLOCK].reshape(-1, BLOCK)
    nb = len(blocks)
    heads: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    b = 0  # the header's block
    guess = 64
    try:
        while True:
            if b >= nb:
                raise _Irregular  # truncated: iter_members says where
            pos = b * BLOCK
            if mm[pos] == 0:
                if mm[pos : pos + BLOCK] == _ZERO:
                    break
                raise _Irregular
            size = int(mm[pos + 124 : pos + 135], 8)
            step = 1 + (size + BLOCK - 1) // BLOCK
            heads.append(np.array([b], dtype=np.int64))
            sizes.append(np.array([size], dtype=np.int64))
            b += step
            # the next headers, guessed at this stride
            m = min(guess, (nb - b) // step)
            if m <= 0:
                continue
            cand = b + step * np.arange(m, dtype=np.int64)
            digits = blocks[cand, 124:135].astype(np.int64) - 0x30
            fits = (blocks[cand, 0] != 0) & ((digits >= 0) & (digits <= 7)).all(axis=1)
            got = digits @ _OCTAL
            fits &= 1 + (got + BLOCK - 1) // BLOCK == step
            k = m if bool(fits.all()) else int(np.argmin(fits))
            guess = min(SPECULATE_MAX, 2 * guess) if k == m else 64
            if k:
                heads.append(cand[:k])
                sizes.append(got[:k])
                b += step * k
    except ValueError:
        raise _Irregular from None
    if not heads:
        raise _Irregular  # no member: let iter_members say what the file is
    hb = np.concatenate(heads)
    h = hb * BLOCK
    names = _regular_names(blocks[hb])
    _verify_checksums(mm, h.tolist(), names, shard, 0)
    return names, h + BLOCK, np.concatenate(sizes)


def _regular_names(rows: np.ndarray) -> list[str]:
    """The member names of these header rows (raises :class:`_Irregular` unless every one is a
    plain ustar header of a regular file)."""
    if not np.isin(rows[:, 156], _REGULAR).all() or rows[:, 345].any():
        raise _Irregular  # links, PAX/GNU headers, ustar prefixes
    raw = np.ascontiguousarray(rows[:, :100]).view("S100")[:, 0].tolist()  # without trailing NULs
    joined = b"\x00".join(raw)
    if joined.count(b"\x00") == len(raw) - 1:  # no NUL inside a name: decoded at once
        return joined.decode("utf-8", "replace").split("\x00")
    return [b.split(b"\x00", 1)[0].decode("utf-8", "replace") for b in raw]


# members at least this large are walked with one pread per header, not through a memory map:
# each fault on a map of cached pages maps the pages around it too (fault-around, 64 KiB), so
# touching one header per large member would map most of the file into the process's RSS
PREAD_MIN = 64 << 10


def _pread_members(fd: int, size: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, data offsets, sizes)`` of a plain ustar archive whose first member is large,
    one ``pread`` per header (raises :class:`_Irregular`, also for a bad header checksum: then
    ``iter_members`` reports it, naming the member and the byte)."""
    rows: list[bytes] = []
    heads: list[int] = []
    sizes: list[int] = []
    pos = 0
    try:
        while True:
            h = os.pread(fd, BLOCK, pos)
            if len(h) < BLOCK or h[0] == 0:
                if h == _ZERO:
                    break
                raise _Irregular  # truncated, or not a header
            n = int(h[124:135], 8)
            rows.append(h)
            heads.append(pos)
            sizes.append(n)
            pos += BLOCK * (1 + (n + BLOCK - 1) // BLOCK)
            if pos > size:
                raise _Irregular
    except ValueError:
        raise _Irregular from None
    if not rows:
        raise _Irregular
    block = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, BLOCK)
    names = _regular_names(block)
    stored = block[:, 148:154].astype(np.int64) - 0x30
    if ((stored < 0) | (stored > 7)).any():
        raise _Irregular
    computed = block.sum(axis=1, dtype=np.int64) - block[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
    if (stored @ (8 ** np.arange(5, -1, -1, dtype=np.int64)) != computed).any():
        raise _Irregular
    return names, np.asarray(heads, dtype=np.int64) + BLOCK, np.asarray(sizes, dtype=np.int64)


def scan_headers(path: str, shard: str | None = None) -> tuple[np.ndarray, list[str]]:
    """``(offsets, keys)`` of a local shard from its tar headers only: ``offsets`` is the int64
    ``(n, 2)`` array of each sample's data offset and size, as in :class:`ShardInfo`.

    Raises:
        ShardError: a damaged or truncated archive (naming ``shard``, else ``path``).
    """
    name = shard or path
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        first = os.pread(f.fileno(), BLOCK, 0)
        large = False
        try:
            large = len(first) == BLOCK and int(first[124:135], 8) >= PREAD_MIN
        except ValueError:
            pass
        got = None
        if large:
            try:
                got = _pread_members(f.fileno(), size)
            except _Irregular:
                pass
        mm: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size and got is None else b""
    if got is None and size and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_RANDOM)  # the headers only: no readahead of the payloads
    try:
        if got is not None:
            names, offs, sizes = got
        else:
            names, offs, sizes = _fast_members(mm, name)
    except _Irregular:
        members = [(nm, off, sz) for nm, off, sz, _ in iter_members(mm, name, with_data=False)]
        names = [m[0] for m in members]
        offs = np.asarray([m[1] for m in members], dtype=np.int64)
        sizes = np.asarray([m[2] for m in members], dtype=np.int64)
    joined = "\x00".join(names)
    n = len(names)
    if joined.count(".") == n and joined.count(".msgpack\x00") == n - 1 and joined.endswith(".msgpack"):
        # every name is "<key>.msgpack" with no other dot: split_key's keys, cut at once
        keys = joined[:-8].replace(".msgpack\x00", "\x00").split("\x00")
        return np.stack([offs, sizes], axis=1).astype(np.int64, copy=False), keys
    keys = []
    keep: list[int] = []
    for i, nm in enumerate(names):
        key, ext = split_key(nm)
        if ext != "msgpack":
            _warn_ext(ext, name)
            continue
        keys.append(key)
        keep.append(i)
    idx = np.asarray(keep, dtype=np.int64) if len(keep) != len(names) else slice(None)
    offsets = np.stack([offs[idx], sizes[idx]], axis=1) if keys else np.empty((0, 2), dtype=np.int64)
    return offsets.astype(np.int64, copy=False), keys


def offsets_cache_path(path: str) -> Path:
    """Where the offset index of the local shard at ``path`` is cached."""
    real = os.path.realpath(path)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return atdata_home() / "cache" / "offsets" / f"{digest}.idx"


def _load(
    cache: Path, real: str, size: int, mtime_ns: int, sha256: str
) -> tuple[np.ndarray, list[str]] | None:
    """A cached index that describes this file and passes its checks, else None."""
    try:
        fd = os.open(cache, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            have = os.fstat(f.fileno()).st_size
            if have > MAX_CACHE_BYTES:
                return None
            blob = f.read(have + 1)  # read(n) allocates n bytes up front: ask for what is there
            if len(blob) > have:
                return None  # grew while read: rebuilt
        d = msgpack.unpackb(blob, raw=False)
    except Exception:  # noqa: BLE001 - unreadable or not msgpack: rebuilt
        return None
    if (
        not isinstance(d, dict)
        or d.get("v") != VERSION
        or d.get("path") != real
        or d.get("size") != size
        or d.get("mtime") != mtime_ns
        or d.get("sha") != sha256
    ):
        return None
    o, k = d.get("o"), d.get("k")
    if not isinstance(o, bytes) or not isinstance(k, list) or len(o) != 16 * len(k) or len(k) > size // BLOCK:
        return None
    if not all(type(x) is str for x in k):
        return None
    offsets = np.frombuffer(o, dtype="<i8").reshape(-1, 2).astype(np.int64)
    if len(k):
        offs, sizes = offsets[:, 0], offsets[:, 1]
        ends = offs + sizes
        if (
            offs[0] < BLOCK
            or (sizes < 0).any()
            or ends[-1] > size
            or (offs[1:] < ends[:-1] + BLOCK).any()  # increasing, a header between two members
        ):
            return None
    return offsets, k


def _save(
    cache: Path, real: str, size: int, mtime_ns: int, sha256: str, offsets: np.ndarray, keys: list[str]
) -> None:
    """Keep an index for next time (best effort: a read-only home only costs the rebuild)."""
    global _swept
    blob = msgpack.packb(
        {
            "v": VERSION,
            "path": real,
            "size": size,
            "mtime": mtime_ns,
            "sha": sha256,
            "o": np.ascontiguousarray(offsets, dtype="<i8").tobytes(),
            "k": keys,
        }
    )
    try:
        cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _swept:
            _swept = True
            clean_stale_temp_files(cache.parent)
        if cache.is_symlink():
            return  # never ours: left alone
        write_private(cache, blob)
    except OSError:
        pass


# compressed streams (gzip, bzip2, xz, zstd): their members are not where tar headers say
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")


def header_offsets(path: str, url: str | None = None, sha256: str = "") -> ShardInfo | None:
    """The offset index of the local shard at ``path`` (cached, else from its tar headers); None
    for a compressed shard (indexed by the reader of its format). The returned info's ``checksum``
    is ``sha256`` (empty when unknown: nothing here hashes the shard).

    Raises:
        FileNotFoundError: no file at ``path``.
        ShardError: a damaged or truncated archive.
    """
    with open(path, "rb") as f:
        if f.read(6).startswith(_COMPRESSED):
            return None
    st = os.stat(path)
    real = os.path.realpath(path)
    cache = offsets_cache_path(path)
    got = _load(cache, real, st.st_size, st.st_mtime_ns, sha256)
    if got is None:
        got = scan_headers(path, url)
        again = os.stat(path)
        if (again.st_size, again.st_mtime_ns) == (st.st_size, st.st_mtime_ns):  # not changed meanwhile
            _save(cache, real, st.st_size, st.st_mtime_ns, sha256, *got)
    offsets, keys = got
    return ShardInfo(url or path, sha256, st.st_size, len(keys), offsets, keys)
