"""Shard locations: brace patterns, local paths, ``file://`` and fsspec URLs."""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO

# Remote shards are read in blocks this large: few requests, memory bounded by one block.
REMOTE_BLOCK = 32 << 20

__all__ = ["expand_urls", "is_local", "local_path", "open_url", "read_range", "url_size"]

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


def local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def open_url(url: str, storage_options: dict[str, Any] | None = None) -> BinaryIO:
    """Open a shard for reading (local files directly, others through fsspec)."""
    if is_local(url):
        return open(local_path(url), "rb", buffering=0)
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return _RangeReader(fs, path, url)


class _RangeReader:
    """Sequential reads of a remote file as ranged GETs of REMOTE_BLOCK bytes (no HEAD, no cache)."""

    def __init__(self, fs: Any, path: str, url: str) -> None:
        self.fs, self.path, self.url = fs, path, url
        self.pos = 0
        self.buf = b""
        self.eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        while len(self.buf) < n and not self.eof:
            try:
                block = self.fs.cat_file(self.path, start=self.pos, end=self.pos + REMOTE_BLOCK)
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
            self.buf = self.buf + block if self.buf else block
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self) -> None:
        self.buf = b""

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
