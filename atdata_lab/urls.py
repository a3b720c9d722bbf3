"""Shard locations: brace patterns, local paths, ``file://`` and fsspec URLs."""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO

# Remote shards are read in blocks this large: few requests, memory bounded by one block.
REMOTE_BLOCK = 32 << 20

__all__ = ["expand_urls", "is_local", "local_path", "only_on_this_machine", "open_url", "read_range", "url_size"]

_BRACE = re.compile(r"\{([^{}]*)\}")


def _expand_braces(pattern: str) -> list[str]:
    m = _BRACE.search(pattern)
    if not m:
        return [pattern]
    inner = m.group(1)
    head, tail = pattern[: m.start()], pattern[m.end() :]
    rng = re.fullmatch(r"(\d+)\.\.(\d+)", inner)
    if rng:
        a, b = rng.group(1), rng.group(2)
        width = len(a) if a.startswith("0") or len(a) == len(b) else 0
        lo, hi = int(a), int(b)
        step = 1 if hi >= lo else -1
        options = [str(i).zfill(width) for i in range(lo, hi + step, step)]
    else:
        options = inner.split(",")
    out: list[str] = []
    for opt in options:
        out.extend(_expand_braces(head + opt + tail))
    return out


def expand_urls(urls: str | os.PathLike | list | tuple) -> list[str]:
    """Expand brace patterns (``data-{000000..000009}.tar``, ``{a,b}``) into a list of URLs."""
    if isinstance(urls, (str, os.PathLike)):
        urls = [urls]
    out: list[str] = []
    for u in urls:
        out.extend(_expand_braces(os.fspath(u)))
    return out


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def only_on_this_machine(url: str) -> bool:
    """True when nobody else can read ``url``: a local path, ``file://``, or a loopback host
    (``localhost``, ``127.0.0.0/8``, ``::1``, ``0.0.0.0``)."""
    if is_local(url):
        return True
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def open_url(url: str, storage_options: dict[str, Any] | None = None) -> BinaryIO:
    """Open a shard for reading (local files directly, others through fsspec)."""
    if is_local(url):
        return open(local_path(url), "rb", buffering=0)
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return _RangeReader(fs, path, url)


_readahead_pool: Any = None
_readahead_pid = 0


def _pool() -> Any:
    """The readahead threads of this process (a forked DataLoader worker gets its own: the
    parent's threads do not exist in the child)."""
    global _readahead_pool, _readahead_pid
    if _readahead_pool is None or _readahead_pid != os.getpid():
        from concurrent.futures import ThreadPoolExecutor

        _readahead_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="atdata-readahead")
        _readahead_pid = os.getpid()
    return _readahead_pool


class _RangeReader:
    """Sequential reads of a remote file as ranged GETs of REMOTE_BLOCK bytes (no HEAD, no cache).

    While one block is consumed, the next is already being fetched in the background (one block of
    readahead, so memory stays bounded by two blocks). ``prefetch()`` starts the first block early,
    and ``on_eof`` (if set) is called once the last block has arrived: the dataset reader uses it
    to start fetching the next shard while this one is decoded.
    """

    def __init__(self, fs: Any, path: str, url: str) -> None:
        self.fs, self.path, self.url = fs, path, url
        self.pos = 0  # file offset of the next block to fetch
        self.buf = b""
        self.off = 0  # bytes of buf already read
        self.eof = False
        self.on_eof: Any = None
        self._next: Any = None  # the Future of the block at self.pos

    def _get(self, pos: int) -> bytes:
        return self.fs.cat_file(self.path, start=pos, end=pos + REMOTE_BLOCK)

    def prefetch(self) -> None:
        """Start fetching the next block in the background (if not started and not at the end)."""
        if self._next is None and not self.eof:
            self._next = _pool().submit(self._get, self.pos)

    def _fetch(self) -> bytes:
        fut, self._next = self._next, None
        try:
            block = fut.result() if fut is not None else self._get(self.pos)
        except FileNotFoundError:
            if self.pos == 0:
                raise
            block = b""  # a range that starts at the end
        except OSError:
            if self.pos == 0:
                raise
            block = b""  # S3 answers InvalidRange for a range past the end
        if len(block) > REMOTE_BLOCK:  # a server that ignores Range sent it all
            block = block[self.pos : self.pos + REMOTE_BLOCK]
        self.pos += len(block)
        self.eof = len(block) < REMOTE_BLOCK
        if not self.eof:
            self.prefetch()
        elif self.on_eof is not None:
            callback, self.on_eof = self.on_eof, None
            callback()
        return block

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the file); a whole block is not copied."""
        want = (1 << 62) if n is None or n < 0 else n
        parts: list[bytes] = []
        while want > 0:
            avail = len(self.buf) - self.off
            if avail == 0:
                if self.eof:
                    break
                self.buf, self.off = self._fetch(), 0
                continue
            if self.off == 0 and want >= avail:
                part, self.buf = self.buf, b""
            else:
                part = self.buf[self.off : self.off + want]
                self.off += len(part)
            parts.append(part)
            want -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self.buf, self.off = b"", 0
        self.on_eof = None
        if self._next is not None:
            self._next.cancel()  # a fetch already running finishes in the background, unread
            self._next = None

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_range(url: str, offset: int, size: int, storage_options: dict[str, Any] | None = None) -> bytes:
    """Read ``size`` bytes at ``offset`` (one seek on disk; one ranged request remotely)."""
    if is_local(url):
        fd = os.open(local_path(url), os.O_RDONLY)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    data = fs.cat_file(path, start=offset, end=offset + size)
    if len(data) > size and len(data) >= offset + size:  # a server that ignores Range sent it all
        data = data[offset : offset + size]
    return data


def url_size(url: str, storage_options: dict[str, Any] | None = None) -> int:
    if is_local(url):
        return os.path.getsize(local_path(url))
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return int(fs.size(path))
