"""PDSBlobStore: dataset shards as blobs in the logged-in account's PDS (atdata 0.7's name).

``PDSBlobStore()`` (no client) is also the promotion engine's copy target "upload the shards as
blobs" (``promote(..., copy_to=PDSBlobStore())``, the same as ``copy_to="blobs"``); with a
client it uploads shards itself (:meth:`PDSBlobStore.write_shards`) and reads them back as a
:class:`~atdata_lab.sources.BlobSource` whose every blob is checked against its CID.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cid import parse_blob_cid
from ..errors import BlobMismatchError, InvalidArgumentError, NoAtmosphereError, RecordValidationError
from . import records as rec
from .records import AtUri

__all__ = ["PDSBlobStore", "ShardUploadResult"]

TAR_MIME = "application/x-tar"


class ShardUploadResult(list[str]):
    """What :meth:`PDSBlobStore.write_shards` returns: the ``at://{did}/blob/{cid}`` URIs (it is a
    list of them), plus ``blob_refs`` (for a ``storageBlobs`` record) and ``checksums`` (URI -> sha256)."""

    def __init__(self, urls: list[str], blob_refs: list[dict[str, Any]], checksums: dict[str, str]) -> None:
        super().__init__(urls)
        self.blob_refs = blob_refs
        self.checksums = checksums


def _blob_uri(url: Any) -> tuple[str, str]:
    """``at://{did}/blob/{cid}`` (or a PDS ``.../com.atproto.sync.getBlob?did=&cid=`` URL, as an
    entry's ``data_urls`` give) -> (did, cid), both checked (a DID, a verifiable blob CID). The host
    of a ``getBlob`` URL is not used: blobs are read from the DID's PDS."""
    if (
        isinstance(url, str)
        and url.startswith(("http://", "https://"))
        and "/xrpc/com.atproto.sync.getBlob?" in url
    ):
        from urllib.parse import parse_qs, urlsplit

        q = parse_qs(urlsplit(url).query)
        did, cid = q.get("did", [""])[0], q.get("cid", [""])[0]
        url = f"at://{did}/blob/{cid}"
    u = AtUri.parse(url) if isinstance(url, str) else None
    if u is None or u.collection != "blob" or not u.rkey or u.did is None:
        raise RecordValidationError(f"{url!r:.200} is not a blob URI 'at://<did>/blob/<cid>'")
    return u.did, str(parse_blob_cid(u.rkey, f"{url}"))


@dataclass(eq=False, repr=False)
class PDSBlobStore:
    """Shards as ATProto blobs in the client's repository.

    Args:
        client: A logged-in :class:`~atdata_lab.atmosphere.Atmosphere` (``None``: only a copy
            target for promotion, which uploads with the index's client).
    """

    client: Any = None

    def __repr__(self) -> str:
        return "PDSBlobStore()" if self.client is None else f"PDSBlobStore({self.client!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PDSBlobStore) and other.client is self.client

    __hash__ = object.__hash__

    def _client(self, what: str) -> Any:
        if self.client is None:
            raise NoAtmosphereError(
                f"PDSBlobStore.{what} needs a client: PDSBlobStore(Atmosphere.login(handle, app_password))"
            )
        return self.client

    def write_shards(
        self,
        ds: Any,
        *,
        prefix: str = "",
        maxcount: int | None = None,
        maxsize: float | None = None,
        **kwargs: Any,
    ) -> ShardUploadResult:
        """Upload a dataset's shards as blobs; return their ``at://{did}/blob/{cid}`` URIs.

        Without ``maxcount``/``maxsize`` each existing shard is uploaded as it is (streamed from
        disk or its URL). With them, the samples are first written again into shards of at most
        ``maxcount`` samples / ``maxsize`` bytes (in a temporary folder, removed afterwards), so
        that each fits the PDS's blob limit. Every blob's CID, as the PDS reports it, must name the
        bytes sent (else :class:`~atdata_lab.errors.BlobMismatchError`).

        The PDS keeps (and serves) a blob only once a record references it: publish the URIs in
        an entry (``DatasetPublisher.publish_with_blob_refs(result.blob_refs, ...)``) soon.
        ``prefix`` is accepted for atdata compatibility (blobs have no names).
        """
        del prefix, kwargs  # atdata's protocol arguments: blobs are named by their content
        atm = self._client("write_shards")
        did = atm._require_login("PDSBlobStore.write_shards")
        if maxcount is not None or maxsize is not None:
            from ..dataset import write_samples

            with tempfile.TemporaryDirectory(prefix="atdata-blobs-") as tmp:
                resharded = write_samples(
                    iter(ds),
                    str(Path(tmp) / "shard"),
                    maxcount=maxcount,
                    maxsize=int(maxsize) if maxsize is not None else None,
                )
                return self._upload(atm, did, resharded.list_shards())
        shards = ds.list_shards()
        if not shards:
            raise InvalidArgumentError("PDSBlobStore.write_shards: the dataset has no shards")
        return self._upload(atm, did, shards, ds)

    def _upload(self, atm: Any, did: str, shards: list[str], ds: Any = None) -> ShardUploadResult:
        from ..urls import is_local, local_path

        urls: list[str] = []
        refs: list[dict[str, Any]] = []
        sums: dict[str, str] = {}
        for shard in shards:
            data: Any
            if is_local(shard):  # hashed, then streamed from disk
                data = Path(local_path(shard))
                h = hashlib.sha256()
                with open(data, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                digest = h.hexdigest()
            else:
                from ..urls import open_url

                with open_url(shard, getattr(ds, "storage_options", None) or {}) as f:
                    data = f.read()
                digest = hashlib.sha256(data).hexdigest()
            ref = self._checked_upload(atm, data, digest, TAR_MIME, f"shard {shard}")
            uri = f"at://{did}/blob/{ref['ref']['$link']}"
            urls.append(uri)
            refs.append(ref)
            sums[uri] = digest
        return ShardUploadResult(urls, refs, sums)

    @staticmethod
    def _checked_upload(atm: Any, data: Any, digest: str, mime: str, what: str) -> dict[str, Any]:
        """Upload; the CID the PDS answers must name the sha256 of the bytes sent."""
        ref = atm.upload_blob(data, content_type=mime)
        cid = rec.blob_cid(ref)
        if parse_blob_cid(cid, "the PDS's blob CID").digest.hex() != digest:
            raise BlobMismatchError(
                f"the PDS answered CID {cid} for {what}, which names other bytes than those sent",
                response=None,
            )
        return dict(ref)

    def _upload_bytes(self, data: bytes, mime: str = TAR_MIME) -> dict[str, Any]:
        """One blob from bytes (CID checked); its blob reference."""
        atm = self._client("upload")
        return self._checked_upload(atm, data, hashlib.sha256(data).hexdigest(), mime, "a blob")

    def read_url(self, url: str) -> str:
        """The HTTP URL (the PDS's ``getBlob``) for ``at://{did}/blob/{cid}``; other URLs unchanged."""
        if not isinstance(url, str) or not url.startswith("at://"):
            return url
        did, cid = _blob_uri(url)
        atm = self._client("read_url")
        pds = atm.pds_url if did == atm.did else atm.get_repo_pds(did)
        return f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"

    def supports_streaming(self) -> bool:
        """True: blobs are read over HTTP."""
        return True

    def create_source(self, urls: list[str]) -> Any:
        """A :class:`~atdata_lab.sources.BlobSource` over ``at://{did}/blob/{cid}`` URIs: each blob
        is downloaded once into the verified blob cache and used only if its bytes match its CID.

        Raises:
            RecordValidationError: A URI is not ``at://<did>/blob/<cid>`` with a verifiable CID
                (a ``ValueError``; checked before any request).
        """
        from ..sources import BlobSource

        if isinstance(urls, str):
            urls = [urls]
        refs = [dict(zip(("did", "cid"), _blob_uri(u), strict=True)) for u in urls]
        atm = self.client
        own = atm is not None and refs and all(r["did"] == atm.did for r in refs)
        source = BlobSource(refs, pds_endpoint=atm.pds_url if own else None)
        if own:
            source._clients[atm.pds_url] = atm  # the logged-in client reads its own repository
        return source
