"""Data sources (atdata 0.7's ``DataSource`` protocol): ``Dataset[T](source)`` reads URLSource,
S3Source (real SeaweedFS), BlobSource (the real sandbox PDS) and sources of your own."""

from __future__ import annotations

import io
import pickle
import uuid
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.errors import NotFoundError, ShardNotFoundError


@atdata.packable
class Row:
    i: int
    v: NDArray


def rows(n: int) -> list[Row]:
    return [Row(i=i, v=np.full(4, i, dtype=np.float32)) for i in range(n)]


@pytest.fixture
def written(tmp_path) -> atdata.Dataset:
    return atdata.write_samples(rows(10), tmp_path / "d", maxcount=4)  # 3 shards: 4, 4, 2


class OneWayStream(io.RawIOBase):
    """A stream that can only be read forward (like an HTTP body): no seek, no tell."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:
        chunk = self._buf.read(min(len(b), 1000))  # short reads, as a socket gives
        b[: len(chunk)] = chunk
        return len(chunk)


class BytesSource:
    """A source of our own: shards held in memory under names that are not paths or URLs."""

    def __init__(self, shards: dict[str, bytes]) -> None:
        self.blobs = shards
        self.opened: list[str] = []

    def list_shards(self) -> list[str]:
        return list(self.blobs)

    @property
    def shards(self):
        for sid in self.blobs:
            yield sid, self.open_shard(sid)

    def open_shard(self, shard_id: str):
        if shard_id not in self.blobs:
            raise KeyError(shard_id)
        self.opened.append(shard_id)
        return OneWayStream(self.blobs[shard_id])


class OlderSource:
    """The protocol as atdata's protocols page shows it: ``shard_list`` and a ``shards()`` method."""

    def __init__(self, paths: list[str]) -> None:
        self._paths = paths

    @property
    def shard_list(self) -> list[str]:
        return [Path(p).name for p in self._paths]

    def shards(self):
        for p in self._paths:
            yield Path(p).name, open(p, "rb")

    def open_shard(self, shard_id: str):
        return open(next(p for p in self._paths if Path(p).name == shard_id), "rb")


def test_a_source_of_your_own_is_read_through_open_shard(written):
    source = BytesSource({f"mem-{i}": Path(u).read_bytes() for i, u in enumerate(written.urls)})
    assert isinstance(source, atdata.DataSource)
    ds = atdata.Dataset[Row](source)
    assert ds.source is source and ds.list_shards() == ["mem-0", "mem-1", "mem-2"]
    assert [s.i for s in ds.ordered()] == list(range(10))
    batches = list(ds.ordered(batch_size=4))
    assert [b.v.shape for b in batches] == [(4, 4), (4, 4), (2, 4)]
    assert sorted(s.i for s in ds.shuffled(seed=3)) == list(range(10))
    assert len(ds) == 10
    assert ds[6].i == 6 and ds[-1].i == 9  # random access on a forward-only stream: read up to it
    key = ds.shard_info(ds.urls[2]).keys[1]
    assert ds.get(key).i == 9
    assert [s.i for s in ds.select([8, 1])] == [8, 1]
    assert ds.process_shards(len) == {"mem-0": 4, "mem-1": 4, "mem-2": 2}  # keyed by the source's ids
    assert ds.process_shards(len, shards=["mem-2"]) == {"mem-2": 2}
    assert ds.describe()["urls"] == ["mem-0", "mem-1", "mem-2"]
    part = ds.split_by_worker(1, 2)
    assert [s.i for s in part] == [4, 5, 6, 7] and part.source is source
    copy = pickle.loads(pickle.dumps(ds))  # DataLoader workers get the source with the dataset
    assert [s.i for s in copy.ordered()] == list(range(10))


def test_a_source_that_loses_a_shard_says_which(written):
    source = BytesSource({"a": Path(written.urls[0]).read_bytes()})
    ds = atdata.Dataset[Row](source)
    del source.blobs["a"]
    with pytest.raises(ShardNotFoundError, match="datasource://a"):
        list(ds.ordered())


def test_the_older_protocol_form_is_read_too(written):
    ds = atdata.Dataset[Row](OlderSource(written.urls))
    assert ds.list_shards() == [Path(u).name for u in written.urls]
    assert [s.i for s in ds] == list(range(10)) and ds[5].i == 5  # a seekable stream: seeks


def test_not_a_source_is_refused():
    with pytest.raises(TypeError, match="not a data source"):
        atdata.Dataset[Row](object())
    with pytest.raises(TypeError, match="needs its shards"):
        atdata.Dataset[Row]()


def test_url_source_is_read_like_a_string(written, tmp_path):
    pattern = str(tmp_path / "d-{000000..000002}.tar")
    src = atdata.URLSource(pattern)
    assert src.list_shards() == written.urls
    ds = atdata.Dataset[Row](src)
    assert ds.source is src and ds.urls == written.urls  # read by our own readers, not through streams
    assert [s.i for s in ds] == list(range(10))
    with src.open_shard(written.urls[0]) as f:
        assert f.read(512)[257:262] == b"ustar"
    with pytest.raises(NotFoundError):
        src.open_shard("elsewhere.tar")
    assert [sid for sid, f in src.shards if not f.close()] == written.urls
    assert atdata.Dataset[Row](url=pattern).urls == written.urls  # atdata's older keyword


def test_plain_datasets_show_their_urls_as_a_source(written):
    src = written.source
    assert isinstance(src, atdata.DataSource)
    assert src.list_shards() == written.urls
    assert [sid for sid, f in src.shards if not f.close()] == written.urls


@pytest.mark.s3
def test_s3_source_reads_a_private_bucket_with_its_own_credentials(s3_server, s3_bucket, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    store = atdata.S3DataStore(
        s3_bucket, endpoint_url=s3_server.endpoint_url, key=s3_server.key, secret=s3_server.secret
    )
    urls = store.write_shards(rows(10), prefix=f"src-{uuid.uuid4().hex[:6]}", maxcount=4)
    keys = [u.split("/", 3)[3] for u in urls]
    src = atdata.S3Source(
        bucket=s3_bucket,
        keys=keys,
        endpoint=s3_server.endpoint_url,
        access_key=s3_server.key,
        secret_key=s3_server.secret,
    )
    assert s3_server.secret not in repr(src)
    assert src.list_shards() == list(urls)
    ds = atdata.Dataset[Row](src)
    assert [s.i for s in ds] == list(range(10)) and ds[9].i == 9
    creds = {
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
        "AWS_ENDPOINT": s3_server.endpoint_url,
    }
    again = atdata.S3Source.from_credentials(creds, s3_bucket, keys)
    assert [s.i for s in atdata.Dataset[Row](again)] == list(range(10))
    by_url = atdata.S3Source.from_urls(
        list(urls), endpoint=s3_server.endpoint_url, access_key=s3_server.key, secret_key=s3_server.secret
    )
    assert by_url.keys == keys
    with pytest.raises(ValueError, match="one bucket"):
        atdata.S3Source.from_urls(["s3://a/x.tar", "s3://b/y.tar"])
    wrong = atdata.S3Source(
        s3_bucket, keys, endpoint=s3_server.endpoint_url, access_key="no", secret_key="no"
    )
    with pytest.raises(PermissionError):
        list(atdata.Dataset[Row](wrong))


def test_blob_source_refuses_references_it_cannot_check():
    with pytest.raises(ValueError, match="needs the DID"):
        atdata.BlobSource.from_refs([{"$type": "blob", "ref": {"$link": "bafkrei"}}])
    with pytest.raises(ValueError):
        atdata.BlobSource([{"did": "did:plc:abc", "cid": "not-a-cid"}])
    with pytest.raises(ValueError, match="not a DID"):
        atdata.BlobSource([{"did": "../etc", "cid": "x"}])


@pytest.mark.sandbox
def test_blob_source_reads_blobs_checked_against_their_cids(pds_account, tmp_path, monkeypatch):
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.atmosphere import records as rec

    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "data"), atmosphere=client
    )
    local = index.write(rows(10), name="blobbed", maxcount=4, progress=False)
    index.promote_entry("blobbed", copy_to="blobs", progress=False)  # the PDS serves blobs a record uses
    (record,) = [
        r["value"] for r in client.list_all_records(rec.ENTRY_NSID) if r["value"]["name"] == "blobbed"
    ]
    refs = [{"did": client.did, "cid": b["blob"]["ref"]["$link"]} for b in record["storage"]["blobs"]]
    src = atdata.BlobSource.from_refs(refs, pds_endpoint=client.pds_url)
    assert src.list_shards() == [f"at://{client.did}/blob/{r['cid']}" for r in refs]
    ds = atdata.Dataset[Row](src)
    assert ds.list_shards() == src.list_shards()
    assert [s.i for s in ds] == list(range(10)) and ds[5].i == 5
    cached = src.local_path(src.list_shards()[0])
    assert cached.is_file() and cached.read_bytes() == Path(local.data_urls[0]).read_bytes()
    assert cached.is_relative_to(tmp_path / "home")  # the verified blob cache
    missing = atdata.BlobSource([dict(refs[0], cid=_raw_cid(b"no such blob"))], pds_endpoint=client.pds_url)
    with pytest.raises(ShardNotFoundError, match="shard not found: datasource://at://"):
        list(atdata.Dataset[Row](missing))


def _raw_cid(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256) of some bytes: a blob CID."""
    import base64
    import hashlib

    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")
