"""PromotionWizard, kernel side, against the real sandbox PDS: every step driven through the
programmatic twins (and the buttons' own handlers where it matters), each schema decision, inline
validation gating Next, Back keeping input, Cancel mid-publish, re-opening on a published entry,
and the app password never leaking."""

from __future__ import annotations

import gc
import html
import json
import logging
import os
import re
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Optional

import ipywidgets
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab import promotion
from atdata_lab import views as plan_view
from atdata_lab.atmosphere import records as rec
from atdata_lab.errors import (
    AuthenticationError,
    NoAtmosphereError,
    PDSUnavailableError,
    PromotionConflictError,
    RateLimitedError,
    RecordValidationError,
)
from atdata_lab.promotion import PromotionCancelled


@atdata.packable
class FeatureSample:
    features: NDArray
    label: int


def features(n=100, seed=0, dim=16):
    rng = np.random.default_rng(seed)
    return [
        FeatureSample(features=rng.standard_normal(dim).astype(np.float32), label=i % 10) for i in range(n)
    ]


def counts(client):
    return tuple(
        len(list(client.list_all_records(n, repo=client.did)))
        for n in (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID)
    )


@pytest.fixture
def client(pds_account):
    from atdata_lab.atmosphere import Atmosphere

    return Atmosphere.login(pds_account.handle, pds_account.password)


@pytest.fixture
def index(client, tmp_path):
    idx = atdata.Index(
        path=tmp_path / "index.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "data")
    )
    idx.write(
        features(),
        name="fv",
        maxcount=50,
        progress=False,
        description="feature vectors",
        tags=["features"],
        license="MIT",
    )
    return idx


def to_preview(w, entry_name="fv", mode="keep", **describe):
    """Drive a connected wizard from Connect to Preview (``mode=None``: the Data step's default)."""
    from atdata_lab.widgets import PromotionWizard

    assert isinstance(w, PromotionWizard)
    if w.step == "connect":
        w.next()
    w.select_entry(entry_name)
    assert w.next() == "describe"
    if describe:
        assert w.set_description(**describe) == ""
    assert w.next() == "data"
    if mode is not None:
        w.set_data(mode)
    assert w.next() == "preview"
    return w.plan


def entry_record(client, uri):
    """The dataset record as it is on the PDS now: {uri, cid, value}."""
    return client.get_record(rec.ENTRY_NSID, uri.rsplit("/", 1)[1])


# ---------------------------------------------------------------------------------------------
# the whole flow
# ---------------------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_every_step_from_login_to_verify(pds_account, client, tmp_path):
    from atdata_lab.widgets import PromotionWizard

    bare = atdata.Index(path=tmp_path / "bare.db", data_store=atdata.LocalDiskStore(tmp_path / "d"))
    bare.write(features(), name="fv", maxcount=50, progress=False, manifest=True)
    w = PromotionWizard(bare)
    assert w.step == "connect" and not w.can_next and w._next_btn.disabled
    assert w._pds_url.value == os.environ["ATDATA_PDS_URL"]  # defaults to ATDATA_PDS_URL
    assert w._login_form.layout.display != "none"
    with pytest.raises(ValueError, match="log in first"):
        w.next()

    atm = w.login(pds_account.handle, pds_account.password)
    assert bare.atmosphere is atm and w.status == "connected"
    assert w.identity == f"@{pds_account.handle} ({atm.did}) on {atm.pds_url}"
    assert pds_account.handle in w._identity.value and w._login_form.layout.display == "none"
    assert w.can_next

    assert w.next() == "dataset" and not w.can_next
    assert [name for _, name in w._entries.options] == ["fv"]
    label = w._entries.options[0][0]
    assert "100 samples" in label and "FeatureSample" in label and "not published" in label
    w.select_entry("fv")
    assert "fv" in w._entry_card.value and w.can_next

    assert w.next() == "describe"
    assert (w._name.value, w._description.value, list(w._tags.value), w._license.value) == ("fv", "", [], "")
    assert (
        w.set_description(
            description="Feature vectors for classification", tags=["features", "embeddings"], license="MIT"
        )
        == ""
    )
    assert w.next() == "data"
    assert w.data_plan is not None and "local file paths that nobody else can reach" in w._data_info.value
    assert w.next() == "preview"

    fresh = bare.plan_promotion("fv", **w.promotion_options())
    assert w.plan.to_dict() == fresh.to_dict()
    assert w._decision.value == plan_view.plan_head_html(fresh)
    assert w._plan_body.value == plan_view.plan_body_html(fresh, ui=True)
    assert "Publish new schema FeatureSample@1.0.0" in w._decision.value
    # the shards' manifests are published with the data: their blobs and bytes are in the plan shown
    assert fresh.manifests is not None and len(fresh.manifests.blobs) == 4
    assert all(f"{b.bytes:,} bytes ({b.cid}" in w._plan_body.value for b in fresh.manifests.blobs)
    assert counts(client) == (0, 0, 0)  # nothing has been written at this point
    assert "Nothing has been written yet" in w._nothing_written.value

    assert w.next() == "publish" and not w.can_next
    result = w.publish()
    # kept at local file paths: published and every check passes, but only this machine can load it
    assert w.status == "verified, only loadable on this machine" and w.step == "verify"
    assert result.at_uri == w.published_uri == bare.get_entry_by_name("fv").published_uri
    assert counts(client) == (1, 1, 1)
    assert w.report.failed == ["loadable by others"] and [c[0] for c in w.report.checks] == [
        "entry record present",
        "schema record present",
        "label record present",
        "CIDs match what was written",
        "shard checksums recorded",
        "loadable by others",
        "shard checksums match",
        "manifests match the shards",
        "first batch loads with the right shapes",
    ]
    for uri in w.uris().values():
        assert uri in w._checks.value
    assert "only loadable on this machine" in w._checks.value and "All checks passed" not in w._checks.value
    assert "Some checks failed" not in w._checks.value and "Upload as PDS blobs" in w._checks.value
    assert w.load_line == f'atdata.load_dataset("@{pds_account.handle}/fv", split="train")'
    assert "✔ ok" in w._checks.value and "[16]" not in w.load_line
    assert all(
        f"atdata-step-{s} atdata-step-done" in w._indicator.value
        for s in ("connect", "dataset", "describe", "data", "preview", "publish")
    )
    got = atdata.load_dataset(result.at_uri, split="train")
    assert len(got) == 100


@pytest.mark.sandbox
def test_promote_entry_and_the_wizard_share_one_code_path(index, client):
    """The plan shown is index.plan_promotion() of the same input; promote_entry() then finds it done."""
    from atdata_lab.widgets import PromotionWizard

    w = PromotionWizard(index, "fv")
    w.wait()  # what is published is read in the background (nothing here); Next waits for it
    assert w.step == "connect" and w.can_next and "Connected as" in w._identity.value
    opts = {"description": "d", "tags": ["a", "b"], "license": "CC-BY-4.0"}
    plan = to_preview(w, **opts)
    assert w.promotion_options() == {"name": "fv", "copy_to": "keep", **opts}
    assert plan.to_dict() == index.plan_promotion("fv", copy_to="keep", **opts).to_dict()
    assert plan.to_dict() == index.plan_promotion("fv", **opts).to_dict()  # nothing published: None keeps too
    w.next()
    w.publish()
    again = index.plan_promotion("fv", **opts)
    assert again.already_published == w.published_uri  # the engine sees the wizard's write as its own
    assert index.promote_entry("fv", progress=False, **opts) == w.published_uri
    assert counts(client) == (1, 1, 1)


# ---------------------------------------------------------------------------------------------
# schema decisions: publish, reuse, conflict
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
def test_schema_decisions_publish_reuse_conflict(index, client, tmp_path):
    from atdata_lab.widgets import PromotionWizard, SchemaDiff

    first = PromotionWizard(index, "fv")
    plan = to_preview(first)
    assert plan.schema_decision.action == "publish"
    assert "Publish new schema FeatureSample@1.0.0" in first._decision.value and first.schema_diff is None
    first.next()
    schema_uri = first.publish().schema_uri

    index.write(features(30, seed=3), name="fv2", progress=False)
    second = PromotionWizard(index, "fv2")
    plan = to_preview(second, "fv2")
    assert plan.schema_decision.action == "reuse" and plan.schema_decision.uri == schema_uri
    assert f"Reuse existing schema {schema_uri}" in second._decision.value
    assert plan.to_dict() == index.plan_promotion("fv2").to_dict()
    assert [w.collection for w in plan.writes] == [rec.ENTRY_NSID, rec.LABEL_NSID]
    second.next()
    assert second.publish().schema_reused

    @atdata.packable
    class FeatureSample:  # noqa: F811 - same name and version, other fields, "another notebook"
        features: NDArray
        label: int
        note: Optional[str] = None

    other = atdata.Index(
        path=tmp_path / "other.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "other")
    )
    other.write(
        [FeatureSample(features=np.zeros(16, np.float32), label=1, note="x")], name="clash", progress=False
    )
    before = counts(client)
    third = PromotionWizard(other, "clash")
    plan = to_preview(third, "clash")
    d = plan.schema_decision
    assert d.action == "conflict" and d.suggested_version == "1.1.0"
    assert (
        "Conflict" in third._decision.value
        and "Suggested version: <code>1.1.0</code>" in third._decision.value
    )
    embedded = third.schema_diff
    assert isinstance(embedded, SchemaDiff) and "atdata-schema-diff" in embedded._dom_classes
    assert embedded.diff.to_dict()["fields"] == d.diff.to_dict()["fields"]
    assert (embedded.verdict, embedded.next_version) == ("compatible", "1.1.0")
    assert [r.field for r in embedded.rows if r.status == "added"] == ["note"]
    assert plan.to_dict() == other.plan_promotion("clash").to_dict()
    assert not third.can_next and third._next_btn.disabled
    with pytest.raises(ValueError, match="blocked"):
        third.next()
    with pytest.raises(ValueError, match="blocked"):
        third.publish()
    assert counts(client) == before


# ---------------------------------------------------------------------------------------------
# Describe: inline validation gates Next (the engine's own checks)
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
@pytest.mark.parametrize(
    "field, value, words",
    [
        ("name", "", "name: a dataset name is required"),
        ("name", "n" * 201, "entry.name: 201 characters, the limit is 200"),
        ("description", "x" * 5001, "entry.description: 5001 characters, the limit is 5000"),
        ("tags", [f"t{i}" for i in range(31)], "entry.tags: 31 items, the limit is 30"),
        ("tags", ["y" * 151], "entry.tags[0]: 151 characters, the limit is 150"),
        ("license", "MIT-ish", "license: license 'MIT-ish' is not an SPDX identifier"),
    ],
)
def test_validation_gates_next(index, client, field, value, words):
    from atdata_lab.widgets import PromotionWizard

    w = PromotionWizard(index, "fv")
    w.next()
    w.next()
    assert w.step == "describe" and w.can_next
    client.round_trips = 0
    msg = w.set_description(**{field: value})
    assert words in msg and w.validation == msg and words in html.unescape(w._validation.value)
    assert not w.can_next and w._next_btn.disabled
    with pytest.raises(ValueError, match="cannot go on from Describe"):
        w.next()
    assert client.round_trips == 0  # validated inline, no PDS call
    # the very message the engine gives for the same input
    opts = w.promotion_options()
    with pytest.raises(RecordValidationError) as engine:
        index.plan_promotion("fv", **opts)
    assert str(engine.value) == msg
    fixed = {"name": "fv", "description": "ok", "tags": ["ok"], "license": "mit"}[field]
    assert w.set_description(**{field: fixed}) == "" and w.can_next and not w._next_btn.disabled
    assert w.next() == "data"


@pytest.mark.sandbox
def test_metadata_the_lexicon_rejects_is_reported_at_describe(client, tmp_path):
    from atdata_lab.widgets import PromotionWizard

    idx = atdata.Index(
        path=tmp_path / "m.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "m")
    )
    idx.write(features(5), name="floaty", metadata={"accuracy": 0.93}, progress=False)
    w = PromotionWizard(idx, "floaty")
    w.next()
    w.next()
    assert "metadata.accuracy" in w.validation and "float" in w.validation and not w.can_next


# ---------------------------------------------------------------------------------------------
# Back keeps input; Cancel (not publishing) closes and Start over keeps it too
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
def test_back_and_next_keep_every_input(index, tmp_path):
    from atdata_lab.widgets import PromotionWizard

    w = PromotionWizard(index, "fv")
    folder = str(tmp_path / "public")
    to_preview(w, description="kept", tags=["x", "y"], license="Apache-2.0", name="fv-public")
    w.back()
    w.set_data("copy", folder)
    assert w.data_plan.data.kind == "copy" and "Copy 2 shards" in w._data_info.value
    assert w.next() == "preview"
    first = w.plan.to_dict()
    assert first["data"]["kind"] == "copy" and folder in first["data"]["target"]
    assert [w.back() for _ in range(4)] == ["data", "describe", "dataset", "connect"]
    assert w.back() == "connect" and w._back_btn.disabled  # the first step has no Back
    assert (w._name.value, w._description.value, list(w._tags.value), w._license.value) == (
        "fv-public",
        "kept",
        ["x", "y"],
        "Apache-2.0",
    )
    assert (w._data_mode.value, w._store.value) == ("copy", folder)
    assert w._entries.value == "fv"
    for step in ("dataset", "describe", "data", "preview"):
        assert w.next() == step
    assert w.plan.to_dict() == first
    w.select_entry("fv")  # the same entry again keeps what was typed
    assert w._description.value == "kept"

    assert w.cancel() == "closed" and "Nothing was published" in w._cancelled_msg.value
    assert w._cancelled in w.children and w._nav not in w.children
    assert w.restart() == "connect" and w._description.value == "kept" and w._store.value == folder


# ---------------------------------------------------------------------------------------------
# Publish: off the UI thread, progress, Cancel mid-publish, errors with what to do next
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
@pytest.mark.parametrize("mode, cancel_on", [("keep", ("promote", "moving data")), ("blobs", ("upload", 1))])
def test_cancel_mid_publish_writes_no_record(index, client, mode, cancel_on):
    from atdata_lab.widgets import PromotionWizard

    w = PromotionWizard(index, "fv")
    to_preview(w, mode=mode)
    w.next()
    seen = []

    def cancel_midway(event):
        seen.append(event)
        task, what = cancel_on
        if event.task == task and (event.message == what or event.done == what):
            assert w.cancel() == "cancelling"

    w.on_progress(cancel_midway)
    assert w.publish() is None
    assert w.status == "cancelled" and w.step == "publish"
    assert "Cancelled" in w._publish_info.value and "nothing was published" in w._publish_info.value
    assert html.unescape(w._publish_info.value).lower().count("nothing was published") == 1  # said once
    # the progress bar says it stopped where it did, not "Publishing" half full
    assert w._progress._bar.description == "Cancelled" and w._progress._bar.bar_style == "warning"
    assert w._progress.text.endswith("cancelled here")
    assert counts(client) == (0, 0, 0)  # the single atomic write never happened
    assert index.get_entry_by_name("fv").published_uri is None and not w.published_uri
    assert not w.errors.visible  # a cancel is not an error
    assert w._progress.events and not w._publish_btn.disabled
    # publishing again goes through and writes one of each
    seen.clear()
    w._progress_subscribers.clear()
    result = w.publish()
    assert result is not None and counts(client) == (1, 1, 1)
    assert w._progress._bar.description == "Publishing" and w._progress._bar.bar_style != "warning"
    # local file paths are loadable on this machine only; blobs by anyone
    assert w.report.failed == ([] if mode == "blobs" else ["loadable by others"])


@pytest.mark.sandbox
def test_publish_runs_off_the_ui_thread_and_the_widget_stays_live(index, client):
    from atdata_lab.widgets import PromotionWizard

    w = PromotionWizard(index, "fv")
    to_preview(w)
    w.next()
    gate, reached = threading.Event(), threading.Event()
    threads = set()

    def hold(event):
        threads.add(threading.current_thread().name)
        if event.message == "moving data":
            reached.set()
            assert gate.wait(30)

    w.on_progress(hold)
    w._publish_btn.click()  # the button's own handler: returns at once
    assert reached.wait(30)
    assert w.busy and w.status == "publishing" and w._publish_btn.disabled and w._next_btn.disabled
    assert w._progress.layout.display == "flex"
    w._search.value = "f"  # the kernel still handles the front end meanwhile
    with pytest.raises(ValueError, match="Cancel it first"):
        w.back()
    gate.set()
    w.wait()
    assert threads == {"Publishing"} and threading.current_thread().name not in threads
    assert w.status == "verified, only loadable on this machine" and counts(client) == (1, 1, 1)
    assert "done" in w._progress.text


@pytest.mark.sandbox
def test_publish_error_is_shown_with_what_to_do_next(index, client):
    from atdata_lab.widgets import PromotionWizard

    w = PromotionWizard(index, "fv")
    to_preview(w, mode="blobs")
    w.next()
    shard = Path(index.get_entry_by_name("fv").data_urls[0])
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")  # the data changed since it was indexed
    with pytest.raises(atdata.ShardError, match="changed since it was indexed"):
        w.publish()
    assert w.status == "publishing failed" and w.errors.visible and w.step == "publish"
    assert "Publishing failed: ShardError" in w.errors.message
    assert "What to do next" in w.errors._html.value and w.errors.advice
    assert counts(client) == (0, 0, 0) and not w._publish_btn.disabled and not w._back_btn.disabled


@pytest.mark.sandbox
def test_login_errors_are_readable(index, pds_account, tmp_path):
    from atdata_lab.widgets import PromotionWizard

    bare = atdata.Index(path=tmp_path / "b.db")
    w = PromotionWizard(bare)
    with pytest.raises(AuthenticationError):
        w.login(pds_account.handle, "wrong-password-123")
    assert "Logging in failed" in w.errors.message and "check the handle and password" in w.errors.message
    assert "app password" in w.errors.advice and w.status == "logging in failed" and not w.can_next
    with pytest.raises(PDSUnavailableError):
        w.login(pds_account.handle, "whatever", "http://127.0.0.1:9")
    assert "PDS URL" in w.errors.advice
    with pytest.raises(AuthenticationError, match="type your app password"):
        w.login(pds_account.handle, "")


# ---------------------------------------------------------------------------------------------
# Data: warnings for local paths and the blob limit
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
def test_data_step_warns_about_local_paths_and_the_blob_limit(index, client):
    from atdata_lab.widgets import PromotionWizard

    index.write(
        [FeatureSample(features=np.zeros(1_600_000, np.float32), label=0)], name="big", progress=False
    )
    w = PromotionWizard(index, "big")
    w.next()
    w.next()
    w.next()
    assert w.step == "data"
    assert "local file paths that nobody else can reach" in w._data_info.value
    # the advice names the Data step's choices, not the library's arguments
    local = html.unescape(w._data_info.value)
    assert "“Copy to a store”" in local and "“Upload as PDS blobs”" in local and "copy_to=" not in local
    w.set_data("blobs")
    info = html.unescape(w._data_info.value)
    assert info.count("exceed the PDS blob limit") == 1 and "blocks publishing" in info  # said once
    assert "local file paths" not in info
    # Next stays disabled on the Data step, and says why
    assert not w.can_next and w._next_btn.disabled
    with pytest.raises(ValueError, match="blob limit"):
        w.next()
    assert w.step == "data"
    w.make_plan()  # the plan, asked for from code, shows the block once too
    body = html.unescape(w._plan_body.value)
    assert w.plan.blocking and "atdata-plan-blocking" in body and body.count("exceed the PDS blob limit") == 1
    with pytest.raises(ValueError, match="blob limit"):
        w.publish()
    w.set_data("copy", "")
    assert not w.can_next and "give the folder" in w._data_info.value
    assert counts(client) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# re-opening on a published entry
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
def test_reopening_on_a_published_entry_says_so_and_does_not_publish_twice(index, client):
    from atdata_lab.widgets import PromotionWizard

    uri = index.promote_entry("fv", progress=False)
    assert counts(client) == (1, 1, 1)
    before = entry_record(client, uri)
    w = PromotionWizard(index, "fv")
    w.wait()
    assert (
        w._already.layout.display == "flex"
        and uri in w._already.value
        and "already published" in w._already.value
    )
    assert w.published_uri == uri and w.published.uri == uri
    plan = to_preview(w, mode=None)  # every default
    assert w._data_mode.value == "published" and w.copy_to() is None
    assert plan.already_published == uri and not plan.writes and plan.pds_calls == 0
    assert "Already published" in w._decision.value and "No records will be written" in w._plan_body.value
    assert w.next() == "publish"
    assert not w._publish_btn.disabled and uri in w._publish_info.value
    assert "not be published twice" in w._publish_info.value and w.can_next
    w._publish_btn.click()  # the user clicks Publish anyway: the engine writes nothing
    w.wait()
    result = w.result
    assert result.already_published and result.at_uri == uri and result.written == []
    assert "nothing was written" in w._publish_info.value
    assert w.status == "verified, only loadable on this machine" and w.report.failed == ["loadable by others"]
    assert counts(client) == (1, 1, 1) and entry_record(client, uri)["cid"] == before["cid"]


@pytest.mark.sandbox
def test_describe_and_data_start_from_what_is_published(index, client):
    """Issue 12, kernel side: published as PDS blobs with CC0-1.0 (values the local entry does not
    carry); then Promote… -> Next x5 -> Publish. Describe is pre-filled from the published record,
    Data defaults to the published storage, and nothing is written."""
    from atdata_lab.widgets import PromotionWizard

    uri = index.promote_entry(
        "fv", copy_to="blobs", description="tiles, published", tags=["pub"], license="CC0-1.0", progress=False
    )
    before = entry_record(client, uri)
    index.provider.update_entry("fv", description=None, tags=[], license=None)
    assert index.get_entry_by_name("fv").license is None

    w = PromotionWizard(index, "fv")
    assert w.next() == "dataset" and w.next() == "describe"
    assert (w._description.value, list(w._tags.value), w._license.value) == (
        "tiles, published",
        ["pub"],
        "CC0-1.0",
    )
    assert w.published.uri == uri and w.published.storage_kind == "blobs"
    assert w.next() == "data"
    assert w.data_choices == ["published", "keep", "copy", "blobs"] and w._data_mode.value == "published"
    assert w._data_mode.options[0][0] == "Keep the published storage (2 PDS blob(s))"
    assert w.copy_to() is None and w.data_plan.data.kind == "reuse"
    assert "nothing is copied or uploaded" in w._data_info.value
    w._data_mode.value = "keep"  # a click on "Keep the current URLs": checked at once, a downgrade
    w.wait()
    assert w.copy_to() == "keep" and w.data_plan is None
    assert (
        "removes or weakens what is published" in w._data_info.value
        and "only on this machine" in w._data_info.value
    )
    w._data_mode.value = "blobs"  # the same shards are already these blobs: nothing to upload
    w.wait()
    assert w.copy_to() == "blobs" and w.data_plan.data.kind == "reuse" and not w.errors.visible
    w._data_mode.value = "published"  # and back
    w.wait()
    assert w.data_plan.data.kind == "reuse" and "nothing is copied or uploaded" in w._data_info.value
    assert w.next() == "preview"
    opts = w.promotion_options()
    assert opts == {
        "name": "fv",
        "description": "tiles, published",
        "tags": ["pub"],
        "license": "CC0-1.0",
        "copy_to": None,
    }
    assert w.plan.to_dict() == index.plan_promotion("fv", **opts).to_dict()
    assert w.plan.already_published == uri and w.plan.writes == [] and w.plan.changes == []
    assert uri in w._changes.value and "PDS blob" in w._changes.value  # "Published now"
    assert w.next() == "publish"
    w._publish_btn.click()
    w.wait()
    assert w.status == "verified" and w.report.ok  # blobs: loadable by others too
    after = entry_record(client, uri)
    assert after["cid"] == before["cid"] and counts(client) == (1, 1, 1)
    parsed = rec.entry_from_record(after["value"])
    assert parsed["storage"]["kind"] == "blobs" and parsed["license"] == "CC0-1.0"


@pytest.mark.sandbox
def test_removing_or_weakening_what_is_published_needs_confirmation(index, client):
    from atdata_lab.errors import PromotionDowngradeError
    from atdata_lab.widgets import PromotionWizard

    uri = index.promote_entry("fv", copy_to="blobs", license="CC0-1.0", progress=False)
    before = entry_record(client, uri)
    w = PromotionWizard(index, "fv")
    w.next()
    w.next()
    assert w._license.value == "CC0-1.0"
    assert w.set_description(license="") == ""  # the user empties License ...
    assert w.next() == "data"
    w.set_data("keep")  # ... and keeps the local file paths
    assert w.data_plan is None and "removes or weakens what is published" in w._data_info.value
    assert "Preview asks you to confirm it" in w._data_info.value
    assert w.next() == "preview"
    assert w.plan is None and w.status == "needs confirmation" and not w.errors.visible
    assert [d.field for d in w.downgrades] == ["license", "storage"]
    box = html.unescape(w._downgrade_list.value)
    assert (
        "CC0-1.0" in box and "(none)" in box and "only on this machine" in box and "clear=['license']" in box
    )
    assert w._downgrade_box.layout.display == "flex" and not w._confirm.value
    assert not w.can_next and w._next_btn.disabled and w._publish_btn.disabled
    with pytest.raises(ValueError, match="remove or weaken"):
        w.next()
    with pytest.raises(ValueError, match="confirm it on purpose"):
        w.publish()
    # promote_entry refuses the very same call, with the same downgrades
    with pytest.raises(PromotionDowngradeError) as refused:
        index.promote_entry("fv", progress=False, **w.promotion_options())
    assert [(d.field, d.old, d.new) for d in refused.value.downgrades] == [
        (d.field, d.old, d.new) for d in w.downgrades
    ]
    assert counts(client) == (1, 1, 1) and entry_record(client, uri)["cid"] == before["cid"]

    w._confirm.value = True  # the checkbox: plan again, on purpose
    w.wait()
    opts = w.promotion_options()
    assert opts["clear"] == ["license"] and opts["downgrade"] is True and opts["copy_to"] == "keep"
    plan = w.plan
    assert plan is not None and plan.to_dict() == index.plan_promotion("fv", **opts).to_dict()
    assert len(plan.intents) == 2 and all(i in html.unescape(w._downgrade_list.value) for i in plan.intents)
    assert w._confirm.value and w.can_next and not w._publish_btn.disabled and w.status == "planned"
    # the field-level diff of the published record
    (change,) = plan.changes
    assert change.action == "update" and change.uri == uri
    assert {"license", "storage"} <= {f.field for f in change.fields}
    shown = html.unescape(w._changes.value)
    assert "CC0-1.0" in shown and "after Publish" in shown and uri in shown
    # a changed input drops the confirmation; unticking takes it back
    w._description.value = "changed"
    assert "clear" not in w.promotion_options()
    w._description.value = "feature vectors"
    assert w.promotion_options()["clear"] == ["license"]
    assert w.confirm_downgrades(False) is None and w.plan is None and w.downgrades and not w._confirm.value
    assert w.confirm_downgrades() is not None and w._confirm.value

    assert w.next() == "publish"
    w.publish()
    after = rec.entry_from_record(entry_record(client, uri)["value"])
    assert after.get("license") is None and after["storage"]["kind"] != "blobs"
    assert w.report.failed == ["loadable by others"] and w.status == "verified, only loadable on this machine"


@pytest.mark.sandbox
def test_a_new_entry_under_a_published_name_shows_the_version_change(index, client):
    from atdata_lab.widgets import PromotionWizard

    v1 = index.promote_entry("fv", copy_to="blobs", license="CC0-1.0", progress=False)
    index.write(features(40, seed=7), name="fv-2", progress=False)
    w = PromotionWizard(index, "fv-2")
    w.next()
    w.next()
    assert w.set_description(name="fv") == ""
    assert w.next() == "data"
    assert w.published is not None and w.published.uri == v1  # read again for the name typed
    assert (
        w._data_mode.value == "published" and w.data_plan.data.kind == "blobs"
    )  # new shards go the same way
    assert w.next() == "preview"
    assert w.plan.previous_version == v1 and w.plan.changes[0].action == "version"
    shown = html.unescape(re.sub(r"<[^>]+>", "", w._changes.value))
    assert "New version" in shown and f"fv: {v1} → {w.plan.entry_uri}" in shown


@pytest.mark.sandbox
def test_published_means_published_by_this_account(index, client, pds_account, sandbox, tmp_path):
    """An entry's published_uri names a DID: logged in as someone else (or after a kernel restart on
    a new sandbox DID) the browser and the wizard never show it as this account's publication."""
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.widgets import IndexBrowser

    def row(b):
        return next(r for r in b.table.rows if r["name"] == "fv")

    uri = index.promote_entry("fv", copy_to="blobs", license="CC0-1.0", progress=False)
    browser = IndexBrowser(index)
    browser.select("fv")
    assert (row(browser)["published"], row(browser)["uri"]) == ("published", uri)
    assert "atdata-badge-ok" in browser.detail_title.value
    w = browser.promote_selected()
    w.wait()
    assert (
        w.published_uri == uri and w.published.uri == uri and w._entries.options[0][0].endswith("· published")
    )

    other = sandbox.create_account()
    w.login(other.handle, other.password)  # another account, from the wizard
    assert index.atmosphere.did != client.did
    assert (row(browser)["published"], row(browser)["uri"]) == ("other account", uri)  # refreshed, no click
    assert "atdata-badge-warn" in browser.detail_title.value
    assert f"not published by this account (published by {client.did})" in html.unescape(
        browser.detail_meta.value
    )
    assert w.published_uri == "" and w.published is None and "published" not in w.data_choices
    assert w._entries.options[0][0].endswith(f"not published by this account (published by {client.did})")
    assert "atdata-other-account" in w._already.value and f"not by @{other.handle}" in w._already.value

    # a kernel restart on a new DID: the same index file, another account attached
    restarted = atdata.Index(
        path=tmp_path / "index.db",
        atmosphere=Atmosphere.login(other.handle, other.password),
        data_store=atdata.LocalDiskStore(tmp_path / "data"),
    )
    assert row(IndexBrowser(restarted))["published"] == "other account"
    # no account attached: nobody to compare with
    assert row(IndexBrowser(atdata.Index(path=tmp_path / "index.db")))["published"] == "log in to check"

    # publishing as this account makes it its own, everywhere
    to_preview(w, mode="blobs")
    assert w.plan.published is None and w.plan.entry_uri != uri  # this account's own record
    w.next()
    w.publish()
    mine = w.published_uri
    assert mine.startswith(f"at://{index.atmosphere.did}/") and w.status == "verified"
    assert (row(browser)["published"], row(browser)["uri"]) == ("published", mine)
    # and back to the first account: each account's promotions are recorded apart (Index.published_uri),
    # so its own publication shows again, not the second account's
    w.login(pds_account.handle, pds_account.password)
    assert (row(browser)["published"], row(browser)["uri"]) == ("published", uri) and w.published_uri == uri
    assert index.published_uri("fv", did=other.did) == mine and index.published_uri("fv") == uri


@pytest.mark.sandbox
def test_publish_refreshes_the_published_state_everywhere(index, client):
    """After Publish: the wizard's Dataset step, the browser's row badge, License column and detail
    panel show the publication without a refresh click."""
    from atdata_lab.widgets import IndexBrowser

    browser = IndexBrowser(index)
    browser.select("fv")
    r = next(r for r in browser.table.rows if r["name"] == "fv")
    assert (r["published"], r["license"]) == ("", "MIT") and "not published" in browser.detail_meta.value
    w = browser.promote_selected()
    w.wait()
    assert w._entries.options[0][0].endswith("· not published") and "published" not in w.data_choices
    to_preview(w, mode="blobs", license="CC0-1.0")
    w.next()
    w.publish()
    uri = w.published_uri
    assert w.status == "verified"
    # the wizard's Dataset step and Data choices
    assert w._entries.options[0][0].endswith("· published") and uri in w._entry_card.value
    assert w.published.uri == uri and w.data_choices[0] == "published"
    # the browser
    r = next(r for r in browser.table.rows if r["name"] == "fv")
    assert (r["published"], r["uri"], r["license"]) == ("published", uri, "CC0-1.0")
    assert "atdata-badge-ok" in browser.detail_title.value and uri in browser.detail_title.value
    assert "CC0-1.0" in browser.detail_meta.value


# ---------------------------------------------------------------------------------------------
# Verify: back to the index browser's Published tab
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
def test_verify_offers_the_index_browsers_published_tab(index, client):
    from atdata_lab.widgets import IndexBrowser, PromotionWizard

    browser = index.browse()
    w = PromotionWizard(index, "fv", browser=browser)
    to_preview(w)
    w.next()
    w.publish()
    assert w.verify().failed == ["loadable by others"]  # kept at local paths: published, loadable here only
    sent = []
    w._scroller.send = sent.append  # what goes to the front end (its scroll is in the browser tests)
    assert w.open_browser() is browser
    assert browser.tabs.selected_index == 1 and browser.selected_record["uri"] == w.published_uri
    assert sent == [{"scroll_to": f".atdata-scroll-{browser.model_id}"}]
    assert f"atdata-scroll-{browser.model_id}" in browser._dom_classes
    # without a browser: a new one opens below the checks, on the Published tab
    w.browser = None
    b = w.open_browser()
    assert isinstance(b, IndexBrowser) and w._browser_box.children == (b,)
    assert b.tabs.selected_index == 1 and b.selected_record["uri"] == w.published_uri


# ---------------------------------------------------------------------------------------------
# the app password
# ---------------------------------------------------------------------------------------------
def _deep_contains(root, needle: str, limit: int = 200_000) -> list[str]:
    """Paths from ``root`` to any str containing ``needle``: attributes, containers, closures,
    exceptions and their traceback frames' locals."""
    seen, hits, todo = set(), [], [(root, "w")]
    while todo and len(seen) < limit:
        obj, path = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if needle in obj:
                hits.append(path)
            continue
        if isinstance(obj, (bytes, bytearray)):
            if needle.encode() in obj:
                hits.append(path)
            continue
        if isinstance(obj, (int, float, bool, type(None), type, types.ModuleType)):
            continue
        if isinstance(obj, dict):
            todo += [(v, f"{path}[{k!r}]") for k, v in obj.items()] + [(k, f"{path}.key") for k in obj]
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            todo += [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
            continue
        if isinstance(obj, types.FunctionType):
            todo += (
                [
                    (c.cell_contents, f"{path}.<closure {n}>")
                    for n, c in zip(obj.__code__.co_freevars, obj.__closure__ or ())
                    if c.cell_contents is not None
                ]
                if obj.__closure__
                else []
            )
            continue
        if isinstance(obj, BaseException):
            todo += [(obj.args, f"{path}.args"), (str(obj), f"{path}.str")]
            tb = obj.__traceback__
            while tb is not None:
                todo.append((dict(tb.tb_frame.f_locals), f"{path}.tb<{tb.tb_frame.f_code.co_name}>"))
                tb = tb.tb_next
            for chained in (obj.__cause__, obj.__context__):
                if chained is not None:
                    todo.append((chained, f"{path}.chained"))
        if isinstance(obj, threading.Thread):
            continue
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict) and type(obj).__module__.split(".")[0] in (
            "atdata_lab",
            "ipywidgets",
            "traitlets",
            "tests",
            "builtins",
        ):
            todo.append((d, f"{path}.__dict__"))
        if hasattr(obj, "_trait_values"):
            todo.append((obj._trait_values, f"{path}._trait_values"))
    return hits


@pytest.mark.sandbox
def test_the_app_password_never_leaks(pds_account, tmp_path, atdata_home, caplog):
    from atdata_lab.widgets import PromotionWizard

    secret = pds_account.password
    wrong = "Wrong-" + secret[::-1]
    bare = atdata.Index(path=tmp_path / "secret.db", data_store=atdata.LocalDiskStore(tmp_path / "d"))
    bare.write(features(20), name="fv", progress=False)
    caplog.set_level(logging.DEBUG)  # every logger, every level

    w = PromotionWizard(bare)
    w._handle.value = pds_account.handle
    # a failed login through the button: the widget is cleared at once, the error is readable
    w._password.value = wrong
    w._login_btn.click()
    assert w._password.value == ""
    w.wait()
    assert "Logging in failed" in w.errors.message and bare.atmosphere is None
    # a successful one, by pressing Enter in the password field (the front end's "submit" message)
    w._password.value = secret
    w._password._handle_custom_msg({"event": "submit"}, [])
    assert w._password.value == ""
    w.wait()
    assert bare.atmosphere is not None and w.status == "connected" and not w.errors.visible
    to_preview(w)
    w.next()
    w.publish()
    assert w.report.failed == ["loadable by others"]
    gc.collect()

    for pw in (secret, wrong):
        # saved widget state: every widget alive, the wizard's and all others
        for model_id, widget in list(ipywidgets.widgets.widget._instances.items()):
            state = json.dumps(widget.get_state(), default=repr)
            assert pw not in state, (model_id, type(widget).__name__)
        # the static views and reprs that land in a notebook
        bundle = w._repr_mimebundle_()
        assert pw not in json.dumps(bundle, default=repr)
        assert pw not in repr(w) and pw not in repr(bare) and pw not in repr(bare.atmosphere)
        # the error panel, its history, and every log record (message, arguments, traceback)
        assert pw not in w.errors._html.value and pw not in w.errors.message
        for _context, exc in w.errors.history:
            assert pw not in str(exc) and pw not in repr(exc.args)
        for r in caplog.records:
            assert pw not in r.getMessage() and pw not in caplog.text and pw not in repr(r.args)
        # no attribute, closure, task or exception frame of the wizard keeps it
        assert _deep_contains(w, pw) == []
        # the index and everything under ATDATA_HOME and the data folder
        for folder in (tmp_path, Path(atdata_home)):
            for f in folder.rglob("*"):
                if f.is_file():
                    assert pw.encode() not in f.read_bytes(), f
    assert caplog.records  # the logs were really captured


# ---------------------------------------------------------------------------------------------
# without the PDS
# ---------------------------------------------------------------------------------------------
def test_library_views_do_not_import_widgets():
    code = (
        "import sys, atdata_lab, atdata_lab.views, atdata_lab.promotion; "
        "bad = [m for m in ('ipywidgets', 'anywidget', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_check_describe_is_the_engines_validation():
    from atdata_lab.promotion import validate_promotion_inputs

    assert promotion.check_describe("ok", "", [], "") is None
    assert promotion.check_describe("ok", None, ["a"], "mit", {"split": "train"}) is None
    for args in (
        ("", None, [], None),
        ("x", "y" * 5001, [], None),
        ("x", None, ["a"] * 31, None),
        ("x", None, [], "nope"),
        ("x", None, [], None, {"f": 0.5}),
    ):
        msg = promotion.check_describe(*args)
        with pytest.raises(ValueError) as e:
            validate_promotion_inputs(
                args[0], args[1] or None, args[2], args[3], args[4] if len(args) > 4 else None
            )
        assert msg == str(e.value)


def test_copy_target_for_each_data_choice(tmp_path):
    store = atdata.LocalDiskStore(tmp_path / "s")
    assert promotion.copy_target("published") is None
    assert promotion.copy_target("keep") == "keep"
    assert promotion.copy_target("blobs") == "blobs"
    assert promotion.copy_target("copy", store=store) is store
    target = promotion.copy_target("copy", str(tmp_path / "f"))
    assert isinstance(target, atdata.LocalDiskStore) and str(tmp_path / "f") in target.describe()
    with pytest.raises(ValueError, match="give the folder"):
        promotion.copy_target("copy", "  ")
    s3 = promotion.copy_target("copy", "s3://bucket/some/prefix")
    assert type(s3).__name__ == "S3DataStore" and (s3.bucket, s3.prefix) == ("bucket", "some/prefix/")
    assert s3.shard_url("fv", 0) == "s3://bucket/some/prefix/fv/fv-000000.tar"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        promotion.copy_target("copy", "gs://bucket/x")
    with pytest.raises(ValueError, match="keep, copy, blobs"):
        promotion.copy_target("move")


def test_error_advice_names_what_to_do_next():
    advice = {
        PromotionCancelled("x"): "Nothing was published",
        AuthenticationError("x"): "app password",
        PDSUnavailableError("x"): "sandbox start",
        RateLimitedError("x"): "wait",
        NoAtmosphereError("x"): "Log in first",
        PromotionConflictError("x", suggested_version="1.1.0"): "version='1.1.0'",
        RecordValidationError("x"): "step Describe",
        KeyError("x"): "pick another dataset",
        RuntimeError("x"): "report it",
    }
    for exc, words in advice.items():
        assert words in plan_view.error_advice(exc), exc
    # the library's cancel message already says nothing was published: the advice does not repeat it
    said = PromotionCancelled("promotion of 'fv' cancelled while uploading; nothing was published")
    assert plan_view.error_advice(said) == "Click Publish to try again, or Back to change the inputs."
    assert plan_view.cancelled_html(said).lower().count("nothing was published") == 1
    # the wizard's labels in place of the arguments the library names
    assert (
        plan_view.ui_words("upload it as PDS blobs (copy_to='blobs')")
        == "upload it as PDS blobs (“Upload as PDS blobs”)"
    )
    assert plan_view.ui_words("downgrade=True") == "tick “Remove/downgrade these on purpose”"
    html = plan_view.error_html(AuthenticationError("bad <login>"), "Logging in")
    assert "Logging in failed" in html and "bad &lt;login&gt;" in html and "What to do next" in html


def test_connect_step_without_an_account_shows_the_login_form(tmp_path, monkeypatch):
    from atdata_lab.widgets import PromotionWizard

    monkeypatch.setenv("ATDATA_PDS_URL", "http://127.0.0.1:2583")
    monkeypatch.setenv("ATDATA_HANDLE", "alice.test")
    w = PromotionWizard(atdata.Index(path=tmp_path / "x.db"))
    assert isinstance(w._password, ipywidgets.Password)
    assert (w._handle.value, w._pds_url.value, w._password.value) == (
        "alice.test",
        "http://127.0.0.1:2583",
        "",
    )
    assert w._login_form.layout.display == "flex" and "log in" in w._identity.value
    assert not w.can_next and w._back_btn.disabled and not w._cancel_btn.disabled
    for cls in ("atdata-promotion-wizard", "atdata-widget"):
        assert cls in w._dom_classes
    for part, name in (
        (w._handle, "handle"),
        (w._password, "password"),
        (w._login_btn, "login"),
        (w._next_btn, "next"),
        (w._back_btn, "back"),
        (w._cancel_btn, "cancel"),
    ):
        assert f"atdata-promotion-wizard-{name}" in part._dom_classes
    for step, pane in w._panes.items():
        assert f"atdata-promotion-wizard-step-{step}" in pane._dom_classes
    assert "atdata-step-connect atdata-step-current" in w._indicator.value
    # the labels have room ("App password" in full), the button is as wide as its label
    for field in (w._handle, w._password, w._pds_url):
        assert field.style.description_width == "110px" and field.layout.width == "420px"
    assert w._login_form.layout.align_items == "flex-start" and w._login_btn.layout.width == "auto"
    # Enter (the front end's "submit" message) with no password typed does nothing
    w._handle._handle_custom_msg({"event": "submit"}, [])
    assert w.status == "" and not w.errors.visible
    static = w._repr_mimebundle_()["text/html"]
    assert "atdata-steps" in static and repr(w) == "PromotionWizard(step='connect', entry=None, status='')"
    assert isinstance(w.step, str) and PromotionWizard.step.help  # documented traits


def test_traits_are_documented():
    from atdata_lab.widgets import PromotionWizard, SchemaDiff

    for cls in (PromotionWizard, SchemaDiff):
        own = {n: t for n, t in cls.class_traits().items() if n in cls.__dict__}
        assert own and all(t.help for t in own.values()), cls
        for n, t in cls.class_traits(sync=True).items():
            assert t.help or n.startswith("_") or n in ipywidgets.VBox.class_traits(), (cls, n)


def test_index_browsers_diff_schema_action_opens_schema_diff(tmp_path):
    from atdata_lab.widgets import IndexBrowser, SchemaDiff

    @atdata.packable
    class Probe:
        x: int

    idx = atdata.Index(path=tmp_path / "b.db", data_store=atdata.LocalDiskStore(tmp_path / "bd"))
    old = idx.write([Probe(x=1)], name="old", progress=False)

    @atdata.packable
    class Probe:  # noqa: F811 - a new version: one optional field more
        x: int
        y: Optional[str] = None

    new = idx.write([Probe(x=1, y="a")], name="new", progress=False)
    assert old.schema_ref != new.schema_ref
    browser = IndexBrowser(idx)
    browser.select("new")
    shown = browser.diff_selected(old.schema_ref)
    assert isinstance(shown, SchemaDiff) and browser.action_widget is shown
    assert (shown.verdict, shown.next_version) == ("compatible", "1.1.0")
    assert shown in browser.action_area.children
    assert browser.diff_button.description == "Diff schema"


@pytest.mark.sandbox
def test_promote_from_the_index_browser_and_back_to_its_published_tab(pds_account, tmp_path):
    """The browser's "Promote…" opens the wizard with browser=itself; the wizard's login attaches
    the account, and "Back to the index browser" shows that same browser's Published tab."""
    from atdata_lab.widgets import IndexBrowser, PromotionWizard

    idx = atdata.Index(path=tmp_path / "pb.db", data_store=atdata.LocalDiskStore(tmp_path / "pbd"))
    idx.write(features(10), name="fv", progress=False)
    browser = IndexBrowser(idx)
    browser.select("fv")
    w = browser.promote_selected()
    assert isinstance(w, PromotionWizard) and w.browser is browser and w.entry.name == "fv"
    w.login(pds_account.handle, pds_account.password)
    to_preview(w)
    w.next()
    w.publish()
    assert w.open_browser() is browser
    assert browser.tabs.selected_index == 1 and browser.selected_record["uri"] == w.published_uri


@pytest.mark.sandbox
@pytest.mark.s3
def test_copy_to_an_s3_store_typed_as_a_location(index, client, s3_server, s3_bucket, monkeypatch):
    """Data step "Copy to a store" with s3://bucket/prefix (real SeaweedFS): copied, then published."""
    from atdata_lab.widgets import PromotionWizard

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    w = PromotionWizard(index, "fv")
    w.next()
    w.next()
    w.next()
    w.set_data("copy", f"s3://{s3_bucket}/wizard")
    assert w.data_plan.data.kind == "copy" and f"s3://{s3_bucket}" in w.data_plan.data.target
    assert "is on this machine: nobody else can reach the data" in w._data_info.value  # a loopback endpoint
    assert w.next() == "preview"
    assert w.plan.to_dict() == index.plan_promotion("fv", **w.promotion_options()).to_dict()
    w.next()
    result = w.publish()
    assert all(u.startswith(f"s3://{s3_bucket}/wizard/fv/") for u in result.data_urls)
    assert w.report.failed == ["loadable by others"] and counts(client) == (
        1,
        1,
        1,
    )  # the endpoint is 127.0.0.1
    assert w.status == "verified, only loadable on this machine"
    assert len(atdata.load_dataset(result.at_uri, split="train")) == 100
