"""Carrying a plan out: the intent, the data (copied or uploaded), ONE atomic ``applyWrites``,
then the local bookkeeping; crash points for the crash tests, and cancellation.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..atmosphere import records as rec
from ..cid import BlobCID
from ..entry import IndexEntry
from ..errors import (
    AtdataLabError,
    ManifestError,
    PromotionCancelled,
    PromotionConflictError,
    RecordConflictError,
    RecordNotFoundError,
    RecordTooLargeError,
    ShardError,
)
from ..manifest.shard_manifest import read_manifest_bytes
from ..progress import ProgressEvent
from ..shards import ShardInfo
from ..stores.local import is_safe_dataset_name
from ..transfer import copy_shards, sha256_of
from ..urls import open_url
from .published import _atmosphere, _state_key, _storage_for

if TYPE_CHECKING:
    from .plan import PlannedWrite, PromotionPlan

__all__ = ["PromotionCancelled", "PromotionResult", "promote_to_atmosphere"]

_CRASH_ENV = "ATDATA_LAB_CRASH_AT"  # test hook: kill -9 ourselves at a named step


def _crash_point(step: str) -> None:
    """Crash tests set ``ATDATA_LAB_CRASH_AT=<step>`` to kill this process at that step."""
    if os.environ.get(_CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


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


def _execute(plan: PromotionPlan, report: Any, cancel: Any = None) -> PromotionResult:
    def check_cancel(where: str) -> None:
        if cancel is not None and cancel.is_set():
            raise PromotionCancelled(
                f"promotion of {plan.entry.name!r} cancelled {where}; nothing was published"
            )

    index, entry = plan.index, plan.entry
    atm = _atmosphere(index)
    start = atm.round_trips
    d = plan.schema_decision
    if d.action == "conflict":
        raise PromotionConflictError(
            f"schema {d.schema.name}@{d.schema.version} is already published at {d.uri} with different fields "
            f"({'; '.join(c.name + ' ' + c.status for c in d.diff.changed()) if d.diff else ''}). Publish ours as a "
            f"new version: index.publish_schema(SampleType, version={d.suggested_version!r}), re-write the "
            "entry, then promote again",
            diff=d.diff,
            suggested_version=d.suggested_version,
        )
    if plan.blocking:
        raise RecordTooLargeError("cannot promote: " + "; ".join(plan.blocking))
    if plan.already_published:
        _remember_values(index, plan)
        report(ProgressEvent("promote", 1, 1, "steps", "already published", finished=True))
        return PromotionResult(
            plan.already_published,
            d.uri,
            plan.label_uri,
            True,
            entry.cid,
            list(entry.data_urls),
            [],
            already_published=True,
        )

    steps = 4
    report(ProgressEvent("promote", 0, steps, "steps", "recording intent"))
    check_cancel("before it started")
    _crash_point("before_intent")
    intent_key = _state_key("promotion-intent", plan.did, plan.entry_uri.rsplit("/", 1)[1])
    earlier_intent = index.provider.get_state(intent_key)
    index.provider.set_state(
        intent_key,
        {"entry": entry.name, "name": plan.name, "at": time.time(), "writes": [w.uri for w in plan.writes]},
    )
    _crash_point("after_intent")

    # data
    report(ProgressEvent("promote", 1, steps, "steps", "moving data"))
    data_urls = list(entry.data_urls)
    writes = [replace(w, value=dict(w.value)) for w in plan.writes]
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
        copied = copy_shards(
            infos,
            plan.copy_to,
            target_name,
            source_options=index._options_for(entry.data_urls),
            progress=report,
            on_shard=on_shard,
            in_use=index._referenced,
        )
        data_urls = [c.url for c in copied]
        assert all(isinstance(c, ShardInfo) for c in copied)
        assert entry_write is not None  # a copy is new storage: the entry record changes
        entry_write.value["storage"], _ = _storage_for(data_urls, entry.shard_checksums, plan.copy_to)
        rec.validate_record(entry_write.value, rec.ENTRY_NSID)
    elif plan.data.kind == "blobs":
        blobs = []
        for i, (url, checksum) in enumerate(zip(entry.data_urls, entry.shard_checksums)):
            opts = index._options_for([url])
            if sha256_of(url, opts) != checksum:
                raise ShardError(
                    f"shard {url} changed since it was indexed (sha256 mismatch); re-insert the dataset"
                )
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

    # the shards' manifests, as blobs the entry record lists (uploaded before the record)
    if plan.manifests is not None and entry_write is not None:
        entry_write.value["manifests"] = _upload_manifests(atm, plan, index, report, check_cancel)
        rec.validate_record(entry_write.value, rec.ENTRY_NSID)

    # one atomic write (unless an earlier, interrupted run already made it: its intent says so)
    report(ProgressEvent("promote", 2, steps, "steps", "writing records"))
    check_cancel("before writing records")
    _crash_point("before_apply")
    witness = entry_write or next(w for w in writes if w.collection != rec.SCHEMA_NSID)
    landed = _landed_earlier(atm, writes, witness) if earlier_intent is not None else None
    try:
        results = landed if landed is not None else atm.apply_writes([w.as_write() for w in writes])
    except AtdataLabError as e:
        if not isinstance(e, RecordConflictError):
            raise
        # an earlier promotion (other options, or lost local state) holds these keys: update them
        writes = [
            replace(w, action="update" if w.collection != rec.SCHEMA_NSID else w.action)
            for w in writes
            if w.collection != rec.SCHEMA_NSID or not _exists(atm, w)
        ]
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
        scan["items"].append(
            {"uri": d.uri, "name": local["name"], "version": local["version"], "local": local}
        )
        index.provider.set_state(_state_key("schema-scan", plan.did), scan)
    pub_key = _state_key("published", entry.name, plan.did, plan.name, plan.entry_uri.rsplit("/", 1)[1])
    before = index.provider.get_state(pub_key) or {}
    record_cids = {**before.get("record_cids", {}), **cids}
    if entry_write is not None:
        record_cids["entry"] = rec.record_cid(entry_write.value)
    index.provider.set_state(
        pub_key,
        {
            "entry_uri": plan.entry_uri,
            "schema_uri": d.uri,
            "label_uri": plan.label_uri,
            "data_urls": data_urls,
            "record_cids": record_cids,
            "at": time.time(),
            "name": plan.name,
            "did": plan.did,
            "entry": entry.name,
            "label_created_at": plan.label_created_at,
            "label_version": plan.label_version,
        },
    )
    _remember_values(index, plan)
    index.provider.set_state(intent_key, None)
    index.provider.set_state(_state_key("publication-time", plan.did, plan.entry_uri.rsplit("/", 1)[1]), None)
    report(ProgressEvent("promote", 4, steps, "steps", "done", finished=True))
    return PromotionResult(
        at_uri=plan.entry_uri,
        schema_uri=d.uri,
        label_uri=plan.label_uri,
        schema_reused=d.action == "reuse",
        cid=entry.cid,
        data_urls=data_urls,
        written=[r["uri"] for r in results],
        round_trips=atm.round_trips - start,
    )


def _upload_manifests(
    atm: Any, plan: PromotionPlan, index: Any, report: Any, check_cancel: Any
) -> list[dict[str, Any]]:
    """Upload the manifest blobs the plan lists as new (each checked to be the planned bytes);
    the record's ``manifests``, one per shard, with the references the PDS gave."""
    assert plan.manifests is not None
    per: dict[str, list[Any]] = {}
    for b in plan.manifests.blobs:
        per.setdefault(b.shard, []).append(b)
    total = len(plan.manifests.uploads)
    done = 0
    out = []
    for url in plan.entry.data_urls:
        blobs = per[url]
        got = read_manifest_bytes(url, index._options_for([url])) if any(b.upload for b in blobs) else None
        refs = []
        for b in blobs:
            if not b.upload:
                refs.append(b.ref())
                continue
            data = (got[1] if b.kind == "header" else got[2]) if got is not None else None
            if data is None or str(BlobCID(hashlib.sha256(data).digest())) != b.cid:
                raise ManifestError(
                    f"the manifest of shard {url} changed since the promotion was planned ({b.source}); "
                    "nothing was published: plan the promotion again"
                )
            ref = atm.upload_blob(data, content_type=b.mime_type)
            if rec.blob_cid(ref) != b.cid:
                raise ManifestError(
                    f"the PDS stored the manifest file {b.source} as blob {rec.blob_cid(ref)}, not {b.cid}; "
                    "nothing was published"
                )
            refs.append(ref)
            done += 1
            report(ProgressEvent("upload", done, total, "manifest files", b.source.rsplit("/", 1)[-1]))
            check_cancel("while uploading manifests")
        out.append(rec.manifest_ref(refs[0], refs[1] if len(refs) > 1 else None))
    return out


def _remember_values(index: Any, plan: PromotionPlan) -> None:
    """The local entry takes what is published, so the next promotion proposes it."""
    index.provider.update_entry(
        plan.entry.name,
        published_uri=plan.entry_uri,
        description=plan.description,
        tags=list(plan.tags),
        license=plan.license,
        metadata=dict(plan.metadata),
    )


def _landed_earlier(
    atm: Any, writes: list[PlannedWrite], witness: PlannedWrite
) -> list[dict[str, Any]] | None:
    """After an interrupted run: if its entry (or label) record is on the PDS exactly as planned, the
    atomic write happened (all records landed together); return results without writing again."""
    try:
        cur = atm.get_record(witness.collection, witness.rkey)
    except RecordNotFoundError:
        return None
    if cur["cid"] != rec.record_cid(witness.value):
        return None
    return [
        {
            "action": w.action,
            "uri": w.uri,
            "cid": rec.record_cid(w.value),
            "collection": w.collection,
            "rkey": w.rkey,
            "value": w.value,
        }
        for w in writes
    ]


def _exists(atm: Any, w: PlannedWrite) -> bool:
    try:
        atm.get_record(w.collection, w.rkey)
        return True
    except RecordNotFoundError:
        return False


def _open_for_upload(url: str, opts: dict[str, Any]):
    return open_url(url, opts)


def _shard_infos(index: Any, entry: IndexEntry) -> list:
    ds = index.dataset(entry)
    return [ds.shard_info(u) for u in entry.data_urls]


def promote_to_atmosphere(
    local_entry: IndexEntry | str,
    local_index: Any,
    atmosphere_client: Any,
    *,
    data_store: Any = None,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
) -> str:
    """Publish an entry of ``local_index`` with ``atmosphere_client``; returns the entry record's at:// URI.

    atdata's function form of :meth:`~atdata_lab.index.Index.promote_entry` (plan, one atomic
    write, schema reused when identical). ``data_store`` copies the shards there first; ``None``
    publishes where they are, which must be somewhere others can read (local files are refused,
    where atdata publishes them as URLs nobody else can open).
    """
    entry_name = local_entry if isinstance(local_entry, str) else local_entry.name
    index = local_index
    if getattr(local_index, "atmosphere", None) is not atmosphere_client:  # the same index, this account
        index = type(local_index)(
            local_index.provider, data_store=local_index.data_store, atmosphere=atmosphere_client
        )
    return index.promote_entry(
        entry_name,
        progress=False,
        name=name,
        description=description,
        tags=tags,
        license=license,
        copy_to=data_store,
    )
