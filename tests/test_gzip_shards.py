"""Compact gzip shards (``compression="gzip"``): every read mode, blocks that inflate alone, standard
readers (tarfile, gzip, the real atdata 0.7) reading them as one stream, and forged or damaged files
refused with a clear error."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab import seekable_gzip
from atdata_lab.dataset import _scan_cache
from atdata_lab.errors import InvalidArgumentError, ShardError
from atdata_lab.tar import ustar_header
from tests.support import atdata_reference as ref


@atdata.packable
class Small:
    measurement: NDArray
    timestamp: float
    sensor_id: str


def small(n: int, seed: int = 0) -> list[Small]:
    rng = np.random.default_rng(seed)
    return [
        Small(
            measurement=rng.standard_normal(64).astype(np.float32),
            timestamp=float(i),
            sensor_id=f"sensor_{i % 4}",
        )
        for i in range(n)
    ]


def same(a: Small, b: Small) -> bool:
    return np.array_equal(a.measurement, b.measurement) and (a.timestamp, a.sensor_id) == (
        b.timestamp,
        b.sensor_id,
    )


def fresh(urls: list[str]) -> atdata.Dataset:
    """A dataset that knows nothing of the shards: their offset index is scanned from the files."""
    _scan_cache.clear()
    return atdata.Dataset[Small](urls)


@pytest.fixture
def written(tmp_path):
    samples = small(3000)
    ds = atdata.write_samples(samples, tmp_path / "s", maxcount=1200, compression="gzip")
    return samples, ds


def test_every_read_mode_round_trips(written):
    samples, ds = written
    assert [u.rsplit("/", 1)[1] for u in ds.urls] == [f"s-00000{i}.tar.gz" for i in range(3)]
    for d in (ds, fresh(ds.urls)):  # offset index from the writer, then scanned from the files
        assert len(d) == 3000
        assert all(same(a, b) for a, b in zip(d.ordered(), samples, strict=True))
        batches = list(d.ordered(batch_size=32))
        assert sum(len(b) for b in batches) == 3000
        assert np.array_equal(
            np.concatenate([b.measurement for b in batches]), np.stack([s.measurement for s in samples])
        )
        for k in (0, 1, 777, 1199, 1200, 2999, -1):
            assert same(d[k], samples[k])
        assert same(d.get("000005"), samples[5])
        assert [s.timestamp for s in d.select([2500, 3, 1300])] == [2500.0, 3.0, 1300.0]
        shuffled = sorted(s.timestamp for s in d.shuffled(seed=3))
        assert shuffled == [float(i) for i in range(3000)]
        epoch = [s.timestamp for s in d.shuffled(seed=3, epoch=1)]
        assert sorted(epoch) == shuffled and epoch != shuffled
        in_batches = list(d.shuffled(seed=3, epoch=1, batch_size=64))
        assert [t for b in in_batches for t in b.timestamp] == epoch


def test_scanned_offsets_match_the_writers(written):
    _samples, ds = written
    for url in ds.urls:
        mine = ds.shard_info(url)
        scanned = fresh([url]).shard_info(url)
        assert (scanned.checksum, scanned.size, scanned.keys) == (mine.checksum, mine.size, mine.keys)
        assert np.array_equal(scanned.offsets, mine.offsets)
        # the scan finds the writer's blocks again (at the flush points between tar members)
        assert len(mine.blocks) > 5 and np.array_equal(scanned.blocks, mine.blocks)


def test_blocks_inflate_alone_and_hashes_are_of_the_file(written):
    _samples, ds = written
    for url in ds.urls:
        info = ds.shard_info(url)
        data = open(url, "rb").read()
        assert info.checksum == hashlib.sha256(data).hexdigest() and info.size == len(data)
        tar = gzip.decompress(data)
        ends = set((info.offsets[:, 0] - 512).tolist()) | {len(tar) - 1024}
        for c_start, c_len, d_start, d_len, crc in info.blocks.tolist():
            alone = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[c_start : c_start + c_len])
            assert alone == tar[d_start : d_start + d_len]  # byte-exact, with no other block's bytes
            assert zlib.crc32(alone) == crc
            assert d_start in ends or d_start == 0  # every block starts at a tar member (never inside one)
        assert int(info.blocks[-1, 2] + info.blocks[-1, 3]) == len(tar)


def test_same_samples_give_the_same_bytes(tmp_path):
    a = atdata.write_samples(small(500), tmp_path / "a.tar", compression="gzip")
    b = atdata.write_samples(small(500), tmp_path / "b.tar", compression="gzip")
    assert a.urls[0].endswith("a.tar.gz")
    assert open(a.urls[0], "rb").read() == open(b.urls[0], "rb").read()


def test_tarfile_and_gzip_read_one_stream(written):
    samples, ds = written
    names = []
    for url in ds.urls:
        for mode in ("r|*", "r:gz"):  # stream mode is how webdataset (and so atdata 0.7) reads
            with tarfile.open(url, mode) as t:
                got = [(m.name, t.extractfile(m).read()) for m in t]
            assert len(got) == ds.shard_info(url).num_samples
            if mode == "r|*":
                names += [n for n, _ in got]
        assert gzip.decompress(open(url, "rb").read()).endswith(bytes(1024))
    assert names == [f"{i:06d}.msgpack" for i in range(3000)]


@pytest.mark.slow
def test_the_real_atdata_reads_gzip_shards(written):
    ref.require_atdata_venv()
    samples, ds = written
    spec = {
        "name": "Small",
        "fields": [
            {"name": "measurement", "kind": "ndarray"},
            {"name": "timestamp", "kind": "float"},
            {"name": "sensor_id", "kind": "str"},
        ],
    }
    got = ref.read_shards_with_atdata(spec, ds.urls)
    assert len(got) == 3000
    for s, g in zip(samples, got):
        arr = g["measurement"]
        assert np.array_equal(
            np.asarray(arr["data"], dtype=arr["dtype"]).reshape(arr["shape"]), s.measurement
        )
        assert (g["timestamp"], g["sensor_id"]) == (s.timestamp, s.sensor_id)


def test_index_write_gzip_and_reload():
    index = atdata.Index()
    samples = small(700)
    entry = index.write(samples, name="compact", maxcount=300, compression="gzip", progress=False)
    assert all(u.endswith(".tar.gz") for u in entry.data_urls) and len(entry.data_urls) == 3
    again = atdata.Index().dataset("compact")
    assert again.shard_info(again.urls[1]).blocks is not None  # the block table comes from the index
    assert same(again[650], samples[650]) and same(again[0], samples[0])
    assert all(same(a, b) for a, b in zip(again.ordered(), samples, strict=True))
    with pytest.raises(InvalidArgumentError, match="compression"):
        index.write(samples, name="other", compression="zstd", progress=False)


def test_a_gzip_bomb_is_refused(tmp_path):
    """A FORGED shard: a tar header declaring a 1 TiB member, then 64 MiB of zeros compressed to
    ~64 KiB. Reading it must fail at once, not try to hold the member in memory."""
    bomb = tmp_path / "bomb.tar.gz"
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with open(bomb, "wb") as f:
        f.write(c.compress(ustar_header("000000.msgpack", 1 << 40)))
        zeros = bytes(1 << 20)
        for _ in range(64):
            f.write(c.compress(zeros))
        f.write(c.flush())
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ShardError, match="forged or damaged"):
        list(fresh([str(bomb)]).ordered())


def test_a_block_inflating_past_its_table_is_refused(written, tmp_path):
    """A FORGED shard: the first block of a real shard replaced (same length) by raw deflate of
    4 MiB of zeros; the offset index still says 32 KiB. Random access inflates at most one byte
    more than the table says, then refuses."""
    _samples, ds = written
    url = ds.urls[0]
    info = ds.shard_info(url)
    c_start, c_len = int(info.blocks[0, 0]), int(info.blocks[0, 1])
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    forged = c.compress(bytes(4 << 20)) + c.flush()
    assert len(forged) < c_len
    data = bytearray(open(url, "rb").read())
    data[c_start : c_start + c_len] = forged + bytes(c_len - len(forged))
    open(url, "wb").write(data)
    seekable_gzip._cache.clear()
    with pytest.raises(ShardError, match="inflates to more than"):
        ds[0]


def test_a_block_too_large_for_random_access_is_refused(tmp_path, monkeypatch):
    # a shard compressed elsewhere as one gzip stream: one block, inflated whole for ds[k] up to a bound
    ds = atdata.write_samples(small(200), tmp_path / "plain.tar")
    foreign = tmp_path / "foreign.tar.gz"
    foreign.write_bytes(gzip.compress(open(ds.urls[0], "rb").read()))
    d = fresh([str(foreign)])
    assert same(d[150], small(200)[150])  # within the bound: works
    monkeypatch.setattr(seekable_gzip, "BLOCK_MAX", 64 << 10)
    seekable_gzip._cache.clear()
    with pytest.raises(ShardError, match="bound of random access"):
        fresh([str(foreign)])[150]


def test_a_corrupt_block_is_detected(written):
    samples, ds = written
    url = ds.urls[1]
    info = ds.shard_info(url)
    c_start, c_len = int(info.blocks[3, 0]), int(info.blocks[3, 1])
    data = bytearray(open(url, "rb").read())
    data[c_start + c_len // 2] ^= 0x55
    open(url, "wb").write(data)
    seekable_gzip._cache.clear()
    k = 1200 + int(np.searchsorted(info.offsets[:, 0], info.blocks[3, 2]))  # the first sample in block 3
    with pytest.raises(ShardError, match="damaged") as e:
        ds[k]
    assert url in str(e.value) and f"compressed byte {c_start}" in str(e.value)
    assert same(ds[1200], samples[1200])  # the other blocks still read
    with pytest.raises(ShardError, match=r"corrupt gzip data|crc"):
        list(fresh(ds.urls).ordered())


def test_a_truncated_gzip_shard_is_detected(written, tmp_path):
    _samples, ds = written
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(open(ds.urls[0], "rb").read()[:-5000])
    with pytest.raises(ShardError, match="truncated"):
        list(fresh([str(cut)]).ordered())


def test_the_gunzip_reader_bounds_each_read():
    data = gzip.compress(bytes(10 << 20))
    r = seekable_gzip.GunzipReader(io.BytesIO(data), "x")
    assert len(r.read(4096)) == 4096  # inflates what is asked for, not the whole member
    r.drain()
    (row,) = r.table().tolist()
    assert row[:4] == [0, len(data), 0, 10 << 20]


@pytest.mark.sandbox
def test_gzip_shards_promote_and_verify_on_the_sandbox_pds(pds_account):
    """Published .tar.gz shards (by URL, with manifests): the record takes them, the data loads back
    equal, a query reads single samples, and verification reads the shards back. As PDS blobs they
    are refused at plan time: the PDS names them application/gzip, which atdata's storageBlobs
    lexicon does not accept (application/x-tar only)."""
    from atdata_lab.atmosphere import Atmosphere

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
    local = small(400, seed=7)
    entry = index.write(
        local, name="gz-disk", maxcount=150, compression="gzip", manifest=True, progress=False
    )
    assert all(u.endswith(".tar.gz") for u in entry.data_urls)
    uri = index.plan_promotion("gz-disk").execute(progress=False).at_uri
    ds = atdata.load_dataset(uri, split="train")
    got = list(ds.ordered())
    assert len(got) == 400 and all(same(a, b) for a, b in zip(local, got))
    assert same(ds[321], local[321])
    hits = ds.query(where=lambda df: df["timestamp"] == 123.0)
    assert [s.timestamp for s in ds.select(hits)] == [123.0]
    report = index.verify(uri)
    checked = {name for name, ok, _ in report.checks if ok}
    assert {"shard checksums match", "manifests match the shards"} <= checked, str(report)
    assert report.only_here, str(report)  # disk URLs are local paths: all passes but "loadable by others"

    index.write(local, name="gz-blobs", maxcount=150, compression="gzip", progress=False)
    plan = index.plan_promotion("gz-blobs", copy_to="blobs")
    assert any("gzip-compressed" in b and "application/x-tar" in b for b in plan.blocking)
    with pytest.raises(atdata.AtdataLabError, match="gzip-compressed"):
        plan.execute(progress=False)


def test_why_one_member_tarfile_stream_mode_stops_after_the_first(written, tmp_path):
    """The reason for one gzip member cut by flushes rather than BGZF's many members: Python's
    tarfile in stream mode (webdataset's, so atdata 0.7's) reads only the first member of a
    multi-member file, silently. Our readers read every member of such a file (written elsewhere)."""
    samples, ds = written
    tar = gzip.decompress(open(ds.urls[0], "rb").read())
    cut = int(ds.shard_info(ds.urls[0]).offsets[600, 0]) - 512  # between two tar members
    multi = tmp_path / "multi.tar.gz"
    multi.write_bytes(gzip.compress(tar[:cut], mtime=0) + gzip.compress(tar[cut:], mtime=0))
    with tarfile.open(multi, "r|*") as t:
        assert len(list(t)) == 600  # not 1200
    d = fresh([str(multi)])
    assert len(d) == 1200 and all(same(a, b) for a, b in zip(d.ordered(), samples[:1200], strict=True))
    assert len(d.shard_info(str(multi)).blocks) == 2  # one block per member
    assert same(d[900], samples[900]) and same(d[10], samples[10])


@pytest.mark.parametrize("split", [{"maxcount": 700}, {"maxsize": 400_000}, {}])
def test_columns_give_the_gzip_bytes_of_objects(tmp_path, split):
    """A columnar write lays members out many at a time; compressed, its blocks are cut where the
    per-object writer cuts them, so the files (and their block tables) are the same."""
    samples = small(2000)
    cols = {
        "measurement": np.stack([s.measurement for s in samples]),
        "timestamp": np.array([s.timestamp for s in samples]),
        "sensor_id": [s.sensor_id for s in samples],
    }
    split = split or {"maxcount": None}
    ours = atdata.write_samples(cols, tmp_path / "c" / "d", sample_type=Small, compression="gzip", **split)
    theirs = atdata.write_samples(samples, tmp_path / "o" / "d", compression="gzip", **split)
    assert [u.endswith(".tar.gz") for u in ours.urls] == [True] * len(theirs.urls)
    assert [open(u, "rb").read() for u in ours.urls] == [open(u, "rb").read() for u in theirs.urls]
    for a, b in zip(ours.urls, theirs.urls):
        assert np.array_equal(ours.shard_info(a).blocks, theirs.shard_info(b).blocks)
    back = fresh(ours.urls)
    assert same(back[1999], samples[1999])
    assert sum(len(b["sensor_id"]) for b in back.ordered(batch_size=64)) == 2000
