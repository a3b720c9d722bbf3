"""Building a shard's manifest while its samples are written (or read once, for old shards).

:class:`ManifestBuilder` is atdata's per-shard accumulator: ``add_sample(...)`` for each sample,
then ``build()``. :class:`ManifestSidecars` plugs builders into
:class:`~atdata_lab.shards.ShardSetWriter`: one builder per shard, fed in the same pass that writes
the shard (each sample's offsets come from the writer, its values from the sample object), whose
two files are staged beside the shard and published with it.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError
from ..sample import DictSample
from ..tar import BLOCK
from . import _deps, shard_manifest
from .aggregates import Aggregate, BadValue, create_aggregate
from .fields import ManifestField, infer_fields_from_values, resolve_manifest_fields
from .shard_manifest import (
    DATA_OFFSET,
    KEY,
    OFFSET,
    SHA256,
    SIZE,
    ShardManifest,
    manifest_urls,
    rows_table,
    shard_id_for,
)

if TYPE_CHECKING:
    from ..shards import ShardInfo

__all__ = ["ManifestBuilder", "ManifestSidecars", "manifest_fields_for"]


def manifest_fields_for(sample_type: type, first: Any = None) -> dict[str, ManifestField]:
    """The manifest fields of a sample type; for ``DictSample``, those of ``first``'s values."""
    if sample_type is DictSample:
        return infer_fields_from_values(first.to_dict() if first is not None else {})
    return resolve_manifest_fields(sample_type)


_PLAIN = frozenset({str, int, float, bool, list, dict, bytes})  # cells kept as they are


def _provenance(
    source_job_id: str | None = None,
    parent_shards: list[str] | None = None,
    pipeline_version: str | None = None,
) -> dict[str, Any]:
    """A header's provenance: the items given."""
    out: dict[str, Any] = {}
    if source_job_id:
        out["source_job_id"] = source_job_id
    if parent_shards:
        out["parent_shards"] = list(parent_shards)
    if pipeline_version:
        out["pipeline_version"] = pipeline_version
    return out


def _cell(v: Any) -> Any:
    """A field value as a manifest cell: numpy scalars as Python numbers, arrays as lists."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


class ManifestBuilder:
    """Collects one shard's manifest: statistics and a row per sample.

    Args:
        sample_type: The samples' type (its manifest fields are resolved once).
        shard_id: The shard's name without ``.tar``.
        schema_version: Recorded in the header.
        source_job_id, parent_shards, pipeline_version: Optional provenance.
        fields: The manifest fields, when already resolved (default: from ``sample_type``).
    """

    def __init__(
        self,
        sample_type: type,
        shard_id: str,
        schema_version: str = "1.0.0",
        source_job_id: str | None = None,
        parent_shards: list[str] | None = None,
        pipeline_version: str | None = None,
        *,
        fields: dict[str, ManifestField] | None = None,
    ) -> None:
        self.sample_type = sample_type
        self.shard_id = shard_id
        self.schema_version = schema_version
        self.provenance = _provenance(source_job_id, parent_shards, pipeline_version)
        self.fields = dict(fields) if fields is not None else manifest_fields_for(sample_type)
        self._aggs: dict[str, Aggregate] = {n: create_aggregate(f.aggregate) for n, f in self.fields.items()}
        self._keys: list[str] = []
        self._offsets: list[int] = []
        self._sizes: list[int] = []
        self._data_offsets: list[int | None] = []
        self._digests: list[bytes | None] = []
        self._values: dict[str, list[Any]] = {n: [] for n in self.fields}
        self._slots = [(n, self._aggs[n], self._values[n]) for n in self.fields]

    def add_sample(
        self,
        *,
        key: str,
        offset: int,
        size: int,
        sample: Any,
        data_offset: int | None = None,
        payload: bytes | bytearray | memoryview | None = None,
    ) -> None:
        """Record one sample: its key, where its tar member starts (``offset``), its payload's size,
        and (ours) where its payload starts (``data_offset``) and the payload itself (``payload``,
        the sample's msgpack bytes: its sha256 goes in the row)."""
        data = sample._data if isinstance(sample, DictSample) else None
        name = ""
        try:
            for name, agg, column in self._slots:
                v = data.get(name) if data is not None else getattr(sample, name, None)
                if v is not None:
                    agg.add(v)
                    if type(v) not in _PLAIN:
                        v = _cell(v)
                column.append(v)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"sample {key!r}, field {name!r}: {e}") from None
        self._keys.append(key)
        self._offsets.append(int(offset))
        self._sizes.append(int(size))
        self._data_offsets.append(None if data_offset is None else int(data_offset))
        self._digests.append(None if payload is None else hashlib.sha256(payload).digest())

    def __len__(self) -> int:
        return len(self._keys)

    def build(self, *, size_bytes: int | None = None) -> ShardManifest:
        """The manifest: header statistics and the rows as a DataFrame.

        ``size_bytes`` is the shard file's size (default: the payloads' total, as atdata records).
        """
        pd = _deps.pandas()
        cols: dict[str, Any] = {KEY: self._keys, OFFSET: self._offsets, SIZE: self._sizes}
        cols.update(self._values)
        if any(d is not None for d in self._data_offsets):
            cols[DATA_OFFSET] = self._data_offsets
        if any(d is not None for d in self._digests):
            cols[SHA256] = self._digests
        samples = pd.DataFrame(cols)
        return ShardManifest(
            shard_id=self.shard_id,
            schema_type=getattr(self.sample_type, "__name__", str(self.sample_type)),
            schema_version=self.schema_version,
            num_samples=len(self._keys),
            size_bytes=sum(self._sizes) if size_bytes is None else size_bytes,
            created_at=datetime.now(UTC),
            aggregates={n: a.to_dict() for n, a in self._aggs.items()},
            samples=samples,
            provenance=self.provenance,
        )


def _values_getter(sample_type: type, names: list[str]) -> Callable[[Any], tuple[Any, ...]] | None:
    """What the shard writer keeps of each sample: the tuple of its manifest fields' values, read at
    once, as ``ManifestBuilder.add_sample`` reads them."""
    if not names:
        return None
    if sample_type is DictSample:

        def each(sample: Any) -> tuple[Any, ...]:
            data = sample._data if isinstance(sample, DictSample) else None
            return tuple(data.get(n) if data is not None else getattr(sample, n, None) for n in names)

        return each
    if len(names) == 1:
        name = names[0]
        return lambda sample: (getattr(sample, name),)
    # one C call per sample; the writer has read every field of the sample already (to encode it),
    # so none is missing
    return operator.attrgetter(*names)


_PLAIN_OR_NONE = _PLAIN | {type(None)}


class _ShardSidecar:
    """One shard's manifest, as the shard writer's sidecar hook: the field values kept of each
    sample become columns once the shard is complete (statistics in one pass per column, the rows
    as an Arrow table), and the files are made on commit (with the schema version known then)."""

    def __init__(self, owner: ManifestSidecars, shard_url: str) -> None:
        self.owner = owner
        self.shard_id = shard_id_for(shard_url)
        self.values = owner.values
        self.aggregates: dict[str, dict[str, Any]] = {}
        self.table: Any = None
        self.count = 0

    def close(self, info: ShardInfo, kept: list[Any], digests: list[bytes]) -> None:
        fields = self.owner.fields
        width = len(fields)
        data_offsets = info.offsets[:, 0]
        cols: dict[str, Any] = {KEY: info.keys, OFFSET: data_offsets - BLOCK, SIZE: info.offsets[:, 1]}
        types: dict[str, set[type]] = {}
        for i, (name, f) in enumerate(fields.items()):
            values: Any = kept[i::width]
            seen = set(map(type, values))
            if f.aggregate == "numeric" and (seen == {int} or seen == {float}):
                try:  # one array for the statistics and the column
                    values = np.array(values, dtype=np.int64 if int in seen else np.float64)
                except OverflowError:  # ints beyond int64
                    pass
            agg = create_aggregate(f.aggregate)
            try:
                agg.update(values, seen)
            except BadValue as e:
                raise InvalidArgumentError(f"sample {info.keys[e.position]!r}, field {name!r}: {e}") from None
            self.aggregates[name] = agg.to_dict()
            if seen <= _PLAIN_OR_NONE:
                types[name] = seen
            else:  # numpy scalars and arrays as Python values
                values = [v if type(v) in _PLAIN else _cell(v) for v in values]
            cols[name] = values
        cols[DATA_OFFSET] = data_offsets
        cols[SHA256] = digests
        self.table = rows_table(cols, types)
        self.count = len(info.keys)

    def files(self, shard_url: str, shard_size: int) -> list[tuple[str, bytes]]:
        """The manifest's files, in the order to publish them (rows first, header last: a header
        that can be seen always has its rows)."""
        owner = self.owner
        m = ShardManifest(
            shard_id=self.shard_id,
            schema_type=getattr(owner.sample_type, "__name__", str(owner.sample_type)),
            schema_version=owner.schema_version,
            num_samples=self.count,
            size_bytes=shard_size,
            created_at=datetime.now(UTC),
            aggregates=self.aggregates,
            provenance=owner.provenance,
        )
        json_url, parquet_url = manifest_urls(shard_url)
        return [(parquet_url, shard_manifest.parquet_bytes(self.table)), (json_url, m.header_bytes())]


class ManifestSidecars:
    """Makes each shard's manifest while a :class:`~atdata_lab.shards.ShardSetWriter` writes it.

    Args:
        sample_type: The samples' type.
        first: The first sample (for ``DictSample``, whose fields come from its values).
        schema_version: Recorded in each header (may be set until the shards are committed).
        provenance: ``source_job_id``, ``parent_shards``, ``pipeline_version`` (optional).
    """

    def __init__(
        self, sample_type: type, first: Any = None, schema_version: str = "1.0.0", **provenance: Any
    ) -> None:
        _deps.pandas()
        _deps.pyarrow()  # fail before any shard is written, not after
        self.sample_type = sample_type
        self.fields = manifest_fields_for(sample_type, first)
        self.values = _values_getter(sample_type, list(self.fields))
        self.schema_version = schema_version
        self.provenance = _provenance(**provenance)  # a wrong name fails here, before any shard is written

    def __call__(self, shard_url: str) -> _ShardSidecar:
        return _ShardSidecar(self, shard_url)
