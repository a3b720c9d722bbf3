"""Copying shards between stores: one mechanism for ``copy_entry``, ``insert_dataset(copy=True)``
and the promotion copy step.

Shard by shard, streaming (memory bounded by one chunk), progress in bytes through the common
callback, verified by sha256, resumable (a shard already at the destination with the right
checksum is skipped), never a half shard under its final name (the store's sink stages it), and
never over another file: a name that is taken gets a content-addressed twin (see :func:`copy_shards`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from typing import Any

from .errors import ShardError, ShardExistsError
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
    in_use: Callable[[list[str]], Collection[str]] | None = None,
) -> list[ShardInfo]:
    """Copy shards into ``dest`` as ``dataset_name``; return their infos at the new URLs.

    Shard ``i`` goes to ``dest.shard_url(dataset_name, i)`` unless that name is taken: a file with
    other content is there (or ``in_use`` says an entry or a published record points there). Then
    it goes to a content-addressed name, ``dest.shard_url(dataset_name, i, tag=sha256[:16])``. An
    existing file is never replaced (the store's commit refuses it too, so two indexes copying into
    one shared store at once cannot overwrite each other); one with the same content is reused.

    Args:
        infos: The shards to copy (their checksums are what the copies are verified against).
        dest: The destination store.
        dataset_name: Names the destination URLs.
        source_options: fsspec options for reading the sources (or a function of the URL).
        progress: The progress protocol (bytes).
        on_shard: Called as ``on_shard(i, info, copied)`` after each shard is in place;
            ``copied`` is False when the shard was already at the destination and was skipped.
        in_use: URLs -> those of them that something (an entry, a published record) references.

    Raises:
        ShardError: a source does not match its recorded checksum (nothing is published for it).
        ShardExistsError: even the content-addressed name holds other content (a corrupt file).
    """
    report = resolve_progress(progress)
    total = sum(i.size for i in infos)
    plain = [dest.shard_url(dataset_name, i) for i in range(len(infos))]
    taken = set(in_use([u for u, info in zip(plain, infos) if u != info.url])) if in_use is not None else set()
    out: list[ShardInfo] = []
    high = [0]  # bytes reported so far: progress never goes back, even when a shard is copied twice

    def tell(done: int, name: str | None = None) -> None:
        high[0] = max(high[0], done)
        report(ProgressEvent("copy", high[0], total, "bytes", message=name))

    before = 0  # bytes of the shards before this one
    for i, info in enumerate(infos):
        opts = source_options(info.url) if callable(source_options) else (source_options or {})
        tagged = dest.shard_url(dataset_name, i, tag=info.checksum[:16])
        copied = False
        for url in (plain[i], tagged):
            if url == info.url:
                out.append(info)
                break
            if dest.exists(url):
                if dest.size(url) == info.size and sha256_of(url, dest.storage_options) == info.checksum:
                    out.append(info.with_url(url))  # already copied (an earlier, interrupted run)
                    break
                continue  # another file: never replaced
            if url in taken:
                continue  # missing, but an entry or a published record points here: leave the name to it
            try:
                copied = _copy_one(info, dest, url, opts, before, tell)
            except ShardExistsError:
                continue  # another writer published a different file here meanwhile
            out.append(info.with_url(url))
            break
        else:
            raise ShardExistsError(
                f"cannot copy {info.url}: {tagged} is named after its sha256 {info.checksum[:16]}... but holds "
                "other content (a corrupt or foreign file); move it away and copy again", url=tagged)
        before += info.size
        tell(before)
        if on_shard is not None:
            on_shard(i, out[-1], copied)
    report(ProgressEvent("copy", total, total, "bytes", finished=True))
    return out


def _copy_one(info: ShardInfo, dest: DataStore, url: str, opts: dict[str, Any], before: int,
              tell: Callable[[int, str | None], None]) -> bool:
    """Stream one shard to ``url`` through a sink, verifying its sha256 before the commit. Returns False
    when an identical file appeared there meanwhile (it is reused)."""
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
                tell(done, url.rsplit("/", 1)[-1])
        if h.hexdigest() != info.checksum:
            raise ShardError(
                f"shard {info.url} changed since it was indexed: sha256 {h.hexdigest()} != recorded "
                f"{info.checksum}; re-insert the dataset to re-index it"
            )
        return sink.commit()  # never replaces a different file: ShardExistsError
    except BaseException:
        sink.abort()
        raise
