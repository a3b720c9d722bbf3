"""Tar shards: deterministic compact writer, tolerant reader, clear errors, offset index."""

from __future__ import annotations

import io
import tarfile
import warnings

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.errors import ShardError
from atdata_lab.shards import scan_shard
from atdata_lab.tar import iter_members, split_key, ustar_header


@atdata.packable
class Small:
    x: NDArray
    i: int
    s: str


def samples(n, offset=0):
    return [Small(x=np.arange(8, dtype=np.float32) + i, i=i + offset, s=f"s{i}") for i in range(n)]


def test_writer_names_shards_and_honours_maxcount(tmp_path):
    ds = atdata.write_samples(samples(25), tmp_path / "d", maxcount=10)
    assert [p.rsplit("/", 1)[1] for p in ds.urls] == ["d-000000.tar", "d-000001.tar", "d-000002.tar"]
    assert [ds.shard_info(u).num_samples for u in ds.urls] == [10, 10, 5]
    assert [s.i for s in ds.ordered()] == list(range(25))


def test_maxsize_bounds_every_shard(tmp_path):
    ds = atdata.write_samples(samples(40), tmp_path / "d", maxsize=8192)
    sizes = [ds.shard_info(u).size for u in ds.urls]
    assert len(sizes) > 1 and max(sizes) <= 8192
    assert len(ds) == 40


def test_same_samples_give_byte_identical_shards(tmp_path):
    a = atdata.write_samples(samples(30), tmp_path / "a" / "d", maxcount=16)
    b = atdata.write_samples(samples(30), tmp_path / "b" / "d", maxcount=16)
    for ua, ub in zip(a.urls, b.urls):
        assert open(ua, "rb").read() == open(ub, "rb").read()


def test_compact_ustar_one_header_per_member_readable_by_tarfile(tmp_path):
    ds = atdata.write_samples(samples(3), tmp_path / "one.tar")
    with tarfile.open(ds.url) as tf:
        names = tf.getnames()
        assert names == ["000000.msgpack", "000001.msgpack", "000002.msgpack"]
        assert all(m.type == tarfile.REGTYPE and not m.pax_headers for m in tf.getmembers())
    # every member is one 512-byte header + padded data; no PAX blocks
    info = scan_shard(ds.url)
    assert info.offsets[0][0] == 512


def test_empty_input_raises_and_leaves_no_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="empty"):
        atdata.write_samples([], out / "d", maxcount=5)
    assert list(out.iterdir()) == []


def test_failure_mid_write_publishes_nothing(tmp_path):
    def gen():
        yield from samples(20)
        raise RuntimeError("boom")

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError):
        atdata.write_samples(gen(), out / "d", maxcount=5)
    assert list(out.iterdir()) == []  # no shard under a final name, no temp file left


def test_reader_accepts_pax_and_gnu_and_any_order(tmp_path):
    path = tmp_path / "pax.tar"
    payloads = {
        f"{'k' * 120}/sample{i}": Small(x=np.zeros(2, np.float32), i=i, s="p").packed for i in range(3)
    }
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for key, data in reversed(list(payloads.items())):
            ti = tarfile.TarInfo(f"{key}.msgpack")
            ti.size = len(data)
            ti.mtime = 1.5  # fractional: PAX header per member, like atdata
            tf.addfile(ti, io.BytesIO(data))
    got = list(atdata.Dataset[Small](str(path)).ordered())
    assert [s.i for s in got] == [2, 1, 0]
    gnu = tmp_path / "gnu.tar"
    with tarfile.open(gnu, "w", format=tarfile.GNU_FORMAT) as tf:
        for key, data in payloads.items():
            ti = tarfile.TarInfo(f"{key}.msgpack")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    assert [s.i for s in atdata.Dataset[Small](str(gnu)).ordered()] == [0, 1, 2]
    assert len(atdata.Dataset[Small](str(gnu))) == 3


def test_unknown_extensions_are_ignored_with_one_warning(tmp_path):
    path = tmp_path / "mixed.tar"
    with tarfile.open(path, "w") as tf:
        for i in range(3):
            for ext, data in (("msgpack", samples(1, i)[0].packed), ("jpgx", b"xx")):
                ti = tarfile.TarInfo(f"{i:04d}.{ext}")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = list(atdata.Dataset[Small](str(path)).ordered())
    assert len(got) == 3
    assert sum("jpgx" in str(x.message) for x in w) == 1


def test_truncated_shard_names_shard_and_member(tmp_path):
    ds = atdata.write_samples(samples(10), tmp_path / "t.tar")
    data = open(ds.url, "rb").read()
    cut = tmp_path / "cut.tar"
    for end in (512 * 7 + 20, 512 * 8, 512 * 7 + 300):  # mid-data, at a member boundary, mid-padding
        cut.write_bytes(data[:end])
        with pytest.raises(ShardError, match=r"cut\.tar.*(truncated|incomplete)"):
            list(atdata.Dataset[Small](str(cut)).ordered())


def test_corrupt_header_is_detected_by_checksum(tmp_path):
    ds = atdata.write_samples(samples(5), tmp_path / "c.tar")
    data = bytearray(open(ds.url, "rb").read())
    data[1024 + 3] ^= 0x01  # flip a bit in the second member's name
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"bad\.tar.*checksum"):
        list(atdata.Dataset[Small](str(bad)).ordered())


def test_garbage_and_empty_files_raise_shard_error(tmp_path):
    g = tmp_path / "g.tar"
    g.write_bytes(b"hello world" * 100)
    with pytest.raises(ShardError):
        list(atdata.Dataset(str(g)).ordered())
    e = tmp_path / "e.tar"
    e.write_bytes(b"")
    with pytest.raises(ShardError, match="empty"):
        list(atdata.Dataset(str(e)).ordered())
    with pytest.raises(ShardError, match="does not exist"):
        list(atdata.Dataset(str(tmp_path / "missing.tar")).ordered())


def test_sample_that_does_not_fit_names_shard_key_and_field(tmp_path):
    @atdata.packable
    class Other:
        x: NDArray
        i: str

    ds = atdata.write_samples(samples(3), tmp_path / "w.tar")
    with pytest.raises(atdata.SampleDecodeError, match=r"w\.tar.*'000000'.*'i'"):
        list(atdata.Dataset[Other](ds.url).ordered())
    with pytest.raises(atdata.SampleDecodeError, match=r"w\.tar.*'000000'.*'i'"):
        list(atdata.Dataset[Other](ds.url).ordered(batch_size=2))


def test_offset_index_gives_random_access(tmp_path):
    ds = atdata.write_samples(samples(100), tmp_path / "r", maxcount=30)
    for k in (0, 29, 30, 64, 99, -1):
        assert ds[k].i == (k % 100)
    with pytest.raises(IndexError, match="100 samples"):
        ds[100]
    info = scan_shard(ds.urls[1])
    assert info.checksum == ds.shard_info(ds.urls[1]).checksum
    assert info.keys[0] == "000030"


def test_header_helpers():
    assert split_key("a/b.c/key.seg.msgpack") == ("a/b.c/key", "seg.msgpack")
    h = ustar_header("x.msgpack", 10)
    assert len(h) == 512
    members = list(iter_members(io.BytesIO(h + b"0123456789" + bytes(502) + bytes(1024)), "mem"))
    assert members[0][0] == "x.msgpack" and bytes(members[0][3]) == b"0123456789"


def test_one_header_checked_alone_as_many_are():
    """A single header (a batched read checks its run's first) takes a shortcut for the usual
    "%06o\\0 " checksum field; any other encoding, and any damage, is decided as for many."""
    from atdata_lab.tar import _verify_checksums

    h = bytearray(ustar_header("x.msgpack", 10))
    total = sum(h) - sum(h[148:156]) + 8 * 32
    _verify_checksums(bytes(h), [0], ["x"], "s", 0)  # the shortcut
    for field in (b" %06o " % total, b"%o\x00" % total + b" " * 2):
        h[148:156] = field.ljust(8, b"\x00")[:8]  # other tools' encodings: the general check
        _verify_checksums(bytes(h) + bytes(512), [0], ["x"], "s", 0)
        _verify_checksums(memoryview(bytes(512) + bytes(h)), [512], ["x"], "s", 0)
    h[148:156] = b"%06o\x00 " % (total + 1)
    with pytest.raises(ShardError, match=r"s: corrupt tar header for member 'x' at byte 700"):
        _verify_checksums(bytes(h), [0], ["x"], "s", 700)
    h[148:156] = b"%06o\x00 " % total
    h[3] ^= 1  # the name changed after the checksum was written
    with pytest.raises(ShardError, match="checksum mismatch"):
        _verify_checksums(bytearray(h), [0], ["x"], "s", 0)
