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


def test_atdata_credentials_dict_and_env_file(s3_server, s3_bucket, tmp_path):
    # atdata 0.7's form: S3DataStore(credentials={AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY}, bucket=)
    creds = {
        "AWS_ENDPOINT": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
    }
    env_file = tmp_path / "s3.env"
    env_file.write_text(
        "# the team's bucket\n"
        f"AWS_ENDPOINT={s3_server.endpoint_url}\n"
        f'export AWS_ACCESS_KEY_ID="{s3_server.key}"\n'
        f"AWS_SECRET_ACCESS_KEY='{s3_server.secret}'\n"
    )
    for given in (creds, env_file, str(env_file)):
        store = S3DataStore(credentials=given, bucket=s3_bucket)
        assert store.endpoint_url == s3_server.endpoint_url and store.bucket == s3_bucket
        store.check()  # the credentials were accepted
        assert s3_server.secret not in repr(store)


def test_atdata_credentials_missing_keys_or_given_twice_are_refused(tmp_path):
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        S3DataStore(credentials={"AWS_ACCESS_KEY_ID": "k"}, bucket="b")
    env_file = tmp_path / "s3.env"
    env_file.write_text(
        "AWS_ACCESS_KEY_ID=k\nAWS_SECRET_ACCESS_KEY=s\n"
    )  # a .env file needs the endpoint too
    with pytest.raises(ValueError, match="AWS_ENDPOINT"):
        S3DataStore(credentials=env_file, bucket="b")
    with pytest.raises(ValueError, match="cannot read"):
        S3DataStore(credentials=tmp_path / "absent.env", bucket="b")
    with pytest.raises(ValueError, match="once"):
        S3DataStore("b", key="k", credentials={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
