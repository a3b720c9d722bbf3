"""Re-promotion never silently loses or downgrades what is published (issue 12), against the real
sandbox PDS: the plan starts from the published record, removals need ``clear=``/``downgrade=True``,
the plan shows a field-level diff, unchanged entries write nothing, versions of a name, and
``verify`` reports what others could not load."""

from __future__ import annotations

import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.errors import PromotionConflictError, PromotionDowngradeError
from tests.reliability.support import list_blob_cids
from tests.test_promotion import features

pytestmark = pytest.mark.sandbox


def vecs(n=40, seed=0):
    return features(n, seed)


@pytest.fixture
def client(pds_account):
    return Atmosphere.login(pds_account.handle, pds_account.password)


@pytest.fixture
def index(client):
    return atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())


def record(client, uri):
    u = rec.AtUri.parse(uri)
    return client.get_record(u.collection, u.rkey)


def count(client, nsid):
    return len(list(client.list_all_records(nsid, repo=client.did)))


# ------------------------------------------------------------------ case 1: a bare re-promotion
def test_bare_repromotion_keeps_description_tags_license_and_metadata(index, client):
    index.write(vecs(), name="fv1", progress=False, metadata={"split": "train"})
    uri = index.promote_entry(
        "fv1",
        description="Feature vectors",
        tags=["features", "embeddings"],
        license="MIT",
        metadata={"source_uri": "https://example.org/raw"},
        progress=False,
    )
    before = record(client, uri)
    local = index.get_entry_by_name("fv1")  # what was published is proposed next time
    assert (local.description, local.tags, local.license) == (
        "Feature vectors",
        ["features", "embeddings"],
        "MIT",
    )
    assert local.metadata == {"split": "train", "source_uri": "https://example.org/raw"}

    plan = index.plan_promotion("fv1")  # the tutorial's plain form
    assert plan.already_published == uri and plan.writes == [] and plan.changes == []
    assert plan.published is not None and plan.published.uri == uri
    assert index.promote_entry("fv1", progress=False) == uri
    after = record(client, uri)
    assert after["cid"] == before["cid"]
    v = after["value"]
    assert (v["description"], v["tags"], v["license"]) == (
        "Feature vectors",
        ["features", "embeddings"],
        "MIT",
    )


def test_an_index_that_forgot_the_values_still_keeps_them(index, client):
    """The local entry lost its fields (e.g. published before this release): the record fills them."""
    index.write(vecs(), name="old", progress=False)
    uri = index.promote_entry("old", description="kept", license="CC0-1.0", progress=False)
    index.provider.update_entry("old", description=None, license=None, tags=[])
    plan = index.plan_promotion("old")
    assert plan.writes == [] and (plan.description, plan.license) == ("kept", "CC0-1.0")
    assert record(client, uri)["value"]["license"] == "CC0-1.0"


# ------------------------------------------------------------------ explicit changes and clearing
def test_a_changed_field_is_one_update_with_a_field_level_diff(index, client):
    index.write(vecs(), name="d", progress=False)
    uri = index.promote_entry("d", description="one", tags=["a"], license="MIT", progress=False)
    plan = index.plan_promotion("d", description="two")
    assert [w.action for w in plan.writes] == ["update"] and plan.writes[0].uri == uri
    (change,) = plan.changes
    assert change.action == "update" and change.uri == uri
    assert [(f.field, f.old, f.new) for f in change.fields] == [("description", "one", "two")]
    assert 'description: "one" -> "two"' in plan.summary()
    assert plan.to_dict()["changes"][0]["fields"] == [{"field": "description", "old": "one", "new": "two"}]
    plan.execute(progress=False)
    v = record(client, uri)["value"]
    assert (v["description"], v["tags"], v["license"]) == ("two", ["a"], "MIT")


def test_clearing_a_published_field_needs_clear_and_is_shown_in_the_plan(index, client):
    index.write(vecs(), name="c", progress=False)
    uri = index.promote_entry("c", description="text", license="MIT", progress=False)
    before = record(client, uri)["cid"]
    client.round_trips = 0
    with pytest.raises(PromotionDowngradeError, match=r"license.*clear=\['license'\]") as err:
        index.plan_promotion("c", license="")
    assert isinstance(err.value, PromotionConflictError) and isinstance(err.value, ValueError)
    assert [(d.field, d.new) for d in err.value.downgrades] == [("license", "(none)")]
    assert client.round_trips == 1  # the getRecord of the published entry; nothing written
    plan = index.plan_promotion("c", clear=["license"])
    assert (
        plan.intents == ['clear license (published: "MIT")'] and "On purpose: clear license" in plan.summary()
    )
    assert [(f.field, f.old, f.new) for f in plan.changes[0].fields] == [("license", "MIT", None)]
    plan.execute(progress=False)
    v = record(client, uri)["value"]
    assert "license" not in v and v["description"] == "text" and record(client, uri)["cid"] != before
    assert index.get_entry_by_name("c").license is None  # and the next plan proposes no license
    with pytest.raises(ValueError, match="clear="):
        index.plan_promotion("c", clear=["size"])


# ------------------------------------------------------------------ storage: blobs and downgrades
def test_unchanged_blob_publication_writes_nothing_uploads_nothing_one_round_trip(index, client):
    index.write(vecs(60), name="b", maxcount=20, progress=False)
    uri = index.promote_entry("b", copy_to="blobs", license="CC0-1.0", progress=False)
    blobs, cid = list_blob_cids(client), record(client, uri)["cid"]
    for copy_to in (None, "blobs"):  # the default follows the published storage; asking for blobs again too
        client.round_trips = 0
        plan = index.plan_promotion("b", copy_to=copy_to)
        assert plan.already_published == uri and plan.writes == [] and plan.data.kind == "reuse"
        assert plan.pds_calls == 0 and "PDS blob" in plan.data.describe()
        result = plan.execute(progress=False)
        assert result.already_published and result.written == []
        assert client.round_trips == 1
    assert list_blob_cids(client) == blobs and record(client, uri)["cid"] == cid


def test_blobs_to_local_paths_is_a_downgrade_refused_without_intent(index, client):
    index.write(vecs(), name="bl", progress=False)
    uri = index.promote_entry("bl", copy_to="blobs", license="CC0-1.0", progress=False)
    cid = record(client, uri)["cid"]
    with pytest.raises(
        PromotionDowngradeError, match=r"storage: 1 PDS blob\(s\) -> 1 local file path.*downgrade=True"
    ):
        index.plan_promotion("bl", copy_to="keep")
    assert record(client, uri)["cid"] == cid
    plan = index.plan_promotion("bl", copy_to="keep", downgrade=True)
    assert plan.intents and plan.intents[0].startswith(
        "downgrade storage: 1 PDS blob(s) -> 1 local file path"
    )
    storage_change = next(f for f in plan.changes[0].fields if f.field == "storage")
    assert "PDS blob" in storage_change.old and "only on this machine" in storage_change.new
    plan.execute(progress=False)
    v = record(client, uri)["value"]
    assert v["storage"]["$type"] == rec.STORAGE_HTTP and v["license"] == "CC0-1.0"  # license still kept


def test_a_new_version_follows_the_published_storage(index, client):
    """New shards under a name published as blobs go up as blobs too (copy_to=None)."""
    index.write(vecs(30, seed=1), name="one", progress=False)
    index.write(vecs(30, seed=2), name="two", progress=False)
    first = index.promote_entry("one", name="shared", copy_to="blobs", license="MIT", progress=False)
    plan = index.plan_promotion("two", name="shared")
    assert plan.data.kind == "blobs" and plan.license == "MIT" and plan.previous_version == first
    second = plan.execute(progress=False).at_uri
    assert record(client, second)["value"]["storage"]["$type"] == rec.STORAGE_BLOBS


# ------------------------------------------------------------------ case 5: versions of one name
def test_a_second_entry_under_a_published_name_is_its_new_version(index, client, pds_account):
    index.write(vecs(20, seed=1), name="older-local", progress=False)
    index.write(vecs(25, seed=2), name="newer-local", progress=False)
    # written first, promoted second: the local creation time must not decide which one is current
    index.write(vecs(30, seed=3), name="written-first", progress=False)
    v1 = index.promote_entry("newer-local", name="ds", version="1", progress=False)
    plan = index.plan_promotion("older-local", name="ds", version="2")
    assert plan.previous_version == v1
    (change,) = plan.changes
    assert change.action == "version" and change.previous == v1 and change.uri == plan.entry_uri
    assert f"New version of the dataset: {v1} -> {plan.entry_uri}" in plan.summary()
    assert {f.field for f in change.fields} >= {"size", "storage"}
    v2 = plan.execute(progress=False).at_uri
    handle = pds_account.handle
    assert len(atdata.load_dataset(f"@{handle}/ds", split="train")) == 20  # the most recently published
    assert len(atdata.load_dataset(f"@{handle}/ds@1", split="train")) == 25  # a requested version
    v3 = index.promote_entry("written-first", name="ds", progress=False)
    assert len(atdata.load_dataset(f"@{handle}/ds", split="train")) == 30
    # promoting an earlier version again makes it the current one (its label is re-dated)
    plan = index.plan_promotion("newer-local", name="ds")
    assert [w.collection for w in plan.writes] == [
        rec.ENTRY_NSID,
        rec.LABEL_NSID,
    ] and plan.previous_version == v3
    plan.execute(progress=False)
    assert len(atdata.load_dataset(f"@{handle}/ds", split="train")) == 25
    assert count(client, rec.ENTRY_NSID) == 3 and count(client, rec.LABEL_NSID) == 3
    assert v2 != v1 != v3


def test_the_plan_is_the_same_each_time_until_it_is_executed(index, client):
    """The wizard's plan and promote_entry's are equal (the label's publication time is planned once)."""
    index.write(vecs(), name="same", progress=False)
    a, b = index.plan_promotion("same"), index.plan_promotion("same")
    assert a.to_dict() == b.to_dict()
    a.execute(progress=False)
    assert index.plan_promotion("same").writes == []


# ------------------------------------------------------------------ case 6: verify
def test_verify_reports_local_paths_as_only_loadable_here(index, client):
    index.write(vecs(), name="local", progress=False)
    uri = index.promote_entry("local", progress=False)
    report = index.verify(uri)
    assert report.failed == ["loadable by others"] and not report.ok
    detail = next(d for n, ok, d in report.checks if n == "loadable by others")
    assert "only loadable on this machine" in detail
    assert "FAIL] loadable by others" in str(report)


def test_verify_fails_without_checksums_and_names_the_publisher(sandbox, client, pds_account, tmp_path):
    """A record with no checksums (atdata 0.7 publishes local paths with algorithm "none"), written
    straight to the real PDS; a second account verifies it."""
    pub = atdata.Index(
        path=tmp_path / "pub.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    entry = pub.write(vecs(), name="nosum", progress=False)
    own_uri = pub.promote_entry("nosum", copy_to="blobs", progress=False)
    schema_ref = rec.entry_from_record(record(client, own_uri)["value"])["schemaRef"]
    value = rec.entry_record(
        "nosum-raw",
        schema_ref,
        {
            "$type": rec.STORAGE_HTTP,
            "shards": [
                {"url": f"http://127.0.0.1:9/{i}.tar", "checksum": {"algorithm": "none", "digest": ""}}
                for i in range(entry.num_shards)
            ],
        },
    )
    raw = client.create_record(rec.ENTRY_NSID, value, rkey=rec.make_tid())
    reader_account = sandbox.create_account()
    reader = atdata.Index(
        path=tmp_path / "reader.db",
        atmosphere=Atmosphere.login(reader_account.handle, reader_account.password),
    )
    report = reader.verify(raw["uri"])
    assert "shard checksums recorded" in report.failed
    assert "shard checksums match" in report.failed  # nothing could be checked
    own = reader.verify(own_uri)
    assert own.ok, str(own)
    assert own.load_line == f'atdata.load_dataset("@{pds_account.handle}/nosum", split="train")'
    assert reader_account.handle not in own.load_line


def test_what_is_published_is_read_per_account_and_synced_locally(index, client, sandbox):
    index.write(vecs(), name="acct", progress=False)
    assert index.published_entry("acct") is None and index.published_uri("acct") is None
    uri = index.promote_entry("acct", copy_to="blobs", license="CC0-1.0", progress=False)
    client.round_trips = 0
    pub = index.published_entry("acct")
    assert client.round_trips == 1 and pub.uri == uri and pub.storage_kind == "blobs"
    assert pub.parsed["license"] == "CC0-1.0"
    # an unchanged publication still gives the local entry what is published (it had lost it)
    index.provider.update_entry("acct", license=None)
    assert index.promote_entry("acct", progress=False) == uri
    assert index.get_entry_by_name("acct").license == "CC0-1.0"
    # another account: nothing of its own yet; the first account's record is still known as its own
    other = sandbox.create_account()
    index.atmosphere = Atmosphere.login(other.handle, other.password)
    assert index.published_uri("acct") is None and index.published_entry("acct") is None
    assert index.published_uri("acct", did=client.did) == uri
