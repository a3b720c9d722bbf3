"""atdata 0.7's ``AtmosphereIndex`` (deprecated there too, for ``Index(atmosphere=client)``) and
``AtmosphereIndexEntry``, on the publishers and loaders of :mod:`._publishers`."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from . import records as rec
from ._publishers import (
    DatasetLoader,
    DatasetPublisher,
    SchemaLoader,
    SchemaPublisher,
    _list_with_uris,
    _schema_of,
    _schema_write,
)

__all__ = ["AtmosphereIndex", "AtmosphereIndexEntry"]


class AtmosphereIndexEntry:
    """A published dataset record as an index entry: ``name``, ``schema_ref``, ``data_urls``,
    ``metadata``, ``uri``. Blob shards appear as their PDS's ``getBlob`` URLs."""

    def __init__(self, uri: str, record: dict[str, Any], *, client: Any = None) -> None:
        self._uri = uri
        self._record = record
        self._client = client

    def __repr__(self) -> str:
        return f"AtmosphereIndexEntry({self._uri!r}, name={self.name!r})"

    @property
    def name(self) -> str:
        return str(self._record.get("name", ""))

    @property
    def schema_ref(self) -> str:
        return str(self._record.get("schemaRef", ""))

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def metadata(self) -> dict[str, Any] | None:
        return rec.decode_entry_metadata(self._record.get("metadata"))

    @property
    def data_urls(self) -> list[str]:
        """The shard URLs (``s3://bucket/key`` for S3; ``getBlob`` URLs, CIDs parsed, for blobs)."""
        from ..cid import parse_blob_cid
        from ..promotion.published import _reader

        storage = rec.parse_storage(self._record.get("storage"))
        if storage["kind"] != "blobs":
            return [s["url"] for s in storage["shards"]]
        did = rec.AtUri.parse(self._uri).did
        if did is None:
            raise rec.RecordValidationError(f"{self._uri!r:.200} must name its repository by DID")
        atm = self._client if self._client is not None else _reader(None)
        pds = atm.pds_url if did == atm.did else atm.get_repo_pds(did)
        cids = [
            str(parse_blob_cid(s["cid"], f"{self._uri} blob {i}")) for i, s in enumerate(storage["shards"])
        ]
        return [f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?did={did}&cid={c}" for c in cids]


class AtmosphereIndex:
    """An index over one ATProto account (atdata 0.7's deprecated class; prefer
    ``Index(atmosphere=client)``).

    Args:
        client: A logged-in :class:`~atdata_lab.atmosphere.Atmosphere`.
        data_store: A :class:`PDSBlobStore`: :meth:`insert_dataset` uploads the shards as blobs.
    """

    def __init__(self, client: Any, *, data_store: Any = None) -> None:
        warnings.warn(
            "AtmosphereIndex is deprecated (as in atdata 0.7): use Index(atmosphere=client)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.client = client
        self._schema_publisher = SchemaPublisher(client)
        self._schema_loader = SchemaLoader(client)
        self._dataset_publisher = DatasetPublisher(client)
        self._dataset_loader = DatasetLoader(client)
        self._data_store = data_store

    @property
    def data_store(self) -> Any:
        return self._data_store

    def _entry(self, uri: str) -> AtmosphereIndexEntry:
        return AtmosphereIndexEntry(uri, self._dataset_loader.get(uri), client=self.client)

    def insert_dataset(
        self, ds: Any, *, name: str, schema_ref: str | None = None, **kwargs: Any
    ) -> AtmosphereIndexEntry:
        """Publish ``ds`` (``description``, ``tags``, ``license`` in ``kwargs``). With a
        :class:`PDSBlobStore` the shards are uploaded as blobs first; a schema published here goes
        in the same ``applyWrites`` as the entry."""
        opts: dict[str, Any] = {k: kwargs.get(k) for k in ("description", "tags", "license")}
        if self._data_store is None:
            uri = self._dataset_publisher.publish(
                ds, name=name, schema_uri=schema_ref, auto_publish_schema=schema_ref is None, **opts
            )
            return self._entry(str(uri))
        before = []
        if schema_ref is None:
            schema = _schema_of(ds.sample_type, name=None, version="1.0.0", description=None)
            schema_ref, write = _schema_write(self.client, schema, None, None)
            before = [write] if write is not None else []
        uploaded = self._data_store.write_shards(ds, prefix=name)
        items = [{"blob": r, "sha256": uploaded.checksums[u]} for u, r in zip(uploaded, uploaded.blob_refs)]
        uri = self._dataset_publisher._publish(
            rec.storage_blobs(items),
            name=name,
            schema_uri=schema_ref,
            size={"shards": len(items), "bytes": sum(int(r.get("size") or 0) for r in uploaded.blob_refs)},
            before=before,
            **opts,
        )
        return self._entry(str(uri))

    def get_dataset(self, ref: str) -> AtmosphereIndexEntry:
        """The entry at ``ref`` (``at://...`` or ``@handle/name[@version]``)."""
        from ..promotion.published import resolve_entry_uri

        return self._entry(resolve_entry_uri(self.client, ref))

    @property
    def datasets(self) -> Iterator[AtmosphereIndexEntry]:
        yield from self.list_datasets()

    def list_datasets(self, repo: str | None = None) -> list[AtmosphereIndexEntry]:
        """The entries of ``repo`` (a DID or handle; default: yours), malformed records skipped."""
        found = _list_with_uris(self.client, rec.ENTRY_NSID, repo, None, rec.entry_from_record)
        return [AtmosphereIndexEntry(uri, value, client=self.client) for uri, value in found]

    def publish_schema(self, sample_type: type, *, version: str = "1.0.0", **kwargs: Any) -> str:
        uri = self._schema_publisher.publish(
            sample_type,
            version=version,
            description=kwargs.get("description"),
            metadata=kwargs.get("metadata"),
        )
        return str(uri)

    def get_schema(self, ref: str) -> dict[str, Any]:
        return self._schema_loader.get(ref)

    @property
    def schemas(self) -> Iterator[dict[str, Any]]:
        yield from self.list_schemas()

    def list_schemas(self, repo: str | None = None) -> list[dict[str, Any]]:
        return self._schema_loader.list_all(repo=repo, limit=None)

    def get_schema_type(self, ref: str) -> type:
        """A working ``@packable`` type generated from the (validated) schema record."""
        from ..schema import Schema

        return Schema.from_record(rec.local_schema_from_record(self.get_schema(ref))).to_type()

    def decode_schema(self, ref: str) -> type:
        warnings.warn(
            "decode_schema() is deprecated: use get_schema_type()", DeprecationWarning, stacklevel=2
        )
        return self.get_schema_type(ref)
