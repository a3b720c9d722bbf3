"""Offset indexes of unindexed local shards, from their tar headers only, cached on disk.

The index from the headers is compared with the one a whole scan (``scan_shard``) makes, on our
shards and on archives Python's ``tarfile`` writes (PAX and GNU long-name headers, other members).
The cache tests use real files under a temporary ``ATDATA_HOME``; a spy counts header scans.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

import msgpack
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
import atdata_lab.dataset as dataset_module
import atdata_lab.offset_index as offset_index
import atdata_lab.shards as shards_module
from atdata_lab.errors import ShardError
from atdata_lab.shards import scan_shard


@atdata.packable
class Reading:
    measurement: NDArray
    sensor_id: str


def readings(n: int, start: int = 0, width: int = 4) -> list[Reading]:
    return [
        Reading(np.full(width, i, np.float32), "s" * ((start + i) % 700)) for i in range(start, start + n)
    ]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    dataset_module._scan_cache.clear()
    yield tmp_path / "home"
    dataset_module._scan_cache.clear()


@pytest.fixture
def scans(monkeypatch):
    """How many times shards were parsed for an offset index (headers only / whole)."""
    counts = {"headers": 0, "whole": 0}
    real_headers, real_whole = offset_index.scan_headers, dataset_module.scan_shard

    def headers(*a, **k):
        counts["headers"] += 1
        return real_headers(*a, **k)

    def whole(*a, **k):
        counts["whole"] += 1
        return real_whole(*a, **k)

    monkeypatch.setattr(offset_index, "scan_headers", headers)
    monkeypatch.setattr(dataset_module, "scan_shard", whole)
    return counts


def unindexed(tmp_path, samples, name="d"):
    """A shard written, then opened as a user would (nothing knows its offsets)."""
    url = atdata.write_samples(samples, tmp_path / name).urls[0]
    dataset_module._scan_cache.clear()
    return url, atdata.Dataset[Reading](url)


def same_as_whole_scan(path: str) -> None:
    offsets, keys = offset_index.scan_headers(path)
    whole = scan_shard(path)
    assert keys == whole.keys
    assert offsets.dtype == np.int64 and offsets.shape == (len(keys), 2)
    assert (offsets == whole.offsets).all()


def test_headers_give_the_whole_scan_index(tmp_path):
    url = atdata.write_samples(readings(300), tmp_path / "mixed").urls[0]  # sizes vary
    same_as_whole_scan(url)
    url = atdata.write_samples(readings(300, width=64), tmp_path / "even", maxcount=1000).urls[0]
    same_as_whole_scan(url)


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_headers_of_archives_made_elsewhere(tmp_path, fmt):
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w", format=fmt) as tf:
        for i in range(40):
            long = "deep/" * (30 if fmt != tarfile.USTAR_FORMAT and i % 7 == 3 else 1)
            add(tf, f"{long}{i:04d}.msgpack", msgpack.packb({"i": i, "pad": "x" * (i * 37)}))
            if i % 9 == 0:
                add(tf, f"{i:04d}.txt", b"not a sample")
    shards_module._warned_exts.discard("txt")  # warned once per process
    with pytest.warns(UserWarning, match="ignoring tar members with extension 'txt'"):
        same_as_whole_scan(str(path))


def test_damage_is_reported_as_a_whole_scan_reports_it(tmp_path):
    url = atdata.write_samples(readings(50), tmp_path / "d").urls[0]
    data = bytearray(open(url, "rb").read())
    second = int(scan_shard(url).offsets[1][0]) - 512
    short = tmp_path / "short.tar"
    short.write_bytes(bytes(data[: second + 700]))
    bad = tmp_path / "bad.tar"
    data[second + 2] ^= 0x01  # a name byte: the header checksum no longer matches
    bad.write_bytes(bytes(data))
    for path, what in ((bad, "checksum mismatch"), (short, "truncated")):
        with pytest.raises(ShardError, match=what) as ours:
            offset_index.scan_headers(str(path))
        with pytest.raises(ShardError) as whole:
            scan_shard(str(path))
        assert str(ours.value) == str(whole.value)


def test_first_random_access_reads_headers_and_caches_them(tmp_path, home, scans):
    url, ds = unindexed(tmp_path, readings(500))
    assert ds[321].measurement[0] == 321
    assert len(ds) == 500
    assert scans == {"headers": 1, "whole": 0}  # nothing hashed, nothing read whole
    cache = offset_index.offsets_cache_path(url)
    assert cache.is_file() and cache.parent == home / "cache" / "offsets"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".")]  # no staging file left
    # the checksum is still the file's sha256 when asked for (hashed then)
    assert ds.shard_info(url).checksum == hashlib.sha256(open(url, "rb").read()).hexdigest()
    assert scans["whole"] == 1


def test_a_cached_index_serves_a_new_process(tmp_path, scans):
    url, ds = unindexed(tmp_path, readings(200))
    ds[5]
    dataset_module._scan_cache.clear()  # as in a new process: only the file on disk is left
    again = atdata.Dataset[Reading](url)
    assert again[199].measurement[0] == 199 and again[0].sensor_id == ""
    assert scans == {"headers": 1, "whole": 0}


def test_a_changed_shard_is_indexed_again(tmp_path, scans):
    url, ds = unindexed(tmp_path, readings(200))
    assert ds[10].measurement[0] == 10
    # the same path, other samples (and another size)
    other = atdata.write_samples(readings(150, start=1000), tmp_path / "other").urls[0]
    os.replace(other, url)
    dataset_module._scan_cache.clear()
    fresh = atdata.Dataset[Reading](url)
    assert len(fresh) == 150 and fresh[10].measurement[0] == 1010
    assert scans["headers"] == 2
    # the same size, another mtime: not trusted either
    st = os.stat(url)
    os.utime(url, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    dataset_module._scan_cache.clear()
    assert atdata.Dataset[Reading](url)[3].measurement[0] == 1003
    assert scans["headers"] == 3


def cached(url: str) -> dict:
    return msgpack.unpackb(offset_index.offsets_cache_path(url).read_bytes())


def rewrite(url: str, d: dict) -> None:
    offset_index.offsets_cache_path(url).write_bytes(msgpack.packb(d))


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "truncated",
        "not increasing",
        "outside the file",
        "keys short",
        "key not str",
        "other path",
        "too many samples",
    ],
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(tmp_path, scans, damage):
    url, ds = unindexed(tmp_path, readings(100))
    ds[1]
    good = cached(url)
    d = dict(good)
    offsets = np.frombuffer(good["o"], "<i8").reshape(-1, 2).copy()
    if damage == "garbage":
        offset_index.offsets_cache_path(url).write_bytes(b"\x00\xffnot msgpack" * 10)
    elif damage == "truncated":
        offset_index.offsets_cache_path(url).write_bytes(msgpack.packb(good)[:-7])
    else:
        if damage == "not increasing":
            offsets[[3, 4]] = offsets[[4, 3]]
        elif damage == "outside the file":
            offsets[-1, 1] = 10**9
        elif damage == "keys short":
            d["k"] = good["k"][:-1]
        elif damage == "key not str":
            d["k"] = [*good["k"][:-1], 7]
        elif damage == "other path":
            d["path"] = "/elsewhere.tar"
        elif damage == "too many samples":
            d["k"] = good["k"] * 1000
            offsets = np.tile(offsets, (1000, 1))
        d["o"] = offsets.astype("<i8").tobytes()
        rewrite(url, d)
    dataset_module._scan_cache.clear()
    again = atdata.Dataset[Reading](url)
    assert [again[k].measurement[0] for k in (0, 3, 4, 99)] == [0, 3, 4, 99]
    assert scans["headers"] == 2  # rebuilt
    assert cached(url) == good  # and replaced by a good one


def test_a_symlink_in_the_cache_is_not_followed(tmp_path, scans):
    url, ds = unindexed(tmp_path, readings(20))
    cache = offset_index.offsets_cache_path(url)
    cache.parent.mkdir(parents=True, mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep me")
    cache.symlink_to(target)
    assert ds[7].measurement[0] == 7
    assert target.read_bytes() == b"keep me" and cache.is_symlink()
    dataset_module._scan_cache.clear()
    assert atdata.Dataset[Reading](url)[8].measurement[0] == 8  # indexed again, nothing followed
    assert scans["headers"] == 2


def test_a_read_only_home_costs_only_the_rebuild(tmp_path, monkeypatch, scans):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    monkeypatch.setenv("ATDATA_HOME", str(ro / "home"))
    try:
        url, ds = unindexed(tmp_path, readings(30))
        assert ds[29].measurement[0] == 29
    finally:
        ro.chmod(0o700)
    if os.geteuid() != 0:  # root writes anyway
        assert not (ro / "home").exists()


def test_compressed_shards_are_left_to_their_reader(tmp_path):
    path = tmp_path / "d.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        add(tf, "000000.msgpack", msgpack.packb({"i": 0}))
    assert offset_index.header_offsets(str(path)) is None
    assert not offset_index.offsets_cache_path(str(path)).exists()
