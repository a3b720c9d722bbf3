"""A lean tar reader and writer for WebDataset shards.

The reader parses headers straight from large buffered reads (no per-member objects),
accepts what WebDataset accepts (ustar, PAX extended headers, GNU long names, v7), verifies
every header checksum in bulk, and raises :class:`~atdata_lab.errors.ShardError` naming the
shard and member on corruption or truncation. Memory stays bounded by one read chunk plus
the largest member.

The writer emits one compact ustar header per member (no PAX blocks), with a fixed mtime and
mode, so the same members always give the same bytes.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from .errors import InvalidArgumentError, ShardError

__all__ = ["iter_members", "ustar_header", "END_OF_ARCHIVE", "split_key", "BLOCK"]

BLOCK = 512
CHUNK = 4 << 20
END_OF_ARCHIVE = bytes(2 * BLOCK)
_MODE = b"0000444\x00"
_ZERO8 = b"0000000\x00"


def _template() -> bytearray:
    h = bytearray(BLOCK)
    h[100:108] = _MODE
    h[108:116] = _ZERO8
    h[116:124] = _ZERO8
    h[136:148] = b"00000000000\x00"  # fixed mtime 0: deterministic bytes
    h[148:156] = b" " * 8
    h[156] = ord("0")
    h[257:265] = b"ustar\x0000"
    return h


_TEMPLATE = bytes(_template())
_TEMPLATE_SUM = sum(_TEMPLATE) - sum(_TEMPLATE[124:136])


def ustar_header(name: str, size: int) -> bytes:
    """One 512-byte ustar header for a regular file ``name`` of ``size`` bytes."""
    raw = name.encode("utf-8")
    h = bytearray(_TEMPLATE)
    if len(raw) > 100:
        # ustar splits long paths at a '/' into prefix (155) + name (100)
        cut = raw.rfind(b"/", 0, 156)
        if cut <= 0 or len(raw) - cut - 1 > 100:
            raise InvalidArgumentError(f"tar member name too long for ustar: {name!r}")
        h[345 : 345 + cut] = raw[:cut]
        raw = raw[cut + 1 :]
    h[0 : len(raw)] = raw
    if size < 8**11:
        sz = b"%011o\x00" % size
    else:  # GNU base-256 for members of 8 GiB and more
        sz = bytes([0x80]) + size.to_bytes(11, "big")
    h[124:136] = sz
    chk = sum(h) - sum(b" " * 8) + 8 * 32
    h[148:156] = b"%06o\x00 " % chk
    return bytes(h)


def _table(fmt: bytes, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``fmt % i`` for each ``i < count`` as a little-endian word (its bytes in order, then zeros)
    and the sum of its bytes: the digits :func:`ustar_headers` writes a word at a time."""
    texts = [fmt % i for i in range(count)]
    words = np.frombuffer(b"".join(t.ljust(4, b"\x00") for t in texts), dtype="<u4").astype(np.uint64)
    return words, np.array([sum(t) for t in texts], dtype=np.int64)


_DEC3, _DEC3_SUM = _table(b"%03d", 1000)
_OCT3, _OCT3_SUM = _table(b"%03o", 512)
_OCT4, _OCT4_SUM = _table(b"%04o", 4096)


def _column(out: np.ndarray, start: int, dtype: str) -> np.ndarray:
    """Bytes ``start:start + itemsize`` of each row of ``out`` as one column of ``dtype``."""
    return out[:, start : start + np.dtype(dtype).itemsize].view(dtype)[:, 0]


def _key_width(first: int, lo: int, n: int) -> tuple[int, int]:
    """The width of key ``first + lo`` (6 digits at least) and the end of the run of keys that wide."""
    width = max(6, len(str(first + lo)))
    return width, min(n, max(lo + 1, 10**width - first))


def _put_digits(rows: np.ndarray, first: int, width: int) -> np.ndarray:
    """The ``width`` decimal digits of ``first + i`` (zero-padded) at the start of each row ``i`` of
    ``rows``, written a word per row (the byte after them is overwritten with a zero: the caller
    writes it next); returns the sum of each row's digit bytes."""
    keys = np.arange(first, first + len(rows), dtype=np.int64)
    groups = []
    for _ in range((width + 2) // 3):  # three digits at a time, from the right
        keys, g = np.divmod(keys, 1000)
        groups.append(g)
    sums = np.zeros(len(rows), dtype=np.int64)
    at = 0
    for i, g in enumerate(reversed(groups)):  # left to right: each word's spare zero byte is
        w = 3 if i else width - 3 * (len(groups) - 1)  # overwritten by the next word
        _column(rows, at, "<u4")[:] = _DEC3[g] >> np.uint64(8 * (3 - w))
        sums += _DEC3_SUM[g] - 48 * (3 - w)
        at += w
    return sums


def member_keys(first: int, n: int) -> list[str]:
    """``["%06d" % k for k in range(first, first + n)]``, made from their bytes at once (the keys
    :func:`ustar_headers` names its members by)."""
    keys: list[str] = []
    lo = 0
    while lo < n:
        width, hi = _key_width(first, lo, n)
        text = np.empty((hi - lo, width + 1), dtype=np.uint8)
        _put_digits(text, first + lo, width)
        text[:, width] = ord(" ")
        keys += text.tobytes().decode("ascii").split()
        lo = hi
    return keys


def ustar_headers(first: int, sizes: np.ndarray, ext: str, out: np.ndarray | None = None) -> np.ndarray:
    """The headers :func:`ustar_header` gives members ``"%06d.{ext}" % k`` for ``k`` from ``first`` on,
    of ``sizes`` bytes (each under 8 GiB), as one ``(len(sizes), 512)`` uint8 array built at once
    (``out``, e.g. a strided view of the tar block they go in, or a new array). Each row starts as
    one template; the bytes that differ (the key's digits, the size when sizes differ, the checksum)
    are written a word per row (from tables of 3 and 4 digits), not a byte at a time."""
    n = len(sizes)
    if out is None:
        out = np.empty((n, BLOCK), dtype=np.uint8)
    sizes = np.asarray(sizes, dtype=np.int64)
    suffix = ("." + ext).encode("ascii")
    same = n > 0 and bool((sizes == sizes[0]).all())
    lo = 0
    while lo < n:  # keys of one width at a time (6 digits, then 7 past 999999...)
        width, hi = _key_width(first, lo, n)
        rows = out[lo:hi]
        head = bytearray(_TEMPLATE)
        head[: width + len(suffix)] = b"0" * width + suffix
        head[148:156] = bytes(8)
        if same:
            head[124:136] = b"%011o\x00" % int(sizes[0])
        rows[:] = np.frombuffer(head, dtype=np.uint8)
        sums = np.full(hi - lo, sum(head) - 48 * width + 8 * 32, dtype=np.int64)  # digits, chksum spaces
        if not same:  # 11 octal digits and a NUL: 4 + 4 + 3 (+ the NUL a word of 3 digits ends in)
            part = sizes[lo:hi]
            a, b, c = (part >> 21) & 4095, (part >> 9) & 4095, part & 511
            _column(rows, 124, "<u4")[:] = _OCT4[a]
            _column(rows, 128, "<u4")[:] = _OCT4[b]
            _column(rows, 132, "<u4")[:] = _OCT3[c]
            sums += _OCT4_SUM[a] + _OCT4_SUM[b] + _OCT3_SUM[c]
        sums += _put_digits(rows, first + lo, width)
        rows[:, width] = suffix[0]
        # the checksum: 6 octal digits, a NUL, a space
        chk = _OCT3[sums >> 9] | (_OCT3[sums & 511] << np.uint64(24)) | np.uint64(32 << 56)
        _column(rows, 148, "<u8")[:] = chk
        lo = hi
    return out


def split_key(name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the path up to the first dot of the basename."""
    slash = name.rfind("/") + 1
    dot = name.find(".", slash)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :]


def _octal(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:  # base-256
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    return int(text, 8)


def _parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            break
        length = int(data[pos:sp])
        if length <= 0:
            raise InvalidArgumentError("bad PAX record length")
        rec = data[sp + 1 : pos + length - 1]
        key, _, value = rec.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return out


_WEIGHTS = np.ones(BLOCK, dtype=np.int64)
_WEIGHTS[148:156] = 0


def _verify_checksums(
    buf: bytes | bytearray | memoryview | mmap.mmap,
    offsets: list[int],
    names: list[str],
    shard: str,
    base: int,
) -> None:
    """Check the header checksums of many members at once (numpy), raise on the first bad one."""
    if not offsets:
        return
    if len(offsets) == 1:  # one header (a batched read's first): plain Python is ~10x numpy's cost here
        h = bytes(buf[offsets[0] : offsets[0] + BLOCK])
        field = h[148:154]
        octal = len(h) == BLOCK and not field.translate(None, b"01234567")
        if octal and int(field, 8) == sum(h) - sum(h[148:156]) + 256:
            return  # else the general check below decides (other encodings of the field) and reports
    arr = np.frombuffer(buf, dtype=np.uint8)
    idx = np.asarray(offsets, dtype=np.int64)
    if (idx % BLOCK).any():
        rows = arr[idx[:, None] + np.arange(BLOCK)]
    else:  # block-aligned headers (a whole file): whole rows of the file seen as blocks
        rows = arr[: len(arr) // BLOCK * BLOCK].reshape(-1, BLOCK)[idx // BLOCK]
    computed = rows.sum(axis=1, dtype=np.int64) - rows[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
    field = rows[:, 148:154]
    digits_ok = ((field >= 0x30) & (field <= 0x37)).all(axis=1)
    stored = np.zeros(len(offsets), dtype=np.int64)
    if digits_ok.all():
        vals = field.astype(np.int64) - 0x30
        for i in range(6):
            stored = stored * 8 + vals[:, i]
    else:
        for i, off in enumerate(offsets):
            try:
                stored[i] = _octal(bytes(buf[off + 148 : off + 156]), "checksum")
            except ValueError:
                stored[i] = -1
    bad = np.nonzero(stored != computed)[0]
    if bad.size:
        i = int(bad[0])
        # a signed-byte checksum (old tar implementations) is also valid
        signed = (
            int(np.frombuffer(buf, dtype=np.int8, count=BLOCK, offset=offsets[i]).astype(np.int64) @ _WEIGHTS)
            + 256
        )
        if stored[i] != signed:
            raise ShardError(
                f"shard {shard}: corrupt tar header for member {names[i]!r} at byte {base + offsets[i]} "
                "(checksum mismatch); the file is damaged: re-download or re-write it"
            )


RELEASE_EVERY = 16 << 20


def iter_members(
    f: BinaryIO | Any, shard: str, *, with_data: bool = True, max_member: int | None = None
) -> Iterator[tuple[str, int, int, memoryview | None]]:
    """Yield ``(name, data_offset, size, data)`` for each regular file in a tar archive.

    ``f`` is a file object (read in large chunks) or a whole-file buffer such as an ``mmap``
    (parsed in place: member data are views into it, nothing is copied). ``data`` is a
    memoryview (``None`` when ``with_data`` is false). Offsets are absolute file positions,
    usable for random access later. ``max_member`` refuses members declaring more bytes (for
    inflated streams, where a small file may declare any size and fill it).

    Raises:
        ShardError: truncated or corrupt archive; names the shard and the member.
    """
    whole = isinstance(f, (bytes, bytearray, memoryview, mmap.mmap))
    buf: Any = f if whole else b""  # bytes-like: a whole-file buffer, or the chunks read so far
    view: Any = memoryview(buf) if whole else None
    released = 0
    pos = 0  # position in buf
    base = 0  # file offset of buf[0]
    pending: list[int] = []  # header offsets in buf awaiting checksum verification
    pending_names: list[str] = []
    pax: dict[str, str] = {}
    longname: str | None = None
    last = "<start of archive>"

    def refill(need: int) -> bool:
        nonlocal buf, pos, base
        _verify_checksums(buf, pending, pending_names, shard, base)
        pending.clear()
        pending_names.clear()
        if whole:
            return len(buf) - pos >= need
        avail = len(buf) - pos
        parts = [buf[pos:]] if avail else []
        base += pos
        pos = 0
        got = avail
        while got < need:
            # never more than CHUNK per read: a header may declare any size, and read(n) allocates
            # n bytes up front, so memory stays bounded by the bytes actually present
            chunk = f.read(CHUNK)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        buf = b"".join(parts) if len(parts) != 1 else parts[0]
        return got >= need

    while True:
        if len(buf) - pos < BLOCK and not refill(BLOCK):
            if len(buf) - pos == 0 and base + pos == 0:
                raise ShardError(f"shard {shard}: empty file, not a tar archive")
            raise ShardError(
                f"shard {shard}: truncated after member {last!r} (no end-of-archive marker); "
                "the file is incomplete: re-download or re-write it"
            )
        hdr_off = pos
        if whole and (len(pending) >= 4096 or pos - released >= RELEASE_EVERY):
            # verify the headers in bulk while their pages are still mapped, then give the pages back
            _verify_checksums(buf, pending, pending_names, shard, base)
            pending.clear()
            pending_names.clear()
            if pos - released >= RELEASE_EVERY and hasattr(buf, "madvise"):
                end = pos & ~(mmap.PAGESIZE - 1)
                buf.madvise(mmap.MADV_DONTNEED, released, end - released)
                released = end
        if buf[pos] == 0 and buf[pos : pos + BLOCK] == bytes(BLOCK):
            _verify_checksums(buf, pending, pending_names, shard, base)
            return
        try:
            try:  # the usual "%011o\0" field
                size = int(buf[pos + 124 : pos + 135], 8)
            except ValueError:
                size = _octal(buf[pos + 124 : pos + 136], "size")
        except ValueError:
            raise ShardError(
                f"shard {shard}: corrupt tar header after member {last!r} at byte {base + pos} "
                "(size field is not a number); the file is damaged or not a tar archive"
            ) from None
        typeflag = buf[pos + 156]
        nul = buf.find(b"\x00", pos, pos + 100)
        name_raw = buf[pos : nul if nul >= 0 else pos + 100]
        if buf[pos + 345] != 0 and buf[pos + 257 : pos + 262] == b"ustar":
            prefix = buf[pos + 345 : pos + 500].split(b"\x00", 1)[0]
            name_raw = prefix + b"/" + name_raw
        name = name_raw.decode("utf-8", "replace")
        pending.append(hdr_off)
        pending_names.append(name)
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                size = -1
            if size < 0:
                raise ShardError(
                    f"shard {shard}: corrupt PAX header for member {name!r}: size {pax['size'][:40]!r} "
                    "is not a byte count; the file is damaged or not a tar archive"
                )
        if max_member is not None and size > max_member:
            raise ShardError(
                f"shard {shard}: member {name!r} declares {size} bytes, past the {max_member}-byte bound of a "
                "compressed shard's member (a forged or damaged file); refused"
            )
        padded = (size + BLOCK - 1) & ~(BLOCK - 1)
        pos += BLOCK
        if len(buf) - pos < padded:
            if not refill(padded):
                raise ShardError(
                    f"shard {shard}: truncated: member {name!r} declares {size} bytes but the file ends first"
                )
        data_off = base + pos
        if typeflag in (0x30, 0x00, 0x37):  # '0', NUL, '7' (contiguous): a regular file
            if longname is not None:
                name = longname
            if "path" in pax:
                name = pax["path"]
            last = name
            if with_data:
                yield (
                    name,
                    data_off,
                    size,
                    (view[pos : pos + size] if whole else memoryview(buf)[pos : pos + size]),
                )
            else:
                yield name, data_off, size, None
            pax = {}
            longname = None
        elif typeflag == 0x78:  # 'x': PAX header for the next member
            try:
                pax = _parse_pax(bytes(buf[pos : pos + size]))
            except ValueError:
                raise ShardError(f"shard {shard}: corrupt PAX header after member {last!r}") from None
        elif typeflag == 0x4C:  # 'L': GNU long name for the next member
            longname = bytes(buf[pos : pos + size]).split(b"\x00", 1)[0].decode("utf-8", "replace")
        else:  # directories, links, global PAX headers...: skip
            pax = {}
            longname = None
        pos += padded
