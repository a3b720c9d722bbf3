"""S3DataStore opts into the data store conformance suite on a real SeaweedFS S3 server."""

from __future__ import annotations

import uuid

import pytest

import atdata_lab as atdata
from atdata_lab.errors import StoreError
from atdata_lab.stores.s3 import S3DataStore
from tests.conformance.index_suite import experiment
from tests.conformance.store_suite import StoreSuite

pytestmark = pytest.mark.s3


def make_store(server, bucket, **kw):
    return S3DataStore(bucket, prefix=f"p-{uuid.uuid4().hex[:8]}/", endpoint_url=server.endpoint_url,
                       key=server.key, secret=server.secret, **kw)


class TestS3DataStore(StoreSuite):
    @pytest.fixture
    def store(self, s3_server, s3_bucket):
        return make_store(s3_server, s3_bucket)

    @pytest.fixture
    def other_store(self, s3_server, s3_bucket):
        return make_store(s3_server, s3_bucket)


def test_s3_and_disk_copy_both_ways(s3_server, s3_bucket, tmp_path):
    disk = atdata.LocalDiskStore(tmp_path / "disk")
    s3 = make_store(s3_server, s3_bucket)
    index = atdata.Index(path=tmp_path / "i.db", data_store=disk)
    e = index.write(experiment(100), name="both", maxcount=40, progress=False)
    up = index.copy_entry("both", to=s3, progress=False)
    assert all(u.startswith(f"s3://{s3_bucket}/") for u in up.data_urls) and up.cid == e.cid
    down = index.copy_entry("both", to=atdata.LocalDiskStore(tmp_path / "back"), progress=False)
    assert index.dataset("both")[99].timestamp == 99.0 and down.cid == e.cid


def test_wrong_credentials_and_missing_bucket_are_named(s3_server, s3_bucket):
    bad = S3DataStore(s3_bucket, endpoint_url=s3_server.endpoint_url, key="wrong", secret="wrong")
    with pytest.raises(StoreError, match="credentials"):
        bad.check()
    with pytest.raises(StoreError, match="credentials"):
        sink = bad.open_sink(bad.shard_url("x", 0))
        sink.write(b"x")
        sink.commit()
    missing = make_store(s3_server, "no-such-bucket-" + uuid.uuid4().hex[:6])
    with pytest.raises(StoreError, match="does not exist"):
        missing.check()


def test_repr_never_shows_the_secret(s3_server, s3_bucket):
    store = make_store(s3_server, s3_bucket)
    assert s3_server.secret not in repr(store) and s3_server.secret not in store.describe()
