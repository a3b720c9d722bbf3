"""Promotion against the real sandbox PDS: the tutorial verbatim, dedup, conflicts, validation, and
round trips through disk URLs and blobs.

The crash matrix, concurrent promotions and the PDS going away are in
``tests/reliability/test_promotion_crashes.py``."""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.errors import PromotionConflictError, RecordValidationError
from tests.support.fixtures import fixture_path

pytestmark = pytest.mark.sandbox


@atdata.packable
class FeatureSample:
    features: NDArray
    label: int


def features(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return [
        FeatureSample(features=rng.standard_normal(128).astype(np.float32), label=i % 10) for i in range(n)
    ]


def count(client, nsid):
    return len(list(client.list_all_records(nsid, repo=client.did)))


def counts(client):
    return tuple(count(client, n) for n in (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID))


@pytest.fixture
def client(pds_account):
    return Atmosphere.login(pds_account.handle, pds_account.password)


@pytest.fixture
def index(client):
    return atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())


def test_tutorial_runs_verbatim(pds_account):
    # the user's tutorial, with only the handle and password of the sandbox account
    import atdata_lab as atdata
    from atdata_lab.atmosphere import Atmosphere

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
    index.write(features(), name="feature-vectors-v1", maxcount=500, progress=False)
    at_uri = index.promote_entry(
        "feature-vectors-v1",
        description="Feature vectors for classification",
        tags=["features", "embeddings"],
        license="MIT",
    )
    entry = index.get_dataset(at_uri)  # name, schema_ref, data_urls, cid, metadata
    assert entry.name == "feature-vectors-v1" and entry.schema_ref.startswith("at://")
    assert len(entry.data_urls) == 2 and entry.cid == index.get_entry_by_name("feature-vectors-v1").cid
    assert entry.tags == ["features", "embeddings"] and entry.license == "MIT" and entry.num_samples == 1000
    ds = atdata.load_dataset(at_uri, split="train")  # schema auto-resolved into a type
    shapes = [batch.features.shape for batch in ds.ordered(batch_size=32)]
    assert shapes[0] == (32, 128) and sum(s[0] for s in shapes) == 1000
    ds = atdata.load_dataset(f"@{pds_account.handle}/feature-vectors-v1", split="train")
    assert len(ds) == 1000
    assert counts(client) == (1, 1, 1)


def test_round_trip_equals_local_data_for_disk_and_blobs(index, client):
    local = features(300, seed=4)
    index.write(local, name="disk", maxcount=100, progress=False)
    index.write(local, name="blobs", maxcount=100, progress=False)
    for name, copy_to in (("disk", None), ("blobs", "blobs")):
        uri = index.plan_promotion(name, copy_to=copy_to).execute(progress=False).at_uri
        got = list(atdata.load_dataset(uri, split="train").ordered())
        assert len(got) == 300
        for a, b in zip(local, got):
            np.testing.assert_array_equal(a.features, b.features)
            assert a.label == b.label
    storage = {
        r["value"]["name"]: r["value"]["storage"]["$type"] for r in client.list_all_records(rec.ENTRY_NSID)
    }
    assert storage == {"disk": rec.STORAGE_HTTP, "blobs": rec.STORAGE_BLOBS}
    report = index.verify(index.get_entry_by_name("blobs").published_uri)
    assert report.ok, str(report)


def test_two_promotions_with_one_schema_publish_it_once(index, client):
    index.write(features(50), name="a", progress=False)
    index.write(features(60, seed=1), name="b", progress=False)
    r1 = index.plan_promotion("a").execute(progress=False)
    plan = index.plan_promotion("b")
    assert plan.schema_decision.action == "reuse" and plan.schema_decision.uri == r1.schema_uri
    r2 = plan.execute(progress=False)
    assert r2.schema_reused and not r1.schema_reused
    assert counts(client) == (1, 2, 2)


def test_common_path_costs_at_most_two_round_trips(index, client):
    index.write(features(20), name="warm", progress=False)
    index.write(features(20, seed=2), name="second", progress=False)
    index.promote_entry("warm", progress=False)
    client.round_trips = 0
    index.promote_entry("second", progress=False)
    assert client.round_trips <= 2
    client.round_trips = 0
    assert index.promote_entry("second", progress=False)  # unchanged: no write
    assert client.round_trips <= 1 and counts(client) == (1, 2, 2)


def test_schema_published_by_atdata_with_a_tid_key_is_reused(index, client):
    atdata_schema = json.loads(fixture_path("records.json").read_text())[0]["record"]
    assert atdata_schema["name"] == "ExperimentSample"
    existing = client.create_record(rec.SCHEMA_NSID, atdata_schema, rkey=rec.make_tid())
    from tests.conformance.index_suite import experiment

    index.write(experiment(40), name="exp", progress=False)
    plan = index.plan_promotion("exp")
    assert plan.schema_decision.action == "reuse" and plan.schema_decision.uri == existing["uri"]
    assert plan.schema_decision.found_by == "repository scan"
    plan.execute(progress=False)
    assert counts(client) == (1, 1, 1)


def test_same_name_and_version_with_other_fields_is_a_conflict_before_any_write(index, client, tmp_path):
    index.write(features(10), name="first", progress=False)
    index.promote_entry("first", progress=False)

    @atdata.packable
    class FeatureSample:  # noqa: F811 - same name, different fields, in "another notebook"
        features: NDArray
        label: int
        note: Optional[str] = None

    other = atdata.Index(
        path=tmp_path / "other.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "data")
    )
    other.write(
        [FeatureSample(features=np.zeros(128, np.float32), label=1, note="x")], name="second", progress=False
    )
    before = counts(client)
    plan = other.plan_promotion("second")
    assert plan.schema_decision.action == "conflict"
    assert plan.schema_decision.suggested_version == "1.1.0"
    assert [c.name for c in plan.schema_decision.diff.changed()] == ["note"]
    with pytest.raises(PromotionConflictError, match="1.1.0") as err:
        plan.execute(progress=False)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError):
        other.promote_entry("second", progress=False)
    assert counts(client) == before


@pytest.mark.parametrize(
    "options, words",
    [
        ({"metadata": {"accuracy": 0.93}}, "metadata.accuracy.*float"),
        ({"description": "x" * 6000}, "description.*5000"),
        ({"tags": [f"t{i}" for i in range(31)]}, "tags.*30"),
        ({"tags": ["y" * 151]}, r"tags\[0\].*150"),
        ({"license": "MIT-ish"}, "license.*SPDX"),
        ({"name": "n" * 201}, "name.*200"),
    ],
)
def test_bad_input_fails_at_plan_time_with_zero_pds_calls(index, client, options, words):
    index.write(features(5), name="bad", progress=False)
    client.round_trips = 0
    with pytest.raises(ValueError, match=words):
        index.plan_promotion("bad", **options)
    assert client.round_trips == 0


def test_tutorial_errors_are_key_and_value_errors(index, tmp_path):
    with pytest.raises(KeyError):
        index.promote_entry("missing")
    bare = atdata.Index(path=tmp_path / "bare.db")
    bare.write(features(3), name="x", progress=False)
    with pytest.raises(ValueError, match="atmosphere"):
        bare.promote_entry("x")


def test_promote_dataset_really_copies_the_data(index, client, tmp_path):
    src = atdata.write_samples(features(40), tmp_path / "outside" / "f", maxcount=20)
    target = atdata.LocalDiskStore(tmp_path / "public")
    uri = index.promote_dataset(
        atdata.Dataset[FeatureSample](src.urls), name="copied", copy_to=target, progress=False
    )
    urls = index.get_dataset(uri).data_urls
    assert all(u.startswith((tmp_path / "public").as_uri()) for u in urls)
    for u, s in zip(urls, src.urls):
        assert open(u[len("file://") :], "rb").read() == open(s, "rb").read()


def test_relabel_with_new_description_updates_in_place(index, client):
    index.write(features(5), name="re", progress=False)
    u1 = index.promote_entry("re", description="one", progress=False)
    u2 = index.promote_entry("re", description="two", progress=False)
    assert u1 == u2 and counts(client) == (1, 1, 1)
    assert index.get_dataset(u1).description == "two"


def test_validation_errors_are_record_validation_errors(index):
    index.write(features(3), name="v", progress=False)
    with pytest.raises(RecordValidationError):
        index.plan_promotion("v", tags=["ok", ""])


def test_promote_dataset_of_an_indexed_name_publishes_it_as_the_tutorial_does(index, client):
    # tutorials/promotion.qmd, "Copy to New Storage": a Dataset of the entry's first shard
    index.write(features(1000), name="experiment-2024-001", maxcount=500, progress=False)
    entry = index.get_entry_by_name("experiment-2024-001")
    ds = atdata.Dataset[FeatureSample](entry.data_urls[0])
    with pytest.warns(atdata.errors.AtdataLabWarning, match="indexed locally as 'experiment-2024-001-v2'"):
        at_uri = index.promote_dataset(
            ds, name="experiment-2024-001", description="Sensor measurements from Lab 302", progress=False
        )
    published = index.get_dataset(at_uri)
    assert published.name == "experiment-2024-001" and published.num_samples == 500
    assert published.description == "Sensor measurements from Lab 302"
    assert index.get_entry_by_name("experiment-2024-001") == entry  # nothing replaced
    assert index.get_entry_by_name("experiment-2024-001-v2").cid == published.cid
    before = counts(client)
    with pytest.warns(atdata.errors.AtdataLabWarning):  # running the cell again changes nothing
        assert index.promote_dataset(ds, name="experiment-2024-001", progress=False) == at_uri
    assert counts(client) == before


def test_promote_dataset_of_the_same_content_reuses_the_entry(index, client):
    entry = index.write(features(40), name="same", maxcount=20, progress=False)
    ds = atdata.Dataset[FeatureSample](entry.data_urls)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at_uri = index.promote_dataset(ds, name="same", description="described", progress=False)
    published = index.get_dataset(at_uri)
    assert published.cid == entry.cid and published.description == "described"
    assert [e.name for e in index.list_entries()] == ["same"]


def test_list_datasets_of_the_atmosphere_and_of_a_did(index, client, tmp_path, pds_account):
    index.write(features(5), name="listed", progress=False)
    uri = index.promote_entry("listed", version="1.0.0", progress=False)
    assert index.get_label(f"@{pds_account.handle}/listed", version="1.0.0").cid == index.get_dataset(uri).cid
    assert index.get_label(f"@{pds_account.handle}/listed").name == "listed"
    mine = index.list_datasets(repo="_atmosphere")
    assert [(e.name, e.num_samples) for e in mine] == [("listed", 5)]
    other = atdata.Index(path=tmp_path / "other.db", atmosphere=client)  # e.g. a colleague's index
    assert [e.name for e in other.list_datasets(repo=client.did)] == ["listed"]
    assert index.get_dataset(uri).cid == mine[0].cid
    assert [e.name for e in index.list_datasets()] == ["listed"]  # local only by default


def test_promote_dataset_takes_atdatas_sample_type_and_schema_version(index, client, tmp_path):
    src = atdata.write_samples(features(20), tmp_path / "raw" / "f", maxcount=10)
    uri = index.promote_dataset(
        atdata.Dataset(src.urls),  # untyped: described as the type given
        name="typed",
        sample_type=FeatureSample,
        schema_version="2.1.0",
        copy_to=atdata.LocalDiskStore(tmp_path / "public"),
        progress=False,
    )
    assert index.get_entry_by_name("typed").schema_ref.endswith("FeatureSample@2.1.0")
    published = index.get_dataset(uri)
    assert atdata.promotion.fetch_schema(index, published.schema_ref).version == "2.1.0"
    assert published.num_samples == 20


def test_promote_to_atmosphere_is_the_function_form_of_promote_entry(client, tmp_path):
    local = atdata.Index(path=tmp_path / "l.db", data_store=atdata.LocalDiskStore(tmp_path / "d"))
    entry = local.write(features(30), name="fn-form", maxcount=15, progress=False)
    uri = atdata.promote_to_atmosphere(
        entry, local, client, data_store="blobs", description="via the function", license="MIT"
    )
    assert local.atmosphere is None  # the index given is left as it was
    ds = atdata.load_dataset(uri, FeatureSample, split="train", atmosphere=client)
    assert len(ds) == 30 and ds[29].label == 29 % 10
    assert local.published_uri("fn-form", did=client.did) == uri  # the local index knows it
    assert atdata.promote_to_atmosphere("fn-form", local, client, data_store="blobs") == uri  # unchanged
    assert counts(client) == (1, 1, 1)
