"""Copying shards between stores: one mechanism for ``copy_entry``, ``insert_dataset(copy=True)``
and the promotion copy step.

Shard by shard, streaming (memory bounded by one chunk), progress in bytes through the common
callback, verified by sha256, resumable (a shard already at the destination with the right
checksum is skipped), never a half shard under its final name (the store's sink stages it), and
never over another file: a name that is taken gets a content-addressed twin (see :func:`copy_shards`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from .errors import ShardError, ShardExistsError
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .shards import ShardInfo
from .stores.base import DataStore
from .urls import open_url

__all__ = ["copy_shards", "destination", "destinations", "sha256_of"]

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
    taken = _taken(infos, dest, dataset_name, in_use)
    out: list[ShardInfo] = []
    high = [0]  # bytes reported so far: progress never goes back, even when a shard is copied twice

    def tell(done: int, name: str | None = None) -> None:
        high[0] = max(high[0], done)
        report(ProgressEvent("copy", high[0], total, "bytes", message=name or ""))

    before = 0  # bytes of the shards before this one
    for i, info in enumerate(infos):
        opts = source_options(info.url) if callable(source_options) else (source_options or {})
        while True:
            url, there = destination(info, i, dest, dataset_name, taken)
            if there:
                copied = False
                break
            try:
                copied = _copy_one(info, dest, url, opts, before, tell)
                break
            except ShardExistsError:
                taken.add(url)  # another writer published a different file here meanwhile
        out.append(info.with_url(url) if url != info.url else info)
        before += info.size
        tell(before)
        if on_shard is not None:
            on_shard(i, out[-1], copied)
    report(ProgressEvent("copy", total, total, "bytes", finished=True))
    return out


class ShardRef(Protocol):
    """What choosing a destination needs to know of a shard."""

    url: str
    size: int
    checksum: str


def _taken(
    infos: Sequence[ShardRef],
    dest: DataStore,
    dataset_name: str,
    in_use: Callable[[list[str]], Collection[str]] | None,
) -> set[str]:
    plain = [dest.shard_url(dataset_name, i) for i in range(len(infos))]
    return set(in_use([u for u, info in zip(plain, infos) if u != info.url])) if in_use is not None else set()


def destination(
    info: ShardRef, i: int, dest: DataStore, dataset_name: str, taken: Collection[str]
) -> tuple[str, bool]:
    """Where shard ``i`` of ``dataset_name`` goes in ``dest``: ``(url, already there)``.

    The plain ``dest.shard_url(dataset_name, i)`` while it is free or holds the same bytes, else the
    content-addressed ``shard_url(dataset_name, i, tag=sha256[:16])``; never a name that holds other
    content or that ``taken`` (URLs an entry or a published record points to) reserves.

    Raises:
        ShardExistsError: even the content-addressed name holds other content (a corrupt file).
    """
    tagged = dest.shard_url(dataset_name, i, tag=info.checksum[:16])
    for url in (dest.shard_url(dataset_name, i), tagged):
        if url == info.url:
            return url, True
        if dest.exists(url):
            if dest.size(url) == info.size and sha256_of(url, dest.storage_options) == info.checksum:
                return url, True  # already copied (an earlier, interrupted run)
            continue  # another file: never replaced
        if url not in taken:
            return url, False
    raise ShardExistsError(
        f"cannot copy {info.url}: {tagged} is named after its sha256 {info.checksum[:16]}... but holds "
        "other content (a corrupt or foreign file); move it away and copy again",
        url=tagged,
    )


def destinations(
    infos: Sequence[ShardRef],
    dest: DataStore,
    dataset_name: str,
    *,
    in_use: Callable[[list[str]], Collection[str]] | None = None,
) -> list[str]:
    """The URLs :func:`copy_shards` would copy ``infos`` to, without copying (for plans)."""
    taken = _taken(infos, dest, dataset_name, in_use)
    return [destination(info, i, dest, dataset_name, taken)[0] for i, info in enumerate(infos)]


def _copy_one(
    info: ShardInfo,
    dest: DataStore,
    url: str,
    opts: dict[str, Any],
    before: int,
    tell: Callable[[int, str | None], None],
) -> bool:
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
