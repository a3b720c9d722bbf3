"""Ray Data: read a dataset as a ``ray.data.Dataset`` and write one into an index (extra ``ray``).

:func:`read_dataset` makes one read task per shard. Each task reads its shard with our batched
decoder (uniform NDArray fields copied once into a batch array; ``map``/``filter``/lenses of the
Dataset applied in the task), checks the shard's sha256 first when the entry has checksums, and
hands Ray typed columns: NDArray fields as tensor columns (ragged ones as variable-shaped tensor
columns), the other fields as native columns.

:func:`write_dataset` is a Ray ``Datasink``: each write task writes its rows as shards straight
into the index's data store (S3 for a multi-node cluster), and one index entry is committed
after every task succeeded. Every shard URL is noted in this machine's journal
(:mod:`atdata_lab._journal`, through a small actor on the driver's node) *before* the task
publishes it, so nothing is left behind: a failed write deletes the shards its tasks published;
shards of a task attempt that was killed and retried are deleted once the entry is committed; and
when the driver itself dies, the next write on this machine (``index.write`` or
:func:`write_dataset`) finds the note stale and deletes them. Staging files and open multipart
uploads of killed tasks are swept by the stores themselves (``clean_stale``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import ray
from ray.data import Datasink, Datasource, ReadTask
from ray.data.block import BlockAccessor, BlockMetadata

from .. import _journal
from ..dataset import Dataset, SampleBatch
from ..distributed import read_ids
from ..entry import IndexEntry
from ..errors import InvalidArgumentError
from ..index import Index, _pending_writes_dir, get_default_index
from ..sample import DictSample, codec_for
from ..schema import fields_of
from ..shards import ShardInfo, ShardSetWriter
from ..stores.base import DataStore

__all__ = ["read_dataset", "write_dataset"]


# ------------------------------------------------------------------------------------------ read
def _as_dataset(source: Any, index: Index | None, sample_type: type | None, storage_options: Any) -> Dataset:
    if isinstance(source, Dataset):
        return source if sample_type is None else source.as_type(sample_type)
    if isinstance(source, IndexEntry) or (
        isinstance(source, str) and index is not None and "/" not in source and not source.endswith(".tar")
    ):
        idx = index if index is not None else get_default_index()
        entry = source if isinstance(source, IndexEntry) else idx.get_entry_by_name(source)
        ds = idx.dataset(entry, sample_type)
        ds.checksums = {u: c for u, c in zip(entry.data_urls, entry.shard_checksums) if c}
        return ds
    if isinstance(source, str) and (source.startswith("at://") or source.startswith("@")):
        from ..promotion.published import load_published

        return load_published(source, sample_type=sample_type, index=index)
    return Dataset(source, sample_type=sample_type, storage_options=storage_options)


def _column(values: Any) -> np.ndarray:
    """A batch column as numpy for Ray: arrays as they are, ragged arrays as an object array of
    arrays (a variable-shaped tensor column), scalars as their numpy type, the rest as objects."""
    if isinstance(values, np.ndarray):
        return values
    out = np.empty(len(values), dtype=object)
    out[:] = values
    if all(isinstance(v, np.ndarray) for v in values):
        return out
    kinds = {type(v) for v in values}
    if kinds and kinds <= {int} or kinds <= {float} or kinds <= {bool}:
        return np.asarray(values)
    return out


def _block(batch: SampleBatch) -> Any:
    return BlockAccessor.batch_to_block({k: _column(v) for k, v in batch.as_dict().items()})


class _ShardSource(Datasource):
    def __init__(self, ds: Dataset, batch_size: int, max_rows_per_task: int | None) -> None:
        self.ds = ds
        self.batch_size = batch_size
        self.max_rows = max_rows_per_task

    def estimate_inmemory_data_size(self) -> int | None:
        sizes = [self.ds._known_size(u) for u in self.ds.urls]
        return sum(n for n in sizes if n is not None) or None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        del parallelism, data_context  # one task per shard (or shard range), whatever Ray suggests
        tasks = []
        ds = self.ds
        for url in ds.urls:
            info = ds._infos.get(url)
            row = ds._rows.get(url)  # count known, offsets not loaded (an index's dataset)
            n = info.num_samples if info is not None else row.num_samples if row is not None else None
            size = ds._known_size(url)
            if n is None or self.max_rows is None or n <= self.max_rows:
                ranges: list[tuple[int, int] | None] = [None]
            else:
                ranges = [(lo, min(lo + self.max_rows, n)) for lo in range(0, n, self.max_rows)]
                info = ds.shard_info(url)  # ranges read through the offset index: loaded here, sent along
            part = ds._derive(
                urls=[url],
                _infos={url: info} if info is not None else {},
                _rows={url: row} if row is not None and info is None else {},
                _offsets=None,
                checksums={url: ds.checksums[url]} if url in ds.checksums else {},
            )
            part._split_done = True  # one shard, read by this task (or its ranges by several)
            for r in ranges:
                rows = n if r is None else r[1] - r[0]
                meta = BlockMetadata(
                    num_rows=rows if not ds._ops else None,
                    size_bytes=int(size * (rows or 0) // max(n or 1, 1)) if size is not None else None,
                    exec_stats=None,
                    input_files=(url,),
                )
                read = _reader(part, self.batch_size, r)
                tasks.append(ReadTask(read, meta, per_task_row_limit=per_task_row_limit))
        return tasks


def _reader(part: Dataset, batch_size: int, rows: tuple[int, int] | None) -> Any:
    """The read function of one task: the whole shard streamed, or samples ``[lo, hi)`` of a big
    shard through its offset index."""

    def read() -> Iterator[Any]:
        batches: Iterator[Any]
        if rows is None:
            batches = part.ordered(batch_size=batch_size)
        else:
            counts = np.array([part.shard_info(part.urls[0]).num_samples], dtype=np.int64)
            raw = read_ids(part, counts, np.arange(rows[0], rows[1], dtype=np.int64))
            batches = part._pipeline(raw, batch_size)
        for batch in batches:
            yield _block(batch)

    return read


def read_dataset(
    source: Any,
    *,
    index: Index | None = None,
    sample_type: type | None = None,
    storage_options: dict[str, Any] | None = None,
    batch_size: int = 1024,
    max_rows_per_task: int | None = 100_000,
    **read_args: Any,
) -> ray.data.Dataset:
    """A ``ray.data.Dataset`` of ``source``: an :class:`IndexEntry`, an entry name (with
    ``index``), shard URLs, an ``at://`` URI, or a :class:`Dataset` (its map/filter/lens applied
    in the read tasks). One read task per shard, or per ``max_rows_per_task`` samples of a bigger
    shard whose offset index is known; ``read_args`` go to ``ray.data.read_datasource``.
    """
    ds = _as_dataset(source, index, sample_type, storage_options)
    src = _ShardSource(ds, batch_size, max_rows_per_task)
    return ray.data.read_datasource(src, override_num_blocks=len(ds.urls), **read_args)


# ----------------------------------------------------------------------------------------- write
@ray.remote(num_cpus=0)
class _Journal:
    """Notes, on the driver's machine, every shard a write task is about to publish."""

    def __init__(self, folder: str, index_id: str) -> None:
        self.info: dict[str, Any] = {"index": index_id, "urls": []}
        self.path = _journal.note(Path(folder), self.info)

    def add(self, urls: list[str]) -> None:
        self.info["urls"] = [*self.info["urls"], *urls]
        if self.path is not None:
            _journal.rewrite(self.path, {**(_journal.read(self.path) or {}), "urls": self.info["urls"]})

    def urls(self) -> list[str]:
        return list(self.info["urls"])

    def end(self, done: bool) -> None:
        _journal.end(self.path, done=done)


def _rows_to_samples(block: Any, sample_type: type) -> Iterator[Any]:
    cols = BlockAccessor.for_block(block).to_batch_format("numpy")
    n = len(next(iter(cols.values()))) if cols else 0
    lists = {k: (v if v.dtype == object or v.ndim > 1 else v.tolist()) for k, v in cols.items()}
    names = None if sample_type is DictSample else [f.name for f in fields_of(sample_type)]
    for i in range(n):
        row = {k: v[i] for k, v in lists.items()}
        if names is None:
            yield DictSample(row)
        else:
            missing = [f for f in names if f not in row]
            if missing:
                raise InvalidArgumentError(
                    f"write_dataset: rows have no column {missing[0]!r} for {sample_type.__name__} "
                    f"(columns: {', '.join(row)})"
                )
            yield sample_type(**{f: row[f] for f in names})


class _IndexSink(Datasink):
    def __init__(
        self, index: Index, name: str, sample_type: type, maxcount: int | None, options: dict
    ) -> None:
        self.index = index
        self.store: DataStore = index.data_store
        self.name = name
        self.sample_type = sample_type
        self.maxcount = maxcount
        self.options = options
        self.write_id = uuid.uuid4().hex[:8]
        self.journal: Any = None
        self.entry: IndexEntry | None = None

    def __getstate__(self) -> dict[str, Any]:  # the tasks need the store and the journal, not the index
        state = dict(self.__dict__)
        state["index"] = None
        return state

    def on_write_start(self, schema: Any = None) -> None:
        self.index._clean_stale_writes()  # shards of earlier writes whose driver died
        self.store.clean_stale()
        self.journal = _Journal.options(  # type: ignore[attr-defined]
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False
            )
        ).remote(str(_pending_writes_dir()), self.index._index_id())

    def write(self, blocks: Iterable[Any], ctx: Any) -> list[ShardInfo]:
        attempt = uuid.uuid4().hex[:6]  # a retried task writes other files; the killed attempt's are noted
        tag = f"{self.write_id}-{ctx.task_idx:05d}-{attempt}"
        store, name = self.store, self.name
        writer = ShardSetWriter(
            lambda i: store.shard_url(name, i, tag=tag), store.open_sink, maxcount=self.maxcount
        )
        packer = msgpack.Packer(use_bin_type=True)
        to_dict = codec_for(self.sample_type).to_dict
        n = 0
        try:
            for block in blocks:
                for sample in _rows_to_samples(block, self.sample_type):
                    writer.add("%05d-%07d" % (ctx.task_idx, n), packer.pack(to_dict(sample)))
                    n += 1
            infos = writer.finish()
            ray.get(self.journal.add.remote([i.url for i in infos]))  # noted before anything is published
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return [dataclasses.replace(i) for i in infos]

    def on_write_complete(self, write_result: Any) -> None:
        infos = [i for task in write_result.write_returns for i in task]
        try:
            if not infos:
                raise InvalidArgumentError(f"write_dataset({self.name!r}): the Ray dataset has no rows")
            ds: Dataset[Any] = Dataset(
                [i.url for i in infos],
                sample_type=self.sample_type,
                storage_options=self.store.storage_options,
            )
            ds._remember_shards(infos)
            self.entry = self.index.insert_dataset(ds, name=self.name, progress=False, **self.options)
        except BaseException:
            self._undo(keep=[])
            raise
        self._undo(keep=[i.url for i in infos])

    def on_write_failed(self, error: Exception) -> None:
        if self.journal is not None:
            self._undo(keep=[])

    def _undo(self, keep: list[str]) -> None:
        """Delete the noted shards not in ``keep`` that no entry uses, and end the note. After a
        failure the note stays (its actor gone, it is stale): a task cancelled while publishing may
        still finish after this, and the next write's sweep deletes what it published."""
        kept = set(keep)
        noted = ray.get(self.journal.urls.remote())
        done = False
        try:
            self.index._delete_unused([u for u in noted if u not in kept])
            done = bool(keep)
        finally:
            ray.get(self.journal.end.remote(done))
            ray.kill(self.journal)
            self.journal = None


def write_dataset(
    ray_ds: ray.data.Dataset,
    *,
    name: str,
    index: Index | None = None,
    sample_type: type | None = None,
    maxcount: int | None = 10_000,
    ray_remote_args: dict[str, Any] | None = None,
    concurrency: int | None = None,
    **entry_options: Any,
) -> IndexEntry:
    """Write ``ray_ds``'s rows as samples of ``sample_type`` (columns by field name) into
    ``index``'s data store, in parallel, and commit one entry named ``name``.

    ``entry_options`` (description, tags, license, metadata, overwrite) go to the entry. The entry
    exists only if every write task succeeded; see the module's doc for what is cleaned up when not.

    A failed write task fails the write with Ray's error, and no entry is committed.
    """
    idx = index if index is not None else get_default_index()
    sink = _IndexSink(idx, name, sample_type or DictSample, maxcount, entry_options)
    ray_ds.write_datasink(sink, ray_remote_args=ray_remote_args or {}, concurrency=concurrency)
    if sink.entry is None:  # pragma: no cover - write_datasink returned without completing
        raise InvalidArgumentError(f"write_dataset({name!r}) committed no entry")
    return sink.entry
