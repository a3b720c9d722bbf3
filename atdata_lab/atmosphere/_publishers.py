"""atdata 0.7's publishers and loaders (``SchemaPublisher``, ``DatasetLoader``, ...), on our one client.

Each is a thin layer: records are built by :mod:`~atdata_lab.atmosphere.records` (validated
against the bundled lexicons there, and again by the client before any request); the schema
decision (reuse an identical published schema, refuse a different one under the same name and
version, or publish) is the promotion engine's (:func:`~atdata_lab.promotion.plan.find_published_schema`);
records that go together (a new schema and the entry that uses it) are written in ONE
``applyWrites``. Reading goes through :mod:`~atdata_lab.promotion.published` (label resolution,
entries, ``to_dataset`` = :func:`~atdata_lab.promotion.load_published` with its trust policy and
checksum checks).

Every record read is untrusted: its URI is checked before the request (collection, record key,
a DID for the repository), and the record against its lexicon and parser after, so a forged or
malformed record raises :class:`~atdata_lab.errors.RecordValidationError` (a ``ValueError``, as
atdata's loaders raise) naming the field. Listings skip records that fail (logged), so one bad
record does not hide the others.

Differences from atdata 0.7 (its defects, not copied): schemas are de-duplicated by content (a
second publish of the same type returns the first record); shard checksums are always real sha256
digests (atdata writes ``"none"``); :meth:`DatasetPublisher.publish` writes the schema it
auto-publishes and the entry in one atomic ``applyWrites`` (atdata: separate writes). The AppView
procedures atdata prefers when one is configured are not used: records go to the PDS directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ..errors import (
    InvalidArgumentError,
    InvalidTypeError,
    RecordValidationError,
    SchemaConflictError,
    SchemaNotFoundError,
)
from ..logs import logger
from . import records as rec
from ._lexicon_types import (
    DatasetMetadata,
    LexCodeHash,
    LexCodeReference,
    LexDatasetEntry,
    LexLabelRecord,
    LexLensRecord,
    LexLensVerification,
    LexSchemaRecord,
    ShardChecksum,
)
from .lexicon import bundled_lexicons
from .records import AtUri

__all__ = [
    "DatasetLoader",
    "DatasetPublisher",
    "LabelLoader",
    "LabelPublisher",
    "LensLoader",
    "LensPublisher",
    "SchemaLoader",
    "SchemaPublisher",
    "VerificationLoader",
    "VerificationPublisher",
]

_log = logger("atmosphere")


# ------------------------------------------------------------------------------------------------
# reading one record, safely
# ------------------------------------------------------------------------------------------------


def _check_record(value: Any, nsid: str, where: str) -> dict[str, Any]:
    """A record value from the network: its ``$type``, then its lexicon (then the caller's parser)."""
    if not isinstance(value, Mapping):
        raise RecordValidationError(f"{where}: the PDS returned a record that is not an object")
    if value.get("$type") != nsid:
        raise RecordValidationError(
            f"{where} is not a {nsid.rsplit('.', 1)[-1]} record: expected $type {nsid!r}, "
            f"got {value.get('$type')!r:.80}"
        )
    bundled_lexicons().validate_record(nsid, value, check_size=False)
    return dict(value)


def _fetch(client: Any, uri: str | AtUri, nsid: str) -> tuple[str, str | None, dict[str, Any]]:
    """``(uri, cid, value)`` of the record at ``uri``, which must name an ``nsid`` record (checked
    before the request) and hold a valid one (checked after)."""
    u = uri if isinstance(uri, AtUri) else AtUri.parse(uri)
    if u.collection != nsid or not u.rkey:
        raise RecordValidationError(
            f"{str(u)!r:.200} is not a {nsid.rsplit('.', 1)[-1]} record URI (at://<did>/{nsid}/<rkey>)"
        )
    got = client.get_record(u.collection, u.rkey, repo=u.authority)
    return str(got.get("uri") or u), got.get("cid"), _check_record(got.get("value"), nsid, str(u))


def _list(client: Any, nsid: str, repo: str | None, limit: int | None, parse: Any = None) -> list[dict]:
    """The valid ``nsid`` records of ``repo`` (default: the logged-in account), at most ``limit``."""
    return [value for _, value in _list_with_uris(client, nsid, repo, limit, parse)]


def _list_with_uris(
    client: Any, nsid: str, repo: str | None, limit: int | None, parse: Any = None
) -> list[tuple[str, dict[str, Any]]]:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive int, not {limit!r}")
    if repo is None:
        repo = client._require_login(f"list {nsid}")
    out = []
    for r in client.list_all_records(nsid, repo=repo, limit=limit):
        try:
            value = _check_record(r.get("value"), nsid, str(r.get("uri")))
            if parse is not None:
                parse(value)
        except (RecordValidationError, ValueError) as e:
            _log.warning("skipping the unreadable record %s: %s", r.get("uri"), e)
            continue
        out.append((str(r.get("uri")), value))
    return out


class _FromRecord(Protocol):
    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Any: ...


_Typed = TypeVar("_Typed", bound=_FromRecord)


class _RecordLoader(Generic[_Typed]):
    """Reads one kind of record (anyone's): each is checked against its lexicon and its parser
    before it is returned. Subclasses name the collection, the parser and the typed mirror."""

    _nsid: ClassVar[str]
    _typed: type[_Typed]

    def __init__(self, client: Any) -> None:
        self.client = client

    @staticmethod
    def _parse(value: Mapping[str, Any], /) -> Any:
        """Raises ``RecordValidationError``/``ValueError`` on a record this library cannot read."""

    def get(self, uri: str | AtUri) -> dict[str, Any]:
        """The record at ``uri``.

        Raises:
            RecordValidationError: Not a URI of this collection, not such a record, or a malformed
                one (a ``ValueError``).
            RecordNotFoundError: No such record (a ``KeyError``).
        """
        _, _, value = _fetch(self.client, uri, self._nsid)
        self._parse(value)
        return value

    def get_typed(self, uri: str | AtUri) -> _Typed:
        """:meth:`get` as the typed record."""
        return self._typed.from_record(self.get(uri))

    def list_all(self, repo: str | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records of ``repo`` (a DID or handle; default: yours); unreadable ones are
        skipped with a logged warning."""
        return _list(self.client, self._nsid, repo, limit, self._parse)


def _uri_of(out: Mapping[str, Any]) -> AtUri:
    return AtUri.parse(out["uri"])


def _reader(client: Any) -> Any:
    """What promotion.published reads with: an object whose ``atmosphere`` is the client."""
    return SimpleNamespace(atmosphere=client)


def _check_ref(uri: Any, nsid: str, where: str) -> str:
    from ..promotion.published import _record_uri

    return str(_record_uri(str(uri) if isinstance(uri, AtUri) else uri, nsid, where))


# ------------------------------------------------------------------------------------------------
# schemas
# ------------------------------------------------------------------------------------------------


def _schema_of(sample_type: Any, *, name: str | None, version: str, description: str | None) -> Any:
    from ..schema import Schema

    if not isinstance(sample_type, type) or not dataclasses.is_dataclass(sample_type):
        raise InvalidArgumentError(
            f"{getattr(sample_type, '__name__', sample_type)!r} must be a @packable class (a dataclass)"
        )
    schema = Schema.from_type(sample_type, version=version, description=description).with_version(version)
    return dataclasses.replace(schema, name=name) if name else schema


def _schema_write(client: Any, schema: Any, metadata: Mapping[str, Any] | None, rkey: str | None) -> Any:
    """``(uri, write-or-None)``: the schema's published record (reused when identical), or the
    create that publishes it. A different schema under the same name and version is refused."""
    from ..promotion.plan import PlannedWrite, find_published_schema

    if rkey is None:
        decision = find_published_schema(client, schema)
        if decision.action == "reuse":
            return decision.uri, None
        if decision.action == "conflict":
            raise SchemaConflictError(decision.describe())
        rkey = rec.AtUri.parse(decision.uri).rkey
    record = rec.schema_record(schema.to_record())
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidTypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        record["metadata"] = {**metadata, **record.get("metadata", {})}
        rec.validate_record(record, rec.SCHEMA_NSID)
    uri = f"at://{client.did}/{rec.SCHEMA_NSID}/{rkey}"
    return uri, PlannedWrite("create", rec.SCHEMA_NSID, str(rkey), uri, record)


def _write(client: Any, writes: list[Any]) -> list[dict[str, Any]]:
    """One create as ``createRecord``; several that go together in ONE ``applyWrites``."""
    if len(writes) == 1:
        w = writes[0]
        return [client.create_record(w.collection, w.value, rkey=w.rkey)]
    return client.apply_writes([w.as_write() for w in writes])


class SchemaPublisher:
    """Publishes ``@packable`` types as ``science.alt.dataset.schema`` records.

    Publishing the same type again returns the existing record (compared by content); the same
    name and version with other fields raises :class:`~atdata_lab.errors.SchemaConflictError`
    (a ``ValueError``) naming the version to use.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(
        self,
        sample_type: type,
        *,
        name: str | None = None,
        version: str = "1.0.0",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish (or find) ``sample_type``'s schema; return the record's AT-URI.

        Raises:
            ValueError: Not a ``@packable`` class, a bad version or name (nothing is sent).
            SchemaConflictError: This name and version are published with other fields.
        """
        self.client._require_login("SchemaPublisher.publish")
        schema = _schema_of(sample_type, name=name, version=version, description=description)
        uri, write = _schema_write(self.client, schema, metadata, rkey)
        if write is None:
            return AtUri.parse(uri)
        return _uri_of(_write(self.client, [write])[0])


def _parse_schema(value: Mapping[str, Any]) -> None:
    rec.local_schema_from_record(value)
    version = value.get("atdataSchemaVersion", 1)
    if version != 1 or isinstance(version, bool):
        raise RecordValidationError(
            f"schema.atdataSchemaVersion: {version!r:.20} is not supported (this library reads version 1)"
        )


class SchemaLoader(_RecordLoader[LexSchemaRecord]):
    """Reads ``science.alt.dataset.schema`` records (anyone's; validated before use)."""

    _nsid = rec.SCHEMA_NSID
    _typed = LexSchemaRecord
    _parse = staticmethod(_parse_schema)

    def get(self, uri: str | AtUri) -> dict[str, Any]:
        """The schema record at ``uri``, or for ``@handle/TypeName@version``.

        Raises:
            RecordValidationError: Not a schema URI, not a schema record, or a malformed one
                (a ``ValueError``).
            RecordNotFoundError: No such record (a ``KeyError``).
        """
        if isinstance(uri, str) and uri.startswith("@"):
            return self._resolve_handle_ref(uri)
        return super().get(uri)

    def resolve(self, handle_or_did: str, schema_id: str, version: str | None = None) -> dict[str, Any]:
        """The schema named ``schema_id`` (at ``version``; else the latest created) in a repository.

        Raises:
            SchemaNotFoundError: None matches (a ``KeyError``).
        """
        self.client._check_repo(handle_or_did, "handle_or_did")
        matches = [
            r
            for r in _list(self.client, rec.SCHEMA_NSID, handle_or_did.removeprefix("@"), None, _parse_schema)
            if r.get("name") == schema_id and (version is None or r.get("version") == version)
        ]
        if not matches:
            raise SchemaNotFoundError(
                f"schema {schema_id!r}{' version ' + repr(version) if version else ''} not found in "
                f"repository {handle_or_did!r}"
            )
        return max(matches, key=lambda r: str(r.get("createdAt", "")))

    def _resolve_handle_ref(self, ref: str) -> dict[str, Any]:
        handle, sep, rest = ref[1:].partition("/")
        name, at, version = rest.rpartition("@")
        if not sep or not handle or not at or not name or not version:
            raise InvalidArgumentError(f"{ref!r:.200} is not '@handle/TypeName@version'")
        return self.resolve(handle, name, version)


# ------------------------------------------------------------------------------------------------
# dataset entries
# ------------------------------------------------------------------------------------------------


def _content_metadata(raw: Any) -> dict[str, Any] | None:
    if raw is None or isinstance(raw, dict):
        return raw
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        return dataclasses.asdict(raw)
    raise InvalidTypeError(
        f"content metadata must be a dict or a @packable instance, not {type(raw).__name__}"
    )


def _metadata_dict(metadata: Any) -> dict[str, Any] | None:
    if metadata is None or isinstance(metadata, dict):
        return metadata
    if isinstance(metadata, DatasetMetadata):
        return metadata.to_dict()
    raise InvalidTypeError(f"metadata must be a dict or DatasetMetadata, not {type(metadata).__name__}")


def _checksums(checksums: list[ShardChecksum] | None, n: int, what: str) -> list[dict[str, str]] | None:
    if checksums is None:
        return None
    if len(checksums) != n:
        raise InvalidArgumentError(f"checksums length ({len(checksums)}) must match {what} length ({n})")
    out = []
    for i, given in enumerate(checksums):
        c: Any = given.to_record() if isinstance(given, ShardChecksum) else given
        if not isinstance(c, Mapping) or c.get("algorithm") in (None, "", "none"):
            raise InvalidArgumentError(
                f"checksums[{i}]: give ShardChecksum('sha256', <hex digest>); atdata-lab never publishes a "
                "shard without a checksum"
            )
        out.append(dict(c))
    return out


def _public_url(url: str, name: str) -> str:
    """A local path as the ``file://`` URL it is published as (logged: only this machine reads it)."""
    from pathlib import Path

    from ..urls import is_local, local_path

    if not is_local(url):
        return url
    _log.warning("publish(%r): %s is a local file path that nobody else can reach", name, url)
    return Path(local_path(url)).resolve().as_uri()


class DatasetPublisher:
    """Publishes ``science.alt.dataset.entry`` records (shards by URL, in S3, or as PDS blobs)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._schema_publisher = SchemaPublisher(client)

    def _publish(
        self,
        storage: dict[str, Any],
        *,
        name: str,
        schema_uri: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: Any = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        size: dict[str, int] | None = None,
        rkey: str | None = None,
        before: list[Any] = (),  # type: ignore[assignment]
    ) -> AtUri:
        from ..promotion.plan import PlannedWrite

        did = self.client._require_login("DatasetPublisher.publish")
        schema_uri = _check_ref(schema_uri, rec.SCHEMA_NSID, "schema_uri")
        if metadata_schema_ref is not None:
            metadata_schema_ref = _check_ref(metadata_schema_ref, rec.SCHEMA_NSID, "metadata_schema_ref")
        record = rec.entry_record(
            name,
            schema_uri,
            storage,
            description=description,
            tags=list(tags) if tags else None,
            license=license,
            size=size,
            metadata=_metadata_dict(metadata),
            content_metadata=content_metadata,
            metadata_schema_ref=metadata_schema_ref,
        )
        rkey = rkey or rec.make_tid()
        uri = f"at://{did}/{rec.ENTRY_NSID}/{rkey}"
        out = _write(self.client, [*before, PlannedWrite("create", rec.ENTRY_NSID, rkey, uri, record)])
        return _uri_of(out[-1])

    def publish(
        self,
        dataset: Any,
        *,
        name: str,
        schema_uri: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        auto_publish_schema: bool = True,
        schema_version: str = "1.0.0",
        metadata_schema_uri: str | None = None,
        auto_publish_metadata_schema: bool = True,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish a dataset's shards (where they are) as an entry; return its AT-URI.

        Each shard is read once for its sha256. Without ``schema_uri`` the sample type's schema
        is found or published (``auto_publish_schema``), in the same ``applyWrites`` as the entry.
        Local file paths are published as ``file://`` URLs that only this machine can read
        (logged); copy the data first (``PDSBlobStore``, an S3 store) to share it.
        """
        from ..promotion.published import _storage_for

        self.client._require_login("DatasetPublisher.publish")
        before = []
        if schema_uri is None:
            if not auto_publish_schema:
                raise InvalidArgumentError("schema_uri is required when auto_publish_schema=False")
            schema = _schema_of(dataset.sample_type, name=None, version=schema_version, description=None)
            schema_uri, write = _schema_write(self.client, schema, None, None)
            before += [write] if write is not None else []
        raw = dataset.content_metadata
        content = _content_metadata(raw)
        meta_ref = metadata_schema_uri
        if (
            content is not None
            and not isinstance(raw, dict)
            and meta_ref is None
            and auto_publish_metadata_schema
        ):
            meta_schema = _schema_of(type(raw), name=None, version=schema_version, description=None)
            meta_ref, write = _schema_write(self.client, meta_schema, None, None)
            before += [write] if write is not None and write.uri != schema_uri else []
        urls = dataset.list_shards()
        if not urls:
            raise InvalidArgumentError(f"publish({name!r}): the dataset has no shards")
        infos = [dataset.shard_info(u) for u in dataset.urls]
        storage, warnings = _storage_for(list(dataset.urls), [i.checksum for i in infos], None)
        for w in warnings:
            _log.warning("publish(%r): %s", name, w)
        return self._publish(
            storage,
            name=name,
            schema_uri=schema_uri,
            description=description,
            tags=tags,
            license=license,
            metadata=dataset.metadata,
            metadata_schema_ref=meta_ref,
            content_metadata=content,
            size={
                "samples": sum(i.num_samples for i in infos),
                "bytes": sum(i.size for i in infos),
                "shards": len(infos),
            },
            rkey=rkey,
            before=before,
        )

    def publish_with_urls(
        self,
        urls: list[str],
        schema_uri: str,
        *,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        checksums: list[ShardChecksum] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish shards at ``urls`` (one URL per shard). Without ``checksums`` each shard is
        read once to compute its sha256 (atdata would publish ``"none"``)."""
        if isinstance(urls, str) or not urls:
            raise InvalidArgumentError("urls must be a non-empty list of shard URLs")
        sums = _checksums(checksums, len(urls), "urls")
        if sums is None:
            from ..dataset import Dataset

            ds: Any = Dataset(list(urls))
            sums = [{"algorithm": "sha256", "digest": ds.shard_info(u).checksum} for u in ds.urls]
        storage = rec.storage_http(
            {"url": _public_url(u, name), "checksum": c} for u, c in zip(urls, sums, strict=True)
        )
        return self._publish(
            storage,
            name=name,
            schema_uri=schema_uri,
            description=description,
            tags=tags,
            license=license,
            metadata=metadata,
            metadata_schema_ref=metadata_schema_ref,
            content_metadata=content_metadata,
            size={"shards": len(urls)},
            rkey=rkey,
        )

    def publish_with_s3(
        self,
        bucket: str,
        keys: list[str],
        schema_uri: str,
        *,
        name: str,
        region: str | None = None,
        endpoint: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        checksums: list[ShardChecksum] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish shards in an S3 bucket. ``checksums`` (sha256, one per key) are required:
        atdata-lab never publishes a shard without one (atdata writes ``"none"``)."""
        if isinstance(keys, str) or not keys:
            raise InvalidArgumentError("keys must be a non-empty list of S3 object keys")
        sums = _checksums(checksums, len(keys), "keys")
        if sums is None:
            raise InvalidArgumentError(
                "publish_with_s3 needs checksums=[ShardChecksum('sha256', <hex>), ...], one per key "
                "(or publish the dataset with index.promote(..., copy_to=S3DataStore(...)), which computes them)"
            )
        storage = rec.storage_s3(
            bucket,
            [{"key": k, "checksum": c} for k, c in zip(keys, sums, strict=True)],
            region=region,
            endpoint=endpoint,
        )
        return self._publish(
            storage,
            name=name,
            schema_uri=schema_uri,
            description=description,
            tags=tags,
            license=license,
            metadata=metadata,
            metadata_schema_ref=metadata_schema_ref,
            content_metadata=content_metadata,
            size={"shards": len(keys)},
            rkey=rkey,
        )

    def publish_with_blob_refs(
        self,
        blob_refs: list[dict[str, Any]],
        schema_uri: str,
        *,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        checksums: list[ShardChecksum] | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """Publish shards already uploaded as blobs (``upload_blob``'s references). Each checksum is
        the sha256 the blob's CID names (given ones must agree with it)."""
        from ..cid import parse_blob_cid

        if not blob_refs:
            raise InvalidArgumentError("blob_refs must be a non-empty list of blob references")
        given = _checksums(checksums, len(blob_refs), "blob_refs")
        items = []
        for i, ref in enumerate(blob_refs):
            digest = parse_blob_cid(rec.blob_cid(ref), f"blob_refs[{i}]").digest.hex()
            if given is not None and given[i] != {"algorithm": "sha256", "digest": digest}:
                raise InvalidArgumentError(
                    f"checksums[{i}] is not the sha256 that blob_refs[{i}]'s CID names"
                )
            items.append({"blob": dict(ref), "sha256": digest})
        return self._publish(
            rec.storage_blobs(items),
            name=name,
            schema_uri=schema_uri,
            description=description,
            tags=tags,
            license=license,
            metadata=metadata,
            metadata_schema_ref=metadata_schema_ref,
            content_metadata=content_metadata,
            size={"shards": len(items), "bytes": sum(int(r.get("size") or 0) for r in blob_refs)},
            rkey=rkey,
        )

    def publish_with_blobs(
        self,
        blobs: list[bytes],
        schema_uri: str,
        *,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        metadata_schema_ref: str | None = None,
        content_metadata: dict[str, Any] | None = None,
        mime_type: str = "application/x-tar",
        rkey: str | None = None,
    ) -> AtUri:
        """Upload each shard's bytes as a blob (CID checked), then publish them as one entry."""
        from ._store import PDSBlobStore

        schema_uri = _check_ref(schema_uri, rec.SCHEMA_NSID, "schema_uri")  # before any upload
        refs = [PDSBlobStore(self.client)._upload_bytes(bytes(b), mime_type) for b in blobs]
        return self.publish_with_blob_refs(
            refs,
            schema_uri,
            name=name,
            description=description,
            tags=tags,
            license=license,
            metadata=metadata,
            metadata_schema_ref=metadata_schema_ref,
            content_metadata=content_metadata,
            rkey=rkey,
        )


def _storage_kind(value: Mapping[str, Any]) -> dict[str, Any]:
    return rec.parse_storage(value.get("storage"))


class DatasetLoader(_RecordLoader[LexDatasetEntry]):
    """Reads ``science.alt.dataset.entry`` records (anyone's; validated before use)."""

    _nsid = rec.ENTRY_NSID
    _typed = LexDatasetEntry
    _parse = staticmethod(rec.entry_from_record)

    def get_storage_type(self, uri: str | AtUri) -> str:
        """``"http"``, ``"s3"``, ``"blobs"`` or ``"external"`` (atdata's deprecated bare URLs)."""
        return str(_storage_kind(self.get(uri))["kind"])

    def get_urls(self, uri: str | AtUri) -> list[str]:
        """The shard URLs (``s3://bucket/key``, or ``{endpoint}/{bucket}/{key}`` with an endpoint).

        Raises:
            ValueError: The dataset is stored as blobs (use :meth:`get_blob_urls`).
        """
        storage = _storage_kind(self.get(uri))
        if storage["kind"] == "blobs":
            raise InvalidArgumentError("the dataset is stored as PDS blobs, not URLs: use get_blob_urls()")
        if storage["kind"] == "s3" and storage.get("endpoint"):
            base = f"{str(storage['endpoint']).rstrip('/')}/{storage['bucket']}"
            return [f"{base}/{s['key']}" for s in storage["shards"]]
        return [s["url"] for s in storage["shards"]]

    def get_s3_info(self, uri: str | AtUri) -> dict[str, Any]:
        """``{"bucket", "keys", "region", "endpoint"}`` of an S3-stored dataset."""
        storage = _storage_kind(self.get(uri))
        if storage["kind"] != "s3":
            raise InvalidArgumentError(f"the dataset is not stored in S3 (storage: {storage['kind']})")
        return {
            "bucket": storage["bucket"],
            "keys": [s["key"] for s in storage["shards"]],
            "region": storage.get("region"),
            "endpoint": storage.get("endpoint"),
        }

    def get_blobs(self, uri: str | AtUri) -> list[dict[str, Any]]:
        """The ``blobEntry`` items of a blob-stored dataset."""
        value = self.get(uri)
        if _storage_kind(value)["kind"] != "blobs":
            raise InvalidArgumentError("the dataset is not stored as blobs: use get_urls()")
        return list(value["storage"]["blobs"])

    def get_blob_urls(self, uri: str | AtUri) -> list[str]:
        """The PDS ``getBlob`` URLs of a blob-stored dataset (CIDs parsed, never the record's text)."""
        from ..promotion.published import get_published_entry

        if _storage_kind(self.get(uri))["kind"] != "blobs":
            raise InvalidArgumentError("the dataset is not stored as blobs: use get_urls()")
        return list(get_published_entry(_reader(self.client), str(uri)).data_urls)

    def get_metadata(self, uri: str | AtUri) -> dict[str, Any] | None:
        """The entry's metadata as the flat dict that was published (any of atdata's forms)."""
        return rec.entry_from_record(self.get(uri))["metadata"]

    def get_metadata_typed(self, uri: str | AtUri) -> DatasetMetadata | None:
        return self.get_typed(uri).metadata

    def get_content_metadata(self, uri: str | AtUri) -> dict[str, Any] | None:
        cm = self.get(uri).get("contentMetadata")
        return dict(cm) if isinstance(cm, Mapping) else None

    def get_metadata_schema_ref(self, uri: str | AtUri) -> str | None:
        ref = self.get(uri).get("metadataSchemaRef")
        return ref if isinstance(ref, str) else None

    def to_dataset(self, uri: str | AtUri, sample_type: type | None = None) -> Any:
        """The dataset, read safely (:func:`~atdata_lab.promotion.load_published`: trust policy
        for locations, blobs checked against their CIDs, shards against their sha256)."""
        from ..promotion.published import load_published

        ds = load_published(str(uri), sample_type=sample_type, atmosphere=self.client)
        cm = self.get_content_metadata(uri)
        if cm is not None:
            ds._content_metadata = cm
        return ds


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------


class LabelPublisher:
    """Publishes ``science.alt.dataset.label`` records: a name (and version) for an entry."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(
        self,
        name: str,
        dataset_uri: str,
        *,
        version: str | None = None,
        description: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        self.client._require_login("LabelPublisher.publish")
        dataset_uri = _check_ref(dataset_uri, rec.ENTRY_NSID, "dataset_uri")
        record = rec.label_record(name, dataset_uri, version=version, description=description)
        return _uri_of(self.client.create_record(rec.LABEL_NSID, record, rkey=rkey))


class LabelLoader(_RecordLoader[LexLabelRecord]):
    """Reads and resolves ``science.alt.dataset.label`` records."""

    _nsid = rec.LABEL_NSID
    _typed = LexLabelRecord
    _parse = staticmethod(rec.label_from_record)

    def resolve(self, handle_or_did: str, name: str, version: str | None = None) -> str:
        """The entry AT-URI the latest label ``name`` (at ``version``) of a repository points to.

        Raises:
            RecordNotFoundError: No such label (a ``KeyError``).
        """
        from ..promotion.published import resolve_entry_uri

        ref = f"@{handle_or_did.removeprefix('@')}/{name}" + (f"@{version}" if version else "")
        return resolve_entry_uri(self.client, ref)


# ------------------------------------------------------------------------------------------------
# lenses and their verifications
# ------------------------------------------------------------------------------------------------


class LensPublisher:
    """Publishes ``science.alt.dataset.lens`` records. The getter and putter are code references
    (repository, commit, path), never code: nothing from a record is ever executed."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(
        self,
        *,
        name: str,
        source_schema_uri: str,
        target_schema_uri: str,
        code_repository: str,
        code_commit: str,
        getter_path: str,
        putter_path: str,
        description: str | None = None,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        source_schema_version: str | None = None,
        target_schema_version: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        self.client._require_login("LensPublisher.publish")
        record = LexLensRecord(
            name=name,
            source_schema=_check_ref(source_schema_uri, rec.SCHEMA_NSID, "source_schema_uri"),
            target_schema=_check_ref(target_schema_uri, rec.SCHEMA_NSID, "target_schema_uri"),
            getter_code=LexCodeReference(code_repository, code_commit, getter_path, language=language),
            putter_code=LexCodeReference(code_repository, code_commit, putter_path, language=language),
            description=description,
            language=language,
            metadata=metadata,
            source_schema_version=source_schema_version,
            target_schema_version=target_schema_version,
        ).to_record()
        return _uri_of(self.client.create_record(rec.LENS_NSID, record, rkey=rkey))

    def publish_from_lens(
        self,
        lens_obj: Any,
        *,
        name: str,
        source_schema_uri: str,
        target_schema_uri: str,
        code_repository: str,
        code_commit: str,
        description: str | None = None,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        source_schema_version: str | None = None,
        target_schema_version: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        """:meth:`publish` with the getter/putter paths (``module:function``) taken from a Lens."""
        getter = lens_obj._getter
        putter = lens_obj._putter if lens_obj._putter is not None else getter

        def path(fn: Any) -> str:
            module = getattr(fn, "__module__", "")
            return f"{module}:{fn.__name__}" if module else fn.__name__

        return self.publish(
            name=name,
            source_schema_uri=source_schema_uri,
            target_schema_uri=target_schema_uri,
            code_repository=code_repository,
            code_commit=code_commit,
            getter_path=path(getter),
            putter_path=path(putter),
            description=description,
            language=language,
            metadata=metadata,
            source_schema_version=source_schema_version,
            target_schema_version=target_schema_version,
            rkey=rkey,
        )


def _parse_lens(value: Mapping[str, Any]) -> None:
    LexLensRecord.from_record(dict(value))


class LensLoader(_RecordLoader[LexLensRecord]):
    """Reads ``science.alt.dataset.lens`` records (validated; their code is never run)."""

    _nsid = rec.LENS_NSID
    _typed = LexLensRecord
    _parse = staticmethod(_parse_lens)

    def find_by_schemas(
        self, source_schema_uri: str, target_schema_uri: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        """The lens records of ``repo`` (default: yours) from ``source_schema_uri`` (to ``target_schema_uri``)."""
        return [
            r
            for r in _list(self.client, rec.LENS_NSID, repo, None, _parse_lens)
            if r.get("sourceSchema") == str(source_schema_uri)
            and (target_schema_uri is None or r.get("targetSchema") == str(target_schema_uri))
        ]


class VerificationPublisher:
    """Publishes ``science.alt.dataset.lensVerification`` records: your attestation about one
    version (``lens_commit``: the lens record's CID) of a lens."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(
        self,
        *,
        lens_uri: str,
        lens_commit: str,
        verification_method: str,
        code_hash: LexCodeHash | None = None,
        proof_ref: LexCodeReference | None = None,
        description: str | None = None,
        rkey: str | None = None,
    ) -> AtUri:
        self.client._require_login("VerificationPublisher.publish")
        record = LexLensVerification(
            lens=_check_ref(lens_uri, rec.LENS_NSID, "lens_uri"),
            lens_commit=lens_commit,
            verification_method=verification_method,
            code_hash=code_hash,
            proof_ref=proof_ref,
            description=description,
        ).to_record()
        return _uri_of(self.client.create_record(rec.LENS_VERIFICATION_NSID, record, rkey=rkey))


def _parse_verification(value: Mapping[str, Any]) -> None:
    LexLensVerification.from_record(dict(value))


class VerificationLoader(_RecordLoader[LexLensVerification]):
    """Reads ``science.alt.dataset.lensVerification`` records (validated before use)."""

    _nsid = rec.LENS_VERIFICATION_NSID
    _typed = LexLensVerification
    _parse = staticmethod(_parse_verification)

    def list_for_lens(self, lens_uri: str, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The verification records of ``repo`` (default: yours) about ``lens_uri``."""
        found = _list(self.client, rec.LENS_VERIFICATION_NSID, repo, None, _parse_verification)
        return [r for r in found if r.get("lens") == str(lens_uri)][:limit]

    def find_by_method(self, method: str, repo: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The verification records of ``repo`` (default: yours) made by ``method`` (e.g. ``codeReview``)."""
        found = _list(self.client, rec.LENS_VERIFICATION_NSID, repo, None, _parse_verification)
        return [r for r in found if r.get("verificationMethod") == method][:limit]
