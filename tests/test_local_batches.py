"""Batched reads of large samples from local shards: arrays read straight into the batch.

Every test compares the batches with the samples decoded one by one, and says whether the direct
path (``read_batch``) served the batch or the ordinary one did. The spy only counts calls to our
own function; the files and reads are real.
"""

from __future__ import annotations

import io
import os
import tarfile
from typing import Optional

import msgpack
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
import atdata_lab.dataset as dataset_module
from atdata_lab.errors import ShardError


@atdata.packable
class Image:
    image: NDArray
    label: int
    name: str


@atdata.packable
class Pair:
    image: NDArray
    mask: NDArray
    weight: float


@atdata.packable
class Maybe:
    image: Optional[NDArray]
    label: int


@pytest.fixture
def served(monkeypatch):
    """How many batches the direct path served, and how many it handed back."""
    counts = {"direct": 0, "fallback": 0}
    real = dataset_module.read_batch

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        counts["direct" if got is not None else "fallback"] += 1
        return got

    monkeypatch.setattr(dataset_module, "read_batch", spy)
    return counts


def images(n, shape=(3, 64, 96), start=0, dtype=np.uint8):
    rng = np.random.default_rng(start)
    # labels of 1, 2 and 3 msgpack bytes and names of varying length: samples differ in size
    return [
        Image(image=rng.integers(0, 255, shape).astype(dtype), label=(i * 97) % 70000, name="n" * (i % 7))
        for i in range(start, start + n)
    ]


def check_batches(ds, samples, batch_size, fields=("image", "label", "name")):
    batches = list(ds.ordered(batch_size=batch_size))
    assert sum(len(b) for b in batches) == len(samples)
    got = [s for b in batches for s in b.samples]
    for a, b in zip(got, samples):
        for f in fields:
            va, vb = getattr(a, f), getattr(b, f)
            if isinstance(vb, np.ndarray):
                assert va.dtype == vb.dtype and va.shape == vb.shape and np.array_equal(va, vb)
            else:
                assert va == vb
    return batches


def test_uniform_images_are_read_straight_into_the_batch(tmp_path, served):
    samples = images(230)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=64)  # batches span shards
    batches = check_batches(ds, samples, 32)
    assert served == {"direct": len(batches), "fallback": 0}
    assert batches[0].image.shape == (32, 3, 64, 96) and batches[0].image.flags.c_contiguous
    assert batches[-1].image.shape == (230 % 32, 3, 64, 96)


def test_two_arrays_and_big_endian_floats(tmp_path, served):
    rng = np.random.default_rng(3)
    samples = [
        Pair(
            image=rng.standard_normal((16, 80)).astype(">f4"),
            mask=rng.integers(0, 2, (120, 120), dtype=np.uint8),
            weight=float(i),
        )
        for i in range(50)
    ]
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=20)
    batches = check_batches(ds, samples, 8, fields=("image", "mask", "weight"))
    assert served["direct"] == len(batches) and served["fallback"] == 0
    assert batches[0].image.dtype == np.dtype(">f4")


def test_shapes_that_differ_fall_back_to_whole_samples(tmp_path, served):
    samples = images(20) + images(20, shape=(3, 80, 80), start=20)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=15)
    batches = check_batches(ds, samples, 8)
    assert served["fallback"] >= 1  # a batch across the change, or a shard holding both shapes
    mixed = [b for b in batches if isinstance(b.image, list)]
    assert mixed and all(isinstance(a, np.ndarray) for b in mixed for a in b.image)


def test_missing_optional_arrays_fall_back(tmp_path, served):
    rng = np.random.default_rng(5)
    samples = [
        Maybe(image=None if i % 9 == 4 else rng.integers(0, 255, (160, 160), dtype=np.uint8), label=i)
        for i in range(40)
    ]
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=40)
    batches = list(ds.ordered(batch_size=10))
    got = [s for b in batches for s in b.samples]
    for a, b in zip(got, samples):
        assert a.label == b.label
        assert (a.image is None) == (b.image is None)
        if b.image is not None:
            assert np.array_equal(a.image, b.image)
    assert served["fallback"] >= 1


def test_dict_samples_and_a_fresh_dataset_that_scanned_once(tmp_path, served):
    samples = images(70)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=30)
    fresh = atdata.Dataset(ds.urls)
    assert fresh[5]["label"] == samples[5].label  # random access scans each shard it touches
    for url in fresh.urls:
        fresh.shard_info(url)
    batches = list(fresh.ordered(batch_size=16))
    assert served["direct"] == len(batches)
    assert np.array_equal(np.concatenate([b.image for b in batches]), np.stack([s.image for s in samples]))
    assert [x for b in batches for x in b.label] == [s.label for s in samples]


def test_unknown_offsets_are_read_from_the_headers_and_checksummed_shards_stream(tmp_path, served):
    samples = images(40)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=40)
    copied = []
    for url in ds.urls:  # files never scanned nor written in this process
        copied.append(str(tmp_path / ("copy-" + os.path.basename(url))))
        with open(url, "rb") as src, open(copied[-1], "wb") as dst:
            dst.write(src.read())
    dataset_module._scan_cache.clear()
    check_batches(atdata.Dataset[Image](copied), samples, 16)  # indexed from the headers, read directly
    assert served == {"direct": 3, "fallback": 0}
    dataset_module._scan_cache.clear()  # a new process: the index comes from the disk cache
    batches = list(atdata.Dataset(copied).ordered(batch_size=16))  # and without a sample type
    assert served == {"direct": 6, "fallback": 0}
    assert np.array_equal(np.concatenate([b.image for b in batches]), np.stack([s.image for s in samples]))
    sums = {u: ds.shard_info(u).checksum for u in ds.urls}
    check_batches(
        atdata.Dataset[Image](ds.urls, checksums=sums), samples, 16
    )  # offsets known, but hashed while read
    assert served == {"direct": 6, "fallback": 0}


def test_large_members_are_indexed_without_mapping_the_shard(tmp_path):
    """The headers of large members are read one by one (a map would put most of the file in the
    process's memory); the index is the same as through the map, and damage is still reported."""
    from atdata_lab import offset_index

    samples = images(12, shape=(3, 160, 160))  # 75 KiB of pixels: members past PREAD_MIN
    url = atdata.write_samples(samples, tmp_path / "d", maxcount=12).urls[0]
    assert os.path.getsize(url) // 12 >= offset_index.PREAD_MIN
    with open(url, "rb") as f:
        read = offset_index._pread_members(f.fileno(), os.path.getsize(url))
    offsets, keys = offset_index.scan_headers(url)
    assert read[0] == [f"{k}.msgpack" for k in keys]
    assert np.array_equal(read[1], offsets[:, 0]) and np.array_equal(read[2], offsets[:, 1])
    with open(url, "r+b") as f:
        f.seek(int(offsets[5][0]) - 512 + 3)  # the name field of the 6th member's header
        f.write(b"?")
    with pytest.raises(ShardError, match="corrupt tar header"):
        offset_index.scan_headers(url)


def test_pax_headers_written_by_other_tools(tmp_path, served):
    """A shard written by Python's tarfile with PAX headers (as atdata writes them)."""
    samples = images(30)
    path = tmp_path / "pax-000000.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, s in enumerate(samples):
            data = s.packed
            info = tarfile.TarInfo(f"{i:06d}.msgpack")
            info.size = len(data)
            info.pax_headers = {"comment": "x" * (i * 13)}  # PAX blocks of varying length
            tar.addfile(info, io.BytesIO(data))
    ds = atdata.Dataset[Image](str(path))
    ds.shard_info(ds.url)
    check_batches(ds, samples, 8)
    assert served["direct"] == 4


def test_a_shard_cut_short_after_indexing_is_an_error(tmp_path, served):
    samples = images(40)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=40)
    path = ds.urls[0]
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 5000)
    stale = atdata.Dataset[Image](ds.urls, _infos=ds._infos)
    with pytest.raises(ShardError, match="shorter than its offset index|truncated"):
        list(stale.ordered(batch_size=16))


def test_a_damaged_first_header_is_an_error(tmp_path, served):
    samples = images(40)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=40)
    info = ds.shard_info(ds.url)
    with open(ds.url, "r+b") as f:
        f.seek(int(info.offsets[16][0]) - 512 + 3)  # the name field of the 17th sample's header
        f.write(b"?")
    with pytest.raises(ShardError, match="corrupt tar header"):
        list(ds.ordered(batch_size=16))


def test_a_sample_rewritten_in_place_is_decoded_whole(tmp_path, served):
    """Bytes that no longer fit the layout (here: a bin header) send the batch to the ordinary path."""
    samples = images(16)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=16)
    info = ds.shard_info(ds.url)
    off, size = (int(x) for x in info.offsets[9])
    with open(ds.url, "r+b") as f:
        f.seek(off)
        data = bytearray(f.read(size))
        m = msgpack.unpackb(bytes(data))
        assert list(m)[0] == "image"
        data[0:1] = b"\x80"  # the map header now says: no fields
        f.seek(off)
        f.write(data)
    with pytest.raises(atdata.SampleDecodeError):
        list(ds.ordered(batch_size=16))
    assert served["fallback"] == 1


def test_an_index_whose_samples_overlap_is_not_trusted(tmp_path, served):
    """A hostile or broken offset index (samples overlapping) never reads bytes into the wrong place."""
    samples = images(8)
    ds = atdata.write_samples(samples, tmp_path / "d", maxcount=8)
    info = ds.shard_info(ds.url)
    bad = info.offsets.copy()
    bad[3, 0] = bad[2, 0] + 100  # sample 3 "starts" inside sample 2
    broken = atdata.Dataset[Image](
        ds.urls,
        _infos={
            ds.url: atdata.shards.ShardInfo(
                info.url, info.checksum, info.size, info.num_samples, bad, info.keys
            )
        },
    )
    with pytest.raises(atdata.SampleDecodeError):
        list(broken.ordered(batch_size=8))
    assert served == {"direct": 0, "fallback": 1}


def test_an_index_entry_is_read_directly_with_the_index_offsets(tmp_path, served):
    """What users read through ``Index.dataset`` (offsets from the index) takes the direct path."""
    samples = images(50)
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    entry = index.write(samples, name="imgs", maxcount=20, progress=False)
    dataset_module._scan_cache.clear()  # only the index's offsets are known
    batches = check_batches(index.dataset(entry), samples, 16)
    assert served == {"direct": len(batches), "fallback": 0}
