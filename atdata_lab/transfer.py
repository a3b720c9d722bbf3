"""Copying shards between stores: one mechanism for ``copy_entry``, ``insert_dataset(copy=True)``
and the promotion copy step.

Shard by shard, streaming (memory bounded by one chunk), progress in bytes through the common
callback, verified by sha256, resumable (a shard already at the destination with the right
checksum is skipped), and never a half shard under its final name (the store's sink stages it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .errors import ShardError
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .shards import ShardInfo
from .stores.base import DataStore
from .urls import open_url

__all__ = ["copy_shards", "sha256_of"]

CHUNK = 8 << 20


def sha256_of(url: str, storage_options: dict[str, Any] | None = None) -> str:
    """The sha256 hex digest of a shard, streamed."""
    h = hashlib.sha256()
    with open_url(url, storage_options) as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def copy_shards(
    infos: list[ShardInfo],
    dest: DataStore,
    dataset_name: str,
    *,
    source_options: Callable[[str], dict[str, Any]] | dict[str, Any] | None = None,
    progress: ProgressLike = True,
    on_shard: Callable[[int, ShardInfo, bool], None] | None = None,
) -> list[ShardInfo]:
    """Copy shards into ``dest`` as ``dataset_name``; return their infos at the new URLs.

    Args:
        infos: The shards to copy (their checksums are what the copies are verified against).
        dest: The destination store.
        dataset_name: Names the destination URLs (``dest.shard_url(dataset_name, i)``).
        source_options: fsspec options for reading the sources (or a function of the URL).
        progress: The progress protocol (bytes).
        on_shard: Called as ``on_shard(i, info, copied)`` after each shard is in place;
            ``copied`` is False when the shard was already at the destination and was skipped.

    Raises:
        ShardError: a source does not match its recorded checksum (nothing is published for it).
    """
    report = resolve_progress(progress)
    total = sum(i.size for i in infos)
    out: list[ShardInfo] = []
    before = 0  # bytes of the shards before this one
    for i, info in enumerate(infos):
        url = dest.shard_url(dataset_name, i)
        opts = source_options(info.url) if callable(source_options) else (source_options or {})
        copied = False
        if url == info.url:
            out.append(info)
        elif dest.exists(url) and dest.size(url) == info.size and sha256_of(url, dest.storage_options) == info.checksum:
            out.append(info.with_url(url))  # already copied by an earlier, interrupted run
        else:
            sink = dest.open_sink(url)
            h = hashlib.sha256()
            done = before
            try:
                with open_url(info.url, opts) as f:
                    while True:
                        block = f.read(CHUNK)
                        if not block:
                            break
                        h.update(block)
                        sink.write(block)
                        done += len(block)
                        report(ProgressEvent("copy", done, total, "bytes", message=url.rsplit("/", 1)[-1]))
                if h.hexdigest() != info.checksum:
                    raise ShardError(
                        f"shard {info.url} changed since it was indexed: sha256 {h.hexdigest()} != recorded "
                        f"{info.checksum}; re-insert the dataset to re-index it"
                    )
                sink.commit()
            except BaseException:
                sink.abort()
                raise
            out.append(info.with_url(url))
            copied = True
        before += info.size
        report(ProgressEvent("copy", before, total, "bytes"))
        if on_shard is not None:
            on_shard(i, out[-1], copied)
    report(ProgressEvent("copy", total, total, "bytes", finished=True))
    return out
