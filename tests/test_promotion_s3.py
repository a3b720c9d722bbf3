"""Promotion with data in S3 (real SeaweedFS + real sandbox PDS): storageS3 records, loaded back
from at:// with credentials taken from the environment."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from tests.test_promotion import features

pytestmark = [pytest.mark.sandbox, pytest.mark.s3]


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    return s3_server


def store_for(server, bucket):
    return atdata.S3DataStore(
        bucket,
        prefix=f"p{uuid.uuid4().hex[:6]}/",
        endpoint_url=server.endpoint_url,
        key=server.key,
        secret=server.secret,
    )


def test_s3_data_is_published_as_storage_s3_and_loads_back(pds_account, s3_env, s3_bucket, tmp_path):
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    store = store_for(s3_env, s3_bucket)
    index = atdata.Index(path=tmp_path / "i.db", atmosphere=client, data_store=store)
    local = features(120, seed=5)
    index.write(local, name="in-s3", maxcount=50, progress=False)
    plan = index.plan_promotion("in-s3")
    storage = next(w.value for w in plan.writes if w.collection == rec.ENTRY_NSID)["storage"]
    assert storage["$type"] == rec.STORAGE_S3 and storage["bucket"] == s3_bucket
    assert storage["endpoint"] == s3_env.endpoint_url and len(storage["shards"]) == 3
    assert all(s["checksum"]["algorithm"] == "sha256" for s in storage["shards"])
    uri = plan.execute(progress=False).at_uri
    got = list(atdata.load_dataset(uri, split="train").ordered())  # credentials from AWS_* env
    assert len(got) == 120
    np.testing.assert_array_equal(got[77].features, local[77].features)
    assert index.verify(uri).failed == ["loadable by others"]  # the S3 endpoint is on 127.0.0.1


def test_copy_to_s3_during_promotion(pds_account, s3_env, s3_bucket, tmp_path):
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    index.write(features(60, seed=6), name="to-s3", maxcount=25, progress=False)
    target = store_for(s3_env, s3_bucket)
    plan = index.plan_promotion("to-s3", copy_to=target)
    assert plan.data.kind == "copy" and plan.data.shards == 3
    result = plan.execute(progress=False)
    assert all(u.startswith(f"s3://{s3_bucket}/") for u in result.data_urls)
    assert all(target.exists(u) for u in result.data_urls)
    ds = atdata.load_dataset(result.at_uri, split="train")
    assert len(ds) == 60 and ds[59].label == 59 % 10
