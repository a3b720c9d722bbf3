"""Data sources: where a :class:`~atdata_lab.dataset.Dataset`'s shards come from (atdata 0.7's names).

``Dataset[T](source)`` takes a URL or pattern (the usual case), or a data source:

- :class:`URLSource`: URLs or a brace pattern (what a plain string means);
- :class:`S3Source`: objects in one S3 bucket, with credentials and endpoint kept in the source;
- :class:`BlobSource`: shards stored as blobs on ATProto PDSes;
- any object with ``list_shards()`` (or a ``shard_list`` property) and ``open_shard(shard_id)``
  returning a readable binary stream: the :class:`DataSource` protocol, for storage of your own.

URLSource and S3Source are read by the dataset's own readers (ranged reads, readahead, the
verified cache). A BlobSource's blobs are downloaded into the verified blob cache and checked
against their CIDs before any sample is read (atdata streams them unchecked). Any other source is
read through its ``open_shard`` streams: in order, and random access (``ds[k]``, ``get``) reads
the stream up to the sample unless the stream can seek.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from .errors import InvalidArgumentError, InvalidTypeError, NotFoundError
from .urls import expand_urls, note_configured_endpoint, open_url

__all__ = ["BlobSource", "DataSource", "S3Source", "URLSource", "shard_ids"]


@runtime_checkable
class DataSource(Protocol):
    """What a data source offers (atdata's protocol): shard ids, and a stream per shard."""

    @property
    def shards(self) -> Iterator[tuple[str, IO[bytes]]]:
        """``(shard id, stream)`` for each shard, opened one by one."""
        ...

    def list_shards(self) -> list[str]:
        """The shard ids, in order, without opening anything."""
        ...

    def open_shard(self, shard_id: str) -> IO[bytes]:
        """A readable binary stream of one shard; ``KeyError`` for an id not in :meth:`list_shards`."""
        ...


def shard_ids(source: Any) -> list[str]:
    """A data source's shard ids: ``list_shards()``, or the ``shard_list`` property of older ones.

    Raises:
        InvalidTypeError: The object has neither, or no ``open_shard``.
    """
    if not callable(getattr(source, "open_shard", None)):
        raise InvalidTypeError(
            f"{type(source).__name__} is not a data source: it needs list_shards() and open_shard(shard_id)"
        )
    lister = getattr(source, "list_shards", None)
    ids = lister() if callable(lister) else getattr(source, "shard_list", None)
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
        raise InvalidTypeError(f"{type(source).__name__}.list_shards() must return a list of str shard ids")
    return list(ids)


def _unknown(shard_id: str, ids: list[str]) -> NotFoundError:
    return NotFoundError(f"{shard_id!r} is not a shard of this source ({len(ids)} shards)")


class _Listed:
    """``shard_list`` and ``shards`` from ``list_shards`` and ``open_shard`` (every source here)."""

    def list_shards(self) -> list[str]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def open_shard(self, shard_id: str) -> IO[bytes]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def shard_list(self) -> list[str]:
        """As :meth:`list_shards` (atdata's older name)."""
        return self.list_shards()

    @property
    def shards(self) -> Iterator[tuple[str, IO[bytes]]]:
        for shard_id in self.list_shards():
            yield shard_id, self.open_shard(shard_id)


class _AtURLs(_Listed):
    """A source whose shard ids are URLs our readers open with ``storage_options``."""

    storage_options: Any

    def open_shard(self, shard_id: str) -> IO[bytes]:
        """A readable stream of one shard (``KeyError`` for one not in :meth:`list_shards`)."""
        ids = self.list_shards()
        if shard_id not in ids:
            raise _unknown(shard_id, ids)
        return open_url(shard_id, self.storage_options)

    def _dataset_args(self) -> tuple[list[str], dict[str, Any]]:
        """``(urls, storage_options)`` for the dataset's own readers."""
        return self.list_shards(), dict(self.storage_options or {})


@dataclass
class URLSource(_AtURLs):
    """Shards at URLs: local paths, ``file://``, ``http(s)://``, ``s3://`` and other fsspec URLs.

    Args:
        url: A URL, a brace pattern (``data-{000000..000009}.tar``) or a list of them.
        storage_options: fsspec options for remote URLs (credentials, endpoint).
    """

    url: str | list[str]
    storage_options: dict[str, Any] | None = None

    def list_shards(self) -> list[str]:
        """The shard URLs, brace patterns expanded."""
        return expand_urls(self.url)


@dataclass
class S3Source(_AtURLs):
    """Objects in one S3 bucket (AWS, or an S3-compatible server at ``endpoint``).

    The credentials stay in this source (they are passed to the readers of this dataset only and
    never shown by ``repr``); without them the usual AWS configuration applies.

    Args:
        bucket: The bucket.
        keys: The object keys of the shards, in order.
        endpoint: The server's URL, for servers other than AWS (MinIO, SeaweedFS, R2...).
        access_key, secret_key: Credentials.
        region: The bucket's region.
    """

    bucket: str
    keys: list[str]
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    region: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise InvalidArgumentError(f"bucket must be a bucket name without '/', not {self.bucket!r}")
        if isinstance(self.keys, str):
            raise InvalidTypeError("keys must be a list of object keys, not one string")
        self.keys = [k.lstrip("/") for k in self.keys]
        note_configured_endpoint(self.endpoint)  # you chose it: your credentials may go there

    def list_shards(self) -> list[str]:
        """``s3://bucket/key`` for each key."""
        return [f"s3://{self.bucket}/{k}" for k in self.keys]

    @property
    def storage_options(self) -> dict[str, Any]:
        """The s3fs options these objects are read with."""
        opts: dict[str, Any] = {}
        if self.access_key or self.secret_key:
            opts["key"], opts["secret"] = self.access_key, self.secret_key
        client: dict[str, Any] = {}
        if self.endpoint:
            client["endpoint_url"] = self.endpoint
        if self.region:
            client["region_name"] = self.region
        if client:
            opts["client_kwargs"] = client
        return opts

    @classmethod
    def from_urls(
        cls,
        urls: list[str],
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
    ) -> S3Source:
        """A source for ``s3://bucket/key`` URLs, all in one bucket.

        Raises:
            InvalidArgumentError: No URLs, a URL that is not ``s3://bucket/key``, or several buckets.
        """
        if not urls:
            raise InvalidArgumentError("S3Source.from_urls needs at least one s3:// URL")
        buckets, keys = set(), []
        for url in urls:
            bucket, _, key = url.removeprefix("s3://").partition("/")
            if not url.startswith("s3://") or not bucket or not key:
                raise InvalidArgumentError(f"{url!r} is not an s3://bucket/key URL")
            buckets.add(bucket)
            keys.append(key)
        if len(buckets) > 1:
            raise InvalidArgumentError(
                f"S3Source reads one bucket; these URLs name {sorted(buckets)}: make one source per bucket"
            )
        return cls(buckets.pop(), keys, endpoint, access_key, secret_key, region)

    @classmethod
    def from_credentials(cls, credentials: dict[str, str], bucket: str, keys: list[str]) -> S3Source:
        """A source from atdata's credentials dict (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
        optional ``AWS_ENDPOINT`` and ``AWS_REGION``), as ``S3DataStore(credentials=...)`` takes."""
        return cls(
            bucket,
            keys,
            endpoint=credentials.get("AWS_ENDPOINT"),
            access_key=credentials.get("AWS_ACCESS_KEY_ID"),
            secret_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
            region=credentials.get("AWS_REGION"),
        )


@dataclass
class BlobSource(_Listed):
    """Shards stored as blobs on ATProto PDSes, each named by the repository's DID and the blob's CID.

    A blob is downloaded into the verified blob cache (``$ATDATA_HOME/cache/blobs``) the first
    time it is read, and kept only if its bytes match its CID; no sample of a blob that does not
    match is ever read (atdata streams blobs unchecked). Shard ids are ``at://{did}/blob/{cid}``.

    Args:
        blob_refs: ``[{"did": ..., "cid": ...}, ...]``, in shard order.
        pds_endpoint: The PDS to read the blobs from (your choice: trusted). ``None``:
            ``$ATDATA_PDS_URL``, else each DID's PDS from its DID document, which must pass the
            trust policy (see :class:`~atdata_lab.urls.TrustPolicy`).
        trust: The trust policy for PDSes named by DID documents (``None``: the environment's).
    """

    blob_refs: list[dict[str, str]]
    pds_endpoint: str | None = None
    trust: Any = None
    _paths: dict[str, Path] = field(default_factory=dict, repr=False, compare=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # CID -> the most bytes its download may have (the size a record declares)
    _max_bytes: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        from .cid import parse_blob_cid

        refs = []
        for i, ref in enumerate(self.blob_refs):
            if not isinstance(ref, dict) or not isinstance(ref.get("did"), str) or "cid" not in ref:
                raise InvalidArgumentError(
                    f"blob_refs[{i}] must be {{'did': ..., 'cid': ...}}, not {ref!r:.200}"
                )
            did = ref["did"]
            if not did.startswith("did:") or "/" in did:
                raise InvalidArgumentError(f"blob_refs[{i}]: {did!r:.100} is not a DID")
            refs.append({"did": did, "cid": str(parse_blob_cid(ref["cid"], f"blob_refs[{i}].cid"))})
        self.blob_refs = refs

    def __getstate__(self) -> dict[str, Any]:  # clients hold connections: made again after pickling
        state = dict(self.__dict__)
        state["_clients"] = {}
        return state

    @classmethod
    def from_refs(cls, refs: list[dict[str, Any]], *, pds_endpoint: str | None = None) -> BlobSource:
        """A source from ``{"did": ..., "cid": ...}`` references.

        Raises:
            InvalidArgumentError: No references, or one without a DID (an ATProto blob ref alone
                does not say whose repository holds it).
        """
        if not refs:
            raise InvalidArgumentError("BlobSource.from_refs needs at least one blob reference")
        for ref in refs:
            if "did" not in ref:
                raise InvalidArgumentError(
                    f"{ref!r:.200} has no 'did': a blob reference needs the DID of the repository that holds it"
                )
        return cls([{"did": r["did"], "cid": r["cid"]} for r in refs], pds_endpoint=pds_endpoint)

    def list_shards(self) -> list[str]:
        """``at://{did}/blob/{cid}`` for each blob."""
        return [f"at://{r['did']}/blob/{r['cid']}" for r in self.blob_refs]

    def _client(self, did: str) -> Any:
        from .atmosphere import Atmosphere
        from .urls import check_remote_url

        url = self.pds_endpoint or os.environ.get("ATDATA_PDS_URL")
        if url is None:
            url = Atmosphere._discover_pds(did, None)
            check_remote_url(url, trusted=self.trust, record_uri=f"the DID document of {did}", what="PDS")
        if url not in self._clients:
            self._clients[url] = Atmosphere(url)
        return self._clients[url]

    def local_path(self, shard_id: str) -> Path:
        """The verified cached copy of one blob (downloaded and checked against its CID if needed)."""
        path = self._paths.get(shard_id)
        if path is not None and path.exists():
            return path
        ids = self.list_shards()
        if shard_id not in ids:
            raise _unknown(shard_id, ids)
        from .cache import fetch_blob
        from .cid import parse_blob_cid

        ref = self.blob_refs[ids.index(shard_id)]
        path = fetch_blob(
            self._client(ref["did"]),
            ref["did"],
            parse_blob_cid(ref["cid"]),
            trust=self.trust,
            max_bytes=self._max_bytes.get(ref["cid"]),
        )
        self._paths[shard_id] = path
        return path

    def open_shard(self, shard_id: str) -> IO[bytes]:
        """The blob's verified cached copy, opened for reading (``KeyError`` for an unknown id)."""
        return open(self.local_path(shard_id), "rb")  # noqa: SIM115 - the caller closes it
