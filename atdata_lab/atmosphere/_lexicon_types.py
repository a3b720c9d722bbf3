"""atdata 0.7's typed mirrors of the ``science.alt.dataset.*`` records (same names, fields,
``to_record()`` / ``from_record()``).

``from_record`` takes what a PDS (anyone's) returned: the record is checked against the bundled
lexicon first, then every field is type-checked, so a forged or malformed record raises
:class:`~atdata_lab.errors.RecordValidationError` (a ``ValueError``) naming the field, never a bare
``KeyError``/``TypeError`` halfway through. ``to_record`` gives the dict our client writes (it is
validated again, locally, before any request).

Shard checksums: atdata writes ``{"algorithm": "none", "digest": ""}`` for shards it did not hash;
those are read (``ShardChecksum("none", "")``) but atdata-lab's publishers never write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import RecordValidationError
from . import records as rec
from .lexicon import bundled_lexicons

__all__ = [
    "LEXICON_NAMESPACE",
    "BlobEntry",
    "DatasetMetadata",
    "DatasetSize",
    "HttpShardEntry",
    "JsonSchemaFormat",
    "LexCodeHash",
    "LexCodeReference",
    "LexDatasetEntry",
    "LexLabelRecord",
    "LexLensRecord",
    "LexLensVerification",
    "LexSchemaRecord",
    "S3ShardEntry",
    "ShardChecksum",
    "ShardManifestRef",
    "StorageBlobs",
    "StorageHttp",
    "StorageS3",
    "StorageUnion",
    "storage_from_record",
]

#: The lexicon namespace of every record here.
LEXICON_NAMESPACE = "science.alt.dataset"


def _now() -> datetime:
    return datetime.now(UTC)


def _obj(d: Any, where: str) -> Any:
    if not isinstance(d, Mapping):
        raise RecordValidationError(f"{where}: expected an object, got {type(d).__name__}")
    return d


def _str(d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    v = d.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise RecordValidationError(f"{where}.{key}: a string is required, got {type(v).__name__}")
    return v


def _int(d: Mapping[str, Any], key: str, where: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise RecordValidationError(f"{where}.{key}: a non-negative integer is required, got {v!r:.40}")
    return v


def _list(d: Mapping[str, Any], key: str, where: str) -> list[Any]:
    v = d.get(key)
    if not isinstance(v, list):
        raise RecordValidationError(f"{where}.{key}: a list is required, got {type(v).__name__}")
    return v


def _when(d: Mapping[str, Any], where: str) -> datetime:
    text = _str(d, "createdAt", where)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise RecordValidationError(f"{where}.createdAt: {text!r:.60} is not an ISO datetime") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _checked(d: Any, nsid: str) -> Any:
    """A record from the network, checked against its lexicon before any field is used."""
    d = _obj(d, nsid.rsplit(".", 1)[-1])
    bundled_lexicons().validate_record(nsid, d, check_size=False)
    return d


def _iso(dt: datetime) -> str:
    return rec._created_at(dt)


# ------------------------------------------------------------------------------------------------
# shared definitions
# ------------------------------------------------------------------------------------------------


@dataclass
class ShardChecksum:
    """A shard's content hash (``entry#shardChecksum``): ``algorithm`` (``sha256``) and hex ``digest``."""

    algorithm: str
    digest: str

    def to_record(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "digest": self.digest}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> ShardChecksum:
        d = _obj(d, "checksum")
        return cls(algorithm=_str(d, "algorithm", "checksum"), digest=_str(d, "digest", "checksum"))


@dataclass
class DatasetSize:
    """``entry#datasetSize``: samples, bytes (``bytes_``), shards; each optional."""

    samples: int | None = None
    bytes_: int | None = None
    shards: int | None = None

    def to_record(self) -> dict[str, Any]:
        out = {"samples": self.samples, "bytes": self.bytes_, "shards": self.shards}
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> DatasetSize:
        d = _obj(d, "size")
        return cls(
            samples=_int(d, "samples", "size"),
            bytes_=_int(d, "bytes", "size"),
            shards=_int(d, "shards", "size"),
        )


@dataclass
class ShardManifestRef:
    """``entry#shardManifestRef``: the blob references of one shard's manifest header and rows."""

    header: dict[str, Any]
    samples: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        return rec.manifest_ref(self.header, self.samples)

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> ShardManifestRef:
        rec.parse_manifests([d])  # both are blob references, or this raises
        return cls(header=dict(d["header"]), samples=dict(d["samples"]) if d.get("samples") else None)


_META_FIELDS = (
    ("source_uri", "sourceUri"),
    ("created_by", "createdBy"),
    ("version", "version"),
    ("processing_steps", "processingSteps"),
    ("split", "split"),
)


@dataclass
class DatasetMetadata:
    """An entry's typed metadata (``entry#datasetMetadata``): well-known fields plus ``custom``."""

    source_uri: str | None = None
    created_by: str | None = None
    version: str | None = None
    processing_steps: list[str] | None = None
    split: str | None = None
    custom: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {camel: getattr(self, snake) for snake, camel in _META_FIELDS}
        out["custom"] = self.custom
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> DatasetMetadata:
        d = _obj(d, "metadata")
        kw: dict[str, Any] = {}
        for snake, camel in _META_FIELDS:
            v = d.get(camel)
            if snake == "processing_steps":
                if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                    raise RecordValidationError("metadata.processingSteps: a list of strings is required")
            elif v is not None and not isinstance(v, str):
                raise RecordValidationError(f"metadata.{camel}: a string is required")
            kw[snake] = v
        custom = d.get("custom")
        if custom is not None and not isinstance(custom, Mapping):
            raise RecordValidationError("metadata.custom: an object is required")
        return cls(**kw, custom=dict(custom) if custom is not None else None)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetMetadata:
        """From a flat dict: well-known keys (snake or camel case) to fields, the rest to ``custom``."""
        d = dict(_obj(d, "metadata"))
        known = {name for pair in _META_FIELDS for name in pair} | {"custom"}
        custom = {k: v for k, v in d.items() if k not in known}
        if isinstance(d.get("custom"), Mapping):
            custom.update(d["custom"])
        kw = {
            snake: d.get(camel) if d.get(camel) is not None else d.get(snake) for snake, camel in _META_FIELDS
        }
        return cls(**kw, custom=custom or None)

    def to_dict(self) -> dict[str, Any]:
        """The flat dict (well-known fields by their Python names, then custom keys)."""
        out = {snake: getattr(self, snake) for snake, _ in _META_FIELDS if getattr(self, snake) is not None}
        for k, v in (self.custom or {}).items():
            out.setdefault(k, v)
        return out


# ------------------------------------------------------------------------------------------------
# storage
# ------------------------------------------------------------------------------------------------


@dataclass
class HttpShardEntry:
    """One HTTP(S) shard and its checksum (``storageHttp#shardEntry``)."""

    url: str
    checksum: ShardChecksum

    def to_record(self) -> dict[str, Any]:
        return {"url": self.url, "checksum": self.checksum.to_record()}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> HttpShardEntry:
        d = _obj(d, "shard")
        return cls(url=_str(d, "url", "shard"), checksum=ShardChecksum.from_record(d.get("checksum") or {}))


@dataclass
class StorageHttp:
    """Shards at HTTP(S) URLs (``science.alt.dataset.storageHttp``)."""

    shards: list[HttpShardEntry]

    def to_record(self) -> dict[str, Any]:
        return {"$type": rec.STORAGE_HTTP, "shards": [s.to_record() for s in self.shards]}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> StorageHttp:
        d = _obj(d, "storage")
        return cls(shards=[HttpShardEntry.from_record(s) for s in _list(d, "shards", "storage")])


@dataclass
class S3ShardEntry:
    """One S3 object and its checksum (``storageS3#shardEntry``)."""

    key: str
    checksum: ShardChecksum

    def to_record(self) -> dict[str, Any]:
        return {"key": self.key, "checksum": self.checksum.to_record()}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> S3ShardEntry:
        d = _obj(d, "shard")
        return cls(key=_str(d, "key", "shard"), checksum=ShardChecksum.from_record(d.get("checksum") or {}))


@dataclass
class StorageS3:
    """Shards in one S3 (or S3-compatible) bucket (``science.alt.dataset.storageS3``)."""

    bucket: str
    shards: list[S3ShardEntry]
    region: str | None = None
    endpoint: str | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$type": rec.STORAGE_S3,
            "bucket": self.bucket,
            "shards": [s.to_record() for s in self.shards],
        }
        if self.region is not None:
            out["region"] = self.region
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> StorageS3:
        d = _obj(d, "storage")
        return cls(
            bucket=_str(d, "bucket", "storage"),
            shards=[S3ShardEntry.from_record(s) for s in _list(d, "shards", "storage")],
            region=_str(d, "region", "storage", required=False),
            endpoint=_str(d, "endpoint", "storage", required=False),
        )


@dataclass
class BlobEntry:
    """One shard stored as a PDS blob (``storageBlobs#blobEntry``), optionally with its checksum."""

    blob: dict[str, Any]
    checksum: ShardChecksum | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"blob": self.blob}
        if self.checksum is not None:
            out["checksum"] = self.checksum.to_record()
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> BlobEntry:
        d = _obj(d, "blob entry")
        if rec.blob_cid(d.get("blob")) is None:
            raise RecordValidationError("blob entry.blob: not a blob reference")
        checksum = ShardChecksum.from_record(d["checksum"]) if d.get("checksum") is not None else None
        return cls(blob=dict(d["blob"]), checksum=checksum)


@dataclass
class StorageBlobs:
    """Shards stored as blobs in the publisher's PDS (``science.alt.dataset.storageBlobs``)."""

    blobs: list[BlobEntry]

    def to_record(self) -> dict[str, Any]:
        return {"$type": rec.STORAGE_BLOBS, "blobs": [b.to_record() for b in self.blobs]}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> StorageBlobs:
        d = _obj(d, "storage")
        return cls(blobs=[BlobEntry.from_record(b) for b in _list(d, "blobs", "storage")])


StorageUnion = StorageHttp | StorageS3 | StorageBlobs

_STORAGE_TYPES: dict[str, Any] = {
    rec.STORAGE_HTTP: StorageHttp,
    rec.STORAGE_S3: StorageS3,
    rec.STORAGE_BLOBS: StorageBlobs,
}


def storage_from_record(d: dict[str, Any]) -> StorageUnion:
    """The storage union member for an entry's ``storage`` object (by its ``$type``).

    atdata's deprecated ``storageExternal`` (bare URLs) is read as :class:`StorageHttp` with
    ``"none"`` checksums, as atdata does.

    Raises:
        RecordValidationError: An unknown ``$type`` or a malformed object (a ``ValueError``).
    """
    d = _obj(d, "storage")
    rec.parse_storage(d)  # the one parser of storage unions: shape and types, or it raises
    t = d.get("$type")
    if t == rec.STORAGE_EXTERNAL:
        return StorageHttp(shards=[HttpShardEntry(u, ShardChecksum("none", "")) for u in d["urls"]])
    return _STORAGE_TYPES[str(t)].from_record(d)


# ------------------------------------------------------------------------------------------------
# schema, entry, lens, verification, label records
# ------------------------------------------------------------------------------------------------


@dataclass
class LexCodeReference:
    """Where a lens function's code is (``lens#codeReference``): repository, commit, path."""

    repository: str
    commit: str
    path: str
    branch: str | None = None
    language: str | None = None

    def to_record(self) -> dict[str, str]:
        return rec.code_reference(
            self.repository, self.commit, self.path, branch=self.branch, language=self.language
        )

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexCodeReference:
        d = _obj(d, "codeReference")
        return cls(
            repository=_str(d, "repository", "codeReference"),
            commit=_str(d, "commit", "codeReference"),
            path=_str(d, "path", "codeReference"),
            branch=_str(d, "branch", "codeReference", required=False),
            language=_str(d, "language", "codeReference", required=False),
        )


@dataclass
class JsonSchemaFormat:
    """A schema record's ``schema`` (``schema#jsonSchemaFormat``): a draft-07 JSON Schema body."""

    schema_body: dict[str, Any]
    array_format_versions: dict[str, str] | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"$type": rec.JSON_SCHEMA_FORMAT, **self.schema_body}
        if self.array_format_versions:
            out["arrayFormatVersions"] = dict(self.array_format_versions)
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> JsonSchemaFormat:
        d = _obj(d, "schema")
        afv = d.get("arrayFormatVersions")
        if afv is not None and not (
            isinstance(afv, Mapping) and all(isinstance(v, str) for v in afv.values())
        ):
            raise RecordValidationError(
                "schema.arrayFormatVersions: an object of version strings is required"
            )
        body = {k: v for k, v in d.items() if k not in ("$type", "arrayFormatVersions")}
        return cls(schema_body=body, array_format_versions=dict(afv) if afv is not None else None)


@dataclass
class LexSchemaRecord:
    """A versioned sample type (``science.alt.dataset.schema``)."""

    name: str
    version: str
    schema_type: str
    schema: JsonSchemaFormat
    created_at: datetime = field(default_factory=_now)
    description: str | None = None
    metadata: dict[str, Any] | None = None
    atdata_schema_version: int = 1

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$type": rec.SCHEMA_NSID,
            "name": self.name,
            "version": self.version,
            "schemaType": self.schema_type,
            "schema": self.schema.to_record(),
            "createdAt": _iso(self.created_at),
            "atdataSchemaVersion": self.atdata_schema_version,
        }
        if self.description is not None:
            out["description"] = self.description
        if self.metadata is not None:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexSchemaRecord:
        d = _checked(d, rec.SCHEMA_NSID)
        rec.local_schema_from_record(d)  # the properties must describe fields we can read
        version = d.get("atdataSchemaVersion", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version != 1:
            raise RecordValidationError(
                f"schema.atdataSchemaVersion: {version!r:.20} is not supported (this library reads version 1)"
            )
        meta = d.get("metadata")
        return cls(
            name=d["name"],
            version=d["version"],
            schema_type=d["schemaType"],
            schema=JsonSchemaFormat.from_record(d["schema"]),
            created_at=_when(d, "schema"),
            description=d.get("description"),
            metadata=dict(meta) if isinstance(meta, Mapping) else None,
            atdata_schema_version=version,
        )


@dataclass
class LexDatasetEntry:
    """A dataset: name, schema AT-URI and storage (``science.alt.dataset.entry``)."""

    name: str
    schema_ref: str
    storage: StorageUnion
    created_at: datetime = field(default_factory=_now)
    description: str | None = None
    metadata: DatasetMetadata | None = None
    tags: list[str] | None = None
    size: DatasetSize | None = None
    license: str | None = None
    metadata_schema_ref: str | None = None
    content_metadata: dict[str, Any] | None = None
    manifests: list[ShardManifestRef] | None = None

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$type": rec.ENTRY_NSID,
            "name": self.name,
            "schemaRef": self.schema_ref,
            "storage": self.storage.to_record(),
            "createdAt": _iso(self.created_at),
        }
        optional = {
            "description": self.description,
            "metadata": self.metadata.to_record() if self.metadata is not None else None,
            "tags": list(self.tags) if self.tags is not None else None,
            "size": self.size.to_record() if self.size is not None else None,
            "license": self.license,
            "metadataSchemaRef": self.metadata_schema_ref,
            "contentMetadata": self.content_metadata,
            "manifests": [m.to_record() for m in self.manifests] if self.manifests is not None else None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexDatasetEntry:
        d = _checked(d, rec.ENTRY_NSID)
        parsed = rec.entry_from_record(d)  # storage, metadata (any of atdata's three forms)
        manifests = d.get("manifests")
        cm = d.get("contentMetadata")
        return cls(
            name=parsed["name"],
            schema_ref=parsed["schemaRef"],
            storage=storage_from_record(d["storage"]),
            created_at=_when(d, "entry"),
            description=d.get("description"),
            metadata=DatasetMetadata.from_dict(parsed["metadata"])
            if parsed["metadata"] is not None
            else None,
            tags=list(d["tags"]) if d.get("tags") is not None else None,
            size=DatasetSize.from_record(d["size"]) if d.get("size") is not None else None,
            license=d.get("license"),
            metadata_schema_ref=d.get("metadataSchemaRef"),
            content_metadata=dict(cm) if isinstance(cm, Mapping) else None,
            manifests=[ShardManifestRef.from_record(m) for m in manifests] if manifests is not None else None,
        )


@dataclass
class LexLensRecord:
    """A lens between two schemas, its getter and putter as code references (``science.alt.dataset.lens``)."""

    name: str
    source_schema: str
    target_schema: str
    getter_code: LexCodeReference
    putter_code: LexCodeReference
    created_at: datetime = field(default_factory=_now)
    description: str | None = None
    language: str | None = None
    metadata: dict[str, Any] | None = None
    source_schema_version: str | None = None
    target_schema_version: str | None = None

    def to_record(self) -> dict[str, Any]:
        return rec.lens_record(
            self.name,
            self.source_schema,
            self.target_schema,
            self.getter_code.to_record(),
            self.putter_code.to_record(),
            description=self.description,
            language=self.language,
            metadata=self.metadata,
            source_schema_version=self.source_schema_version,
            target_schema_version=self.target_schema_version,
            created_at=self.created_at,
        )

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexLensRecord:
        d = _checked(d, rec.LENS_NSID)
        meta = d.get("metadata")
        return cls(
            name=d["name"],
            source_schema=d["sourceSchema"],
            target_schema=d["targetSchema"],
            getter_code=LexCodeReference.from_record(d["getterCode"]),
            putter_code=LexCodeReference.from_record(d["putterCode"]),
            created_at=_when(d, "lens"),
            description=d.get("description"),
            language=d.get("language"),
            metadata=dict(meta) if isinstance(meta, Mapping) else None,
            source_schema_version=d.get("sourceSchemaVersion"),
            target_schema_version=d.get("targetSchemaVersion"),
        )


@dataclass
class LexCodeHash:
    """A hash of lens code (``lensVerification#codeHash``): ``algorithm`` and hex ``digest``."""

    algorithm: str
    digest: str

    def to_record(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "digest": self.digest}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexCodeHash:
        d = _obj(d, "codeHash")
        return cls(algorithm=_str(d, "algorithm", "codeHash"), digest=_str(d, "digest", "codeHash"))


@dataclass
class LexLensVerification:
    """An attestation about one version of a lens record (``science.alt.dataset.lensVerification``).

    The verifier is the repository that holds the record.
    """

    lens: str
    lens_commit: str
    verification_method: str
    created_at: datetime = field(default_factory=_now)
    code_hash: LexCodeHash | None = None
    proof_ref: LexCodeReference | None = None
    description: str | None = None

    def to_record(self) -> dict[str, Any]:
        return rec.lens_verification_record(
            self.lens,
            self.lens_commit,
            self.verification_method,
            code_hash=self.code_hash.to_record() if self.code_hash is not None else None,
            proof_ref=self.proof_ref.to_record() if self.proof_ref is not None else None,
            description=self.description,
            created_at=self.created_at,
        )

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexLensVerification:
        d = _checked(d, rec.LENS_VERIFICATION_NSID)
        return cls(
            lens=d["lens"],
            lens_commit=d["lensCommit"],
            verification_method=d["verificationMethod"],
            created_at=_when(d, "lensVerification"),
            code_hash=LexCodeHash.from_record(d["codeHash"]) if d.get("codeHash") is not None else None,
            proof_ref=LexCodeReference.from_record(d["proofRef"]) if d.get("proofRef") is not None else None,
            description=d.get("description"),
        )


@dataclass
class LexLabelRecord:
    """A name (and optional version) pointing at a dataset record (``science.alt.dataset.label``)."""

    name: str
    dataset_uri: str
    created_at: datetime = field(default_factory=_now)
    version: str | None = None
    description: str | None = None

    def to_record(self) -> dict[str, Any]:
        return rec.label_record(
            self.name,
            self.dataset_uri,
            version=self.version,
            description=self.description,
            created_at=self.created_at,
        )

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> LexLabelRecord:
        d = _checked(d, rec.LABEL_NSID)
        parsed = rec.label_from_record(d)
        return cls(
            name=parsed["name"],
            dataset_uri=parsed["datasetUri"],
            created_at=_when(d, "label"),
            version=parsed["version"],
            description=parsed["description"],
        )
