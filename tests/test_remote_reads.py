"""Remote shards (real SeaweedFS S3): ranged GETs with one block of readahead, and the next shard
fetched while the current one is decoded."""

from __future__ import annotations

import multiprocessing
import uuid

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
import atdata_lab.urls as urls_module
from atdata_lab.stores.s3 import S3DataStore

pytestmark = pytest.mark.s3


@atdata.packable
class Frame:
    pixels: NDArray
    index: int


def frames(n):
    rng = np.random.default_rng(7)
    return [Frame(pixels=rng.integers(0, 255, (40, 50), dtype=np.uint8), index=i) for i in range(n)]


@pytest.fixture
def remote(s3_server, s3_bucket, tmp_path, monkeypatch):
    """An entry of 5 shards on S3, read in 16 KiB ranges (so each shard is many blocks)."""
    monkeypatch.setattr(urls_module, "REMOTE_BLOCK", 16 << 10)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    store = S3DataStore(
        s3_bucket,
        prefix=f"r-{uuid.uuid4().hex[:8]}/",
        endpoint_url=s3_server.endpoint_url,
        key=s3_server.key,
        secret=s3_server.secret,
    )
    index = atdata.Index(path=tmp_path / "i.db", data_store=store)
    samples = frames(130)
    entry = index.write(samples, name="frames", maxcount=30, progress=False)
    return index, entry, samples


def test_remote_reads_with_readahead_match_the_samples(remote):
    index, entry, samples = remote
    ds = index.dataset(entry).as_type(Frame)
    got = [s for b in ds.ordered(batch_size=16) for s in b.samples]
    assert [s.index for s in got] == list(range(130))
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(got, samples))
    assert sorted(s.index for s in ds.shuffled(buffer=50, seed=1)) == list(range(130))
    checked = atdata.Dataset[Frame](
        ds.urls,
        storage_options=ds.storage_options,
        checksums={u: c for u, c in zip(entry.data_urls, entry.shard_checksums)},
    )
    assert [s.index for s in checked.ordered()] == list(range(130))  # sha256 verified while streaming


def test_a_read_stopped_early_does_not_disturb_the_next_one(remote):
    index, entry, _ = remote
    it = iter(index.dataset(entry).ordered(batch_size=8))
    next(it)
    it.close()  # the readahead of an abandoned reader finishes in the background, unread
    assert [s.index for s in index.dataset(entry).as_type(Frame).ordered()][:3] == [0, 1, 2]


def _child_reads(url_list, opts, q):
    ds = atdata.Dataset(url_list, storage_options=opts)
    q.put(sum(1 for _ in ds.ordered()))


def test_a_forked_worker_reads_after_the_parent_did(remote):
    """A DataLoader-style forked worker gets its own readahead threads (the parent's do not exist there)."""
    index, entry, _ = remote
    ds = index.dataset(entry)
    assert sum(1 for _ in ds.ordered()) == 130  # the parent's readahead pool now exists
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_reads, args=(ds.urls, ds.storage_options, q))
    p.start()
    try:
        assert q.get(timeout=60) == 130
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()
