"""S3DataStore opts into the data store conformance suite on a real SeaweedFS S3 server."""

from __future__ import annotations

import os
import uuid

import pytest

import atdata_lab as atdata
from atdata_lab.errors import ShardExistsError, StoreError
from atdata_lab.stores.s3 import PART_SIZE, S3DataStore
from tests.conformance.index_suite import experiment
from tests.conformance.store_suite import StoreSuite

pytestmark = pytest.mark.s3


def make_store(server, bucket, **kw):
    return S3DataStore(
        bucket,
        prefix=f"p-{uuid.uuid4().hex[:8]}/",
        endpoint_url=server.endpoint_url,
        key=server.key,
        secret=server.secret,
        **kw,
    )


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


def test_a_multipart_commit_over_another_object_is_refused_and_its_upload_aborted(
    s3_server, s3_bucket, atdata_home
):
    # If-None-Match: * on CompleteMultipartUpload, honoured by SeaweedFS (and AWS S3, MinIO)
    store = make_store(s3_server, s3_bucket)
    url = store.shard_url("big", 0)
    first = store.open_sink(url)
    first.write(b"a" * 10)
    first.commit()
    big = store.open_sink(url)
    big.write(os.urandom(PART_SIZE + 1))  # more than one part: a multipart upload
    with pytest.raises(ShardExistsError, match="already exists"):
        big.commit()
    fs = s3_server.fs()
    assert fs.list_multipart_uploads(s3_bucket) == []
    assert list((atdata_home / "pending-s3-uploads").glob("*.json")) == []
    assert fs.cat_file(url[len("s3://") :]) == b"a" * 10


def test_without_conditional_writes_the_commit_checks_for_the_key_first(s3_server, s3_bucket):
    # for S3 servers that reject If-None-Match; two writers racing within that instant can still collide
    store = make_store(s3_server, s3_bucket, conditional_writes=False)
    url = store.shard_url("plain", 0)
    first = store.open_sink(url)
    first.write(b"one" * 10)
    assert first.commit() is True
    other = store.open_sink(url)
    other.write(b"two" * 10)
    with pytest.raises(ShardExistsError):
        other.commit()
    same = store.open_sink(url)
    same.write(b"one" * 10)
    assert same.commit() is False
    with store.open_read(url) as f:
        assert f.read() == b"one" * 10


def test_atdatas_credentials_form_the_tutorial_uses(s3_server, s3_bucket, tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    creds = {
        "AWS_ENDPOINT": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
    }
    store = S3DataStore(credentials=creds, bucket=s3_bucket)  # atdata's tutorial, verbatim
    assert store.bucket == s3_bucket and store.endpoint_url == s3_server.endpoint_url
    assert s3_server.secret not in repr(store)
    index = atdata.Index(path=tmp_path / "i.db", data_store=store)
    e = index.write_samples(experiment(20), name=f"creds-{uuid.uuid4().hex[:6]}", progress=False)
    assert e.data_urls[0].startswith(f"s3://{s3_bucket}/") and len(index.dataset(e)) == 20
    env = tmp_path / "s3.env"
    env.write_text(
        f"# team credentials\nAWS_ENDPOINT={s3_server.endpoint_url}\n"
        f"export AWS_ACCESS_KEY_ID='{s3_server.key}'\nAWS_SECRET_ACCESS_KEY=\"{s3_server.secret}\"\n"
    )
    from_file = S3DataStore(env, bucket=s3_bucket)
    from_file.check()
    assert from_file.storage_options["key"] == s3_server.key
    with pytest.raises(ValueError, match="lacks AWS_SECRET_ACCESS_KEY"):
        S3DataStore({"AWS_ACCESS_KEY_ID": "x"}, bucket=s3_bucket)
    with pytest.raises(ValueError, match="needs a bucket"):
        S3DataStore(creds)  # type: ignore[arg-type]
