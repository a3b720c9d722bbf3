"""Promotion: publish a local dataset to an ATProto repository — plan, one atomic write, verify.

:func:`plan_promotion` decides everything without writing: whether the schema is reused,
published or in conflict; the exact records; the data action; the cost. The wizard renders that
plan and :meth:`PromotionPlan.execute` carries it out:

1. the intent (record keys) is saved in the local index;
2. data is copied or uploaded when asked (streamed, verified, resumable);
3. schema (if new), entry and label records are written in ONE ``applyWrites`` call;
4. the local index records what was published.

Records are deterministic for a given entry, name and repository (keys derived from content,
``createdAt`` from the local entry), so a re-run after a crash, or two kernels promoting at once,
converge on exactly one schema, one entry and one label record.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .entry import IndexEntry, human_bytes
from .errors import (
    AtdataLabError,
    InvalidArgumentError,
    NoAtmosphereError,
    PromotionConflictError,
    PromotionDowngradeError,
    RecordNotFoundError,
    RecordTooLargeError,
    RecordValidationError,
    ShardError,
)
from .licenses import check_license
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .schema import Schema, parse_schema_ref
from .schema_diff import SchemaDiff, schema_diff
from .shards import ShardInfo
from .stores.base import DataStore
from .stores.local import is_safe_dataset_name
from .transfer import copy_shards, destinations, sha256_of
from .urls import is_local, local_path, only_on_this_machine

__all__ = [
    "PromotionPlan",
    "PromotionResult",
    "SchemaDecision",
    "DataAction",
    "PlannedWrite",
    "PublishedEntry",
    "RecordChange",
    "FieldChange",
    "Downgrade",
    "PROMOTED_FIELDS",
    "VerificationReport",
    "PDSBlobStore",
    "plan_promotion",
    "validate_promotion_inputs",
    "PromotionCancelled",
    "load_published",
    "publication_of",
    "read_published",
    "fetch_schema",
    "get_published_entry",
    "list_published",
    "verify_published",
]

RATE_POINTS = {"create": 3, "update": 2, "delete": 1}
SCAN_CACHE_SECONDS = 600
PUBLICATION_TIME_TTL = 3600
_CRASH_ENV = "ATDATA_LAB_CRASH_AT"  # test hook: kill -9 ourselves at a named step


def _crash_point(step: str) -> None:
    """Crash tests set ``ATDATA_LAB_CRASH_AT=<step>`` to kill this process at that step."""
    if os.environ.get(_CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _records():
    from .atmosphere import records

    return records


class PDSBlobStore:
    """A copy target meaning "upload each shard as a blob to the repository's PDS".

    ``copy_to="blobs"`` is the same.
    """

    def __repr__(self) -> str:
        return "PDSBlobStore()"


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
        return (f"Conflict: {self.schema.name}@{self.schema.version} is already published at {self.uri} with "
                f"different fields; publish ours as version {self.suggested_version}")


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


#: The descriptive fields a promotion carries over from what is published unless told otherwise.
PROMOTED_FIELDS = ("description", "tags", "license", "metadata")


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
        here = " (only on this machine)" if storage.get("endpoint") and only_on_this_machine(storage["endpoint"]) else ""
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


@dataclass
class PublishedEntry:
    """A dataset record as it is published now (read back with ``getRecord``)."""

    uri: str
    cid: str
    value: dict[str, Any]
    local_entry: str | None = None

    @cached_property
    def parsed(self) -> dict[str, Any]:
        return _records().entry_from_record(self.value)

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
        head = (f"New version of the dataset: {self.previous} -> {self.uri}" if self.action == "version"
                else f"Update {self.uri}")
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
class PromotionResult:
    """What a promotion did."""

    at_uri: str
    schema_uri: str
    label_uri: str
    schema_reused: bool
    cid: str
    data_urls: list[str]
    written: list[str]
    already_published: bool = False
    round_trips: int = 0

    def __str__(self) -> str:
        return self.at_uri


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
        return 1 + (self.data.shards if self.data.kind == "blobs" else 0)

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
        lines.append(f"Data: {self.data.describe()}")
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
            "schema": {"action": d.action, "uri": d.uri, "name": d.schema.name, "version": d.schema.version,
                       "found_by": d.found_by, "suggested_version": d.suggested_version,
                       "diff": d.diff.to_dict() if d.diff else None},
            "writes": [{"action": w.action, "uri": w.uri, "value": w.value} for w in self.writes],
            "data": {"kind": self.data.kind, "shards": self.data.shards, "bytes": self.data.bytes,
                     "target": self.data.target, "warnings": list(self.data.warnings)},
            "pds_calls": self.pds_calls,
            "rate_limit_points": self.rate_limit_points,
            "already_published": self.already_published,
            "published": ({"uri": self.published.uri, "storage": describe_storage(self.published.storage)}
                          if self.published is not None else None),
            "previous_version": self.previous_version,
            "changes": [{"uri": c.uri, "action": c.action, "previous": c.previous,
                         "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in c.fields]}
                        for c in self.changes],
            "intents": list(self.intents),
            "warnings": list(self.warnings),
            "blocking": list(self.blocking),
        }

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary().splitlines())
        return f"<ul class='atdata-promotion-plan'>{items}</ul>"

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
        rows = "".join(
            f"<tr><td>{'✔' if ok else '✘'}</td><td>{html.escape(n)}</td><td>{html.escape(d)}</td></tr>"
            for n, ok, d in self.checks)
        return f"<table class='atdata-verify'><caption>{html.escape(self.uri)}</caption>{rows}</table>"


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
    return _records().make_tid(ts, (h >> 20) & 0x3FF)


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


def _schema_matches(ours: Schema, remote: Schema) -> bool:
    """Same content: full CID, or (when the remote carries no dtypes, as atdata's do) CID with dtypes erased."""
    if remote.content_cid() == ours.content_cid():
        return True
    remote_has_dtypes = any(f.type.kind == "ndarray" and f.type.dtype for f in remote.fields)
    return not remote_has_dtypes and remote.content_cid(erase_dtypes=True) == ours.content_cid(erase_dtypes=True)


def _remote_schema(record: dict[str, Any]) -> Schema:
    return Schema.from_record(_records().local_schema_from_record(record))


def validate_promotion_inputs(name: str, description: str | None, tags: list[str] | None, license: str | None,
                  metadata: dict[str, Any] | None) -> tuple[list[str], str | None]:
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
    rec = _records()
    placeholder: dict[str, Any] = {
        "$type": rec.ENTRY_NSID, "name": name, "schemaRef": f"at://did:plc:{'a' * 24}/{rec.SCHEMA_NSID}/x",
        "storage": rec.storage_http([{"url": "https://example.org/x.tar", "sha256": "0" * 64}]),
        "createdAt": "2026-01-01T00:00:00Z", "tags": tags,
    }
    if description is not None:
        placeholder["description"] = description
    if license is not None:
        placeholder["license"] = license
    rec.validate_record(placeholder, rec.ENTRY_NSID)
    if metadata:
        _records().check_data_model(dict(metadata), "metadata")
    return tags, license


def _storage_for(urls: list[str], checksums: list[str], store: DataStore | None) -> tuple[dict[str, Any], list[str]]:
    """The entry's storage union for shard URLs, plus warnings."""
    rec = _records()
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
            "public store (copy_to=S3DataStore(...)) or upload it as PDS blobs (copy_to='blobs')")
    return rec.storage_http(shards), warnings


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------


def _find_schema(index: Any, atm: Any, schema: Schema, ref: str) -> SchemaDecision:
    rec = _records()
    did = atm.did
    # 1. the local index remembers publishing this schema to this repository
    known = index.provider.get_state(_state_key("schema-published", did, ref))
    if known is not None:
        uri = rec.AtUri.parse(known["uri"])
        try:
            got = atm.get_record(uri.collection, uri.rkey, repo=did)
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
    cached = index.provider.get_state(key)
    if cached is not None and time.time() - cached.get("at", 0) < SCAN_CACHE_SECONDS:
        return cached["items"]
    items = []
    for r in atm.list_records(_records().SCHEMA_NSID, repo=atm.did):
        try:
            local = _records().local_schema_from_record(r["value"])
            Schema.from_record(local)
        except (ValueError, AtdataLabError):
            continue  # a record we cannot read is never a match
        items.append({"uri": r["uri"], "name": local["name"], "version": local["version"], "local": local})
    index.provider.set_state(key, {"at": time.time(), "items": items})
    return items


def _latest_publication(index: Any, did: str, name: str) -> dict[str, Any] | None:
    """What this index last published as ``name`` to ``did``'s repository (its ``published:`` state)."""
    best = None
    for v in index.provider.list_state("published:").values():
        if v.get("did") == did and v.get("name") == name and (best is None or v.get("at", 0) > best.get("at", 0)):
            best = v
    return best


def _read_published(atm: Any, latest: dict[str, Any] | None, warnings: list[str]) -> PublishedEntry | None:
    """The record behind ``latest`` as it is on the PDS now (one ``getRecord``), or None."""
    if latest is None:
        return None
    try:
        got = _get(atm, latest["entry_uri"])
    except RecordNotFoundError:
        warnings.append(f"the dataset published earlier at {latest['entry_uri']} is no longer in the repository; "
                        "this promotion publishes it anew")
        return None
    return PublishedEntry(got["uri"], got["cid"], got["value"], local_entry=latest.get("entry"))


def _check_clear(clear: Any, given: dict[str, Any]) -> tuple[str, ...]:
    if isinstance(clear, str):
        clear = [clear]
    clear = tuple(clear or ())
    for f in clear:
        if f not in PROMOTED_FIELDS:
            raise InvalidArgumentError(f"clear={list(clear)!r}: {f!r} is not a field a promotion can clear; "
                                       f"choose from {list(PROMOTED_FIELDS)}")
        if given.get(f) not in (None, "", [], {}):
            raise InvalidArgumentError(f"{f} is given a value and also listed in clear=: choose one")
    return clear


def _field_values(entry: IndexEntry, published: PublishedEntry | None, clear: tuple[str, ...],
                  given: dict[str, Any]) -> dict[str, Any]:
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


def _downgrades(published: PublishedEntry | None, values: dict[str, Any], given: dict[str, Any],
                clear: tuple[str, ...], storage: dict[str, Any], downgrade: bool) -> tuple[list[Downgrade], list[str]]:
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
    new = _records().parse_storage(storage)
    old_text, new_text = describe_storage(published.storage), describe_storage(new)
    weakened = []
    if not storage_only_here(published.storage) and storage_only_here(new):
        weakened.append(Downgrade("storage", old_text, new_text,
                                  "downgrade=True (or copy_to=S3DataStore(...) / 'blobs' to keep it loadable by others)"))
    had = all(published.checksums)
    if had and not all((s.get("checksum") or {}).get("digest") for s in new["shards"]):
        weakened.append(Downgrade("checksums", "present", "missing", "downgrade=True"))
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
        "values.", downgrades=refused)


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    """The fields that differ between two entry records (storage as a summary line)."""
    rec = _records()
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
    return out


def _plan_data(index: Any, atm: Any, entry: IndexEntry, name: str, copy_to: Any,
               published: PublishedEntry | None) -> tuple[dict[str, Any], DataAction, str | None, list[str]]:
    """The entry's storage, the data action, the copy target and blocking problems.

    ``copy_to=None`` follows what is published: the same shards keep their published storage
    (nothing is uploaded again), other shards go the same way (blobs stay blobs, S3 stays in the
    index's S3 store); with nothing published it keeps the current URLs (``"keep"`` says so always).
    """
    rec = _records()
    target: Any = "blobs" if isinstance(copy_to, PDSBlobStore) else copy_to
    same_data = published is not None and published.checksums == list(entry.shard_checksums)
    total = entry.size_bytes or 0
    reuse = (published.value["storage"],
             DataAction("reuse", entry.num_shards, total, describe_storage(published.storage)), None, []) \
        if published is not None else None
    if target is None and published is not None:
        if same_data:
            return reuse  # type: ignore[return-value]
        kind = published.storage_kind
        store = index.data_store
        if kind == "blobs":
            target = "blobs"
        elif kind == "s3" and published.urls and store.owns(published.urls[0]) \
                and not store.owns(entry.data_urls[0]):
            target = store  # into the store the published version is in (shards already there stay)
        else:
            target = "keep"
    if target is None or target == "keep":
        storage, w = _storage_for(entry.data_urls, entry.shard_checksums, index.data_store)
        return storage, DataAction("keep", entry.num_shards, total, "the current URLs", w), None, []
    if target == "blobs":
        if same_data and published is not None and published.storage_kind == "blobs":
            return reuse  # type: ignore[return-value]
        limit = atm.describe_server().get("blobUploadLimit") or 5_000_000
        sizes = _shard_sizes(index, entry)
        over = [u for u, s in zip(entry.data_urls, sizes) if s > limit]
        data = DataAction("blobs", entry.num_shards, total, f"PDS blobs at {atm.pds_url}")
        blocking = []
        if over:
            msg = (f"{len(over)} shard(s) exceed the PDS blob limit of {human_bytes(limit)} (e.g. {over[0]}): "
                   "re-write with a smaller maxsize= or copy to a store instead")
            data.warnings.append(msg)
            blocking.append(msg)
        storage = rec.storage_blobs([{"blob": {"$type": "blob", "ref": {"$link": "bafkreiplaceholder"},
                                               "mimeType": "application/x-tar", "size": 0}, "sha256": c}
                                     for c in entry.shard_checksums])
        return storage, data, "blobs", blocking
    if isinstance(target, DataStore):
        refs = [SimpleNamespace(url=u, size=n, checksum=c)
                for u, n, c in zip(entry.data_urls, _shard_sizes(index, entry), entry.shard_checksums)]
        # the names the copy step will choose (a taken name gets a content-addressed twin)
        new_urls = destinations(refs, target, name if is_safe_dataset_name(name) else entry.name,
                                in_use=index._referenced)
        storage, w = _storage_for(new_urls, entry.shard_checksums, target)
        if same_data and published is not None and storage == published.value["storage"]:
            return reuse  # type: ignore[return-value]
        return storage, DataAction("copy", entry.num_shards, total, target.describe(), w), target, []
    raise InvalidArgumentError(
        f"copy_to must be a data store (LocalDiskStore, S3DataStore), 'blobs', 'keep' or None, not {copy_to!r}")


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
    rec = _records()
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
    tags, license = validate_promotion_inputs(name, values["description"], values["tags"], values["license"],
                                              values["metadata"])
    local_schema = index.get_schema(entry.schema_ref)  # KeyError when missing
    schema = Schema.from_record(local_schema)
    decision = _schema_named_by(index, did, entry, published, schema) or _find_schema(index, atm, schema,
                                                                                       entry.schema_ref)
    schema_uri = decision.uri
    storage, data, copy_target, blocking = _plan_data(index, atm, entry, name, copy_to, published)
    refused, intents = _downgrades(published, values, given, clear, storage, downgrade)
    if refused:
        _raise_downgrades(entry.name, published, refused)  # type: ignore[arg-type]

    entry_value = rec.entry_record(
        name, schema_uri, storage, description=values["description"], tags=tags or None, license=license,
        size={"samples": entry.num_samples, "bytes": entry.size_bytes, "shards": entry.num_shards},
        metadata=values["metadata"] or None, content_cid=entry.cid, created_at=entry.created_at,
    )
    writes: list[PlannedWrite] = []
    changes: list[RecordChange] = []
    if decision.action == "publish":
        writes.append(PlannedWrite("create", rec.SCHEMA_NSID, schema_uri.rsplit("/", 1)[1], schema_uri,
                                   rec.schema_record(local_schema, license=None)))
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
        writes.append(PlannedWrite("update" if exists else "create", rec.ENTRY_NSID, entry_rkey, entry_uri,
                                   entry_value))
        if published is not None:
            changes.append(RecordChange(entry_uri, "version", _field_changes(published.value, entry_value),
                                        previous=published.uri))
    # the label names the dataset: it is (re)written, with the publication time, when this entry
    # becomes the one published under the name; @handle/name resolves to the newest label
    label_version = label_version if label_version is not None else (mine or {}).get("label_version")
    label_current = (exists and latest is not None and latest.get("entry_uri") == entry_uri
                     and label_version == (mine or {}).get("label_version"))
    label_created_at = (mine or {}).get("label_created_at")
    if not label_current:
        label_created_at = _publication_time(index, did, entry_rkey)
        label_value = rec.label_record(name, entry_uri, version=label_version, created_at=label_created_at)
        writes.append(PlannedWrite("update" if exists else "create", rec.LABEL_NSID, label_rkey, label_uri,
                                   label_value))
    if decision.action == "conflict":
        blocking.append(decision.describe())

    only_schema = all(w.collection == rec.SCHEMA_NSID for w in writes)
    already = entry_uri if same_record and not writes else None
    if same_record and only_schema and writes:
        warnings.append("the schema record is missing from the repository: it is published again")
    plan = PromotionPlan(
        index=index, entry=entry, name=name, description=values["description"], tags=tags, license=license,
        metadata=values["metadata"], did=did, handle=atm.handle, schema_decision=decision, writes=writes,
        data=data, copy_to=copy_target, entry_uri=entry_uri, label_uri=label_uri, already_published=already,
        warnings=warnings, blocking=blocking, published=published, changes=changes, intents=intents,
        label_created_at=label_created_at, label_version=label_version,
    )
    plan.planning_round_trips = atm.round_trips - start
    # the whole batch must fit in one request
    body = {"writes": [w.as_write() for w in writes]}
    if len(json.dumps(body)) >= 1_000_000:
        raise RecordTooLargeError(
            f"the records of this promotion are {len(json.dumps(body)):,} bytes of JSON; a PDS accepts under "
            "1,000,000: shorten the description/metadata or use fewer, larger shards")
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
    iso = _records().now_iso()
    index.provider.set_state(key, {"iso": iso, "at": time.time()})
    return iso


def _schema_named_by(index: Any, did: str, entry: IndexEntry, published: PublishedEntry | None,
                     schema: Schema) -> SchemaDecision | None:
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
            from .urls import url_size

            out.append(url_size(u, index._options_for([u])))
    return out


# ---------------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------------


class PromotionCancelled(AtdataLabError):
    """The promotion was cancelled before its records were written; nothing was published."""


def _execute(plan: PromotionPlan, report: Any, cancel: Any = None) -> PromotionResult:
    def check_cancel(where: str) -> None:
        if cancel is not None and cancel.is_set():
            raise PromotionCancelled(f"promotion of {plan.entry.name!r} cancelled {where}; nothing was published")

    index, entry = plan.index, plan.entry
    atm = _atmosphere(index)
    rec = _records()
    start = atm.round_trips
    d = plan.schema_decision
    if d.action == "conflict":
        raise PromotionConflictError(
            f"schema {d.schema.name}@{d.schema.version} is already published at {d.uri} with different fields "
            f"({'; '.join(c.name + ' ' + c.status for c in d.diff.changed()) if d.diff else ''}). Publish ours as a "
            f"new version: index.publish_schema(SampleType, version={d.suggested_version!r}), re-write the "
            "entry, then promote again", diff=d.diff, suggested_version=d.suggested_version)
    if plan.blocking:
        raise RecordTooLargeError("cannot promote: " + "; ".join(plan.blocking))
    if plan.already_published:
        _remember_values(index, plan)
        report(ProgressEvent("promote", 1, 1, "steps", "already published", finished=True))
        return PromotionResult(plan.already_published, d.uri, plan.label_uri, True, entry.cid,
                               list(entry.data_urls), [], already_published=True)

    steps = 4
    report(ProgressEvent("promote", 0, steps, "steps", "recording intent"))
    check_cancel("before it started")
    _crash_point("before_intent")
    intent_key = _state_key("promotion-intent", plan.did, plan.entry_uri.rsplit("/", 1)[1])
    earlier_intent = index.provider.get_state(intent_key)
    index.provider.set_state(intent_key, {"entry": entry.name, "name": plan.name, "at": time.time(),
                                          "writes": [w.uri for w in plan.writes]})
    _crash_point("after_intent")

    # data
    report(ProgressEvent("promote", 1, steps, "steps", "moving data"))
    data_urls = list(entry.data_urls)
    writes = [PlannedWrite(w.action, w.collection, w.rkey, w.uri, dict(w.value)) for w in plan.writes]
    entry_write = next((w for w in writes if w.collection == rec.ENTRY_NSID), None)
    if plan.data.kind == "reuse" and plan.published is not None:
        data_urls = plan.published.urls
    elif plan.data.kind == "copy":
        infos = _shard_infos(index, entry)
        index.remember_store(plan.copy_to)
        target_name = plan.name if is_safe_dataset_name(plan.name) else entry.name
        def on_shard(i: int, info: Any, copied: bool) -> None:
            if i == 0:
                _crash_point("during_copy")
            check_cancel("while copying data")

        # a name holding another file (e.g. an earlier version's copy that a published record uses)
        # is never written over: that shard goes to a content-addressed name, and the record says so
        copied = copy_shards(infos, plan.copy_to, target_name, source_options=index._options_for(entry.data_urls),
                             progress=report, on_shard=on_shard, in_use=index._referenced)
        data_urls = [c.url for c in copied]
        assert all(isinstance(c, ShardInfo) for c in copied)
        entry_write.value["storage"], _ = _storage_for(data_urls, entry.shard_checksums, plan.copy_to)
        rec.validate_record(entry_write.value, rec.ENTRY_NSID)
    elif plan.data.kind == "blobs":
        blobs = []
        for i, (url, checksum) in enumerate(zip(entry.data_urls, entry.shard_checksums)):
            opts = index._options_for([url])
            if sha256_of(url, opts) != checksum:
                raise ShardError(f"shard {url} changed since it was indexed (sha256 mismatch); re-insert the dataset")
            with _open_for_upload(url, opts) as f:
                ref = atm.upload_blob(f, content_type="application/x-tar")
            blobs.append({"blob": ref, "sha256": checksum})
            report(ProgressEvent("upload", i + 1, len(entry.data_urls), "shards", url.rsplit("/", 1)[-1]))
            if i == 0:
                _crash_point("during_copy")
            check_cancel("while uploading blobs")
        assert entry_write is not None  # new storage: the entry record changes
        entry_write.value["storage"] = rec.storage_blobs(blobs)
        rec.validate_record(entry_write.value, rec.ENTRY_NSID)
        data_urls = []  # the record points at the blobs, not at any file of ours

    # one atomic write (unless an earlier, interrupted run already made it: its intent says so)
    report(ProgressEvent("promote", 2, steps, "steps", "writing records"))
    check_cancel("before writing records")
    _crash_point("before_apply")
    witness = entry_write or next(w for w in writes if w.collection != rec.SCHEMA_NSID)
    landed = _landed_earlier(atm, writes, witness) if earlier_intent is not None else None
    try:
        results = landed if landed is not None else atm.apply_writes([w.as_write() for w in writes])
    except AtdataLabError as e:
        from .errors import RecordConflictError

        if not isinstance(e, RecordConflictError):
            raise
        # an earlier promotion (other options, or lost local state) holds these keys: update them
        writes = [PlannedWrite("update" if w.collection != rec.SCHEMA_NSID else w.action, w.collection, w.rkey,
                               w.uri, w.value) for w in writes if w.collection != rec.SCHEMA_NSID
                  or not _exists(atm, w)]
        results = atm.apply_writes([w.as_write() for w in writes])
    _crash_point("after_apply")

    # bookkeeping
    report(ProgressEvent("promote", 3, steps, "steps", "recording what was published"))
    cids = {r["collection"].rsplit(".", 1)[-1]: r["cid"] for r in results}
    schema_ref = entry.schema_ref
    index.provider.set_state(_state_key("schema-published", plan.did, schema_ref), {"uri": d.uri})
    try:
        index.provider.update_schema(schema_ref, published_uri=d.uri)
    except (ValueError, AtdataLabError):
        pass
    scan = index.provider.get_state(_state_key("schema-scan", plan.did))
    if scan is not None and d.action == "publish":
        local = index.get_schema(schema_ref)
        scan["items"].append({"uri": d.uri, "name": local["name"], "version": local["version"], "local": local})
        index.provider.set_state(_state_key("schema-scan", plan.did), scan)
    pub_key = _state_key("published", entry.name, plan.did, plan.name, plan.entry_uri.rsplit("/", 1)[1])
    before = index.provider.get_state(pub_key) or {}
    record_cids = {**before.get("record_cids", {}), **cids}
    if entry_write is not None:
        record_cids["entry"] = rec.record_cid(entry_write.value)
    index.provider.set_state(pub_key, {
        "entry_uri": plan.entry_uri, "schema_uri": d.uri, "label_uri": plan.label_uri, "data_urls": data_urls,
        "record_cids": record_cids, "at": time.time(), "name": plan.name, "did": plan.did, "entry": entry.name,
        "label_created_at": plan.label_created_at, "label_version": plan.label_version,
    })
    _remember_values(index, plan)
    index.provider.set_state(intent_key, None)
    index.provider.set_state(_state_key("publication-time", plan.did, plan.entry_uri.rsplit("/", 1)[1]), None)
    report(ProgressEvent("promote", 4, steps, "steps", "done", finished=True))
    return PromotionResult(
        at_uri=plan.entry_uri, schema_uri=d.uri, label_uri=plan.label_uri, schema_reused=d.action == "reuse",
        cid=entry.cid, data_urls=data_urls, written=[r["uri"] for r in results],
        round_trips=atm.round_trips - start,
    )


def _remember_values(index: Any, plan: PromotionPlan) -> None:
    """The local entry takes what is published, so the next promotion proposes it."""
    index.provider.update_entry(plan.entry.name, published_uri=plan.entry_uri, description=plan.description,
                                tags=list(plan.tags), license=plan.license, metadata=dict(plan.metadata))


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


def _landed_earlier(atm: Any, writes: list[PlannedWrite], witness: PlannedWrite) -> list[dict[str, Any]] | None:
    """After an interrupted run: if its entry (or label) record is on the PDS exactly as planned, the
    atomic write happened (all records landed together); return results without writing again."""
    rec = _records()
    try:
        cur = atm.get_record(witness.collection, witness.rkey)
    except RecordNotFoundError:
        return None
    if cur["cid"] != rec.record_cid(witness.value):
        return None
    return [{"action": w.action, "uri": w.uri, "cid": rec.record_cid(w.value), "collection": w.collection,
             "rkey": w.rkey, "value": w.value} for w in writes]


def _exists(atm: Any, w: PlannedWrite) -> bool:
    try:
        atm.get_record(w.collection, w.rkey)
        return True
    except RecordNotFoundError:
        return False


def _open_for_upload(url: str, opts: dict[str, Any]):
    from .urls import open_url

    return open_url(url, opts)


def _shard_infos(index: Any, entry: IndexEntry) -> list:
    ds = index.dataset(entry)
    return [ds.shard_info(u) for u in entry.data_urls]


# ---------------------------------------------------------------------------------------------
# reading back
# ---------------------------------------------------------------------------------------------


def _reader(index: Any = None) -> Any:
    """A client for reading records: the index's atmosphere, else an anonymous one on ATDATA_PDS_URL."""
    atm = getattr(index, "atmosphere", None) if index is not None else None
    if atm is not None:
        return atm
    url = os.environ.get("ATDATA_PDS_URL")
    if not url:
        raise InvalidArgumentError(
            "cannot read published datasets: attach an Atmosphere to the index, or set ATDATA_PDS_URL "
            "(for the sandbox: atdata-lab sandbox start)")
    from .atmosphere import Atmosphere

    return Atmosphere(url)


def _record_uri(uri: Any, nsid: str, where: str) -> Any:
    """An AT-URI taken from a record (or typed by the user), checked before any request: a DID
    authority (a handle would make us resolve a name the record chose), ``nsid``, a record key."""
    rec = _records()
    u = rec.AtUri.parse(uri) if isinstance(uri, str) else None
    if u is None:
        raise RecordValidationError(f"{where}: expected an at:// URI, got {type(uri).__name__}")
    if u.collection != nsid or not u.rkey:
        raise RecordValidationError(f"{where}: {uri!r:.200} is not an at://<did>/{nsid}/<rkey> URI")
    if u.did is None and where != "path":
        raise RecordValidationError(f"{where}: {uri!r:.200} must name its repository by DID, not by handle")
    return u


def resolve_entry_uri(atm: Any, path: str) -> str:
    """``at://...`` stays; ``@handle/name[@version]`` is resolved through the handle's label records.

    Every part is checked before any request (handle or DID, name, version; the entry URI the label
    names must be ``at://<did>/science.alt.dataset.entry/<rkey>``).
    """
    rec = _records()
    if not isinstance(path, str):
        raise InvalidArgumentError(f"expected 'at://...' or '@handle/name', not {type(path).__name__}")
    if path.startswith("at://"):
        _record_uri(path, rec.ENTRY_NSID, "path")
        return path
    body = path[1:] if path.startswith("@") else ""
    handle, sep, rest = body.partition("/")
    name, _, version = rest.partition("@")
    if not sep or not name or any(ord(c) < 0x20 for c in name + version) or len(name.encode()) > 200 \
            or len(version) > 64:
        raise InvalidArgumentError(f"{path!r:.200} is not '@handle/name' or '@handle/name@version'")
    atm._check_repo(handle, "handle")
    did = handle if handle.startswith("did:") else atm.resolve_handle(handle)
    best = None
    for r in atm.list_records(rec.LABEL_NSID, repo=did):
        v = r.get("value")
        if not isinstance(v, dict) or v.get("name") != name or (version and v.get("version") != version):
            continue
        if not isinstance(v.get("datasetUri"), str):
            continue
        if best is None or str(v.get("createdAt", "")) > str(best["value"].get("createdAt", "")):
            best = r
    if best is None:
        raise RecordNotFoundError(f"no dataset named {name!r}{' version ' + version if version else ''} "
                                  f"published by {handle}")
    uri = best["value"]["datasetUri"]
    _record_uri(uri, rec.ENTRY_NSID, f"label {best.get('uri')} datasetUri")
    return uri


def _get(atm: Any, uri: str) -> dict[str, Any]:
    u = _records().AtUri.parse(uri)
    if not u.collection or not u.rkey:
        raise RecordValidationError(f"{uri!r:.200} is not an at://<repo>/<collection>/<rkey> URI")
    got = atm.get_record(u.collection, u.rkey, repo=u.authority)
    if not isinstance(got.get("value"), dict):
        raise RecordValidationError(f"{uri}: the PDS returned a record that is not an object")
    return got


def fetch_schema(index: Any, uri: str) -> Schema:
    """The Schema of a published schema record (cached in the index when one is given).

    Raises:
        RecordValidationError: ``uri`` is not ``at://<did>/science.alt.dataset.schema/<rkey>``,
            or the record is malformed (checked before it is used).
        SchemaError: a field name would shadow a Python or library attribute.
    """
    _record_uri(uri, _records().SCHEMA_NSID, "schemaRef")
    key = _state_key("remote-schema", uri)
    if index is not None:
        cached = index.provider.get_state(key)
        if cached is not None:
            return Schema.from_record(cached)
    atm = _reader(index)
    local = _records().local_schema_from_record(_get(atm, uri)["value"])
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
    from .atmosphere.client import logged_in_dids

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
        raise RecordValidationError(f"entry.metadata.split: {split!r:.80} is not a split name like 'train' "
                                    "(letters, digits, '_', '.', '-', at most 64)")
    return split


@dataclass
class _ShardPlan:
    """Where each shard of a published entry is read from, decided (and checked) before any data request."""

    kind: str
    urls: list[str]  # http/s3 URLs, or blob CIDs (canonical text)
    checksums: dict[str, str]  # url or CID -> sha256 hex, for the shards that have one
    sizes: dict[str, int]  # blob CID -> declared size
    options: dict[str, Any]


def _plan_shards(storage: dict[str, Any], *, uri: str, own: bool, policy: Any, index: Any = None,
                 resolve: bool = True) -> _ShardPlan:
    """Check every location an entry's storage names against the trust policy and parse every
    blob CID and checksum (pure: no request is sent, except DNS lookups when ``resolve``)."""
    from .cid import parse_blob_cid
    from .urls import TRUST_OPTION, check_remote_url

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
                raise RecordValidationError(f"entry.storage shard {i} of {uri}: checksum.digest is not a sha256 "
                                            "hex digest (64 lowercase hex characters)")
            checksums[loc] = c["digest"]
        urls.append(loc)
    if kind == "s3":
        options = _s3_options(storage, index=index, policy=policy, own=own, record_uri=uri, resolve=resolve)
    if not own and not policy.trust_all and kind != "blobs":
        options[TRUST_OPTION] = policy  # every connection for these shards checks its addresses again
    return _ShardPlan(str(kind), urls, checksums, sizes, options)


def get_published_entry(index: Any, uri: str) -> IndexEntry:
    """A published dataset record as an :class:`IndexEntry` (data URLs resolved; no data is read).

    Blob shards appear as the PDS's ``getBlob`` URLs, with the CID parsed (never the record's text).
    """
    rec = _records()
    atm = _reader(index)
    uri = resolve_entry_uri(atm, uri)
    got = _get(atm, uri)
    parsed = rec.entry_from_record(got["value"])
    storage = parsed["storage"]
    did = rec.AtUri.parse(uri).authority
    did = did if did.startswith("did:") else atm.resolve_handle(did)
    if storage["kind"] == "blobs":
        from .cid import parse_blob_cid

        cids = [str(parse_blob_cid(s.get("cid"), f"entry.storage.blobs[{i}] (in {uri})"))
                for i, s in enumerate(storage["shards"])]
        pds = atm.get_repo_pds(did) if did != atm.did else atm.pds_url
        urls = [f"{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={c}" for c in cids]
    else:
        urls = [s["url"] for s in storage["shards"]]
    size = parsed.get("size") or {}
    meta = parsed.get("metadata")
    tags = parsed.get("tags") or []
    return IndexEntry(
        name=parsed["name"], cid=parsed.get("contentCid") or got["cid"], schema_ref=parsed["schemaRef"],
        data_urls=urls, num_samples=_count(size.get("samples")), size_bytes=_count(size.get("bytes")),
        shard_checksums=[str((s.get("checksum") or {}).get("digest", "")) for s in storage["shards"]],
        metadata=meta if isinstance(meta, dict) else {}, created_at=_text(parsed.get("createdAt")),
        description=_text(parsed.get("description")), tags=[t for t in tags if isinstance(t, str)],
        license=_text(parsed.get("license")), published_uri=uri,
    )


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def load_published(path: str, *, sample_type: type | None = None, index: Any = None, verify: bool = True,
                   trust: Any = None):
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
    4. Blob shards are downloaded now into ``$ATDATA_HOME/cache/blobs/<cid>.tar`` (named by the
       parsed CID), each checked against its CID while it downloads and renamed into place only if
       it matches; with ``verify`` also against the record's sha256.
    5. ``http(s)``/``s3`` shards with a sha256 checksum are downloaded into
       ``$ATDATA_HOME/cache/shards/`` and checked the first time any of their samples is needed
       (iteration, ``ds[k]``, ``len(ds)``; ordered reads fetch the next shard meanwhile): no sample
       of a shard is returned before its digest matched, and a mismatch raises
       :class:`~atdata_lab.errors.ShardError`. ``verify=False`` skips this sha256 check (the
       blobs' CID check stays). Shards published without a checksum (atdata's ``"none"``) are
       read as they are, streamed with bounded memory.
    """
    from .dataset import Dataset
    from .urls import resolve_trust

    rec = _records()
    policy = resolve_trust(trust)
    atm = _reader(index)
    uri = resolve_entry_uri(atm, path)
    got = _get(atm, uri)
    parsed = rec.entry_from_record(got["value"])
    split = _split_of(parsed.get("metadata"))
    did = rec.AtUri.parse(uri).authority
    did = did if did.startswith("did:") else atm.resolve_handle(did)
    own = did in _own_dids(index, atm) or policy.trusts_publisher(did)
    st = sample_type or fetch_schema(index, parsed["schemaRef"]).to_type()
    plan = _plan_shards(parsed["storage"], uri=uri, own=own, policy=policy, index=index)
    checks: dict[str, str] = {}
    if plan.kind == "blobs":
        from .cache import fetch_blob, verify_file
        from .cid import parse_blob_cid

        urls = []
        for cid in plan.urls:
            dest = fetch_blob(atm, did, parse_blob_cid(cid), trust=policy, max_bytes=plan.sizes.get(cid))
            want = plan.checksums.get(cid)
            if verify and want and not verify_file(dest, want):
                raise ShardError(f"blob {cid} of {uri} does not match its sha256 checksum")
            urls.append(str(dest))
    else:
        urls = plan.urls
        checks = {u: plan.checksums[u] for u in urls if u in plan.checksums}
    if not urls:
        raise RecordValidationError(f"{uri}: the entry names no shards")
    ds = Dataset(urls, sample_type=st, storage_options=plan.options, checksums=checks if verify else None)
    ds._split = split
    ds.published_uri = uri
    return ds


def _s3_options(storage: dict[str, Any], *, index: Any = None, policy: Any = None, own: bool = False,
                record_uri: str | None = None, resolve: bool = True) -> dict[str, Any]:
    """fsspec options for a ``storageS3`` record: its endpoint (checked against the trust policy),
    and credentials only when the endpoint is one you configured (a store, ``AWS_ENDPOINT_URL``,
    ``TrustPolicy.credential_endpoints``) or the record is yours; otherwise anonymous access."""
    from .urls import check_remote_url, credentials_allowed, resolve_trust

    policy = resolve_trust(policy)
    endpoint = storage.get("endpoint")
    if endpoint is not None:
        endpoint = check_remote_url(endpoint, trusted=policy, record_uri=record_uri, own=own, what="S3 endpoint",
                                    resolve=resolve)
        if not endpoint.lower().startswith(("http://", "https://")):
            raise RecordValidationError(f"entry.storage.endpoint of {record_uri}: {endpoint!r:.200} is not an "
                                        "http(s) URL")
    opts: dict[str, Any] = {}
    if endpoint:
        opts["client_kwargs"] = {"endpoint_url": endpoint}
    stores = [s for s in (getattr(index, "data_store", None), *getattr(index, "_stores", ())) if s is not None]
    mine = [getattr(s, "endpoint_url", None) for s in stores if hasattr(s, "bucket")]
    if not (own or credentials_allowed(endpoint, policy, also=tuple(e for e in mine if e))):
        opts["anon"] = True  # never sign a request to an endpoint the record chose
        return opts
    from .urls import _endpoint_key

    for s in stores:  # a store of the index on this endpoint: its own credentials
        same = (getattr(s, "endpoint_url", None) or None) == (endpoint or None) or (
            endpoint and getattr(s, "endpoint_url", None)
            and _endpoint_key(s.endpoint_url) == _endpoint_key(endpoint))
        if hasattr(s, "bucket") and same:
            return {**s.storage_options, **opts}
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        opts["key"], opts["secret"] = key, secret
    return opts


def list_published(index: Any) -> dict[str, list[dict[str, Any]]]:
    """The dataset, schema and label records in the attached account's repository."""
    atm = _atmosphere(index)
    rec = _records()
    return {kind: list(atm.list_records(nsid, repo=atm.did))
            for kind, nsid in (("entries", rec.ENTRY_NSID), ("schemas", rec.SCHEMA_NSID), ("labels", rec.LABEL_NSID))}


def verify_published(index: Any, at_uri: str, *, batch_size: int = 8) -> VerificationReport:
    """Check a published dataset: records present, CIDs as written, shard checksums, first batch loads."""
    atm = _reader(index)
    rec = _records()
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
        report.add("CIDs match what was written", ok, f"entry {got['cid']}" + ("" if ok else f" != {want.get('entry')}"))
    else:
        report.add("CIDs match what was written", True, "no local record of the write (published elsewhere); skipped")
    entry = get_published_entry(index, uri)
    try:
        ds = load_published(uri, index=index, verify=False)
    except AtdataLabError as e:
        report.add("data reachable", False, str(e))
        return report
    storage = parsed["storage"]
    missing = sum(1 for s in storage["shards"] if not s.get("checksum"))
    report.add("shard checksums recorded", not missing and bool(storage["shards"]),
               f"{len(storage['shards'])} shards" if not missing else
               f"{missing} of {len(storage['shards'])} shards have no checksum: nobody can check their bytes")
    here = storage_only_here(storage)
    report.add("loadable by others", not here,
               describe_storage(storage) if not here else
               f"only loadable on this machine: {describe_storage(storage)}; publish the data to a public store "
               "(copy_to=S3DataStore(...)) or as PDS blobs (copy_to='blobs')")
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
    report.add("shard checksums match", not bad and checked > 0,
               f"mismatch: {bad[0]}" if bad else f"{checked} of {len(ds.urls)} shards checked")
    try:
        batch = next(ds.ordered(batch_size=batch_size))
        shapes = {k: (list(v.shape) if hasattr(v, "shape") else f"list[{len(v)}]") for k, v in batch.as_dict().items()}
        schema = fetch_schema(index, parsed["schemaRef"])
        mism = []
        for f in schema.fields:
            col = batch.as_dict().get(f.name)
            if f.type.kind == "ndarray" and f.type.shape and hasattr(col, "shape"):
                want_shape = [batch_size if len(batch) == batch_size else len(batch), *f.type.shape]
                if any(w is not None and w != g for w, g in zip(want_shape, col.shape)):
                    mism.append(f"{f.name}: {list(col.shape)} vs schema {list(f.type.shape)}")
        report.add("first batch loads with the right shapes", not mism, json.dumps(shapes) if not mism else "; ".join(mism))
    except (AtdataLabError, OSError, StopIteration) as e:
        report.add("first batch loads with the right shapes", False, str(e) or "no samples")
    handle = _publisher_handle(atm, at_uri, uri)
    report.load_line = (f'atdata.load_dataset("@{handle}/{entry.name}", split="train")' if handle
                        else f'atdata.load_dataset("{uri}", split="train")')
    return report


def _publisher_handle(atm: Any, asked: str, uri: str) -> str | None:
    """The handle of the repository that published ``uri`` (not the reader's), if it is known."""
    if asked.startswith("@") and not asked[1:].startswith("did:"):
        return asked[1:].partition("/")[0]
    did = _records().AtUri.parse(uri).authority
    if did == getattr(atm, "did", None):
        return atm.handle
    try:
        return atm.handle_of(did)
    except AtdataLabError:
        return None


def schema_version_of(ref: str) -> str:
    return parse_schema_ref(ref)[1]
