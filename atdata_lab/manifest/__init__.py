"""Per-shard manifests and queries, file-compatible with atdata 0.7.

Beside each shard ``name-000000.tar`` sit ``name-000000.manifest.json`` (per-field statistics) and
``name-000000.manifest.parquet`` (one row per sample: key, offsets, field values). They are made
while the shard is written (``write_samples(..., manifest=True)``, ``index.write(...,
manifest=True)``) or later in one pass (``index.build_manifests(name)``), and they let
``ds.query(where=...)`` find samples by their fields without opening a shard; ``ds.select(hits)``
then reads just those samples.

* :mod:`.fields` — ``ManifestField``, ``resolve_manifest_fields``;
* :mod:`.aggregates` — the per-shard statistics;
* :mod:`.shard_manifest` — ``ShardManifest``, the file formats, reading them (bounded, validated);
* :mod:`.builder` — ``ManifestBuilder``, and the writer hook that builds manifests with the shards;
* :mod:`.writer` — ``ManifestWriter`` (local files);
* :mod:`.build` — manifests of shards that have none;
* :mod:`.predicates` — ``F``, ``Predicate``, ``query_fields``;
* :mod:`.query` — ``QueryExecutor``, ``SampleLocation``.

pandas and pyarrow are needed to write or query manifests: ``pip install 'atdata-lab[manifest]'``.
"""

from __future__ import annotations

from .aggregates import CategoricalAggregate, NumericAggregate, SetAggregate, create_aggregate
from .builder import ManifestBuilder
from .fields import AggregateKind, ManifestField, resolve_manifest_fields
from .predicates import F, FieldProxy, Predicate, query_fields
from .query import QueryExecutor, SampleLocation
from .shard_manifest import MANIFEST_FORMAT_VERSION, ShardManifest
from .writer import ManifestWriter

__all__ = [
    "AggregateKind",
    "CategoricalAggregate",
    "F",
    "FieldProxy",
    "MANIFEST_FORMAT_VERSION",
    "ManifestBuilder",
    "ManifestField",
    "ManifestWriter",
    "NumericAggregate",
    "Predicate",
    "QueryExecutor",
    "SampleLocation",
    "SetAggregate",
    "ShardManifest",
    "create_aggregate",
    "query_fields",
    "resolve_manifest_fields",
]
