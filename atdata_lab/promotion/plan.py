"""Planning a promotion: every decision made before any write, as a :class:`PromotionPlan` —
whether the schema is reused, published or in conflict; the exact records; the data action; what
changes in what is published; the cost. :meth:`PromotionPlan.execute` carries it out.

Also the checks of what a user typed (:func:`validate_promotion_inputs`, :func:`check_describe`)
and the ``copy_to=`` of each data choice (:func:`copy_target`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..atmosphere import records as rec
from ..atmosphere._store import PDSBlobStore  # the copy target "upload as blobs" (one class)
from ..cid import BlobCID
from ..entry import IndexEntry, human_bytes
from ..errors import (
    AtdataLabError,
    InvalidArgumentError,
    ManifestError,
    PromotionDowngradeError,
    RecordNotFoundError,
    RecordTooLargeError,
    RecordValidationError,
)
from ..licenses import check_license
from ..manifest.shard_manifest import read_manifest_bytes
from ..progress import ProgressLike, resolve_progress
from ..schema import Schema
from ..schema_diff import SchemaDiff, schema_diff
from ..seekable_gzip import is_gzip_name
from ..stores.base import DataStore
from ..stores.local import LocalDiskStore, is_safe_dataset_name
from ..transfer import destinations
from ..urls import url_size
from ..views import promotion as promotion_views
from ..views.promotion import DATA_MODES
from .execute import PromotionResult, _crash_point, _execute
from .network import AppViewCheck, appview_knows
from .published import (
    PublishedEntry,
    _atmosphere,
    _latest_publication,
    _read_published,
    _state_key,
    _storage_for,
    describe_storage,
    storage_only_here,
)

__all__ = [
    "PROMOTED_FIELDS",
    "DataAction",
    "Downgrade",
    "FieldChange",
    "ManifestBlob",
    "ManifestPlan",
    "PDSBlobStore",
    "PlannedWrite",
    "PromotionPlan",
    "RecordChange",
    "SchemaDecision",
    "check_describe",
    "copy_target",
    "derived_tid",
    "plan_promotion",
    "find_published_schema",
    "validate_promotion_inputs",
]


RATE_POINTS = {"create": 3, "update": 2, "delete": 1}


SCAN_CACHE_SECONDS = 600


PUBLICATION_TIME_TTL = 3600


# ---------------------------------------------------------------------------------------------
# plan objects
# ---------------------------------------------------------------------------------------------


@dataclass
class PlannedWrite:
    """One record write: ``action`` create/update, ``collection``, ``rkey``, ``uri``, exact ``value``."""

    action: str
    collection: str
    rkey: str
    uri: str
    value: dict[str, Any]

    def as_write(self) -> dict[str, Any]:
        return {"action": self.action, "collection": self.collection, "rkey": self.rkey, "value": self.value}


@dataclass
class SchemaDecision:
    """What happens to the schema: ``reuse`` an existing record, ``publish`` a new one, or ``conflict``.

    Attributes:
        action: ``reuse``, ``publish`` or ``conflict``.
        uri: The schema record's at:// URI (existing for reuse/conflict, new for publish).
        found_by: ``local index``, ``record key`` or ``repository scan`` (reuse/conflict).
        diff: For a conflict, the diff between the published schema and ours.
        suggested_version: For a conflict, the version to publish ours as.
    """

    action: str
    uri: str
    schema: Schema
    found_by: str | None = None
    diff: SchemaDiff | None = None
    suggested_version: str | None = None

    def describe(self) -> str:
        if self.action == "reuse":
            return f"Reuse existing schema {self.uri}"
        if self.action == "publish":
            return f"Publish new schema {self.schema.name}@{self.schema.version}"
        return (
            f"Conflict: {self.schema.name}@{self.schema.version} is already published at {self.uri} with "
            f"different fields; publish ours as version {self.suggested_version}"
        )


@dataclass
class DataAction:
    """What happens to the data: ``keep`` the URLs, ``copy`` to a store, upload as ``blobs``, or
    ``reuse`` the storage already published for the same shards."""

    kind: str
    shards: int
    bytes: int
    target: str
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "keep":
            return f"Keep the {self.shards} shard URLs ({human_bytes(self.bytes)})"
        if self.kind == "copy":
            return f"Copy {self.shards} shards ({human_bytes(self.bytes)}) to {self.target}"
        if self.kind == "reuse":
            return f"Keep the published storage: {self.target} (nothing is copied or uploaded)"
        return f"Upload {self.shards} shards ({human_bytes(self.bytes)}) as PDS blobs"


@dataclass
class ManifestBlob:
    """One file of a shard's manifest, published as a PDS blob: ``kind`` ``header`` (the JSON) or
    ``samples`` (the Parquet rows), its ``cid``, ``bytes``, the local file (``source``) and whether
    the promotion uploads it (``upload``: False when the published record already references it)."""

    shard: str
    kind: str
    cid: str
    bytes: int
    mime_type: str
    source: str
    upload: bool = True

    def ref(self) -> dict[str, Any]:
        """Its blob reference, as the PDS gives it for these bytes."""
        return {"$type": "blob", "ref": {"$link": self.cid}, "mimeType": self.mime_type, "size": self.bytes}


@dataclass
class ManifestPlan:
    """The shards' manifests a promotion publishes with the entry (its record's ``manifests``)."""

    shards: int
    blobs: list[ManifestBlob]

    @property
    def bytes(self) -> int:
        return sum(b.bytes for b in self.blobs)

    @property
    def uploads(self) -> list[ManifestBlob]:
        """The blobs that are uploaded (the others are already published)."""
        return [b for b in self.blobs if b.upload]

    def describe(self) -> str:
        up = self.uploads
        head = (
            f"Manifests of {self.shards} shard{'s' if self.shards != 1 else ''}: {len(self.blobs)} PDS blobs"
        )
        if not up:
            return f"{head} ({human_bytes(self.bytes)}), already published (nothing is uploaded)"
        return f"{head}; upload {len(up)} ({sum(b.bytes for b in up):,} bytes)"

    def lines(self, limit: int = 20) -> list[str]:
        """One line per shard: its manifest's blobs with their bytes (``limit`` shards at most)."""
        per: dict[str, list[ManifestBlob]] = {}
        for b in self.blobs:
            per.setdefault(b.shard, []).append(b)
        out = []
        for shard, blobs in list(per.items())[:limit]:
            parts = ", ".join(
                f"{b.kind} {b.bytes:,} bytes ({b.cid}{'' if b.upload else ', published'})" for b in blobs
            )
            out.append(f"{shard.rsplit('/', 1)[-1]}: {parts}")
        if len(per) > limit:
            out.append(f"... and {len(per) - limit} more shards (plan.to_dict() lists every blob)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "bytes": self.bytes,
            "blobs": [
                {"shard": b.shard, "kind": b.kind, "cid": b.cid, "bytes": b.bytes, "upload": b.upload}
                for b in self.blobs
            ],
        }


#: The descriptive fields a promotion carries over from what is published unless told otherwise.
PROMOTED_FIELDS = ("description", "tags", "license", "metadata")


@dataclass
class FieldChange:
    """One field of a record that a promotion changes: ``old`` -> ``new`` (None: absent)."""

    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.field}: {_show(self.field, self.old)} -> {_show(self.field, self.new)}"


@dataclass
class RecordChange:
    """A published record a promotion rewrites (``update``), or a new ``version`` of a published name."""

    uri: str
    action: str
    fields: list[FieldChange]
    previous: str | None = None

    def describe(self) -> str:
        head = (
            f"New version of the dataset: {self.previous} -> {self.uri}"
            if self.action == "version"
            else f"Update {self.uri}"
        )
        return "\n".join([head] + [f"  {c.describe()}" for c in self.fields])


@dataclass
class Downgrade:
    """Something published that a promotion would remove or weaken, and how to say it on purpose."""

    field: str
    old: str
    new: str
    argument: str

    def describe(self) -> str:
        return f"{self.field}: {self.old} -> {self.new}"


def _show(field_name: str, v: Any) -> str:
    if v is None or v == [] or v == {}:
        return "(none)"
    if field_name == "storage" or not isinstance(v, (str, list, dict)):
        return str(v)  # storage: already a summary line
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


@dataclass
class PromotionPlan:
    """Everything a promotion will do, decided before any write. Render it, then :meth:`execute`."""

    index: Any = field(repr=False)
    entry: IndexEntry
    name: str
    description: str | None
    tags: list[str]
    license: str | None
    metadata: dict[str, Any]
    did: str
    handle: str | None
    schema_decision: SchemaDecision
    writes: list[PlannedWrite]
    data: DataAction
    copy_to: Any = field(repr=False, default=None)
    entry_uri: str = ""
    label_uri: str = ""
    already_published: str | None = None
    warnings: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    planning_round_trips: int = 0
    published: PublishedEntry | None = None
    changes: list[RecordChange] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    label_created_at: str | None = None
    label_version: str | None = None
    manifests: ManifestPlan | None = None
    appview: AppViewCheck | None = None

    @property
    def previous_version(self) -> str | None:
        """The at:// URI this promotion supersedes as the dataset published under ``name``."""
        return next((c.previous for c in self.changes if c.action == "version"), None)

    # -- cost
    @property
    def pds_calls(self) -> int:
        """PDS requests :meth:`execute` will send (applyWrites, blob uploads)."""
        if self.already_published or not self.writes:
            return 0
        uploads = len(self.manifests.uploads) if self.manifests is not None else 0
        return 1 + (self.data.shards if self.data.kind == "blobs" else 0) + uploads

    @property
    def rate_limit_points(self) -> int:
        """Write points the PDS rate limiter charges (create 3, update 2)."""
        return sum(RATE_POINTS[w.action] for w in self.writes) if not self.already_published else 0

    @property
    def records(self) -> list[dict[str, Any]]:
        """The exact records that will be written."""
        return [w.value for w in self.writes]

    def summary(self) -> str:
        lines = [f"Promote {self.entry.name!r} as {self.name!r} to {self.handle or self.did}"]
        if self.already_published:
            lines.append(f"Already published: {self.already_published} (nothing to write)")
        elif self.published is not None:
            lines.append(f"Published now: {self.published.describe()}")
        lines.append(f"Schema: {self.schema_decision.describe()}")
        if self.appview is not None:
            lines.append(f"AppView: {self.appview.describe()}")
        lines.append(f"Data: {self.data.describe()}")
        if self.manifests is not None:
            lines.append(self.manifests.describe())
            lines += [f"  {line}" for line in self.manifests.lines()]
        for c in self.changes:
            lines += c.describe().splitlines()
        lines += [f"On purpose: {i}" for i in self.intents]
        for w in self.writes:
            lines.append(f"Write: {w.action} {w.uri}")
        lines.append(f"Cost: {self.pds_calls} PDS calls, {self.rate_limit_points} rate-limit points")
        lines += [f"Warning: {w}" for w in self.warnings + self.data.warnings]
        lines += [f"Blocked: {b}" for b in self.blocking]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        d = self.schema_decision
        return {
            "entry": self.entry.name,
            "name": self.name,
            "did": self.did,
            "schema": {
                "action": d.action,
                "uri": d.uri,
                "name": d.schema.name,
                "version": d.schema.version,
                "found_by": d.found_by,
                "suggested_version": d.suggested_version,
                "diff": d.diff.to_dict() if d.diff else None,
            },
            "writes": [{"action": w.action, "uri": w.uri, "value": w.value} for w in self.writes],
            "data": {
                "kind": self.data.kind,
                "shards": self.data.shards,
                "bytes": self.data.bytes,
                "target": self.data.target,
                "warnings": list(self.data.warnings),
            },
            "manifests": self.manifests.to_dict() if self.manifests is not None else None,
            "pds_calls": self.pds_calls,
            "rate_limit_points": self.rate_limit_points,
            "already_published": self.already_published,
            "published": (
                {"uri": self.published.uri, "storage": describe_storage(self.published.storage)}
                if self.published is not None
                else None
            ),
            "previous_version": self.previous_version,
            "changes": [
                {
                    "uri": c.uri,
                    "action": c.action,
                    "previous": c.previous,
                    "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in c.fields],
                }
                for c in self.changes
            ],
            "intents": list(self.intents),
            "appview": (
                {
                    "state": self.appview.state,
                    "uris": list(self.appview.uris),
                    "appview": self.appview.appview,
                }
                if self.appview is not None
                else None
            ),
            "warnings": list(self.warnings),
            "blocking": list(self.blocking),
        }

    def _repr_html_(self) -> str:
        return promotion_views.plan_html(self)

    def execute(self, progress: ProgressLike = True, *, cancel: Any = None) -> PromotionResult:
        """Carry the plan out: intent, data, one atomic ``applyWrites``, local bookkeeping.

        Args:
            progress: The progress protocol.
            cancel: A ``threading.Event``; when set before the records are written, the
                promotion stops with :class:`PromotionCancelled` and nothing is published
                (copied shards stay and are reused by the next run).

        Raises:
            PromotionCancelled: ``cancel`` was set before the atomic write.
            PromotionConflictError: the schema decision is a conflict (nothing is written).
            RecordTooLargeError: a shard exceeds the PDS blob limit (nothing is written).
        """
        return _execute(self, resolve_progress(progress), cancel)


# ---------------------------------------------------------------------------------------------
# what a user typed
# ---------------------------------------------------------------------------------------------


def validate_promotion_inputs(
    name: str,
    description: str | None,
    tags: list[str] | None,
    license: str | None,
    metadata: dict[str, Any] | None,
) -> tuple[list[str], str | None]:
    """Check what a user typed against the lexicon limits, before any network call.

    Returns the cleaned ``(tags, license)``. Raises :class:`RecordValidationError` naming the
    field and the limit. The wizard validates its inputs with this same function.
    """
    if not isinstance(name, str) or not name.strip():
        raise RecordValidationError("name: a dataset name is required")
    if isinstance(tags, str):
        raise RecordValidationError("tags: a list of strings is required, not one string")
    tags = list(tags or [])
    for i, t in enumerate(tags):
        if not isinstance(t, str) or not t:
            raise RecordValidationError(f"tags[{i}]: a non-empty string is required")
    if license is not None:
        try:
            license = check_license(license)
        except ValueError as e:
            raise RecordValidationError(f"license: {e}") from None
    # every length and count limit comes from the entry lexicon itself (never repeated here)
    placeholder: dict[str, Any] = {
        "$type": rec.ENTRY_NSID,
        "name": name,
        "schemaRef": f"at://did:plc:{'a' * 24}/{rec.SCHEMA_NSID}/x",
        "storage": rec.storage_http([{"url": "https://example.org/x.tar", "sha256": "0" * 64}]),
        "createdAt": "2026-01-01T00:00:00Z",
        "tags": tags,
    }
    if description is not None:
        placeholder["description"] = description
    if license is not None:
        placeholder["license"] = license
    rec.validate_record(placeholder, rec.ENTRY_NSID)
    if metadata:
        rec.check_data_model(dict(metadata), "metadata")
    return tags, license


def check_describe(
    name: str,
    description: str | None,
    tags: list[str] | None,
    license: str | None,
    metadata: dict[str, Any] | None = None,
) -> str | None:
    """``None`` when typed inputs pass the engine's lexicon checks, else the engine's message.

    Empty description and license count as "none". The checks are :func:`validate_promotion_inputs`,
    the very ones ``plan_promotion`` runs (the wizard's Describe step).
    """
    try:
        validate_promotion_inputs(name, description or None, list(tags or []), license or None, metadata)
    except (RecordValidationError, ValueError) as e:
        return str(e)
    return None


def copy_target(mode: str, location: str | None = None, store: Any = None) -> Any:
    """The ``copy_to=`` argument of :meth:`Index.plan_promotion` for a data choice (the wizard's Data step).

    Args:
        mode: ``published`` (None: what is published, else the current URLs), ``keep``
            (``"keep"``: the current URLs), ``copy`` (a data store) or ``blobs`` (``"blobs"``).
        location: For ``copy`` without ``store``: a local folder (a :class:`LocalDiskStore` root)
            or ``s3://bucket/prefix`` (an ``S3DataStore``; endpoint and credentials from the
            ``AWS_*`` environment variables).
        store: For ``copy``: a :class:`~atdata_lab.stores.base.DataStore` to copy into.

    Raises:
        ValueError: an unknown mode, or ``copy`` with neither a store nor a folder.
    """
    if mode == "published":
        return None
    if mode in ("keep", "blobs"):
        return mode
    if mode != "copy":
        raise InvalidArgumentError(f"data mode must be one of {', '.join(DATA_MODES)}, not {mode!r}")
    if store is not None:
        return store
    loc = (location or "").strip()
    if not loc:
        raise InvalidArgumentError(
            "copy to a store: give the folder to copy the shards into (or pass store=)"
        )
    if loc.startswith("s3://"):
        from ..stores.s3 import S3DataStore  # lazily: s3fs is optional

        bucket, _, prefix = loc[len("s3://") :].partition("/")
        return S3DataStore(bucket, prefix=prefix)
    if "://" in loc and not loc.startswith("file://"):
        raise InvalidArgumentError(
            f"{loc!r}: type a local folder or s3://bucket/prefix here, or pass store= from code"
        )
    return LocalDiskStore(Path(os.path.expanduser(loc[7:] if loc.startswith("file://") else loc)))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _iso_us(iso: str | None) -> int:
    try:
        dt = datetime.fromisoformat((iso or "").replace("Z", "+00:00"))
    except ValueError:
        dt = datetime.now(UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def derived_tid(seed: str, created_at: str | None) -> str:
    """A valid TID that is a pure function of ``seed`` and a timestamp (for idempotent writes)."""
    h = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    ts = (_iso_us(created_at) & ~0xFFFFF) | (h & 0xFFFFF)
    return rec.make_tid(ts, (h >> 20) & 0x3FF)


def _schema_matches(ours: Schema, remote: Schema) -> bool:
    """Same content: full CID, or (when the remote carries no dtypes, as atdata's do) CID with dtypes erased."""
    if remote.content_cid() == ours.content_cid():
        return True
    remote_has_dtypes = any(f.type.kind == "ndarray" and f.type.dtype for f in remote.fields)
    return not remote_has_dtypes and remote.content_cid(erase_dtypes=True) == ours.content_cid(
        erase_dtypes=True
    )


def _remote_schema(record: dict[str, Any]) -> Schema:
    return Schema.from_record(rec.local_schema_from_record(record))


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------


def find_published_schema(atm: Any, schema: Schema, *, index: Any = None) -> SchemaDecision:
    """Whether ``schema`` is already published in ``atm``'s repository (``reuse``), published there
    with other fields under its name and version (``conflict``), or not yet (``publish``, with the
    URI it will get). Reads only; the index (when given) remembers earlier publications and caches
    the repository scan."""
    return _find_schema(index, atm, schema, schema.ref)


def _find_schema(index: Any, atm: Any, schema: Schema, ref: str) -> SchemaDecision:
    did = atm.did
    # 1. the local index remembers publishing this schema to this repository
    known = index.provider.get_state(_state_key("schema-published", did, ref)) if index is not None else None
    if known is not None:
        known_uri = rec.AtUri.parse(known["uri"])
        try:
            got = atm.get_record(known_uri.collection, known_uri.rkey, repo=did)
            remote = _remote_schema(got["value"])
            if _schema_matches(schema, remote):
                return SchemaDecision("reuse", got["uri"], schema, "local index")
        except RecordNotFoundError:
            index.provider.set_state(_state_key("schema-published", did, ref), None)
    # 2. our deterministic record key
    rkey = rec.schema_rkey(schema.name, schema.version)
    uri = f"at://{did}/{rec.SCHEMA_NSID}/{rkey}"
    try:
        got = atm.get_record(rec.SCHEMA_NSID, rkey, repo=did)
    except RecordNotFoundError:
        got = None
    if got is not None:
        remote = _remote_schema(got["value"])
        if _schema_matches(schema, remote):
            return SchemaDecision("reuse", got["uri"], schema, "record key")
        return _conflict(remote, schema, got["uri"], "record key")
    # 3. schemas published by others (atdata 0.7 uses TID keys): a cached full scan
    for item in _scan_schemas(index, atm):
        if item["name"] == schema.name and item["version"] == schema.version:
            remote = Schema.from_record(item["local"])
            if _schema_matches(schema, remote):
                return SchemaDecision("reuse", item["uri"], schema, "repository scan")
            return _conflict(remote, schema, item["uri"], "repository scan")
    return SchemaDecision("publish", uri, schema)


def _conflict(remote: Schema, ours: Schema, uri: str, found_by: str) -> SchemaDecision:
    d = schema_diff(remote, ours)
    return SchemaDecision("conflict", uri, ours, found_by, diff=d, suggested_version=d.next_version)


def _scan_schemas(index: Any, atm: Any) -> list[dict[str, Any]]:
    key = _state_key("schema-scan", atm.did)
    cached = index.provider.get_state(key) if index is not None else None
    if cached is not None and time.time() - cached.get("at", 0) < SCAN_CACHE_SECONDS:
        return cached["items"]
    items = []
    for r in atm.list_all_records(rec.SCHEMA_NSID, repo=atm.did):
        try:
            local = rec.local_schema_from_record(r["value"])
            Schema.from_record(local)
        except (ValueError, AtdataLabError):
            continue  # a record we cannot read is never a match
        items.append({"uri": r["uri"], "name": local["name"], "version": local["version"], "local": local})
    if index is not None:
        index.provider.set_state(key, {"at": time.time(), "items": items})
    return items


def _check_clear(clear: Any, given: dict[str, Any]) -> tuple[str, ...]:
    if isinstance(clear, str):
        clear = [clear]
    clear = tuple(clear or ())
    for f in clear:
        if f not in PROMOTED_FIELDS:
            raise InvalidArgumentError(
                f"clear={list(clear)!r}: {f!r} is not a field a promotion can clear; "
                f"choose from {list(PROMOTED_FIELDS)}"
            )
        if given.get(f) not in (None, "", [], {}):
            raise InvalidArgumentError(f"{f} is given a value and also listed in clear=: choose one")
    return clear


def _field_values(
    entry: IndexEntry, published: PublishedEntry | None, clear: tuple[str, ...], given: dict[str, Any]
) -> dict[str, Any]:
    """Each promoted field: the call's value, else the local entry's, else what is published."""
    base = published.parsed if published is not None else {}
    out: dict[str, Any] = {}
    for f in ("description", "tags", "license"):
        empty: Any = [] if f == "tags" else None
        if f in clear:
            out[f] = empty
        elif given[f] is not None:
            out[f] = given[f] if given[f] not in ("", []) else empty
        else:
            out[f] = getattr(entry, f) or base.get(f) or empty
    if "metadata" in clear:
        out["metadata"] = {}
    else:
        out["metadata"] = {**(base.get("metadata") or {}), **entry.metadata, **(given["metadata"] or {})}
    return out


def _downgrades(
    published: PublishedEntry | None,
    values: dict[str, Any],
    given: dict[str, Any],
    clear: tuple[str, ...],
    storage: dict[str, Any],
    downgrade: bool,
    manifests: list[dict[str, Any]] | None = None,
) -> tuple[list[Downgrade], list[str]]:
    """What this promotion would remove or weaken in the published record: (refused, on purpose)."""
    if published is None:
        return [], []
    refused: list[Downgrade] = []
    intents: list[str] = []
    base = published.parsed
    for f in PROMOTED_FIELDS:
        if base.get(f) and not values[f]:
            if f in clear:
                intents.append(f"clear {f} (published: {_show(f, base[f])})")
            else:
                refused.append(Downgrade(f, _show(f, base[f]), "(none)", f"clear=[{f!r}]"))
    new = rec.parse_storage(storage)
    old_text, new_text = describe_storage(published.storage), describe_storage(new)
    weakened = []
    if not storage_only_here(published.storage) and storage_only_here(new):
        weakened.append(
            Downgrade(
                "storage",
                old_text,
                new_text,
                "downgrade=True (or copy_to=S3DataStore(...) / 'blobs' to keep it loadable by others)",
            )
        )
    had = all(published.checksums)
    if had and not all((s.get("checksum") or {}).get("digest") for s in new["shards"]):
        weakened.append(Downgrade("checksums", "present", "missing", "downgrade=True"))
    had_manifests = published.value.get("manifests")
    if isinstance(had_manifests, list) and had_manifests and not manifests:
        weakened.append(
            Downgrade(
                "manifests",
                _manifests_text(had_manifests),
                "(none)",
                "downgrade=True (or index.build_manifests(name) to publish them again)",
            )
        )
    if downgrade:
        intents += [f"downgrade {d.field}: {d.old} -> {d.new}" for d in weakened]
    else:
        refused += weakened
    return refused, intents


def _raise_downgrades(entry_name: str, published: PublishedEntry, refused: list[Downgrade]) -> None:
    lines = "; ".join(f"{d.describe()} (to do this on purpose, pass {d.argument})" for d in refused)
    raise PromotionDowngradeError(
        f"promoting {entry_name!r} would remove or weaken what is published at {published.uri}: {lines}. "
        "Nothing was written. Other values given to the call are kept; fields not given keep their published "
        "values.",
        downgrades=refused,
    )


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    """The fields that differ between two entry records (storage as a summary line)."""
    a, b = rec.entry_from_record(old), rec.entry_from_record(new)
    out = []
    for f in ("name", "schemaRef", "description", "tags", "license", "metadata", "size"):
        if (a.get(f) or None) != (b.get(f) or None):
            out.append(FieldChange(f, a.get(f), b.get(f)))
    if old.get("storage") != new.get("storage"):
        sa, sb = describe_storage(a["storage"]), describe_storage(b["storage"])
        if sa == sb:
            sa, sb = sa + " (old locations)", sb + " (new locations)"
        out.append(FieldChange("storage", sa, sb))
    if old.get("manifests") != new.get("manifests"):
        ma, mb = _manifests_text(old.get("manifests")), _manifests_text(new.get("manifests"))
        if ma == mb:
            ma, mb = ma + " (old blobs)", mb + " (new blobs)"
        out.append(
            FieldChange(
                "manifests", ma if old.get("manifests") else None, mb if new.get("manifests") else None
            )
        )
    return out


def _manifests_text(value: Any) -> str:
    return f"{len(value)} shard manifest(s)" if isinstance(value, list) else "(none)"


def _plan_manifests(
    index: Any, atm: Any, entry: IndexEntry, published: PublishedEntry | None
) -> tuple[list[dict[str, Any]] | None, ManifestPlan | None, list[str]]:
    """The record's ``manifests`` (exact blob references), what is uploaded, and warnings.

    Every shard of the entry needs its manifest (header and rows) beside it, else none is published
    (a warning says how to make them); blobs the published record already references are not
    uploaded again (an unchanged entry uploads nothing)."""
    found: list[tuple[bytes, bytes] | None] = []
    rows = index.provider.get_shards(entry.data_urls)
    for url in entry.data_urls:
        try:
            got = read_manifest_bytes(url, index._options_for([url]))
        except (ManifestError, OSError) as e:
            return None, None, [f"the manifest of shard {url} cannot be published ({e}); none is published"]
        if got is None or got[2] is None:
            found.append(None)
            continue
        header, head_bytes, parquet = got
        assert parquet is not None
        want = (rows.get(url) or {}).get("num_samples")
        if isinstance(want, int) and header["num_samples"] != want:
            return (
                None,
                None,
                [
                    f"the manifest of shard {url} describes {header['num_samples']} samples, the shard has {want}: "
                    f"no manifest is published; rebuild them with index.build_manifests({entry.name!r})"
                ],
            )
        found.append((head_bytes, parquet))
    if all(f is None for f in found):
        return None, None, []
    if any(f is None for f in found):
        missing = sum(f is None for f in found)
        return (
            None,
            None,
            [
                f"{missing} of {len(found)} shards have no manifest, so none is published: build them with "
                f"index.build_manifests({entry.name!r})"
            ],
        )
    known: dict[str, Any] = {}  # CID -> its reference in the published record
    if published is not None and isinstance(published.value.get("manifests"), list):
        for m in published.value["manifests"]:
            for part in (m.get("header"), m.get("samples")) if isinstance(m, dict) else ():
                cid = rec.blob_cid(part)
                if cid:
                    known[cid] = part
    limit = (getattr(atm, "_server_info", None) or {}).get("blobUploadLimit") or 5_000_000
    blobs: list[ManifestBlob] = []
    refs = []
    for url, pair in zip(entry.data_urls, found):
        assert pair is not None
        made = []
        for kind, blob, mime, suffix in (
            ("header", pair[0], rec.MANIFEST_HEADER_MIME, ".manifest.json"),
            ("samples", pair[1], rec.MANIFEST_ROWS_MIME, ".manifest.parquet"),
        ):
            data = blob
            cid = str(BlobCID(hashlib.sha256(data).digest()))
            if len(data) > limit and cid not in known:
                return (
                    None,
                    None,
                    [
                        f"the manifest file of shard {url} ({kind}, {len(data):,} bytes) is over the PDS blob limit "
                        f"of {human_bytes(limit)}: no manifest is published; write smaller shards (maxcount=)"
                    ],
                )
            source = (url[:-4] if url.endswith(".tar") else url) + suffix
            old: Any = known.get(cid)
            if old is not None and old.get("size") == len(data) and isinstance(old.get("mimeType"), str):
                mime = old["mimeType"]  # as published (the PDS may have named its type otherwise)
            made.append(ManifestBlob(url, kind, cid, len(data), mime, source, upload=cid not in known))
        blobs += made
        refs.append(rec.manifest_ref(made[0].ref(), made[1].ref()))
    return refs, ManifestPlan(len(found), blobs), []


def _plan_data(
    index: Any, atm: Any, entry: IndexEntry, name: str, copy_to: Any, published: PublishedEntry | None
) -> tuple[dict[str, Any], DataAction, Any, list[str]]:
    """The entry's storage, the data action, the copy target and blocking problems.

    ``copy_to=None`` follows what is published: the same shards keep their published storage
    (nothing is uploaded again), other shards go the same way (blobs stay blobs, S3 stays in the
    index's S3 store); with nothing published it keeps the current URLs (``"keep"`` says so always).
    """
    target: Any = "blobs" if isinstance(copy_to, PDSBlobStore) else copy_to
    same_data = published is not None and published.checksums == list(entry.shard_checksums)
    total = entry.size_bytes or 0
    reuse: Any = (
        (
            published.value["storage"],
            DataAction("reuse", entry.num_shards, total, describe_storage(published.storage)),
            None,
            [],
        )
        if published is not None
        else None
    )
    if target is None and published is not None:
        if same_data:
            return reuse
        kind = published.storage_kind
        store = index.data_store
        if kind == "blobs":
            target = "blobs"
        elif (
            kind == "s3"
            and published.urls
            and store.owns(published.urls[0])
            and not store.owns(entry.data_urls[0])
        ):
            target = store  # into the store the published version is in (shards already there stay)
        else:
            target = "keep"
    if target is None or target == "keep":
        storage, w = _storage_for(entry.data_urls, entry.shard_checksums, index.data_store)
        return storage, DataAction("keep", entry.num_shards, total, "the current URLs", w), None, []
    if target == "blobs":
        if same_data and published is not None and published.storage_kind == "blobs":
            return reuse
        limit = atm.describe_server().get("blobUploadLimit") or 5_000_000
        sizes = _shard_sizes(index, entry)
        over = [u for u, s in zip(entry.data_urls, sizes) if s > limit]
        data = DataAction("blobs", entry.num_shards, total, f"PDS blobs at {atm.pds_url}")
        blocking = []
        if over:
            msg = (
                f"{len(over)} shard(s) exceed the PDS blob limit of {human_bytes(limit)} (e.g. {over[0]}): "
                "re-write with a smaller maxsize= or copy to a store instead"
            )
            data.warnings.append(msg)
            blocking.append(msg)
        gz = [u for u in entry.data_urls if is_gzip_name(u)]
        if gz:
            # the PDS names a gzip blob application/gzip; atdata's storageBlobs lexicon accepts x-tar only
            msg = (
                f"{len(gz)} shard(s) are gzip-compressed (e.g. {gz[0]}), which the blob storage record does not "
                "accept (application/x-tar only): copy to a store (copy_to=S3DataStore(...)) or re-write the "
                "dataset without compression"
            )
            data.warnings.append(msg)
            blocking.append(msg)
        storage = rec.storage_blobs(
            [
                {
                    "blob": {
                        "$type": "blob",
                        "ref": {"$link": "bafkreiplaceholder"},
                        "mimeType": "application/x-tar",
                        "size": 0,
                    },
                    "sha256": c,
                }
                for c in entry.shard_checksums
            ]
        )
        return storage, data, "blobs", blocking
    if isinstance(target, DataStore):
        refs = [
            SimpleNamespace(url=u, size=n, checksum=c)
            for u, n, c in zip(entry.data_urls, _shard_sizes(index, entry), entry.shard_checksums)
        ]
        # the names the copy step will choose (a taken name gets a content-addressed twin)
        new_urls = destinations(
            refs, target, name if is_safe_dataset_name(name) else entry.name, in_use=index._referenced
        )
        storage, w = _storage_for(new_urls, entry.shard_checksums, target)
        if same_data and published is not None and storage == published.value["storage"]:
            return reuse
        return storage, DataAction("copy", entry.num_shards, total, target.describe(), w), target, []
    raise InvalidArgumentError(
        f"copy_to must be a data store (LocalDiskStore, S3DataStore), 'blobs', 'keep' or None, not {copy_to!r}"
    )


def plan_promotion(
    index: Any,
    entry_name: str,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    metadata: dict[str, Any] | None = None,
    copy_to: Any = None,
    label_version: str | None = None,
    clear: Any = (),
    downgrade: bool = False,
) -> PromotionPlan:
    """Decide a promotion without writing anything. See :meth:`Index.plan_promotion`."""
    entry = index.get_entry_by_name(entry_name)  # KeyError when missing
    if not entry.data_urls:
        raise InvalidArgumentError(f"entry {entry_name!r} has no data URLs: there is nothing to publish")
    atm = _atmosphere(index)
    name = name if name is not None else entry.name
    given = {"description": description, "tags": tags, "license": license, "metadata": metadata}
    clear = _check_clear(clear, given)
    # bad input fails before any request
    early = _field_values(entry, None, clear, given)
    validate_promotion_inputs(name, early["description"], early["tags"], early["license"], early["metadata"])
    start = atm.round_trips
    did = atm.did
    warnings: list[str] = []
    entry_rkey = derived_tid(f"entry|{did}|{entry.cid}|{name}", entry.created_at)
    label_rkey = derived_tid(f"label|{did}|{entry.cid}|{name}", entry.created_at)
    entry_uri = f"at://{did}/{rec.ENTRY_NSID}/{entry_rkey}"
    label_uri = f"at://{did}/{rec.LABEL_NSID}/{label_rkey}"

    # what is published under this name now (the plan starts from it), and this entry's own publication
    # one state value per published record (so every version's files stay known: Index.published_urls)
    mine = index.provider.get_state(_state_key("published", entry.name, did, name, entry_rkey))
    latest = _latest_publication(index, did, name)
    published = _read_published(atm, latest, warnings)
    values = _field_values(entry, published, clear, given)
    tags, license = validate_promotion_inputs(
        name, values["description"], values["tags"], values["license"], values["metadata"]
    )
    local_schema = index.get_schema(entry.schema_ref)  # KeyError when missing
    schema = Schema.from_record(local_schema)
    decision = _schema_named_by(index, did, entry, published, schema) or _find_schema(
        index, atm, schema, entry.schema_ref
    )
    schema_uri = decision.uri
    storage, data, copy_target, blocking = _plan_data(index, atm, entry, name, copy_to, published)
    manifest_refs, manifests, manifest_warnings = _plan_manifests(index, atm, entry, published)
    warnings += manifest_warnings
    refused, intents = _downgrades(published, values, given, clear, storage, downgrade, manifest_refs)
    if refused:
        _raise_downgrades(entry.name, published, refused)  # type: ignore[arg-type]

    entry_value = rec.entry_record(
        name,
        schema_uri,
        storage,
        description=values["description"],
        tags=tags or None,
        license=license,
        size={"samples": entry.num_samples, "bytes": entry.size_bytes, "shards": entry.num_shards},
        metadata=values["metadata"] or None,
        content_cid=entry.cid,
        created_at=entry.created_at,
        manifests=manifest_refs,
    )
    writes: list[PlannedWrite] = []
    changes: list[RecordChange] = []
    if decision.action == "publish":
        writes.append(
            PlannedWrite(
                "create",
                rec.SCHEMA_NSID,
                schema_uri.rsplit("/", 1)[1],
                schema_uri,
                rec.schema_record(local_schema, license=None),
            )
        )
    same_record = published is not None and published.uri == entry_uri
    # this entry's own records exist unless they were just found gone (then they are created again;
    # a create that meets a record is turned into an update at execution)
    gone = published is None and latest is not None and latest.get("entry_uri") == entry_uri
    exists = mine is not None and not gone
    if same_record:
        if rec.record_cid(entry_value) != published.cid:  # type: ignore[union-attr]
            writes.append(PlannedWrite("update", rec.ENTRY_NSID, entry_rkey, entry_uri, entry_value))
            changes.append(RecordChange(entry_uri, "update", _field_changes(published.value, entry_value)))  # type: ignore[union-attr]
    else:
        writes.append(
            PlannedWrite("update" if exists else "create", rec.ENTRY_NSID, entry_rkey, entry_uri, entry_value)
        )
        if published is not None:
            changes.append(
                RecordChange(
                    entry_uri, "version", _field_changes(published.value, entry_value), previous=published.uri
                )
            )
    # the label names the dataset: it is (re)written, with the publication time, when this entry
    # becomes the one published under the name; @handle/name resolves to the newest label
    label_version = label_version if label_version is not None else (mine or {}).get("label_version")
    label_current = (
        exists
        and latest is not None
        and latest.get("entry_uri") == entry_uri
        and label_version == (mine or {}).get("label_version")
    )
    label_created_at = (mine or {}).get("label_created_at")
    if not label_current:
        label_created_at = _publication_time(index, did, entry_rkey)
        label_value = rec.label_record(name, entry_uri, version=label_version, created_at=label_created_at)
        writes.append(
            PlannedWrite("update" if exists else "create", rec.LABEL_NSID, label_rkey, label_uri, label_value)
        )
    if decision.action == "conflict":
        blocking.append(decision.describe())

    only_schema = all(w.collection == rec.SCHEMA_NSID for w in writes)
    already = entry_uri if same_record and not writes else None
    if same_record and only_schema and writes:
        warnings.append("the schema record is missing from the repository: it is published again")
    plan = PromotionPlan(
        index=index,
        entry=entry,
        name=name,
        description=values["description"],
        tags=tags,
        license=license,
        metadata=values["metadata"],
        did=did,
        handle=atm.handle,
        schema_decision=decision,
        writes=writes,
        data=data,
        copy_to=copy_target,
        entry_uri=entry_uri,
        label_uri=label_uri,
        already_published=already,
        warnings=warnings,
        blocking=blocking,
        published=published,
        changes=changes,
        intents=intents,
        label_created_at=label_created_at,
        label_version=label_version,
        manifests=manifests,
    )
    plan.planning_round_trips = atm.round_trips - start
    plan.appview = appview_knows(index, name, did=did)  # after the count: PDS round trips only; never raises
    # the whole batch must fit in one request
    body = {"writes": [w.as_write() for w in writes]}
    if len(json.dumps(body)) >= 1_000_000:
        raise RecordTooLargeError(
            f"the records of this promotion are {len(json.dumps(body)):,} bytes of JSON; a PDS accepts under "
            "1,000,000: shorten the description/metadata or use fewer, larger shards"
        )
    _crash_point("after_plan")
    return plan


def _publication_time(index: Any, did: str, entry_rkey: str) -> str:
    """The label's ``createdAt``: when this entry is published. Planned once and kept in the local
    index until the promotion is done, so every plan of it (the wizard's and ``promote_entry``'s),
    a re-run after a crash and a second kernel all write the same label; a plan older than an
    hour is planned again (the time orders versions: ``@handle/name`` resolves to the newest)."""
    key = _state_key("publication-time", did, entry_rkey)
    known = index.provider.get_state(key)
    if known is not None and time.time() - known.get("at", 0) < PUBLICATION_TIME_TTL:
        return known["iso"]
    iso = rec.now_iso()
    index.provider.set_state(key, {"iso": iso, "at": time.time()})
    return iso


def _schema_named_by(
    index: Any, did: str, entry: IndexEntry, published: PublishedEntry | None, schema: Schema
) -> SchemaDecision | None:
    """Reuse without a request: the published entry record names the schema this index published."""
    if published is None:
        return None
    known = index.provider.get_state(_state_key("schema-published", did, entry.schema_ref))
    if known is not None and known.get("uri") == published.parsed["schemaRef"]:
        return SchemaDecision("reuse", known["uri"], schema, "published entry")
    return None


def _shard_sizes(index: Any, entry: IndexEntry) -> list[int]:
    rows = index.provider.get_shards(entry.data_urls)
    out = []
    for u in entry.data_urls:
        r = rows.get(u)
        if r is not None:
            out.append(int(r["size"]))
        else:
            out.append(url_size(u, index._options_for([u])))
    return out
