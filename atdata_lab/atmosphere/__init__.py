"""ATProto side of atdata-lab: the PDS client, the record builders and the lexicon validator,
and atdata 0.7's atmosphere API on top of them.

``from atdata_lab.atmosphere import Atmosphere`` gives the client. Every name is imported lazily
on first use (the client and the ``atproto`` SDK load only when asked for), so importing the pure
modules (:mod:`~atdata_lab.atmosphere.records`, :mod:`~atdata_lab.atmosphere.lexicon`) stays cheap.

atdata 0.7's names, in private modules re-exported here:

* ``_lexicon_types``: the typed record mirrors (``LexSchemaRecord``, ``LexDatasetEntry``,
  ``LexLensRecord``, ``LexLensVerification``, ``LexLabelRecord``, ``LexCodeReference``,
  ``LexCodeHash``, ``Storage*``, ``*ShardEntry``, ``storage_from_record``, ...);
* ``_publishers``: ``SchemaPublisher``/``SchemaLoader``, ``DatasetPublisher``/``DatasetLoader``,
  ``LabelPublisher``/``LabelLoader``, ``LensPublisher``/``LensLoader``,
  ``VerificationPublisher``/``VerificationLoader`` (thin layers over the client, the record
  builders and the promotion engine);
* ``_store``: ``PDSBlobStore``; ``_index``: ``AtmosphereIndex``, ``AtmosphereIndexEntry``;
* ``AtUri`` is :class:`~atdata_lab.atmosphere.records.AtUri`.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the lazy names below, for type checkers)

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdata_lab.atmosphere._index import AtmosphereIndex, AtmosphereIndexEntry
    from atdata_lab.atmosphere._lexicon_types import (
        LEXICON_NAMESPACE,
        BlobEntry,
        DatasetMetadata,
        DatasetSize,
        HttpShardEntry,
        JsonSchemaFormat,
        LexCodeHash,
        LexCodeReference,
        LexDatasetEntry,
        LexLabelRecord,
        LexLensRecord,
        LexLensVerification,
        LexSchemaRecord,
        S3ShardEntry,
        ShardChecksum,
        ShardManifestRef,
        StorageBlobs,
        StorageHttp,
        StorageS3,
        StorageUnion,
        storage_from_record,
    )
    from atdata_lab.atmosphere._publishers import (
        DatasetLoader,
        DatasetPublisher,
        LabelLoader,
        LabelPublisher,
        LensLoader,
        LensPublisher,
        SchemaLoader,
        SchemaPublisher,
        VerificationLoader,
        VerificationPublisher,
    )
    from atdata_lab.atmosphere._store import PDSBlobStore
    from atdata_lab.atmosphere.client import Atmosphere
    from atdata_lab.atmosphere.records import AtUri

    AtmosphereClient = Atmosphere

# name -> the module that defines it (imported on first use)
_WHERE: dict[str, str] = {
    "Atmosphere": "client",
    "AtmosphereClient": "client",
    "AtUri": "records",
    "PDSBlobStore": "_store",
    "AtmosphereIndex": "_index",
    "AtmosphereIndexEntry": "_index",
    **dict.fromkeys(
        (
            "SchemaPublisher",
            "SchemaLoader",
            "DatasetPublisher",
            "DatasetLoader",
            "LabelPublisher",
            "LabelLoader",
            "LensPublisher",
            "LensLoader",
            "VerificationPublisher",
            "VerificationLoader",
        ),
        "_publishers",
    ),
    **dict.fromkeys(
        (
            "LEXICON_NAMESPACE",
            "DatasetMetadata",
            "LexSchemaRecord",
            "LexDatasetEntry",
            "LexLensRecord",
            "LexLabelRecord",
            "LexCodeReference",
            "LexCodeHash",
            "LexLensVerification",
            "JsonSchemaFormat",
            "StorageHttp",
            "StorageS3",
            "StorageBlobs",
            "StorageUnion",
            "storage_from_record",
            "ShardChecksum",
            "HttpShardEntry",
            "S3ShardEntry",
            "BlobEntry",
            "DatasetSize",
            "ShardManifestRef",
        ),
        "_lexicon_types",
    ),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{where}")
    value = module.Atmosphere if name == "AtmosphereClient" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
