"""Batched reads of small samples decoded by columns (``read_small_batch``).

Every test compares the batches with those of the ordinary decoder (the same read with
``read_small_batch`` switched off: every batch then goes through msgpack sample by sample), and
counts which batches the column decoder served. The spy only wraps our own function; the files
and reads are real.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
import atdata_lab.dataset as dataset_module
from atdata_lab.errors import SampleDecodeError, ShardError


@atdata.packable
class Reading:
    measurement: NDArray
    timestamp: float
    sensor_id: str


@atdata.packable
class Everything:
    vec: NDArray
    mat: NDArray
    score: float
    count: int
    flag: bool
    name: str
    blob: bytes


@atdata.packable
class Maybe:
    vec: NDArray
    note: Optional[str]


@atdata.packable
class Tagged:
    tags: list[str]
    value: float


INTS = [
    0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    2**32,
    2**63 - 1,
    -1,
    -32,
    -33,
    -128,
    -129,
    -(2**31),
    -(2**63),
]
NAMES = ["", "a", "x" * 31, "y" * 32, "z" * 255, "w" * 300, "é€😀", "tail\x00", "\x00", "sensor_7"]
BLOBS = [b"", b"\x00", b"abc\x00", b"\xff" * 40, b"q" * 300]


def everything(n: int, start: int = 0) -> list[Everything]:
    rng = np.random.default_rng(start)
    return [
        Everything(
            vec=rng.standard_normal(5).astype(np.float32),
            mat=rng.integers(-9, 9, (2, 3)).astype(">i2"),
            score=float(rng.standard_normal()) if i % 5 else float("inf"),
            count=INTS[(start + i) % len(INTS)],
            flag=bool(i % 3),
            name=NAMES[(start + i) % len(NAMES)],
            blob=BLOBS[(start + i) % len(BLOBS)],
        )
        for i in range(n)
    ]


def readings(n: int) -> list[Reading]:
    rng = np.random.default_rng(0)
    return [
        Reading(rng.standard_normal(64).astype(np.float32), float(i), f"sensor_{i % 4}") for i in range(n)
    ]


@pytest.fixture
def served(monkeypatch):
    """How many batches the column decoder served, and how many it handed back."""
    counts = {"columns": 0, "fallback": 0}
    real = dataset_module.read_small_batch

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        counts["columns" if got is not None else "fallback"] += 1
        return got

    monkeypatch.setattr(dataset_module, "read_small_batch", spy)
    return counts


def ordinary(ds, batch_size: int) -> list:
    """The batches as the ordinary decoder makes them."""
    real = dataset_module.read_small_batch
    dataset_module.read_small_batch = lambda *a, **k: None
    try:
        return list(ds.ordered(batch_size=batch_size))
    finally:
        dataset_module.read_small_batch = real


def assert_same(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys == w.keys
        assert g.fields == w.fields
        for name in w.fields:
            a, b = g[name], w[name]
            if isinstance(b, np.ndarray):
                assert isinstance(a, np.ndarray)
                assert (a.dtype, a.shape) == (b.dtype, b.shape)
                assert a.tobytes() == b.tobytes()
            else:
                assert type(a) is type(b) is list
                assert [type(v) for v in a] == [type(v) for v in b]
                for x, y in zip(a, b):
                    if isinstance(y, np.ndarray):
                        assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes())
                    else:
                        assert x == y or (x != x and y != y), name  # NaN == NaN here


@pytest.mark.parametrize("batch_size", [1, 7, 32, 100])
def test_every_kind_matches_the_ordinary_decoder(tmp_path, served, batch_size):
    ds = atdata.write_samples(everything(230), tmp_path / "d", maxcount=97)
    got = list(ds.ordered(batch_size=batch_size))
    assert served["columns"] > 0
    assert_same(got, ordinary(ds, batch_size))
    first, again = got[0].samples[0], ds[0]
    assert (first.name, first.count, first.blob) == (again.name, again.count, again.blob)
    assert first.mat.tobytes() == again.mat.tobytes()


def test_the_tutorial_sample_is_served_by_columns(tmp_path, served):
    ds = atdata.write_samples(readings(1000), tmp_path / "d", maxcount=300)
    got = list(ds.ordered(batch_size=32))
    # every batch inside one shard by columns; the three that span two shards as usual
    assert served == {"columns": 32 - 3, "fallback": 0}
    assert_same(got, ordinary(ds, 32))
    assert got[5].measurement.dtype == np.float32 and got[5].measurement.shape == (32, 64)


def test_a_sample_of_another_layout_mid_batch_falls_back(tmp_path, served):
    samples = readings(200)
    samples[70] = Reading(np.zeros(65, np.float32), 70.0, "sensor_2")  # another array shape
    samples[150] = Reading(np.zeros(64, np.float32), 150.0, "x" * 40)  # a str8 among fixstrs: fits
    ds = atdata.write_samples(samples, tmp_path / "d")
    got = list(ds.ordered(batch_size=32))
    assert_same(got, ordinary(ds, 32))
    assert served["fallback"] >= 1  # the batch holding sample 70 (64..95), decoded as usual
    assert served["columns"] >= 5
    assert isinstance(got[2].measurement, list)  # ragged: as the ordinary decoder gives it
    assert got[4].sensor_id[150 - 128] == "x" * 40


def test_optional_values_and_unsupported_fields(tmp_path, served):
    maybe = [Maybe(np.arange(3, dtype=np.int64), None if i in (50, 51) else f"n{i}") for i in range(120)]
    ds = atdata.write_samples(maybe, tmp_path / "m")
    assert_same(list(ds.ordered(batch_size=16)), ordinary(ds, 16))
    assert served["columns"] > 0 and served["fallback"] > 0
    tagged = [Tagged([f"t{i}"], float(i)) for i in range(50)]
    ds2 = atdata.write_samples(tagged, tmp_path / "t")
    before = dict(served)
    assert_same(list(ds2.ordered(batch_size=16)), ordinary(ds2, 16))
    assert served == before  # list fields: never offered to the column decoder


def corrupt(path: str, at: int, value: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(value)


def test_a_corrupted_member_gives_the_ordinary_error(tmp_path, served):
    ds = atdata.write_samples(readings(100), tmp_path / "d")
    url = ds.urls[0]
    off, size = ds.shard_info(url).offsets[40]
    data = open(url, "rb").read()[off : off + size]
    at = data.index(b"timestamp") + len("timestamp")  # the float's type byte
    corrupt(url, int(off) + at, b"\xc1")  # a byte no msgpack value starts with
    with pytest.raises(SampleDecodeError) as ours:
        list(ds.ordered(batch_size=32))
    assert served["fallback"] >= 1
    with pytest.raises(SampleDecodeError) as theirs:
        ordinary(ds, 32)
    assert str(ours.value) == str(theirs.value)
    assert "sample '000040'" in str(ours.value)


def test_invalid_utf8_gives_the_ordinary_error(tmp_path, served):
    ds = atdata.write_samples(readings(100), tmp_path / "d")
    url = ds.urls[0]
    off, size = ds.shard_info(url).offsets[7]
    corrupt(url, int(off + size - 1), b"\xff")  # the last byte of the str
    with pytest.raises(SampleDecodeError) as ours:
        list(ds.ordered(batch_size=32))
    with pytest.raises(SampleDecodeError) as theirs:
        ordinary(ds, 32)
    assert str(ours.value) == str(theirs.value)


def test_a_damaged_first_tar_header_is_reported(tmp_path, served):
    ds = atdata.write_samples(readings(100), tmp_path / "d")
    url = ds.urls[0]
    off = int(ds.shard_info(url).offsets[0][0])
    corrupt(url, off - 512 + 3, b"#")  # inside the name: the checksum no longer matches
    with pytest.raises(ShardError, match="checksum mismatch"):
        list(ds.ordered(batch_size=32))


def test_a_shard_shorter_than_its_index_is_reported(tmp_path, served):
    ds = atdata.write_samples(readings(100), tmp_path / "d")
    url = ds.urls[0]
    info = ds.shard_info(url)
    os.truncate(url, int(info.offsets[50][0]))
    ds._infos[url] = info  # the index is kept (same size checks are the caller's)
    with pytest.raises(ShardError, match="shorter than its offset index"):
        list(ds.ordered(batch_size=32))


def test_an_unindexed_shard_is_indexed_from_its_headers_and_read_by_columns(tmp_path, served):
    urls = atdata.write_samples(readings(300), tmp_path / "d", maxcount=150).urls
    dataset_module._scan_cache.clear()  # as a new process opening the files by path
    fresh = atdata.Dataset[Reading](urls)
    got = list(fresh.ordered(batch_size=32))
    assert served["columns"] == 9  # 10 batches, one across the two shards (decoded as usual)
    assert_same(got, ordinary(fresh, 32))


def test_a_truncated_unindexed_shard_is_reported_where_the_stream_meets_it(tmp_path, served):
    url = atdata.write_samples(readings(300), tmp_path / "d").urls[0]
    os.truncate(url, os.path.getsize(url) // 2)
    dataset_module._scan_cache.clear()
    seen = []
    with pytest.raises(ShardError, match="truncated"):
        for batch in atdata.Dataset[Reading](url).ordered(batch_size=32):
            seen.extend(batch.keys)
    assert len(seen) > 100  # the samples before the damage were read
    assert served == {"columns": 0, "fallback": 0}


def test_batch_arrays_are_the_callers_own(tmp_path, served):
    ds = atdata.write_samples(readings(1), tmp_path / "one")  # a block of one sample
    (batch,) = ds.ordered(batch_size=4)
    assert served == {"columns": 1, "fallback": 0}
    assert batch.measurement.flags.writeable  # as the ordinary decoder gives it
    batch.measurement[0, 0] = 7.0  # not the mapped file
    assert ds[0].measurement[0] != 7.0


def test_one_large_sample_among_small_ones_shortens_the_blocks(tmp_path, served):
    samples = readings(300)
    samples[5] = Reading(np.zeros(64, np.float32), 5.0, "L" * (3 << 20))  # 3 MB among 300-byte samples
    ds = atdata.write_samples(samples, tmp_path / "d")
    got = list(ds.ordered(batch_size=32))
    assert_same(got, ordinary(ds, 32))
    assert served["columns"] >= 5  # blocks of a few samples each (16 MB at most copied at once)
    assert got[0].sensor_id[5] == "L" * (3 << 20)
