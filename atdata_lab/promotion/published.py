"""Reading back what is published: the records as they are on the PDS, this index's record of its
publications, loading anyone's dataset safely, and verifying a publication.

Also the helpers the plan and its execution share: the atmosphere of an index, state keys, record
reads by at:// URI, and storage unions (build, describe, who can reach them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..atmosphere import records as rec
from ..cache import fetch_blob
from ..cid import BlobCID, parse_blob_cid
from ..dataset import Dataset
from ..entry import IndexEntry
from ..errors import (
    AtdataLabError,
    AtdataLabWarning,
    BlobMismatchError,
    InvalidArgumentError,
    ManifestError,
    NoAtmosphereError,
    RecordNotFoundError,
    RecordTooLargeError,
    RecordValidationError,
    ShardError,
)
from ..logs import logger
from ..manifest import _deps
from ..manifest.shard_manifest import (
    HEADER_MAX,
    PARQUET_MAX,
    ShardManifest,
    parse_header,
    rows_from_parquet,
    shard_id_for,
)
from ..schema import Schema
from ..seekable_gzip import BLOCK_MAX, open_maybe_gzip
from ..sources import BlobSource
from ..stores.base import DataStore
from ..tar import iter_members, split_key
from ..transfer import sha256_of
from ..urls import (
    TRUST_OPTION,
    _endpoint_key,
    check_remote_url,
    credentials_allowed,
    is_local,
    local_path,
    only_on_this_machine,
    open_url,
    resolve_trust,
)
from ..views import promotion as promotion_views
from ..views.entries import Publication, publication_state

__all__ = [
    "PublishedEntry",
    "PublishedManifest",
    "VerificationReport",
    "describe_storage",
    "entry_publication",
    "fetch_schema",
    "get_published_entry",
    "list_published",
    "load_published",
    "publication_of",
    "read_published",
    "read_schema_record",
    "resolve_entry_uri",
    "storage_only_here",
    "verify_published",
]


# ---------------------------------------------------------------------------------------------
# the attached account, state keys, records by URI
# ---------------------------------------------------------------------------------------------


def _atmosphere(index: Any) -> Any:
    atm = getattr(index, "atmosphere", None)
    if atm is None:
        raise NoAtmosphereError(
            "no atmosphere is attached to this index: log in first, e.g. "
            "Index(atmosphere=Atmosphere.login(handle, app_password), ...) or index.atmosphere = client"
        )
    return atm


def _state_key(*parts: str) -> str:
    return ":".join(parts)


def _reader(index: Any = None) -> Any:
    """A client for reading records: the index's atmosphere, else an anonymous one on ATDATA_PDS_URL."""
    atm = getattr(index, "atmosphere", None) if index is not None else None
    if atm is not None:
        return atm
    url = os.environ.get("ATDATA_PDS_URL")
    if not url:
        raise InvalidArgumentError(
            "cannot read published datasets: attach an Atmosphere to the index, or set ATDATA_PDS_URL "
            "(for the sandbox: atdata-lab sandbox start)"
        )
    from ..atmosphere import Atmosphere  # lazily: the client (httpx, the atproto SDK) loads on first use

    return Atmosphere(url)


def _get(atm: Any, uri: str) -> dict[str, Any]:
    u = rec.AtUri.parse(uri)
    if not u.collection or not u.rkey:
        raise RecordValidationError(f"{uri!r:.200} is not an at://<repo>/<collection>/<rkey> URI")
    got = atm.get_record(u.collection, u.rkey, repo=u.authority)
    if not isinstance(got.get("value"), dict):
        raise RecordValidationError(f"{uri}: the PDS returned a record that is not an object")
    return got


def _record_uri(uri: Any, nsid: str, where: str) -> Any:
    """An AT-URI taken from a record (or typed by the user), checked before any request: a DID
    authority (a handle would make us resolve a name the record chose), ``nsid``, a record key."""
    u = rec.AtUri.parse(uri) if isinstance(uri, str) else None
    if u is None:
        raise RecordValidationError(f"{where}: expected an at:// URI, got {type(uri).__name__}")
    if u.collection != nsid or not u.rkey:
        raise RecordValidationError(f"{where}: {uri!r:.200} is not an at://<did>/{nsid}/<rkey> URI")
    if u.did is None and where != "path":
        raise RecordValidationError(f"{where}: {uri!r:.200} must name its repository by DID, not by handle")
    return u


# ---------------------------------------------------------------------------------------------
# storage unions: build, describe, reach
# ---------------------------------------------------------------------------------------------


def describe_storage(storage: dict[str, Any]) -> str:
    """One line for a parsed storage union (``records.parse_storage``): kind, shard count, reach."""
    shards = storage.get("shards") or []
    n = len(shards)
    missing = sum(1 for s in shards if not s.get("checksum"))
    tail = f", {missing} without checksum" if missing else ""
    kind = storage.get("kind")
    if kind == "blobs":
        return f"{n} PDS blob(s){tail}"
    if kind == "s3":
        where = f" at {storage['endpoint']}" if storage.get("endpoint") else ""
        here = (
            " (only on this machine)"
            if storage.get("endpoint") and only_on_this_machine(storage["endpoint"])
            else ""
        )
        return f"{n} object(s) in S3 bucket {storage.get('bucket')!r}{where}{here}{tail}"
    urls = [s.get("url", "") for s in shards]
    if urls and all(only_on_this_machine(u) for u in urls):
        return f"{n} local file path(s) (only on this machine){tail}"
    return f"{n} URL(s){tail}"


def storage_only_here(storage: dict[str, Any]) -> bool:
    """True when a parsed storage union can be read on this machine only (file paths, loopback)."""
    if storage.get("kind") == "blobs":
        return False
    if storage.get("kind") == "s3":
        return bool(storage.get("endpoint")) and only_on_this_machine(storage["endpoint"])
    return any(only_on_this_machine(s.get("url", "")) for s in storage.get("shards") or [])


def _storage_for(
    urls: list[str], checksums: list[str], store: DataStore | None
) -> tuple[dict[str, Any], list[str]]:
    """The entry's storage union for shard URLs, plus warnings."""
    warnings: list[str] = []
    if urls and all(u.startswith("s3://") for u in urls):
        bucket = urls[0][5:].split("/", 1)[0]
        if any(u[5:].split("/", 1)[0] != bucket for u in urls):
            raise RecordValidationError("storage: all S3 shards of one dataset must be in one bucket")
        endpoint = getattr(store, "endpoint_url", None) if store is not None and store.owns(urls[0]) else None
        region = getattr(store, "region", None) if store is not None and store.owns(urls[0]) else None
        if endpoint and ("127.0.0.1" in endpoint or "localhost" in endpoint):
            warnings.append(f"the S3 endpoint {endpoint} is on this machine: nobody else can reach the data")
        shards = [{"key": u[5:].split("/", 1)[1], "sha256": c} for u, c in zip(urls, checksums)]
        return rec.storage_s3(bucket, shards, region=region, endpoint=endpoint), warnings
    shards = []
    local = 0
    for u, c in zip(urls, checksums):
        if is_local(u):
            local += 1
            u = Path(local_path(u)).resolve().as_uri()
        shards.append({"url": u, "sha256": c})
    if local:
        warnings.append(
            f"{local} shard URL(s) are local file paths that nobody else can reach: copy the data to a "
            "public store (copy_to=S3DataStore(...)) or upload it as PDS blobs (copy_to='blobs')"
        )
    return rec.storage_http(shards), warnings


# ---------------------------------------------------------------------------------------------
# records as published
# ---------------------------------------------------------------------------------------------


@dataclass
class PublishedEntry:
    """A dataset record as it is published now (read back with ``getRecord``)."""

    uri: str
    cid: str
    value: dict[str, Any]
    local_entry: str | None = None

    @cached_property
    def parsed(self) -> dict[str, Any]:
        return rec.entry_from_record(self.value)

    @property
    def storage(self) -> dict[str, Any]:
        return self.parsed["storage"]

    @property
    def storage_kind(self) -> str:
        return self.storage["kind"]

    @property
    def checksums(self) -> list[str]:
        return [(s.get("checksum") or {}).get("digest", "") for s in self.storage["shards"]]

    @property
    def urls(self) -> list[str]:
        """The shard URLs the record points to (none for blobs: they live in the repository)."""
        return [s["url"] for s in self.storage["shards"] if "url" in s]

    def describe(self) -> str:
        return f"{self.uri} ({describe_storage(self.storage)})"


@dataclass
class VerificationReport:
    """The checks :func:`verify_published` ran: each ``(name, ok, detail)``."""

    uri: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    load_line: str = ""

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [name for name, ok, _ in self.checks if not ok]

    @property
    def only_here(self) -> bool:
        """Every check passed but "loadable by others": published, but only this machine can load it."""
        return self.failed == ["loadable by others"]

    @property
    def verdict(self) -> str:
        """``verified``, ``verified, only loadable on this machine``, or ``verification failed``."""
        if self.ok:
            return "verified"
        return "verified, only loadable on this machine" if self.only_here else "verification failed"

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))

    def __str__(self) -> str:
        lines = [f"Verification of {self.uri}: {'OK' if self.ok else 'FAILED'}"]
        lines += [f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}" for name, ok, detail in self.checks]
        if self.load_line:
            lines.append(f"  load it with: {self.load_line}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return promotion_views.verify_html(self)


# ---------------------------------------------------------------------------------------------
# this index's publications
# ---------------------------------------------------------------------------------------------


def _latest_publication(index: Any, did: str, name: str) -> dict[str, Any] | None:
    """What this index last published as ``name`` to ``did``'s repository (its ``published:`` state)."""
    best = None
    for v in index.provider.list_state("published:").values():
        if (
            v.get("did") == did
            and v.get("name") == name
            and (best is None or v.get("at", 0) > best.get("at", 0))
        ):
            best = v
    return best


def _read_published(atm: Any, latest: dict[str, Any] | None, warnings: list[str]) -> PublishedEntry | None:
    """The record behind ``latest`` as it is on the PDS now (one ``getRecord``), or None."""
    if latest is None:
        return None
    try:
        got = _get(atm, latest["entry_uri"])
    except RecordNotFoundError:
        warnings.append(
            f"the dataset published earlier at {latest['entry_uri']} is no longer in the repository; "
            "this promotion publishes it anew"
        )
        return None
    return PublishedEntry(got["uri"], got["cid"], got["value"], local_entry=latest.get("entry"))


def publication_of(index: Any, entry_name: str, did: str, name: str | None = None) -> dict[str, Any] | None:
    """This index's record of the latest publication of ``entry_name`` by ``did`` (under ``name``,
    if given): ``entry_uri``, ``label_uri``, ``name``, ``did``, ``data_urls``, ``at``. No request."""
    best = None
    for v in index.provider.list_state(_state_key("published", entry_name, did) + ":").values():
        if (name is None or v.get("name") == name) and (best is None or v.get("at", 0) > best.get("at", 0)):
            best = v
    return best


def read_published(index: Any, entry_name: str, name: str | None = None) -> PublishedEntry | None:
    """What the attached account has published as ``name`` (default: the entry's name), read with
    one ``getRecord`` (None when nothing is, or the record is gone). Writes nothing."""
    atm = _atmosphere(index)
    entry = index.get_entry_by_name(entry_name)
    return _read_published(atm, _latest_publication(index, atm.did, name or entry.name), [])


def entry_publication(index: Any, entry: Any) -> Publication:
    """Whether ``entry`` is published by the index's attached account (may be none), as the widgets
    show it: :meth:`Index.published_uri` says whether that account published it (each account's
    promotions are recorded apart), else ``entry.published_uri`` names whoever did last. No request."""
    atmosphere = getattr(index, "atmosphere", None)
    account = (getattr(atmosphere, "did", None) or "") if atmosphere is not None else ""
    mine = index.published_uri(entry, did=account) if account and hasattr(index, "published_uri") else None
    return publication_state(getattr(entry, "published_uri", None), account, mine)


# ---------------------------------------------------------------------------------------------
# reading anyone's records
# ---------------------------------------------------------------------------------------------


def resolve_entry_uri(atm: Any, path: str) -> str:
    """``at://...`` stays; ``@handle/name[@version]`` is resolved through the handle's label records.

    Every part is checked before any request (handle or DID, name, version; the entry URI the label
    names must be ``at://<did>/science.alt.dataset.entry/<rkey>``).
    """
    if not isinstance(path, str):
        raise InvalidArgumentError(f"expected 'at://...' or '@handle/name', not {type(path).__name__}")
    if path.startswith("at://"):
        _record_uri(path, rec.ENTRY_NSID, "path")
        return path
    body = path[1:] if path.startswith("@") else ""
    handle, sep, rest = body.partition("/")
    name, _, version = rest.partition("@")
    if (
        not sep
        or not name
        or any(ord(c) < 0x20 for c in name + version)
        or len(name.encode()) > 200
        or len(version) > 64
    ):
        raise InvalidArgumentError(f"{path!r:.200} is not '@handle/name' or '@handle/name@version'")
    atm._check_repo(handle, "handle")
    did = handle if handle.startswith("did:") else atm.resolve_handle(handle)
    best = None
    for r in atm.list_all_records(rec.LABEL_NSID, repo=did):
        v = r.get("value")
        if not isinstance(v, dict) or v.get("name") != name or (version and v.get("version") != version):
            continue
        if not isinstance(v.get("datasetUri"), str):
            continue
        if best is None or str(v.get("createdAt", "")) > str(best["value"].get("createdAt", "")):
            best = r
    if best is None:
        raise RecordNotFoundError(
            f"no dataset named {name!r}{' version ' + version if version else ''} published by {handle}"
        )
    uri = best["value"]["datasetUri"]
    _record_uri(uri, rec.ENTRY_NSID, f"label {best.get('uri')} datasetUri")
    return uri


def read_schema_record(index: Any, uri: str) -> dict[str, Any]:
    """A published schema record exactly as the PDS holds it (one ``getRecord``, never cached),
    read with the index's atmosphere, else an anonymous client on ``ATDATA_PDS_URL``.

    Raises:
        RecordValidationError: ``uri`` is not ``at://<did>/science.alt.dataset.schema/<rkey>``
            (checked before any request), or the PDS returned something that is not a record.
    """
    _record_uri(uri, rec.SCHEMA_NSID, "schemaRef")
    return dict(_get(_reader(index), uri)["value"])


def fetch_schema(index: Any, uri: str) -> Schema:
    """The Schema of a published schema record (cached in the index when one is given).

    Raises:
        RecordValidationError: ``uri`` is not ``at://<did>/science.alt.dataset.schema/<rkey>``,
            or the record is malformed (checked before it is used).
        SchemaError: a field name would shadow a Python or library attribute.
    """
    _record_uri(uri, rec.SCHEMA_NSID, "schemaRef")
    key = _state_key("remote-schema", uri)
    if index is not None:
        cached = index.provider.get_state(key)
        if cached is not None:
            return Schema.from_record(cached)
    local = rec.local_schema_from_record(read_schema_record(index, uri))
    schema = Schema.from_record(local)
    if index is not None:
        try:
            index.provider.set_state(key, local)
        except (AtdataLabError, OSError):
            pass  # only a cache: a full disk or a read-only index must not stop the read
    return schema


def _own_dids(index: Any, atm: Any) -> set[str]:
    """The accounts counted as "you" by the trust policy: the index's atmosphere, the reading client,
    and every account logged in in this process."""
    from ..atmosphere.client import logged_in_dids  # lazily: the client loads on first use

    out = logged_in_dids()
    for a in (getattr(index, "atmosphere", None), atm):
        did = getattr(a, "did", None)
        if isinstance(did, str):
            out.add(did)
    return out


_SPLIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _split_of(metadata: Any) -> str:
    split = (metadata or {}).get("split", "train") if isinstance(metadata, dict) else "train"
    if split is None:
        return "train"
    if not isinstance(split, str) or not _SPLIT.fullmatch(split):
        raise RecordValidationError(
            f"entry.metadata.split: {split!r:.80} is not a split name like 'train' "
            "(letters, digits, '_', '.', '-', at most 64)"
        )
    return split


@dataclass
class _ShardPlan:
    """Where each shard of a published entry is read from, decided (and checked) before any data request."""

    kind: str
    urls: list[str]  # http/s3 URLs, or blob CIDs (canonical text)
    checksums: dict[str, str]  # url or CID -> sha256 hex, for the shards that have one
    sizes: dict[str, int]  # blob CID -> declared size
    options: dict[str, Any]


def _plan_shards(
    storage: dict[str, Any], *, uri: str, own: bool, policy: Any, index: Any = None, resolve: bool = True
) -> _ShardPlan:
    """Check every location an entry's storage names against the trust policy and parse every
    blob CID and checksum (pure: no request is sent, except DNS lookups when ``resolve``)."""
    kind = storage.get("kind")
    shards = storage.get("shards") or []
    checksums: dict[str, str] = {}
    sizes: dict[str, int] = {}
    urls: list[str] = []
    options: dict[str, Any] = {}
    for i, s in enumerate(shards):
        if kind == "blobs":
            loc = str(parse_blob_cid(s.get("cid"), f"entry.storage.blobs[{i}] (in {uri})"))
            if isinstance(s.get("size"), int) and not isinstance(s.get("size"), bool) and s["size"] >= 0:
                sizes[loc] = s["size"]
        else:
            loc = check_remote_url(s.get("url"), trusted=policy, record_uri=uri, own=own, resolve=resolve)
        c = s.get("checksum")
        if isinstance(c, dict) and c.get("algorithm") == "sha256":
            if not isinstance(c.get("digest"), str) or not re.fullmatch(r"[0-9a-f]{64}", c["digest"]):
                raise RecordValidationError(
                    f"entry.storage shard {i} of {uri}: checksum.digest is not a sha256 "
                    "hex digest (64 lowercase hex characters)"
                )
            checksums[loc] = c["digest"]
        urls.append(loc)
    if kind == "s3":
        options = _s3_options(storage, index=index, policy=policy, own=own, record_uri=uri, resolve=resolve)
    if not own and not policy.trust_all and kind != "blobs":
        options[TRUST_OPTION] = policy  # every connection for these shards checks its addresses again
    return _ShardPlan(str(kind), urls, checksums, sizes, options)


# ---------------------------------------------------------------------------------------------
# published manifests
# ---------------------------------------------------------------------------------------------

_log = logger("promotion.published")


class _BlobReader:
    """Reads blobs of one repository into the verified blob cache, through our transport. It is
    pickled with its dataset (DataLoader workers): the client is made again from its PDS URL."""

    def __init__(self, atm: Any, did: str, trust: Any) -> None:
        self.atm, self.did, self.trust = atm, did, trust
        self.pds_url = atm.pds_url

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "atm": None}

    def fetch(self, cid: BlobCID, max_bytes: int) -> Path:
        if self.atm is None:
            from ..atmosphere import Atmosphere  # lazily: the client loads on first use

            self.atm = Atmosphere(self.pds_url)
        return fetch_blob(self.atm, self.did, cid, trust=self.trust, max_bytes=max_bytes)


class PublishedManifest:
    """One shard's manifest as its dataset's entry record lists it (atdata's ``shardManifestRef``:
    a header blob and a Parquet blob), read on first use: both blobs are downloaded into the
    verified blob cache (bounded by the sizes the record declares, checked against their CIDs), and
    parsed by the manifest readers (header validated, rows checked against it). Such a manifest is
    content-addressed by the record, so its per-sample hashes check query hits on their own.

    ``problem``: what is wrong with this item of the record (a bad CID, a size over the limit);
    loading it raises :class:`~atdata_lab.errors.ManifestError` saying so, before any request.
    """

    def __init__(
        self,
        reader: _BlobReader | None,
        shard_url: str,
        where: str,
        header: tuple[BlobCID, int] | None = None,
        samples: tuple[BlobCID, int] | None = None,
        problem: str | None = None,
    ) -> None:
        self.reader, self.shard_url, self.where = reader, shard_url, where
        self.header, self.samples, self.problem = header, samples, problem

    def _fetch(self, blob: tuple[BlobCID, int], what: str) -> bytes:
        cid, limit = blob
        assert self.reader is not None
        try:
            return self.reader.fetch(cid, limit).read_bytes()
        except (RecordTooLargeError, BlobMismatchError, RecordNotFoundError) as e:
            raise ManifestError(f"{self.where}: its {what} (blob {cid}) cannot be used: {e}") from None

    def load(self) -> ShardManifest:
        """The manifest (header now, rows on first use).

        Raises:
            ManifestError: The record's item is malformed, a blob is missing, larger than declared,
                does not match its CID, or is not a valid manifest file.
        """
        if self.problem is not None or self.header is None:
            raise ManifestError(self.problem or f"{self.where}: no header blob")
        where = f"{self.where}, header blob {self.header[0]}"
        m: ShardManifest = ShardManifest.from_header(
            parse_header(self._fetch(self.header, "header"), where),
            where=where,
            shard_url=self.shard_url,
            load_samples=lambda: self._rows(m.num_samples),
        )
        m.shard_id = shard_id_for(self.shard_url)
        m.content_addressed = True
        return m

    def _rows(self, num_samples: int) -> Any:
        if self.samples is None:
            if num_samples:
                raise ManifestError(
                    f"{self.where}: the record lists no rows (samples) blob for this shard's {num_samples} "
                    "samples, so they cannot be queried; ask the publisher to publish the manifests again"
                )
            return _deps.pandas().DataFrame()
        cid = self.samples[0]
        return rows_from_parquet(
            self._fetch(self.samples, "rows"), f"{self.where}, rows blob {cid}", num_samples
        )


def _manifest_blob(item: dict[str, Any] | None, limit: int, where: str) -> tuple[BlobCID, int]:
    """A manifest blob of a record, checked before any request: a verifiable CID, a size within
    ``limit`` (the bound its download gets: the declared size, else ``limit``)."""
    if item is None:
        raise RecordValidationError(f"{where}: missing")
    cid = parse_blob_cid(item.get("cid"), where)
    size = item.get("size")
    if size is not None and (size < 0 or size > limit):
        raise RecordValidationError(
            f"{where}: declares {size:,} bytes, more than the {limit:,} a manifest file may have"
        )
    return cid, limit if size is None else size


def published_manifests(
    raw: Any, urls: list[str], *, uri: str, reader: _BlobReader | None
) -> dict[str, PublishedManifest]:
    """``{shard url: PublishedManifest}`` for an entry record's ``manifests`` (empty when it has
    none). Pure: no request. A list that is not one manifest per shard is ignored, with a warning
    (the shards are still read); an item that is malformed makes queries raise, naming it."""
    if raw is None:
        return {}
    problem: str | None
    try:
        items = rec.parse_manifests(raw)
    except RecordValidationError as e:
        items, problem = None, str(e)
    else:
        assert items is not None
        problem = (
            None if len(items) == len(urls) else f"it lists {len(items)} manifest(s) for {len(urls)} shard(s)"
        )
    if items is None or problem is not None:
        msg = (
            f"the manifests of {uri} are ignored: {problem}; queries use manifests beside the shards, "
            "if any (ask the publisher to publish the dataset again)"
        )
        _log.warning(msg)
        warnings.warn(msg, AtdataLabWarning, stacklevel=3)
        return {}
    out = {}
    for i, (url, item) in enumerate(zip(urls, items)):
        where = f"the manifest of shard {i} of {uri}"
        try:
            header = _manifest_blob(item["header"], HEADER_MAX, f"{where}: header")
            samples = (
                None
                if item["samples"] is None
                else _manifest_blob(item["samples"], PARQUET_MAX, f"{where}: samples")
            )
            out[url] = PublishedManifest(reader, url, where, header, samples)
        except RecordValidationError as e:
            out[url] = PublishedManifest(
                None, url, where, problem=f"{e}; ask the publisher to publish it again"
            )
    return out


def get_published_entry(index: Any, uri: str) -> IndexEntry:
    """A published dataset record as an :class:`IndexEntry` (data URLs resolved; no data is read).

    Blob shards appear as the PDS's ``getBlob`` URLs, with the CID parsed (never the record's text).
    """
    atm = _reader(index)
    uri = resolve_entry_uri(atm, uri)
    got = _get(atm, uri)
    parsed = rec.entry_from_record(got["value"])
    storage = parsed["storage"]
    did = rec.AtUri.parse(uri).authority
    did = did if did.startswith("did:") else atm.resolve_handle(did)
    if storage["kind"] == "blobs":
        cids = [
            str(parse_blob_cid(s.get("cid"), f"entry.storage.blobs[{i}] (in {uri})"))
            for i, s in enumerate(storage["shards"])
        ]
        pds = atm.get_repo_pds(did) if did != atm.did else atm.pds_url
        urls = [f"{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={c}" for c in cids]
    else:
        urls = [s["url"] for s in storage["shards"]]
    size = parsed.get("size") or {}
    meta = parsed.get("metadata")
    tags = parsed.get("tags") or []
    return IndexEntry(
        name=parsed["name"],
        cid=parsed.get("contentCid") or got["cid"],
        schema_ref=parsed["schemaRef"],
        data_urls=urls,
        num_samples=_count(size.get("samples")),
        size_bytes=_count(size.get("bytes")),
        shard_checksums=[str((s.get("checksum") or {}).get("digest", "")) for s in storage["shards"]],
        metadata=meta if isinstance(meta, dict) else {},
        created_at=_text(parsed.get("createdAt")),
        description=_text(parsed.get("description")),
        tags=[t for t in tags if isinstance(t, str)],
        license=_text(parsed.get("license")),
        published_uri=uri,
    )


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def load_published(
    path: str,
    *,
    sample_type: type | None = None,
    index: Any = None,
    verify: bool = True,
    trust: Any = None,
    atmosphere: Any = None,
):
    """A Dataset for ``at://...`` or ``@handle/name[@version]``, read safely from anyone's records.

    What is checked, and when:

    1. Before any request: the URI, handle, name and version syntax.
    2. The label, entry and schema records are read (responses capped at 32 MiB and 128 levels of
       JSON nesting), parsed and type-checked; the schema's field names may not shadow attributes
       (:class:`~atdata_lab.errors.SchemaError`); ``metadata.split`` must be a split name.
    3. Before any data request, every shard location is checked against the trust policy
       (``trust=``, see :class:`~atdata_lab.urls.TrustPolicy`): for a record you did not publish,
       only ``https``/``http`` on public addresses (every address the host resolves to), ``s3`` and
       PDS blobs; local files, chained fsspec URLs and internal addresses raise
       :class:`~atdata_lab.errors.UntrustedSourceError` naming the record, the URL and the setting
       that allows it. Your S3 credentials go only to endpoints you configured; any other endpoint
       is read anonymously. Blob CIDs must parse as CIDv1 raw sha2-256.
    4. Blob shards are downloaded into ``$ATDATA_HOME/cache/blobs/<cid>.tar`` (named by the
       parsed CID) the first time any of their samples is needed (a query reads the published
       manifests only), each checked against its CID while it downloads (and bounded by the size
       the record declares) and renamed into place only if it matches; with ``verify`` the
       record's sha256 must be the one the CID names (checked before any request).
    5. ``http(s)``/``s3`` shards with a sha256 checksum are downloaded into
       ``$ATDATA_HOME/cache/shards/`` and checked the first time any of their samples is needed
       (iteration, ``ds[k]``, ``len(ds)``; ordered reads fetch the next shard meanwhile): no sample
       of a shard is returned before its digest matched, and a mismatch raises
       :class:`~atdata_lab.errors.ShardError`. ``verify=False`` skips this sha256 check (the
       blobs' CID check stays). Shards published without a checksum (atdata's ``"none"``) are
       read as they are, streamed with bounded memory.

    Records are read with ``atmosphere`` (a client), else the index's, else an anonymous client on
    ``$ATDATA_PDS_URL``.
    """
    policy = resolve_trust(trust)
    atm = atmosphere if atmosphere is not None else _reader(index)
    uri = resolve_entry_uri(atm, path)
    got = _get(atm, uri)
    parsed = rec.entry_from_record(got["value"])
    split = _split_of(parsed.get("metadata"))
    did = rec.AtUri.parse(uri).authority
    did = did if did.startswith("did:") else atm.resolve_handle(did)
    own = did in _own_dids(index, atm) or policy.trusts_publisher(did)
    st = sample_type or fetch_schema(index, parsed["schemaRef"]).to_type()
    plan = _plan_shards(parsed["storage"], uri=uri, own=own, policy=policy, index=index)
    if not plan.urls:
        raise RecordValidationError(f"{uri}: the entry names no shards")
    ds: Any
    if plan.kind == "blobs":
        for cid in plan.urls:
            want = plan.checksums.get(cid)
            if verify and want and want != parse_blob_cid(cid).digest.hex():
                raise ShardError(
                    f"blob {cid} of {uri} does not match its sha256 checksum (the CID names other bytes)"
                )
        source = BlobSource(
            [{"did": did, "cid": c} for c in plan.urls], pds_endpoint=atm.pds_url, trust=policy
        )
        source._clients[atm.pds_url] = atm  # the reading client (it finds the repository's PDS)
        source._max_bytes.update(plan.sizes)
        ds = Dataset(source, sample_type=st)
        urls = ds.urls
    else:
        urls = plan.urls
        checks = {u: plan.checksums[u] for u in urls if u in plan.checksums}
        ds = Dataset(urls, sample_type=st, storage_options=plan.options, checksums=checks if verify else None)
    ds._manifest_refs = published_manifests(
        got["value"].get("manifests"), urls, uri=uri, reader=_BlobReader(atm, did, policy)
    )
    ds._split = split
    ds.published_uri = uri
    return ds


def _s3_options(
    storage: dict[str, Any],
    *,
    index: Any = None,
    policy: Any = None,
    own: bool = False,
    record_uri: str | None = None,
    resolve: bool = True,
) -> dict[str, Any]:
    """fsspec options for a ``storageS3`` record: its endpoint (checked against the trust policy),
    and credentials only when the endpoint is one you configured (a store, ``AWS_ENDPOINT_URL``,
    ``TrustPolicy.credential_endpoints``) or the record is yours; otherwise anonymous access."""
    policy = resolve_trust(policy)
    endpoint = storage.get("endpoint")
    if endpoint is not None:
        endpoint = check_remote_url(
            endpoint, trusted=policy, record_uri=record_uri, own=own, what="S3 endpoint", resolve=resolve
        )
        if not endpoint.lower().startswith(("http://", "https://")):
            raise RecordValidationError(
                f"entry.storage.endpoint of {record_uri}: {endpoint!r:.200} is not an http(s) URL"
            )
    opts: dict[str, Any] = {}
    if endpoint:
        opts["client_kwargs"] = {"endpoint_url": endpoint}
    stores = [
        s for s in (getattr(index, "data_store", None), *getattr(index, "_stores", ())) if s is not None
    ]
    mine = [getattr(s, "endpoint_url", None) for s in stores if hasattr(s, "bucket")]
    if not (own or credentials_allowed(endpoint, policy, also=tuple(e for e in mine if e))):
        opts["anon"] = True  # never sign a request to an endpoint the record chose
        return opts
    for s in stores:  # a store of the index on this endpoint: its own credentials
        same = (getattr(s, "endpoint_url", None) or None) == (endpoint or None) or (
            endpoint
            and getattr(s, "endpoint_url", None)
            and _endpoint_key(s.endpoint_url) == _endpoint_key(endpoint)
        )
        if hasattr(s, "bucket") and same:
            return {**s.storage_options, **opts}
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        opts["key"], opts["secret"] = key, secret
    return opts


def list_published(index: Any) -> dict[str, list[dict[str, Any]]]:
    """The dataset, schema and label records in the attached account's repository."""
    atm = _atmosphere(index)
    return {
        kind: list(atm.list_all_records(nsid, repo=atm.did))
        for kind, nsid in (
            ("entries", rec.ENTRY_NSID),
            ("schemas", rec.SCHEMA_NSID),
            ("labels", rec.LABEL_NSID),
        )
    }


def list_published_entries(index: Any, repo: str | None = None) -> list[IndexEntry]:
    """The dataset records of ``repo`` (a DID or handle; ``None``: the attached account) as entries."""
    atm = _atmosphere(index) if repo is None else _reader(index)
    records = atm.list_all_records(rec.ENTRY_NSID, repo=repo if repo is not None else atm.did)
    return [get_published_entry(index, r["uri"]) for r in records]


# ---------------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------------


def verify_published(index: Any, at_uri: str, *, batch_size: int = 8) -> VerificationReport:
    """Check a published dataset: records present, CIDs as written, shard checksums, first batch loads."""
    atm = _reader(index)
    report = VerificationReport(at_uri)
    try:
        uri = resolve_entry_uri(atm, at_uri)
        got = _get(atm, uri)
        report.add("entry record present", True, uri)
    except AtdataLabError as e:
        report.add("entry record present", False, str(e))
        return report
    parsed = rec.entry_from_record(got["value"])
    try:
        sch = _get(atm, parsed["schemaRef"])
        report.add("schema record present", True, sch["uri"])
    except AtdataLabError as e:
        report.add("schema record present", False, str(e))
        return report
    known = None
    if index is not None:
        for v in index.provider.list_state("published:").values():
            if v.get("entry_uri") == uri:
                known = v
    if known is not None:
        try:
            lab = _get(atm, known["label_uri"])
            report.add("label record present", True, lab["uri"])
        except AtdataLabError as e:
            report.add("label record present", False, str(e))
        want = known.get("record_cids", {})
        ok = want.get("entry") in (None, got["cid"])
        report.add(
            "CIDs match what was written",
            ok,
            f"entry {got['cid']}" + ("" if ok else f" != {want.get('entry')}"),
        )
    else:
        report.add(
            "CIDs match what was written", True, "no local record of the write (published elsewhere); skipped"
        )
    entry = get_published_entry(index, uri)
    try:
        ds = load_published(uri, index=index, verify=False)
    except AtdataLabError as e:
        report.add("data reachable", False, str(e))
        return report
    storage = parsed["storage"]
    missing = sum(1 for s in storage["shards"] if not s.get("checksum"))
    report.add(
        "shard checksums recorded",
        not missing and bool(storage["shards"]),
        f"{len(storage['shards'])} shards"
        if not missing
        else f"{missing} of {len(storage['shards'])} shards have no checksum: nobody can check their bytes",
    )
    here = storage_only_here(storage)
    report.add(
        "loadable by others",
        not here,
        describe_storage(storage)
        if not here
        else f"only loadable on this machine: {describe_storage(storage)}; publish the data to a public store "
        "(copy_to=S3DataStore(...)) or as PDS blobs (copy_to='blobs')",
    )
    bad = []
    checked = 0
    for url, want_sum in zip(ds.urls, entry.shard_checksums):
        if not want_sum:
            continue
        checked += 1
        try:
            if sha256_of(url, ds.storage_options) != want_sum:
                bad.append(url)
        except OSError as e:
            bad.append(f"{url} ({e})")
    report.add(
        "shard checksums match",
        not bad and checked > 0,
        f"mismatch: {bad[0]}" if bad else f"{checked} of {len(ds.urls)} shards checked",
    )
    if got["value"].get("manifests") is not None:
        report.add("manifests match the shards", *_check_manifests(ds))
    try:
        batch = next(ds.ordered(batch_size=batch_size))
        shapes = {
            k: (list(v.shape) if hasattr(v, "shape") else f"list[{len(v)}]")
            for k, v in batch.as_dict().items()
        }
        schema = fetch_schema(index, parsed["schemaRef"])
        mism = []
        for f in schema.fields:
            col = batch.as_dict().get(f.name)
            if f.type.kind == "ndarray" and f.type.shape and hasattr(col, "shape"):
                want_shape = [batch_size if len(batch) == batch_size else len(batch), *f.type.shape]
                if any(w is not None and w != g for w, g in zip(want_shape, col.shape)):
                    mism.append(f"{f.name}: {list(col.shape)} vs schema {list(f.type.shape)}")
        report.add(
            "first batch loads with the right shapes",
            not mism,
            json.dumps(shapes) if not mism else "; ".join(mism),
        )
    except (AtdataLabError, OSError, StopIteration) as e:
        report.add("first batch loads with the right shapes", False, str(e) or "no samples")
    handle = _publisher_handle(atm, at_uri, uri)
    report.load_line = (
        f'atdata.load_dataset("@{handle}/{entry.name}", split="train")'
        if handle
        else f'atdata.load_dataset("{uri}", split="train")'
    )
    return report


def _check_manifests(ds: Any) -> tuple[bool, str]:
    """Whether the manifests a record lists describe its shards: the same samples (count, keys,
    where their bytes are and, when the manifests hold them, each sample's sha256)."""
    if not ds._manifest_refs:
        return False, (
            "the record's manifests are not one per shard: readers ignore them; publish the dataset again"
        )
    bad = []
    try:
        manifests = ds._load_manifests()
        for url, m in zip(ds.urls, manifests):
            problem = _manifest_mismatch(url, m, ds.storage_options)
            if problem is not None:
                bad.append(problem)
    except (AtdataLabError, OSError) as e:
        return False, str(e)
    if bad:
        return False, bad[0] + (f" (and {len(bad) - 1} more shard(s))" if len(bad) > 1 else "")
    hashed = all(m.has_digests for m in manifests)
    return True, (
        f"{len(manifests)} shard(s): sample counts and keys match"
        + (", and every sample's sha256" if hashed else "")
    )


def _manifest_mismatch(url: str, m: ShardManifest, options: dict[str, Any]) -> str | None:
    """What differs between shard ``url`` and its manifest ``m`` (one pass over the shard), or None."""
    digests = m.has_digests
    found = []
    with open_url(url, options) as f:
        tar, gz = open_maybe_gzip(f, url)  # a gzip shard's manifest places samples in its tar stream
        for name, data_off, size, data in iter_members(tar, url, max_member=BLOCK_MAX if gz else None):
            key, ext = split_key(name)
            if ext == "msgpack":
                digest = hashlib.sha256(data).digest() if digests and data is not None else None
                found.append((key, data_off, size, digest))
    if len(found) != m.num_samples:
        return f"shard {url} has {len(found)} samples, its manifest says {m.num_samples}"
    df = m.samples
    keys = [str(k) for k in df["__key__"].tolist()] if not df.empty else []
    for i, (key, _, _, _) in enumerate(found):
        if i >= len(keys) or keys[i] != key:
            return f"shard {url}: sample {i} has key {key!r}, its manifest says {keys[i] if i < len(keys) else None!r}"
    if digests:
        for key, data_off, size, digest in found:
            row = m.row_of(key)
            if row is None or row[1:] != (data_off, size, digest):
                return f"shard {url}: sample {key!r} is not the one its manifest describes (offset, size or sha256)"
    return None


def _publisher_handle(atm: Any, asked: str, uri: str) -> str | None:
    """The handle of the repository that published ``uri`` (not the reader's), if it is known."""
    if asked.startswith("@") and not asked[1:].startswith("did:"):
        return asked[1:].partition("/")[0]
    did = rec.AtUri.parse(uri).authority
    if did == getattr(atm, "did", None):
        return atm.handle
    try:
        return atm.handle_of(did)
    except AtdataLabError:
        return None
