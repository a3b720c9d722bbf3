"""Shard locations: brace patterns, local paths, ``file://`` and fsspec URLs."""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO

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

    return fsspec.open(url, "rb", **(storage_options or {})).open()


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
