"""``Dataset[T]``: iterate, batch, shuffle and randomly access samples in shards.

Batches are assembled column-wise: NDArray fields of equal dtype and shape are copied once,
straight from the msgpack payloads into one contiguous batch array; ragged arrays and
``None`` mixes stay lists. ``filter()``/``map()`` also apply when batching.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import mmap
import operator
import os
import random
import re
import types
import typing
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields as dataclasses_fields
from dataclasses import replace as dataclasses_replace
from typing import Any, Generic, TypeVar

import msgpack
import numpy as np

from .cache import verified_source
from .columns import as_columns, is_columnar
from .distributed import EpochIterator
from .errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ManifestError,
    NotFoundError,
    PartialFailureError,
    SampleDecodeError,
    SampleIndexError,
    SampleKeyError,
    ShardError,
    ShardNotFoundError,
)
from .lens import LensNetwork
from .local_batches import (
    SMALL_KINDS,
    LocalShard,
    MemberRef,
    member_refs,
    read_batch,
    read_small_batch,
    sample_sizes_are_large,
)
from .manifest.aggregates import merge_aggregates
from .manifest.builder import ManifestSidecars
from .manifest.predicates import F, Predicate, query_fields
from .manifest.query import (
    FETCHERS,
    QueryExecutor,
    SampleLocation,
    load_manifests,
    locations_of,
    manifests_missing,
)
from .manifest.shard_manifest import shard_id_for
from .msgpack_view import unpack_map_views
from .ndarray_codec import NDArrayFormatError, decode_ndarray, parse_ndarray_header
from .offset_index import header_offsets
from .progress import ProgressLike
from .sample import DictSample, codec_for
from .schema import fields_of
from .seekable_gzip import is_gzip_name, read_span
from .shards import (
    ShardInfo,
    ShardRow,
    ShardSetWriter,
    encode_samples_into,
    iter_sample_members,
    local_shard_signature,
    peek_samples,
    scan_shard,
)
from .sources import shard_ids
from .stores.local import FileSink
from .tar import END_OF_ARCHIVE, iter_members, split_key
from .urls import (
    SOURCE_OPTION,
    _pool,
    expand_urls,
    is_local,
    local_path,
    open_url,
    read_range,
    source_shard_id,
    source_url,
    url_size,
)
from .views.datasets import dataset_summary_html, dataset_summary_text

__all__ = ["Dataset", "DatasetSummary", "SampleBatch", "DatasetDict", "write_samples"]

ST = TypeVar("ST")

# Offset indexes of local shards scanned on first use, keyed by (path, size, mtime); least
# recently used first out, so a long session that reads many shards stays bounded.
_scan_cache: OrderedDict[tuple, ShardInfo] = OrderedDict()
SCAN_CACHE_SIZE = 4096


def _cache_put(key: tuple, info: ShardInfo) -> None:
    _scan_cache[key] = info
    _scan_cache.move_to_end(key)
    while len(_scan_cache) > SCAN_CACHE_SIZE:
        _scan_cache.popitem(last=False)


_ALLOWED_TYPES: dict[str, frozenset] = {
    "str": frozenset({str}),
    "int": frozenset({int, bool}),
    "float": frozenset({float, int}),
    "bool": frozenset({bool}),
    "bytes": frozenset({bytes, memoryview}),
    "list": frozenset({list}),
    "dict": frozenset({dict}),
    "ndarray": frozenset({bytes, memoryview}),
}
_BIN = (bytes, memoryview)
_KEY, _DATA = operator.itemgetter(1), operator.itemgetter(2)  # of a (url, key, data) item
# Samples at least this large are read with zero-copy views of their bin values.
ZERO_COPY_MIN = 16 << 10
_NONE = frozenset({type(None)})
METADATA_MAX = 64 << 20  # bytes of a dataset's metadata file read at most
# a sample located by a manifest: bytes of tar headers before its data, and of its data, read at most
LOCATED_HEADERS_MAX = 64 << 10
LOCATED_SAMPLE_MAX = 2 << 30


class SampleBatch:
    """A batch of samples, column by column.

    ``batch.field`` is an array stacked on a new leading axis for NDArray fields whose items
    share dtype and shape, otherwise a list (ragged arrays, ``None`` mixes, other kinds).
    ``batch.samples`` rebuilds the sample objects; ``batch.keys`` are the sample keys.
    ``SampleBatch[T]`` names the type of a batch of ``T`` (``Dataset.batch_type``).

    ``SampleBatch(samples)`` (or ``SampleBatch[T](samples)``, as in atdata) batches sample
    objects; the readers build batches straight from their columns (``columns=``).
    """

    def __class_getitem__(cls, item: Any) -> types.GenericAlias:
        return types.GenericAlias(cls, (item,))

    def __init__(
        self,
        samples: Iterable[Any] | None = None,
        *,
        columns: dict[str, Any] | None = None,
        sample_type: type | None = None,
        keys: list[str] | None = None,
    ):
        listed = list(samples) if samples is not None else None
        if columns is None:
            columns, found = _columns_of(listed or [])
            sample_type = sample_type or found
        self._columns = columns
        self._sample_type = sample_type
        self.keys = keys if keys is not None else [str(i) for i in range(len(listed or []))]
        self._samples = listed

    @property
    def sample_type(self) -> type:
        """The samples' type (given, else from ``SampleBatch[T]``, else the samples')."""
        if self._sample_type is None:
            orig = self.__dict__.get("__orig_class__")
            args = typing.get_args(orig) if orig is not None else ()
            return args[0] if args and isinstance(args[0], type) else DictSample
        return self._sample_type

    def __len__(self) -> int:
        return len(self.keys)

    def __getattr__(self, name: str) -> Any:
        cols = self.__dict__.get("_columns")  # absent while copy/pickle rebuild the object
        if cols is None or name not in cols:
            fields = f" (fields: {', '.join(cols)})" if cols else ""
            raise AttributeError(f"batch has no field {name!r}{fields}")
        return cols[name]

    def __getitem__(self, name: str) -> Any:
        return self._columns[name]

    @property
    def fields(self) -> list[str]:
        return list(self._columns)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._columns)

    @property
    def samples(self) -> list:
        """The batch as a list of sample objects."""
        if self._samples is None:
            n = len(self.keys)
            cols = self._columns
            if self.sample_type is DictSample:
                self._samples = [DictSample({k: v[i] for k, v in cols.items()}) for i in range(n)]
            else:
                self._samples = [self.sample_type(**{k: v[i] for k, v in cols.items()}) for i in range(n)]
        return self._samples

    def __repr__(self) -> str:
        parts = []
        for k, v in self._columns.items():
            if isinstance(v, np.ndarray):
                parts.append(f"{k}: ndarray{v.dtype.str}{list(v.shape)}")
            else:
                parts.append(f"{k}: list[{len(v)}]")
        return f"SampleBatch[{getattr(self.sample_type, '__name__', '?')}]({len(self)}; {', '.join(parts)})"

    @classmethod
    def from_samples(cls, samples: list, keys: list[str] | None = None) -> SampleBatch:
        """Build a batch from sample objects (any packable type, DictSample, or plain objects)."""
        return cls(samples, keys=keys)


def _columns_of(samples: list) -> tuple[dict[str, Any], type | None]:
    """The columns of sample objects, and their type (``object`` when they differ; None when empty)."""
    if not samples:
        return {}, None
    st = type(samples[0])
    if any(type(s) is not st for s in samples):
        return {}, object
    if st is DictSample:
        names: dict[str, None] = {}
        for s in samples:
            names.update(dict.fromkeys(s.keys()))
        cols = {n: [s._data.get(n) for s in samples] for n in names}
    else:
        try:
            names_list = [f.name for f in fields_of(st)]
        except TypeError:
            return {}, st
        cols = {n: [getattr(s, n) for s in samples] for n in names_list}
    for n, col in cols.items():
        cols[n] = _stack_if_uniform(col)
    return cols, st


def _stack_if_uniform(col: list) -> Any:
    first = col[0]
    if not isinstance(first, np.ndarray):
        return col
    dt, shape = first.dtype, first.shape
    for a in col:
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != shape:
            return col
    return np.stack(col)


def _stack_ndarray_payloads(col: list, where: Callable[[int], str], optional: bool) -> Any:
    """Decode a column of NDArray payloads straight into one batch array when uniform.

    Payloads may be bytes or memoryviews (zero-copy views into the shard): either way the
    array data is copied exactly once, into the batch.
    """
    first = col[0]
    if type(first) in _BIN and first[:6] != b"\x93NUMPY":
        try:
            dt, shape, off = parse_ndarray_header(first)
        except NDArrayFormatError as e:
            raise SampleDecodeError(f"{where(0)}: {e}") from e
        n0 = len(first)
        head = bytes(first[:off])
        uniform = True
        for b in col:
            if type(b) not in _BIN or len(b) != n0 or b[:off] != head:
                uniform = False
                break
        if uniform:
            # numpy's large allocations get transparent huge pages: fewer page faults than a bytearray
            rb = n0 - off
            flat = np.empty(len(col) * rb, dtype=np.uint8)
            dest = memoryview(flat)  # type: ignore[arg-type]  # numpy arrays are buffers
            for i, b in enumerate(col):
                dest[i * rb : (i + 1) * rb] = memoryview(b)[off:]
            return flat.view(dt).reshape((len(col), *shape))
    out: list[Any] = []
    for i, b in enumerate(col):
        if b is None and optional:
            out.append(None)
            continue
        try:
            out.append(decode_ndarray(b))
        except (NDArrayFormatError, TypeError) as e:
            raise SampleDecodeError(f"{where(i)}: {e}") from e
    return _stack_if_uniform(out) if all(a is not None for a in out) else out


class Dataset(Generic[ST]):
    """Samples in one or more WebDataset shards.

    ``Dataset[T](source)`` reads them as ``T``; without a type they are ``DictSample``.

    Args:
        source: A URL, a list of URLs, or a brace pattern (``data-{000000..000009}.tar``):
            local paths, ``file://``, and any fsspec URL (``https://``, ``s3://``). Or a data
            source (:mod:`atdata_lab.sources`): ``URLSource``, ``S3Source``, ``BlobSource``, or
            your own object with ``list_shards()`` and ``open_shard(shard_id)``.
        metadata_url: A msgpack map of dataset metadata (:attr:`metadata`).
        url: atdata's older name for ``source``.
        sample_type: The sample type (same as the ``Dataset[T]`` form).
        storage_options: fsspec options for remote URLs (credentials, endpoint).
        checksums: ``{url: sha256 hex}``: each of these shards is checked before any of its samples
            is used (by iteration, ``ds[k]`` or ``len()``): a local file is hashed, a remote one is
            downloaded into the verified cache (:mod:`atdata_lab.cache`) and read from there. A
            mismatch raises :class:`~atdata_lab.errors.ShardError` naming the shard, and no sample
            of it is returned (published datasets set this).
    """

    sample_type: type
    _bound_type: type | None = None
    _typed_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __class_getitem__(cls, item: Any) -> Any:
        if isinstance(item, TypeVar):
            return super().__class_getitem__(item)  # type: ignore[misc]
        try:
            sub = cls._typed_cache.get(item)
        except TypeError:  # not weak-referenceable: build without caching
            sub = None
        if sub is None:
            sub = type(f"Dataset[{getattr(item, '__name__', item)}]", (cls,), {"_bound_type": item})
            try:
                cls._typed_cache[item] = sub
            except TypeError:
                pass
        return sub

    def __init__(
        self,
        source: Any = None,
        metadata_url: str | None = None,
        *,
        url: str | None = None,
        sample_type: type | None = None,
        storage_options: dict[str, Any] | None = None,
        checksums: dict[str, str] | None = None,
        _ops: tuple = (),
        _infos: dict[str, ShardInfo] | None = None,
        _rows: dict[str, ShardRow] | None = None,
        _offsets: Callable[[str], tuple[Any, ...] | None] | None = None,
        _decode_as: type | None = None,
        _data_source: Any = None,
    ) -> None:
        if source is None:
            source = url
        if source is None:
            raise InvalidTypeError(
                "Dataset needs its shards: Dataset[T](url_or_pattern) or Dataset[T](source)"
            )
        options = dict(storage_options or {})
        if isinstance(source, (str, os.PathLike, list, tuple)):
            self.urls = expand_urls(source)
        else:
            _data_source = source
            native = getattr(source, "_dataset_args", None)  # URLSource, S3Source: our readers take them
            if callable(native):
                self.urls, extra = native()
                options = {**extra, **options}
            else:  # any other source streams its shards through open_shard
                self.urls = [source_url(i) for i in shard_ids(source)]
                options[SOURCE_OPTION] = source
        if not self.urls:
            raise InvalidArgumentError("Dataset needs at least one shard URL")
        self._data_source = _data_source
        self.sample_type = sample_type or self._bound_type or DictSample
        self.storage_options = options
        self._ops = _ops
        # set when a lens views the samples: decode as this type, then the lens (in _ops) maps
        self._decode_as = _decode_as
        self._infos: dict[str, ShardInfo] = dict(_infos or {})
        # shards whose count is known but whose offset index is not loaded yet (from an index):
        # url -> ShardRow; ``_offsets(url)`` fetches that shard's offsets and keys on first use
        self._rows: dict[str, ShardRow] = dict(_rows or {})
        self._offsets = _offsets
        self._cum: list[int] | None = None
        self.checksums = dict(checksums or {})
        self._sources: dict[str, str] = {}  # checked shards: url -> the local file that matched
        self._split_done = False
        self._node: tuple | None = None  # split_by_node: (rank, world, uneven[, worker, workers])
        self.metadata_url = metadata_url
        self._metadata: dict[str, Any] | None = None
        self._content_metadata: Any = None
        self._manifests: list[Any] | None = None  # the shards' manifests (None in place of a missing one)
        # url -> where its manifest is when not beside the shard (a published record's manifest
        # blobs): an object whose load() gives the ShardManifest
        self._manifest_refs: dict[str, Any] = {}
        self._executor: QueryExecutor | None = None  # queries over them (keeps the rows it joined)
        self._stats: Any = None  # stats(): computed once, then kept

    def __reduce__(self) -> tuple:
        # Dataset[T] classes are made on the fly: pickle as the base class (for DataLoader workers);
        # loaded manifests are not sent along (read again where needed)
        return (
            _rebuild_dataset,
            (self.urls, {**self.__dict__, "_manifests": None, "_executor": None, "_stats": None}),
        )

    # ------------------------------------------------------------------ plumbing
    def _derive(self, **changes: Any) -> Dataset:
        kw: dict[str, Any] = {
            "sample_type": self.sample_type,
            "storage_options": self.storage_options,
            "checksums": self.checksums,
            "_ops": self._ops,
            "_infos": self._infos,
            "_rows": self._rows,
            "_offsets": self._offsets,
            "_decode_as": self._decode_as,
            "metadata_url": self.metadata_url,
            "_data_source": self._data_source,
        }
        urls = changes.pop("urls", self.urls)
        kw.update(changes)
        out: Dataset[Any] = Dataset(urls, **kw)
        out._content_metadata = self._content_metadata
        out._manifest_refs = self._manifest_refs
        out._node = self._node
        return out

    def _remember_shards(self, infos: list[ShardInfo]) -> None:
        """Use known offset indexes (from a writer or an index); a local file whose size no longer
        matches is left to be scanned again, so stale offsets are never used."""
        for info in infos:
            self._remember_one(info)
        self._cum = None

    def _remember_one(self, info: ShardInfo) -> bool:
        if is_local(info.url):
            sig = local_shard_signature(local_path(info.url))
            if sig is None or sig[0] != info.size:
                return False
            _cache_put((local_path(info.url), *sig), info)
        self._infos[info.url] = info
        return True

    def _remember_rows(self, rows: list[ShardRow], offsets: Callable[[str], tuple[Any, ...] | None]) -> None:
        """Know these shards' counts now and fetch each one's offset index with ``offsets(url)``
        when the shard is first used for random access. A local file whose size no longer matches
        is left to be scanned again (now and when its offsets are fetched)."""
        for row in rows:
            if is_local(row.url):
                sig = local_shard_signature(local_path(row.url))
                if sig is None or sig[0] != row.size:
                    continue
            self._rows[row.url] = row
        self._offsets = offsets
        self._cum = None

    def _num_samples(self, url: str) -> int:
        """A shard's sample count, without loading its offset index when the count is known."""
        info = self._infos.get(url)
        if info is not None:
            return info.num_samples
        row = self._rows.get(url)
        if row is not None:
            return row.num_samples
        return self._offsets_of(url).num_samples

    def _known_size(self, url: str) -> int | None:
        """A shard's size in bytes if known without reading it."""
        info = self._infos.get(url)
        if info is not None:
            return info.size
        row = self._rows.get(url)
        return row.size if row is not None else None

    def _source_of(self, url: str) -> str:
        """Where to read ``url`` from: itself, or for a shard with a checksum the local file that
        was checked against it (verified once, then remembered)."""
        want = self.checksums.get(url)
        if not want:
            return url
        src = self._sources.get(url)
        if src is None:
            src = self._sources[url] = verified_source(url, want, self.storage_options)
        return src

    def _indexed_info(self, url: str) -> ShardInfo | None:
        """A shard's offset index as known or as its index has it (one row fetched on first use),
        never scanned; None when neither knows it (or the local file changed since)."""
        info = self._infos.get(url)
        if info is not None:
            return info
        row = self._rows.get(url)
        if row is not None and self._offsets is not None:
            got = self._offsets(url)
            if got is not None:
                info = ShardInfo(url, row.checksum, row.size, row.num_samples, *got)
                if self._remember_one(info):
                    return info
                del self._rows[url]  # the local file changed since: scanned when needed
        return None

    def _offsets_of(self, url: str) -> ShardInfo:
        """A shard's offset index for reading samples by position. A local shard no writer or
        index described is not read whole: its index comes from its tar headers alone (cached on
        disk, see :mod:`~atdata_lab.offset_index`), with an empty ``checksum`` unless one is known
        (:meth:`shard_info` hashes the shard)."""
        info = self._indexed_info(url)
        if info is not None:
            return info
        want = self.checksums.get(url)
        if want:  # the local file checked against the checksum (once): its headers only
            info = header_offsets(self._source_of(url), url, want)
            if info is None:
                return self.shard_info(url)
            self._infos[url] = info
            return info
        if not is_local(url):
            return self.shard_info(url)
        sig = local_shard_signature(local_path(url))
        if sig is None:
            raise ShardNotFoundError(f"shard {url} does not exist")
        key = (local_path(url), *sig)
        info = _scan_cache.get(key)
        if info is None:
            info = header_offsets(local_path(url), url)
            if info is None:  # compressed: scanned by its reader
                return self.shard_info(url)
            _cache_put(key, info)
        return info

    def shard_info(self, url: str) -> ShardInfo:
        """The offset index of a shard (scanned once on first use, then cached)."""
        info = self._indexed_info(url)
        if info is not None:
            return info
        if self.checksums.get(url):
            info = self._infos[url] = scan_shard(self._source_of(url)).with_url(url)
            return info
        key = None
        if is_local(url):
            sig = local_shard_signature(local_path(url))
            if sig is None:
                raise ShardNotFoundError(f"shard {url} does not exist")
            key = (local_path(url), *sig)
            info = _scan_cache.get(key)
        if info is None or not info.checksum:  # not scanned, or from its headers only: hashed now
            info = scan_shard(url, self.storage_options)
            if key is not None:
                _cache_put(key, info)
        self._infos[url] = info
        return info

    @property
    def url(self) -> str:
        """The first shard's URL."""
        return self.urls[0]

    def list_shards(self) -> list[str]:
        """The shard URLs (a data source's own shard ids), in order."""
        return [_public(u) for u in self.urls]

    @property
    def shard_list(self) -> list[str]:
        """The shard URLs, in order (as :meth:`list_shards`)."""
        return self.list_shards()

    @property
    def shards(self) -> list[str]:
        """The shard URLs, in order (as :meth:`list_shards`; atdata gives an iterator)."""
        return self.list_shards()

    def __repr__(self) -> str:
        name = getattr(self.sample_type, "__name__", str(self.sample_type))
        shards = f"{len(self.urls)} shard{'s' if len(self.urls) != 1 else ''}"
        ops = f", {len(self._ops)} ops" if self._ops else ""
        return f"Dataset[{name}]({shards}: {self.urls[0]}{' ...' if len(self.urls) > 1 else ''}{ops})"

    # ------------------------------------------------------------------ composition
    def filter(self, predicate: Callable[[Any], bool]) -> Dataset:
        """Keep samples for which ``predicate(sample)`` is true (applies to batches too)."""
        return self._derive(_ops=(*self._ops, ("filter", predicate)))

    def map(self, fn: Callable[[Any], Any]) -> Dataset:
        """Transform each sample (applies to batches too)."""
        return self._derive(_ops=(*self._ops, ("map", fn)))

    def as_type(self, other: type) -> Dataset:
        """Read the same shards as another type.

        When the :class:`~atdata_lab.lens.LensNetwork` has a lens (or a path of lenses) from this
        dataset's type to ``other``, samples are decoded as this type and the lens views each
        one, in every way of reading (iteration, batches, shuffling, ``ds[k]``). Without one, the
        fields are matched by name, which needs ``other``'s fields to be among this type's.

        Raises:
            LensNotFoundError: No lens, and ``other`` has fields this type lacks (the message
                names the missing hop).
        """
        current = self.sample_type
        if other is current:
            return self._derive()
        network = LensNetwork()
        decode_as = self._decode_as or current
        found = network.find(current, other) if current is not DictSample else None
        twin = network.registered_twin(current) if found is None and self._decode_as is None else None
        if twin is not None:  # read from an index's stored schema: the lenses of the class that wrote it
            found = network.find(twin, other)
            decode_as = twin if found is not None else decode_as
        if found is not None:
            return self._derive(
                sample_type=other,
                _decode_as=decode_as,
                _ops=(*self._ops, ("map", found.get)),
            )
        if self._decode_as is None and (current is DictSample or _field_subset(other, current)):
            return self._derive(sample_type=other)
        LensNetwork().transform(current, other)  # there is no path: this raises, naming the hop
        raise AssertionError("unreachable")  # pragma: no cover

    def split_by_worker(self, worker_id: int, num_workers: int) -> Dataset:
        """The shards worker ``worker_id`` of ``num_workers`` should read (every n-th); after
        :meth:`split_by_node`, this reader's share of that node's (exactly once, as a DataLoader
        worker's)."""
        if not 0 <= worker_id < num_workers:
            raise InvalidArgumentError(f"worker_id must be in [0, {num_workers}), not {worker_id}")
        if self._node is not None:
            part = self._derive()
            part._node = (*self._node[:3], worker_id, num_workers)
            return part
        urls = self.urls[worker_id::num_workers]
        if not urls:
            raise InvalidArgumentError(
                f"worker {worker_id} of {num_workers} gets no shard: the dataset has only {len(self.urls)}; "
                "use fewer workers or write smaller shards (maxcount=)"
            )
        part = self._derive(urls=urls)
        part._split_done = True  # an explicit split is final: no second split from RANK or workers
        return part

    def shard(self, rank: int, world_size: int) -> Dataset:
        """The shards of process ``rank`` in a ``world_size``-process job."""
        return self.split_by_worker(rank, world_size)

    def split_by_node(
        self, rank: int | None = None, world_size: int | None = None, *, uneven: str = "allow"
    ) -> Dataset:
        """Read as rank ``rank`` of ``world_size`` (None: from ``torch.distributed`` or
        ``RANK``/``WORLD_SIZE`` when iterating), composed with DataLoader workers.

        Every sample of an epoch goes to exactly one (rank, worker): whole shards each when there
        are at least ranks x workers shards, else a per-sample stride (see
        :mod:`atdata_lab.distributed`). ``uneven="drop"`` cuts every reader to the smallest
        count, ``"pad"`` repeats samples up to the largest, so every rank gets the same number of
        batches (as DDP needs); with ``"allow"`` unequal counts are reported by a warning.
        """
        from .distributed import UNEVEN, current_layout

        if uneven not in UNEVEN:
            raise InvalidArgumentError(f"uneven must be one of {', '.join(UNEVEN)}, not {uneven!r}")
        if (rank is None) != (world_size is None):
            raise InvalidArgumentError("give both rank and world_size, or neither (taken from the job)")
        if rank is not None:
            current_layout((rank, world_size))  # type: ignore[arg-type]  # checks the range
        part = self._derive()
        part._node = (rank, world_size, uneven)
        return part

    # ------------------------------------------------------------------ iteration
    def _raw(self, urls: list[str], refs: bool = False) -> Iterator[tuple[str, str, Any]]:
        """``(url, key, msgpack bytes)`` of every sample, shard by shard.

        With ``refs``, samples of local shards whose offset index is known (or, for a plain
        ``.tar``, built from its headers) come as unread :class:`MemberRef` s instead, for
        :func:`read_batch` (large samples) and
        :func:`read_small_batch` (see :meth:`_local_shard`).
        """
        opts = self.storage_options
        ahead: dict[str, Any] = {}  # the next remote shard, opened and fetching while this one is decoded
        checking: dict[str, Any] = {}  # the next checksummed remote shard, downloading into the cache
        for i, url in enumerate(urls):
            if self.checksums.get(url):  # checked before any of its samples is handed out
                fut = checking.pop(url, None)
                src = fut.result() if fut is not None else self._source_of(url)
                nxt = urls[i + 1] if i + 1 < len(urls) else None
                if (
                    nxt is not None
                    and self.checksums.get(nxt)
                    and not is_local(nxt)
                    and nxt not in self._sources
                ):
                    checking[nxt] = _pool().submit(self._source_of, nxt)  # download the next one meanwhile
                info = self._indexed_info(url) if refs else None
                shard = self._local_shard(url, src, info)
                if shard is not None:
                    yield from zip(itertools.repeat(url), shard.keys, member_refs(shard))
                    continue
                for key, data in iter_sample_members(src):
                    yield url, key, data
                continue
            if refs and is_local(url):
                info = self._known_info(url)
                if info is None and local_path(url).endswith(".tar"):
                    # a shard nothing indexed: indexed from its headers (cached on disk), then read by
                    # batches, large samples straight into the batch arrays, small ones by columns
                    # (a fresh process holds no mapped shard: its memory is the batches')
                    try:
                        info = self._offsets_of(url)
                    except (ShardError, OSError):
                        info = None  # read whole below, which reports any damage where it is met
                shard = self._local_shard(url, local_path(url), info)
                if shard is not None:
                    yield from zip(itertools.repeat(url), shard.keys, member_refs(shard))
                    continue
            opened = ahead.pop(url, None)
            if not is_local(url) and i + 1 < len(urls) and not is_local(urls[i + 1]):
                if opened is None:
                    opened = open_url(url, opts)
                opened.on_eof = functools.partial(self._open_ahead, urls[i + 1], ahead)
            for key, data in iter_sample_members(url, opts, opened=opened):
                yield url, key, data

    def _local_shard(self, url: str, path: str, info: ShardInfo | None) -> LocalShard | None:
        """A local shard to read by batches through its offset index (None: read it whole): large
        samples go straight into the batch arrays, small ones of a plain tar are decoded by columns
        when the sample type's fields all decode so."""
        if info is None or info.blocks is not None:  # a gzip shard: read through its blocks
            return None
        if sample_sizes_are_large(info, ZERO_COPY_MIN):
            return LocalShard(url, path, info)
        if info.num_samples == 0 or not path.endswith(".tar") or self._small_kinds() is None:
            return None
        shard = LocalShard(url, path, info)
        shard.small = True
        return shard

    def _small_kinds(self) -> dict[str, str] | None:
        """The sample type's field kinds when :func:`read_small_batch` decodes them all."""
        return _small_kinds_of(self.sample_type)

    def _open_ahead(self, url: str, ahead: dict[str, Any]) -> None:
        try:
            f: Any = open_url(url, self.storage_options)  # a remote reader: fetches its first block ahead
            f.prefetch()
        except Exception:  # noqa: BLE001 - opened again when its turn comes, and any error is raised then
            return
        ahead[url] = f

    def _known_info(self, url: str) -> ShardInfo | None:
        """A local shard's offset index if known (from a writer, an index or a scan), else None."""
        info = self._indexed_info(url)
        if info is None:
            sig = local_shard_signature(local_path(url))
            info = _scan_cache.get((local_path(url), *sig)) if sig is not None else None
        return info

    def _decode(self, url: str, key: str, data: Any) -> Any:
        codec = codec_for(self._decode_as or self.sample_type)
        where = f"shard {url}, sample {key!r}"
        if len(data) < ZERO_COPY_MIN or codec.cls is DictSample:
            return codec.unpack(data, where)
        try:  # a large sample: its arrays decoded from views of ``data`` (one copy, not two)
            mapping = unpack_map_views(data)
        except Exception as e:  # noqa: BLE001 - hostile bytes raise several kinds; one error for all
            raise SampleDecodeError(f"{where}: not a valid msgpack sample ({e})") from e
        return codec.from_mapping(mapping, where)

    def _apply_ops(self, samples: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        for key, s in samples:
            keep = True
            for kind, fn in self._ops:
                if kind == "filter":
                    if not fn(s):
                        keep = False
                        break
                else:
                    s = fn(s)
            if keep:
                yield key, s

    def _samples(self, raw: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, Any]]:
        dec = self._decode
        gen = ((key, dec(url, key, data)) for url, key, data in raw)
        return self._apply_ops(gen) if self._ops else gen

    def __iter__(self) -> Iterator[ST]:
        return self.ordered()

    def ordered(self, batch_size: int | None = None) -> EpochIterator:
        """Samples (or :class:`SampleBatch` of ``batch_size``) in shard order; this reader's share
        when split across ranks and workers. The iterator has ``state_dict()``/``load_state_dict()``."""
        if batch_size is not None:
            _check_batch_size(batch_size)
        return EpochIterator(self, batch_size)

    def shuffled(
        self,
        buffer_shards: int = 100,
        buffer_samples: int = 1000,
        batch_size: int | None = None,
        *,
        seed: int | None = None,
        buffer: int | None = None,
        epoch: int | None = None,
        block: int | None = None,
    ) -> EpochIterator:
        """Samples in random order.

        Without ``epoch=``: shards shuffled, then a ``buffer_samples``-sample shuffle buffer; the
        same ``seed`` gives the same order. With ``epoch=``: one global order per ``(seed, epoch)``
        whatever the number of ranks and workers (shards permuted, then the samples of each
        ``block`` shards, all by default, permuted together), split among the readers and
        resumable (``state_dict()``).

        Args:
            buffer_shards: atdata's shard shuffle buffer. Here the shard order is always a full
                random permutation (what a buffer as large as the shard list gives: the list costs
                nothing to hold), so any value of at least 1 is accepted.
            buffer_samples: Samples held for shuffling (default 1000; atdata's is 10,000: pass
                that for its mixing, at ten times the memory for remote shards).
            batch_size: Yield :class:`SampleBatch` es of this size.
            seed: The random seed.
            buffer: Our shorter name for ``buffer_samples``.
            epoch: The epoch of an elastic, resumable global order (needs ``seed``).
            block: With ``epoch``: how many shards' samples are permuted together.
        """
        if buffer is not None:
            buffer_samples = buffer
        if buffer_shards < 1:
            raise InvalidArgumentError(f"buffer_shards must be at least 1, not {buffer_shards}")
        if buffer_samples < 1:
            raise InvalidArgumentError(f"buffer_samples must be at least 1, not {buffer_samples}")
        if batch_size is not None:
            _check_batch_size(batch_size)
        if epoch is None:
            return EpochIterator(self, batch_size, seed=seed, buffer=buffer_samples)
        if seed is None:
            raise InvalidArgumentError(
                "shuffled(epoch=...) needs a seed: the order is fixed by (seed, epoch)"
            )
        return EpochIterator(self, batch_size, seed=seed, epoch=epoch, block=block)

    def to_torch(
        self,
        batch_size: int | None = None,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        block: int | None = None,
    ) -> Any:
        """A ``torch.utils.data.IterableDataset`` view for ``DataLoader`` (needs the ``torch`` extra);
        see :mod:`atdata_lab.integrations.torch`."""
        try:
            from .integrations.torch import TorchDataset
        except ImportError as e:
            if "torch" not in str(e):
                raise
            raise ImportError("to_torch() needs PyTorch: pip install 'atdata-lab[torch]'") from None
        return TorchDataset(self, batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch, block=block)

    def _pipeline(self, raw: Iterator[tuple[str, str, Any]], batch_size: int | None) -> Iterator[Any]:
        if batch_size is None:
            return (s for _, s in self._samples(raw))
        if self._ops:
            return self._batch_objects(self._samples(raw), batch_size)
        return self._batch_raw(raw, batch_size)

    @staticmethod
    def _buffer_mix(
        raw: Iterator[tuple[str, str, Any]], buffer: int, rng: random.Random
    ) -> Iterator[tuple[str, str, Any]]:
        pool: list = []
        for url, key, data in raw:
            # views into a mapped local shard stay valid and cost nothing; remote chunks are
            # copied, so buffered samples never pin whole read chunks in memory
            item = (
                url,
                key,
                data if isinstance(data, memoryview) and isinstance(data.obj, mmap.mmap) else bytes(data),
            )
            if len(pool) < buffer:
                pool.append(item)
                continue
            j = rng.randrange(buffer)
            yield pool[j]
            pool[j] = item
        rng.shuffle(pool)
        yield from pool

    def _batch_objects(self, samples: Iterator[tuple[str, Any]], n: int) -> Iterator[SampleBatch]:
        while True:
            chunk = list(itertools.islice(samples, n))
            if not chunk:
                return
            yield SampleBatch.from_samples([s for _, s in chunk], [k for k, _ in chunk])

    def _batch_raw(self, raw: Iterator[tuple[str, str, Any]], n: int) -> Iterator[SampleBatch]:
        unpackb = msgpack.unpackb
        st = self.sample_type
        small_kinds = self._small_kinds()
        if st is DictSample:

            def is_array_field(name: str) -> bool:
                return True
        else:
            array_fields = {f.name for f in codec_for(st).fields if f.type.kind == "ndarray"}

            def is_array_field(name: str) -> bool:
                return name in array_fields

        while True:
            chunk = list(itertools.islice(raw, n))
            if not chunk:
                return
            first, last = chunk[0][2], chunk[-1][2]
            if (
                type(first) is MemberRef
                and type(last) is MemberRef
                and first.shard.small
                and last.shard is first.shard
                and last.j - first.j == len(chunk) - 1  # consecutive samples of one shard
            ):
                sh, a, b = first.shard, first.j, last.j + 1
                cols = read_small_batch(sh, a, b, small_kinds or {})
                if cols is not None:
                    yield SampleBatch(columns=cols, sample_type=st, keys=sh.keys[a:b])
                    continue
            refs = list(map(_DATA, chunk))
            kinds = set(map(type, refs))
            if MemberRef in kinds:
                whole = len(kinds) == 1
                got = read_batch(refs, is_array_field) if whole and not refs[0].shard.small else None
                if got is not None:
                    yield self._columns(got[0], chunk, list(map(_KEY, chunk)), st, got[1])
                    continue
                # not one uniform batch: read the samples whole, and decode them as usual
                chunk = [(u, k, d.shard.read_member(d.j) if type(d) is MemberRef else d) for u, k, d in chunk]
            maps = []
            for url, key, data in chunk:
                try:
                    maps.append(unpack_map_views(data) if len(data) >= ZERO_COPY_MIN else unpackb(data))
                except Exception as e:
                    raise SampleDecodeError(
                        f"shard {url}, sample {key!r}: not a valid msgpack sample ({e})"
                    ) from e
            keys = [c[1] for c in chunk]
            yield self._columns(maps, chunk, keys, st)

    def _columns(
        self, maps: list, chunk: list, keys: list[str], st: type, filled: dict[str, np.ndarray] | None = None
    ) -> SampleBatch:
        """The batch's columns; ``filled`` holds array columns already read (their values in
        ``maps`` are placeholders)."""

        def where_for(i: int, field: str) -> str:
            return f"shard {chunk[i][0]}, sample {chunk[i][1]!r}, field {field!r}"

        if set(map(type, maps)) != {dict}:
            i = next(i for i, m in enumerate(maps) if type(m) is not dict)
            raise SampleDecodeError(
                f"shard {chunk[i][0]}, sample {chunk[i][1]!r}: a sample must be a msgpack map"
            )
        cols: dict[str, Any] = {}
        if st is DictSample:
            names: dict[str, None] = {}
            for m in maps:
                names.update(dict.fromkeys(m))
            for name in names:
                if filled and name in filled:
                    cols[name] = filled[name]
                    continue
                col = [m.get(name) for m in maps]
                if type(col[0]) in _BIN and _looks_like_array(col[0]):
                    try:
                        cols[name] = _stack_ndarray_payloads(
                            col, functools.partial(where_for, field=name), True
                        )
                        continue
                    except SampleDecodeError:
                        pass
                cols[name] = [bytes(v) if type(v) is memoryview else v for v in col]
            return SampleBatch(columns=cols, sample_type=st, keys=keys)
        for f in codec_for(st).fields:
            name = f.name
            if filled and name in filled:
                cols[name] = filled[name]
                continue
            col = [m.get(name) for m in maps]
            allowed = _ALLOWED_TYPES[f.type.kind]
            types_ = set(map(type, col))
            if f.optional:
                allowed = allowed | _NONE
            if not types_ <= allowed:
                i = next(i for i, v in enumerate(col) if type(v) not in allowed)
                what = "is missing or None" if col[i] is None else f"holds {type(col[i]).__name__}"
                raise SampleDecodeError(
                    f"{where_for(i, name)}: {what}, but {st.__name__}.{name} is {f.describe()}"
                )
            kind = f.type.kind
            if kind == "ndarray":
                cols[name] = _stack_ndarray_payloads(
                    col, functools.partial(where_for, field=name), f.optional
                )
            elif kind == "bytes" and memoryview in types_:
                cols[name] = [bytes(v) if type(v) is memoryview else v for v in col]
            elif kind == "float" and int in types_:
                cols[name] = [float(v) if type(v) is int else v for v in col]
            elif kind == "list" and f.type.items is not None and f.type.items.kind == "ndarray":
                cols[name] = [None if v is None else [decode_ndarray(x) for x in v] for v in col]
            else:
                cols[name] = col
        return SampleBatch(columns=cols, sample_type=st, keys=keys)

    # ------------------------------------------------------------------ access
    def head(self, n: int = 5) -> list:
        """The first ``n`` samples."""
        return list(itertools.islice(self.ordered(), n))

    def _cumulative(self) -> list[int]:
        if self._cum is None:
            total = 0
            cum = [0]
            for url in self.urls:
                total += self._num_samples(url)
                cum.append(total)
            self._cum = cum
        return self._cum

    def __len__(self) -> int:
        if any(kind == "filter" for kind, _ in self._ops):
            raise InvalidTypeError("len() is unknown after filter(); iterate to count")
        return self._cumulative()[-1]

    def locate(self, k: int) -> tuple[str, int, str]:
        """``(shard url, index in shard, key)`` of sample ``k``."""
        cum = self._cumulative()
        n = cum[-1]
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise SampleIndexError(f"sample {k} is out of range: the dataset has {n} samples")
        s = bisect.bisect_right(cum, k) - 1
        url = self.urls[s]
        i = k - cum[s]
        return url, i, self._offsets_of(url).keys[i]

    def index_of(self, location: SampleLocation) -> int:
        """The number ``k`` (``ds[k]``) of the sample at ``location`` (a query hit): the inverse of
        :meth:`locate`. Reads the shard's offset index (known, or scanned once), no sample.

        Raises:
            SampleKeyError: The location is not in this dataset (a ``KeyError``).
        """
        url = self._url_of(location)
        try:
            i = self.shard_info(url).keys.index(location.key)
        except ValueError:
            raise SampleKeyError(f"shard {url} has no sample {location.key!r}") from None
        return self._cumulative()[self.urls.index(url)] + i

    def __getitem__(self, k: int) -> ST:
        """Sample ``k``, read with one seek through the shard's offset index."""
        if not isinstance(k, (int, np.integer)):
            raise InvalidTypeError(f"dataset indices must be integers, not {type(k).__name__}")
        if any(kind == "filter" for kind, _ in self._ops):
            raise InvalidTypeError(
                "random access is not available after filter(); index the unfiltered dataset"
            )
        url, i, key = self.locate(int(k))
        return self._read_at(url, i, key)

    def _read_at(self, url: str, i: int, key: str) -> Any:
        """Sample ``i`` of shard ``url`` (its key ``key``), decoded, with map(), filter() and lenses
        applied (a sample filter() drops is a :class:`SampleKeyError`)."""
        info = self._offsets_of(url)
        off, size = info.offsets[i]
        data = self._read_tar_bytes(info, self._source_of(url), int(off), int(size))
        if len(data) != size:
            raise ShardError(
                f"shard {url}: sample {key!r} is truncated (expected {size} bytes, got {len(data)})"
            )
        sample = self._decode(url, key, data)
        for kind, fn in self._ops:
            if kind == "filter":
                if not fn(sample):
                    raise SampleKeyError(key, f"sample {key!r} is dropped by filter()")
            else:
                sample = fn(sample)
        return sample

    def _read_tar_bytes(self, info: ShardInfo, src: str, off: int, size: int) -> bytes:
        """``size`` bytes at tar position ``off`` of a shard read from ``src``: one ranged read, or
        for a gzip shard the block(s) holding them, inflated (bounded, crc32-checked)."""
        opts = self.storage_options
        if info.blocks is None:
            return read_range(src, off, size, opts)
        return read_span(
            info.blocks, info.checksum, info.url, off, size, lambda o, n: read_range(src, o, n, opts)
        )

    def get(self, key: str | SampleLocation) -> ST:
        """The sample whose ``__key__`` is ``key``, or at a :class:`SampleLocation` (a query hit).

        A key is found through the shards' offset indexes when they are known (written here, or
        from an index), else through the shards' manifests when every shard has one (rows, not
        shards, are read), else by scanning the shards. Either way the sample is read with one seek.

        Raises:
            SampleKeyError: No sample has that key, or filter() drops it (a ``KeyError``).
        """
        if isinstance(key, SampleLocation):
            return self._read_location(key)
        if not all(
            u in self._rows or (self._known_info(u) is not None if is_local(u) else u in self._infos)
            for u in self.urls
        ):
            manifests = self._load_manifests(missing="none")
            if all(m is not None for m in manifests):
                for m in manifests:
                    df = m.samples
                    if df.empty:
                        continue
                    hits = locations_of(m, df[df["__key__"] == key])
                    if hits:
                        return self._read_location(hits[0])
                raise SampleKeyError(
                    f"no sample has key {key!r} in {len(self.urls)} shard(s) from {self.urls[0]} (per their manifests)"
                )
        for url in self.urls:
            keys = self._offsets_of(url).keys
            if key not in keys:
                continue
            return self._read_at(url, keys.index(key), key)
        raise SampleKeyError(
            key, f"no sample has key {key!r} in {len(self.urls)} shard(s) from {self.list_shards()[0]}"
        )

    # ------------------------------------------------------------------ manifests and queries
    @property
    def fields(self) -> Any:
        """The manifest fields of the sample type, for queries: ``ds.query(where=ds.fields.label == "dog")``
        (for ``DictSample``, whose fields are not declared: ``F``, any field)."""
        st = self._decode_as or self.sample_type
        return F if st is DictSample else query_fields(st)

    def _load_manifests(self, missing: str = "error") -> list[Any]:
        """The shards' manifests (read once, then kept): ``missing="error"`` raises
        :class:`~atdata_lab.errors.ManifestNotFoundError` when a shard has none; ``"none"`` gives
        ``None`` in its place."""
        if self._manifests is None:
            refs = self._manifest_refs
            if refs and all(u in refs for u in self.urls):  # listed by a published record
                with ThreadPoolExecutor(
                    min(FETCHERS, len(self.urls)), thread_name_prefix="atdata-manifest"
                ) as pool:
                    self._manifests = list(pool.map(lambda u: refs[u].load(), self.urls))
            else:
                self._manifests = load_manifests(self.urls, self.storage_options, missing="none")
        absent = [u for u, m in zip(self.urls, self._manifests) if m is None]
        if absent and missing == "error":
            raise manifests_missing(absent, len(self.urls))
        return self._manifests

    def query(self, where: Callable[[Any], Any] | Predicate) -> list[SampleLocation]:
        """The locations of the samples whose manifest fields satisfy ``where``, shard by shard.

        ``where`` is a predicate (``(F.confidence > 0.9) & (F.label == "dog")``, see
        :mod:`atdata_lab.manifest`) or atdata's ``lambda df: <boolean mask>`` over one shard's
        manifest rows. Only manifests are read (a predicate skips the shards whose statistics rule
        it out); ``ds.select(hits)`` then reads the samples. filter() and map() do not apply here.

        Raises:
            ManifestNotFoundError: A shard has no manifest (a ``FileNotFoundError``; the message
                says how to make them).
        """
        manifests = self._load_manifests()
        if self._executor is None:
            self._executor = QueryExecutor(manifests)
        return self._executor.query(where)

    def _url_of(self, loc: SampleLocation) -> str:
        """The shard of this dataset a location is in."""
        if loc.url is not None and loc.url in self.urls:
            return loc.url
        if loc.shard in self.urls:
            return loc.shard
        found = [u for u in self.urls if shard_id_for(u) == loc.shard]
        if len(found) == 1:
            return found[0]
        if not found:
            raise SampleKeyError(
                f"sample {loc.key!r} is in shard {loc.shard!r}, which is not a shard of this dataset "
                f"({len(self.urls)} shards from {self.urls[0]})"
            )
        raise InvalidArgumentError(
            f"shard id {loc.shard!r} names {len(found)} shards of this dataset ({', '.join(found[:3])}); "
            "use the locations ds.query() returns, which know their shard's URL"
        )

    def _checked_row(self, url: str, key: str) -> tuple[int, int, int, bytes] | None:
        """For a shard with a checksum not yet checked whole: ``(offset, data_offset, size, sha256)``
        of sample ``key`` from the shard's manifest when that manifest was checked against a
        content address its dataset's record names and has a per-sample hash; else None (the
        shard is then checked whole before the sample is read)."""
        if url not in self._manifest_refs or url in self._sources or is_gzip_name(url):
            return None
        manifests = self._load_manifests(missing="none")
        m = manifests[self.urls.index(url)]
        if m is None or not m.content_addressed:
            return None
        row = m.row_of(key)
        if row is None and m.has_digests:
            raise SampleKeyError(key, f"shard {url} has no sample {key!r} (per its published manifest)")
        return row

    def _read_location(self, loc: SampleLocation) -> Any:
        """The sample at a query hit: one ranged read of its tar member (checked against the key),
        or, for manifests that do not say where its bytes are (atdata's), through the shard's
        offset index.

        A shard with a checksum is checked whole before its samples are used, except when the
        dataset's record lists a manifest with a hash of each sample: then the one sample is read
        (where that manifest places it) and checked against its hash."""
        url = self._url_of(loc)
        digest = None
        if self.checksums.get(url):
            row = self._checked_row(url, loc.key)
            if row is not None:
                offset, data_offset, size, digest = row
                loc = dataclasses_replace(loc, offset=offset, data_offset=data_offset, size=size)
        if loc.data_offset is None or loc.size is None or is_gzip_name(url):
            # a gzip shard's manifest places samples in the inflated stream: read through the blocks
            keys = self._offsets_of(url).keys
            try:
                return self._read_at(url, keys.index(loc.key), loc.key)
            except ValueError:
                raise SampleKeyError(f"shard {url} has no sample {loc.key!r}") from None
        head = loc.data_offset - loc.offset
        if not (0 < head <= LOCATED_HEADERS_MAX and 0 <= loc.size <= LOCATED_SAMPLE_MAX and loc.offset >= 0):
            raise ManifestError(
                f"shard {url}: the manifest places sample {loc.key!r} at offsets {loc.offset}/{loc.data_offset} "
                f"with {loc.size} bytes, which no shard member has; rebuild the manifest"
            )
        src = url if digest is not None else self._source_of(url)
        data = read_range(src, loc.offset, head + loc.size, self.storage_options)
        pad = -len(data) % 512
        member = None
        if len(data) == head + loc.size:
            try:
                member = next(iter_members(data + bytes(pad) + END_OF_ARCHIVE, url), None)
            except ShardError:
                member = None
        if member is None or split_key(member[0]) != (loc.key, "msgpack") or member[1:3] != (head, loc.size):
            raise ManifestError(
                f"shard {url}: sample {loc.key!r} is not where its manifest says (byte {loc.offset}); the shard "
                "changed after its manifest was written: rebuild the manifest (index.build_manifests(name))"
            )
        payload = memoryview(data)[head:]
        if digest is not None and hashlib.sha256(payload).digest() != digest:
            raise ShardError(
                f"shard {url}: sample {loc.key!r} does not match the sha256 its published manifest records: "
                "the sample was not used; the shard changed since it was published, or its host serves other "
                "bytes: ask the publisher to publish it again"
            )
        sample = self._decode(url, loc.key, payload)
        for kind, fn in self._ops:
            if kind == "filter":
                if not fn(sample):
                    raise SampleKeyError(f"sample {loc.key!r} is dropped by filter()")
            else:
                sample = fn(sample)
        return sample

    def select(self, indices: Iterable[int] | Iterable[SampleLocation]) -> list[ST]:
        """The samples at ``indices`` (or at the :class:`SampleLocation` s a query returned), in
        the order given. Each is read with one seek (a remote shard: one ranged request), never the
        whole shard (except a shard with a checksum, which is checked whole once, then read from
        the checked copy; a query hit of a published dataset whose record lists manifests with
        per-sample hashes is read alone and checked against its hash); after filter(), indices
        count the samples kept.

        Raises:
            SampleIndexError: An index is out of range (an ``IndexError``).
            SampleKeyError: A location is not in this dataset (a ``KeyError``).
        """
        items: list[Any] = list(indices)
        locations = [i for i in items if isinstance(i, SampleLocation)]
        if locations:
            if len(locations) != len(items):
                raise InvalidTypeError("select() takes indices or SampleLocations, not a mix of both")
            return [self._read_location(loc) for loc in locations]
        wanted = [int(i) for i in items]
        if not any(kind == "filter" for kind, _ in self._ops):
            return [self[i] for i in wanted]
        if any(i < 0 for i in wanted):
            raise SampleIndexError("negative indices need len(), which is unknown after filter()")
        target = set(wanted)
        found: dict[int, Any] = {}
        last = max(wanted, default=-1)
        for n, sample in enumerate(itertools.islice(self.ordered(), last + 1)):
            if n in target:
                found[n] = sample
        missing = [i for i in wanted if i not in found]
        if missing:
            raise SampleIndexError(f"indices {missing} are out of range after filter()")
        return [found[i] for i in wanted]

    def process_shards(
        self,
        fn: Callable[[list[Any]], Any],
        *,
        shards: list[str] | None = None,
        checkpoint: str | os.PathLike | None = None,
        on_shard_error: Callable[[str, Exception], None] | None = None,
    ) -> dict[str, Any]:
        """Call ``fn(samples of one shard)`` for each shard; ``{shard url: fn's result}``.

        With ``checkpoint`` (a file path) the run is resumable: each shard is recorded there
        (appended and fsynced) as soon as ``fn`` returns for it, and a later run skips the shards
        recorded, so after a crash no finished shard runs again; a shard interrupted inside ``fn``
        runs again in full (make ``fn``'s side effects happen at its end, or idempotent). The file
        is removed when every shard has succeeded, and kept for the next run otherwise.

        Raises:
            PartialFailureError: Some shards failed; it carries ``succeeded_shards``,
                ``failed_shards``, ``errors`` and ``results``.
        """
        public = {_public(u): u for u in self.urls}
        todo = list(shards) if shards is not None else list(public)
        unknown = [u for u in todo if u not in public and u not in self.urls]
        if unknown:
            raise InvalidArgumentError(f"not shards of this dataset: {unknown[:3]}")
        path = os.fspath(checkpoint) if checkpoint is not None else None
        if path is not None and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                done = set(f.read().splitlines())  # a torn last line matches no shard: it is ignored
            todo = [u for u in todo if u not in done]
        succeeded: list[str] = []
        failed: list[str] = []
        errors: dict[str, BaseException] = {}
        results: dict[str, Any] = {}
        for url in todo:
            part = self._derive(urls=[public.get(url, url)])
            part._split_done = True
            try:
                results[url] = fn(list(part.ordered()))
            except Exception as e:  # noqa: BLE001 - collected, and raised together below
                failed.append(url)
                errors[url] = e
                if on_shard_error is not None:
                    on_shard_error(url, e)
                continue
            succeeded.append(url)
            if path is not None:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(url + "\n")
                    f.flush()
                    os.fsync(f.fileno())
        if failed:
            raise PartialFailureError(succeeded, failed, errors, results)
        if path is not None and os.path.exists(path):
            os.remove(path)
        return results

    # ------------------------------------------------------------------ type information
    @property
    def metadata(self) -> dict[str, Any] | None:
        """The msgpack map at ``metadata_url`` (read once, then kept), or None without one.

        Raises:
            InvalidArgumentError: The file is larger than 64 MiB or not a msgpack map.
        """
        if self.metadata_url is None:
            return None
        if self._metadata is None:
            with open_url(self.metadata_url, self.storage_options) as f:
                raw = f.read(METADATA_MAX + 1)
            if len(raw) > METADATA_MAX:
                raise InvalidArgumentError(f"metadata at {self.metadata_url} is larger than 64 MiB")
            try:
                got = msgpack.unpackb(raw, raw=False)
            except Exception as e:  # noqa: BLE001 - any malformed input is reported the same way
                raise InvalidArgumentError(f"metadata at {self.metadata_url} is not msgpack ({e})") from e
            if not isinstance(got, dict):
                raise InvalidArgumentError(f"metadata at {self.metadata_url} is not a msgpack map")
            self._metadata = got
        return self._metadata

    @property
    def source(self) -> Any:
        """Where the samples come from: the data source the dataset was made from, else the
        shard URLs as one (``.list_shards()``, ``.open_shard(url)``: a checksummed shard opens as
        its verified copy)."""
        return self._data_source if self._data_source is not None else ShardSource(self)

    @property
    def content_metadata(self) -> Any:
        """Dataset-level metadata given to ``write_samples(..., content_metadata=)`` (a sample
        object or a dict), else None. Like atdata's, it lives on the returned dataset only."""
        return self._content_metadata

    @property
    def column_names(self) -> list[str]:
        """The sample type's field names ([] for DictSample, whose fields vary)."""
        try:
            return [f.name for f in fields_of(self.sample_type)]
        except TypeError:
            return []

    @property
    def schema(self) -> dict[str, Any]:
        """Field names and their annotated types (``{"_data": dict}`` for DictSample, as atdata)."""
        st = self.sample_type
        if st is DictSample:
            return {"_data": dict}
        try:
            hints = typing.get_type_hints(st)
        except Exception:  # noqa: BLE001 - unresolvable string annotations: give them as written
            hints = {}
        try:
            return {f.name: hints.get(f.name, f.type) for f in dataclasses_fields(st)}
        except TypeError:
            return {}

    @property
    def batch_type(self) -> Any:
        """``SampleBatch[T]`` for this dataset's sample type ``T``."""
        return types.GenericAlias(SampleBatch, (self.sample_type,))

    def wrap(self, sample: dict[str, Any]) -> ST:
        """A raw WebDataset sample (``{"msgpack": bytes, "__key__": ...}``) decoded as this dataset's
        type, with map() and lenses applied."""
        if not isinstance(sample, dict) or "msgpack" not in sample:
            keys = list(sample) if isinstance(sample, dict) else type(sample).__name__
            raise InvalidArgumentError(f"a raw sample needs a 'msgpack' entry, got {keys}")
        data = sample["msgpack"]
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidTypeError(f"sample['msgpack'] must be bytes, not {type(data).__name__}")
        key = str(sample.get("__key__", "?"))
        out = self._decode(str(sample.get("__url__", "<wrapped>")), key, data)
        for kind, fn in self._ops:
            if kind == "map":
                out = fn(out)
        return out

    def wrap_batch(self, batch: dict[str, Any]) -> SampleBatch:
        """A raw WebDataset batch (``{"msgpack": [bytes, ...]}``) as a :class:`SampleBatch`."""
        if not isinstance(batch, dict) or "msgpack" not in batch:
            keys = list(batch) if isinstance(batch, dict) else type(batch).__name__
            raise InvalidArgumentError(f"a raw batch needs a 'msgpack' entry, got {keys}")
        keys_in = batch.get("__key__") or [str(i) for i in range(len(batch["msgpack"]))]
        samples = [self.wrap({"msgpack": b, "__key__": k}) for b, k in zip(batch["msgpack"], keys_in)]
        return SampleBatch.from_samples(samples, [str(k) for k in keys_in])

    def to_dict(self, limit: int | None = None) -> dict[str, list[Any]]:
        """The samples column by column: ``{field: [value, ...]}`` (all of them without ``limit``)."""
        rows = list(itertools.islice(self.ordered(), limit))
        if not rows:
            return {}
        if isinstance(rows[0], DictSample):
            names: dict[str, None] = {}
            for r in rows:
                names.update(dict.fromkeys(r.keys()))
            return {n: [r._data.get(n) for r in rows] for n in names}
        cols = [f.name for f in fields_of(type(rows[0]))]
        return {n: [getattr(r, n) for r in rows] for n in cols}

    def to_parquet(
        self,
        path: str | os.PathLike,
        sample_map: Callable[[Any], dict[str, Any]] | None = None,
        maxcount: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Write the samples to Parquet (needs pyarrow): one file, or with ``maxcount`` files of at
        most that many rows named ``stem-000000.parquet``, ... (atdata's names).

        Each sample becomes a row by ``sample_map(sample)`` (default: its fields, NDArray fields as
        nested lists). ``kwargs`` go to ``pyarrow.parquet.write_table``. Returns the paths written.
        """
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(
                "to_parquet() needs pyarrow: pip install 'atdata-lab[widgets]' or pip install pyarrow"
            ) from None
        if maxcount is not None:
            _check_batch_size(maxcount)
        to_row = sample_map or _row_of
        target = os.fspath(path)
        stem, suffix = os.path.splitext(target)
        written: list[str] = []

        def flush(rows: list[dict[str, Any]]) -> None:
            out = target if maxcount is None else f"{stem}-{len(written):06d}{suffix}"
            pq.write_table(pa.Table.from_pylist(rows), out, **kwargs)
            written.append(out)

        rows: list[dict[str, Any]] = []
        for sample in self.ordered():
            rows.append(to_row(sample))
            if maxcount is not None and len(rows) >= maxcount:
                flush(rows)
                rows = []
        if rows or not written:
            flush(rows)
        return written

    def to_pandas(self, limit: int | None = None):
        """A DataFrame of the samples (arrays kept as objects). Needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "to_pandas() needs pandas: pip install 'atdata-lab[widgets]' or pip install pandas"
            ) from None
        rows = []
        for s in itertools.islice(self.ordered(), limit):
            if isinstance(s, DictSample):
                rows.append(s.to_dict())
            else:
                rows.append({f.name: getattr(s, f.name) for f in fields_of(type(s))})
        return pd.DataFrame(rows)

    def describe(self) -> DatasetSummary:
        """A summary (a dict, shown as text or HTML): shards, samples, bytes, each field with dtype
        and shape of sample 0, and, when the shards have manifests, each manifest field's
        statistics over the whole dataset (``"manifest"``: counts, distinct values, min / max /
        mean), read from the manifest headers alone.

        Shards with a manifest or a known offset index are not read to count their samples.
        """
        manifests: list[Any] = [None] * len(self.urls)
        problem = None
        try:
            manifests = self._load_manifests(missing="none")
        except ManifestError as e:  # a malformed manifest: summarised without statistics, saying why
            problem = str(e)
        samples = size = 0
        for url, m in zip(self.urls, manifests):
            known = self._known_size(url)
            if known is not None:
                samples += self._num_samples(url)
                size += known
                continue
            info = self._known_info(url) if is_local(url) else None
            if info is None and m is not None:
                samples += m.num_samples
                size += url_size(url, self.storage_options)
                continue
            info = info or self._offsets_of(url)
            samples += info.num_samples
            size += info.size
        first = self.head(1)
        fields = []
        if first:
            s = first[0]
            items = (
                s.items()
                if isinstance(s, DictSample)
                else ((f.name, getattr(s, f.name)) for f in fields_of(type(s)))
            )
            for name, v in items:
                if isinstance(v, np.ndarray):
                    fields.append(
                        {"name": name, "kind": "ndarray", "dtype": v.dtype.str, "shape": list(v.shape)}
                    )
                else:
                    fields.append({"name": name, "kind": type(v).__name__})
        have = [m for m in manifests if m is not None]
        stats: dict[str, Any] | None = None
        if have and len(have) == len(self.urls):
            names: dict[str, None] = {}
            for m in have:
                names.update(dict.fromkeys(m.aggregates))
            stats = {n: merge_aggregates(m.aggregates[n] for m in have if n in m.aggregates) for n in names}
        out = DatasetSummary(
            {
                "sample_type": getattr(self.sample_type, "__name__", str(self.sample_type)),
                "shards": len(self.urls),
                "samples": samples,
                "bytes": size,
                "fields": fields,
                "urls": self.list_shards(),
                "manifest": stats,
                "manifest_shards": len(have),
            }
        )
        if problem is not None:
            out["manifest_error"] = problem
        return out

    def inspect(self, **kwargs: Any):
        """Open the sample inspector widget on this dataset (needs ``atdata-lab[widgets]``)."""
        from .widgets.sample_inspector import SampleInspector

        return SampleInspector(self, **kwargs)

    def table(self, **kwargs: Any):
        """Open the samples table widget on this dataset (needs ``atdata-lab[widgets]``)."""
        from .widgets.samples_table import SamplesTable

        return SamplesTable(self, **kwargs)

    def stats(self, progress: Any = None) -> Any:
        """Per-field statistics of the whole dataset (a :class:`~atdata_lab.column_stats.DatasetStats`):
        from the shards' manifests when every shard has one, else by one streaming pass; computed
        once per dataset object, then kept. See :mod:`atdata_lab.column_stats`."""
        if getattr(self, "_stats", None) is None:  # (a dataset pickled before stats() has none)
            from .column_stats import dataset_stats

            self._stats = dataset_stats(self, progress=progress)
        return self._stats

    def compare(self, other: Any, **kwargs: Any):
        """Open the compare view: this dataset and ``other`` (a dataset or index entry) side by side,
        field statistics and schemas (needs ``atdata-lab[widgets]``)."""
        from .widgets.compare import CompareView

        return CompareView(self, other, **kwargs)


class DatasetSummary(dict):
    """What :meth:`Dataset.describe` returns: a dict, shown as a text or HTML summary."""

    def __repr__(self) -> str:
        return dataset_summary_text(self)

    def _repr_html_(self) -> str:
        return dataset_summary_html(self)


class ShardSource:
    """A dataset's shards, as atdata's ``URLSource`` shows them (``Dataset.source``)."""

    def __init__(self, ds: Dataset) -> None:
        self._ds = ds

    @property
    def shards(self) -> Iterator[tuple[str, Any]]:
        """``(url, stream)`` for each shard, opened one by one."""
        for url in self._ds.urls:
            yield url, self.open_shard(url)

    @property
    def shard_list(self) -> list[str]:
        return list(self._ds.urls)

    def list_shards(self) -> list[str]:
        return list(self._ds.urls)

    def open_shard(self, url: str) -> Any:
        """A readable binary file of shard ``url``.

        Raises:
            NotFoundError: ``url`` is not one of the dataset's shards (a ``KeyError``).
        """
        if url not in self._ds.urls:
            raise NotFoundError(f"{url} is not a shard of this dataset ({len(self._ds.urls)} shards)")
        return open_url(self._ds._source_of(url), self._ds.storage_options)

    def __repr__(self) -> str:
        return f"ShardSource({len(self._ds.urls)} shards: {self._ds.urls[0]}{' ...' if len(self._ds.urls) > 1 else ''})"


def _public(url: str) -> str:
    """How a shard URL is shown: a data source's own shard id, else the URL itself."""
    sid = source_shard_id(url)
    return url if sid is None else sid


def _shard_pattern(path: str | os.PathLike, split: bool, ext: str = ".tar") -> Callable[[int], str]:
    p = os.fspath(path)
    if re.search(r"%0?\d*d", p):
        return lambda i: p % i
    if ext != ".tar" and p.endswith(".tar"):
        p += ext[4:]  # "x.tar" written compressed is "x.tar.gz"
    if p.endswith(ext):
        if not split:
            return lambda i: p if i == 0 else p[: -len(ext)] + f"-{i:06d}{ext}"
        p = p[: -len(ext)]
    return lambda i: f"{p}-{i:06d}{ext}"


def write_samples(
    samples: Iterable[Any],
    path: str | os.PathLike,
    *,
    maxcount: int | None = None,
    maxsize: int | None = None,
    progress: ProgressLike = False,
    content_metadata: Any = None,
    manifest: bool = False,
    sample_type: type | None = None,
    compression: str | None = None,
) -> Dataset:
    """Write samples to ``name-%06d.tar`` shards on local disk and return them as a :class:`Dataset`.

    ``path`` may be ``"out/data"`` (gives ``out/data-000000.tar``, ...), a pattern with ``%``
    (``"out/data-%04d.tar"``), or, with neither maxcount nor maxsize, a single ``.tar`` file.
    Bytes are deterministic: the same samples always give identical shards. ``content_metadata``
    is kept on the returned dataset (``ds.content_metadata``), as atdata does.

    ``manifest=True`` also writes each shard's manifest (``name-000000.manifest.json`` and
    ``.manifest.parquet``, atdata's files) in the same pass, published just before its shard, so
    ``ds.query(where=...)`` works at once (needs ``pip install 'atdata-lab[manifest]'``).

    ``samples`` may also be columns, one per field of ``sample_type``: a :class:`SampleBatch`, a dict
    of arrays or lists, a pandas DataFrame or a pyarrow Table (see :mod:`atdata_lab.columns`). They
    are encoded without one object per sample, into the bytes the same samples as objects give.

    ``compression="gzip"`` writes compact ``.tar.gz`` shards (about a quarter of the bytes for
    small samples) that atdata, webdataset, ``tar`` and ``gzip`` read as usual, and that keep
    random access (one ~32 KiB block inflated per read; see :mod:`atdata_lab.seekable_gzip`).
    ``maxsize`` then counts the uncompressed tar bytes.

    Raises:
        ValueError: ``samples`` is empty (no file is left behind), or columns do not match
            ``sample_type`` (the message names the column).
    """
    total: int | None
    cols = as_columns(samples, sample_type, "write_samples") if is_columnar(samples) else None
    if cols is not None:
        cls, first, total = cols.sample_type, None, cols.n
        every: Iterator[Any] = cols.samples()
    else:
        first, every, total = peek_samples(samples, "write_samples")
        cls = type(first)
    codec = codec_for(cls)
    ext = ".tar.gz" if compression == "gzip" else ".tar"
    url_for = _shard_pattern(path, split=maxcount is not None or maxsize is not None, ext=ext)
    writer = ShardSetWriter(
        url_for,
        lambda u: FileSink(u, replace=True),
        maxcount=maxcount,
        maxsize=maxsize,
        sidecars=ManifestSidecars(cls, first) if manifest else None,
        compression=compression,
    )
    try:
        if cols is not None and not manifest:
            cols.write_into(writer, progress=progress)
        else:
            encode_samples_into(writer, every, codec, progress=progress, total=total)
        infos = writer.finish()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    ds: Dataset[Any] = Dataset([i.url for i in infos], sample_type=cls)
    ds._remember_shards(infos)
    ds._content_metadata = content_metadata
    return ds


def _rebuild_dataset(urls: list[str], state: dict[str, Any]) -> Dataset:
    ds = Dataset.__new__(Dataset)
    ds.__dict__.update(state)
    return ds


@functools.lru_cache(maxsize=256)
def _small_kinds_of(st: type) -> dict[str, str] | None:
    if st is DictSample:
        return None
    kinds = {f.name: f.type.kind for f in codec_for(st).fields}
    return kinds if set(kinds.values()) <= SMALL_KINDS else None


def _looks_like_array(b: bytes) -> bool:
    if b[:6] == b"\x93NUMPY":
        return True
    try:
        parse_ndarray_header(b)
        return True
    except NDArrayFormatError:
        return False


def _field_subset(view: type, source: type) -> bool:
    """Whether every field of ``view`` is a field of ``source`` (types that declare no fields: True)."""
    try:
        want = {f.name for f in fields_of(view)}
        have = {f.name for f in fields_of(source)}
    except TypeError:
        return True
    return want <= have


def _row_of(sample: Any) -> dict[str, Any]:
    """A sample as a Parquet row: its fields, arrays as nested lists."""
    items: Iterable[tuple[str, Any]]
    if isinstance(sample, DictSample):
        items = sample.to_dict().items()
    else:
        items = ((f.name, getattr(sample, f.name)) for f in fields_of(type(sample)))
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in items}


def _check_batch_size(n: Any) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, not {n!r}")


class DatasetDict(dict):
    """Splits of one dataset: ``{"train": Dataset, "test": Dataset, ...}``.

    With a single split, ``ordered()``/``shuffled()`` read that split.
    """

    def __init__(
        self,
        splits: Any = None,
        sample_type: type | None = None,
        streaming: bool = False,
    ) -> None:
        super().__init__(splits or {})
        self._sample_type = sample_type
        self._streaming = streaming

    @property
    def sample_type(self) -> type | None:
        """The splits' sample type (given, else the first split's; None when empty)."""
        if self._sample_type is not None:
            return self._sample_type
        return next(iter(self.values())).sample_type if self else None

    @property
    def streaming(self) -> bool:
        """Whether the splits were loaded for streaming (as atdata's flag; reads stream either way)."""
        return self._streaming

    @property
    def num_shards(self) -> dict[str, int]:
        """``{split: number of shards}``."""
        return {name: len(ds.urls) for name, ds in self.items()}

    def _only_split(self, what: str) -> Dataset:
        if len(self) != 1:
            raise InvalidArgumentError(
                f"{what}() reads one split, and this DatasetDict has {len(self)} "
                f"({', '.join(self) or 'none'}): pick one, e.g. ds[{next(iter(self), 'train')!r}].{what}()"
            )
        return next(iter(self.values()))

    def ordered(self, batch_size: int | None = None) -> Iterator[Any]:
        """The single split's :meth:`Dataset.ordered`."""
        return self._only_split("ordered").ordered(batch_size=batch_size)

    def shuffled(
        self,
        buffer_shards: int = 100,
        buffer_samples: int = 1000,
        batch_size: int | None = None,
        *,
        seed: int | None = None,
        buffer: int | None = None,
        epoch: int | None = None,
        block: int | None = None,
    ) -> Iterator[Any]:
        """The single split's :meth:`Dataset.shuffled`."""
        return self._only_split("shuffled").shuffled(
            buffer_shards, buffer_samples, batch_size, seed=seed, buffer=buffer, epoch=epoch, block=block
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self.items())
        return f"DatasetDict({{{inner}}})"

    def __getitem__(self, split: str) -> Dataset:
        try:
            return super().__getitem__(split)
        except KeyError:
            raise NotFoundError(
                f"no split {split!r}; available splits: {', '.join(self) or 'none'}"
            ) from None
