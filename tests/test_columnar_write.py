"""Columnar writes: columns (SampleBatch, dict, DataFrame, Arrow) give the bytes of the per-object path."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path
from typing import Optional

import msgpack
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.columns import ColumnError


@atdata.packable
class Every:
    a8: NDArray
    af: NDArray
    abe: NDArray
    ab: NDArray
    a0: NDArray
    ragged: NDArray
    x: float
    k: int
    u: int
    s: str
    flag: bool
    raw: bytes
    maybe: Optional[float]
    maybe_s: Optional[str]
    nums: list[int]
    meta: dict


@atdata.packable
class Small:
    measurement: NDArray
    timestamp: float
    sensor_id: str


# every msgpack int form: fixint, negative fixint, u8/16/32/64, i8/16/32/64, at their edges
INT_EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33, -128, -129]
INT_EDGES += [-32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]


def every_columns(n: int) -> dict:
    rng = np.random.default_rng(7)
    s = [("é" * (i % 7)) + "x" * [0, 5, 31, 32, 255, 256, 70000][i % 7] + str(i) for i in range(n)]
    return {
        "a8": rng.integers(0, 255, (n, 3, 5, 4), dtype=np.uint8),
        "af": rng.standard_normal((n, 7)).astype(np.float32),
        "abe": np.arange(n * 6, dtype=">i8").reshape(n, 2, 3),
        "ab": rng.integers(0, 2, (n, 4)).astype(bool),
        "a0": np.zeros((n, 0), dtype=np.float64),
        "ragged": [np.arange(i % 4, dtype=np.int16) for i in range(n)],
        "x": rng.standard_normal(n) * 1e300,
        "k": np.array([INT_EDGES[i % len(INT_EDGES)] for i in range(n)], dtype=np.int64),
        "u": np.array([[0, 200, 2**64 - 1, 2**63][i % 4] for i in range(n)], dtype=np.uint64),
        "s": s,
        "flag": rng.integers(0, 2, n).astype(bool),
        "raw": [bytes([i % 251]) * [0, 1, 255, 256, 65536][i % 5] for i in range(n)],
        "maybe": [None if i % 3 == 0 else float(i) / 3 for i in range(n)],
        "maybe_s": [None if i % 2 else f"v{i}" for i in range(n)],
        "nums": [list(range(i % 5)) for i in range(n)],
        "meta": [{"i": i, "tag": ["a", "b"][i % 2]} for i in range(n)],
    }


def objects(cls: type, cols: dict) -> list:
    n = len(next(iter(cols.values())))
    return [cls(**{k: v[i] for k, v in cols.items()}) for i in range(n)]


def shard_bytes(ds) -> list[bytes]:
    return [Path(u).read_bytes() for u in ds.urls]


@pytest.mark.parametrize("split", [{"maxcount": 37}, {"maxsize": 300_000}, {}])
def test_every_field_kind_gives_the_per_object_bytes(tmp_path, split):
    cols = every_columns(150)
    split = split or {"maxcount": None}
    ours = atdata.write_samples(cols, tmp_path / "cols" / "d", sample_type=Every, **split)
    theirs = atdata.write_samples(objects(Every, cols), tmp_path / "objs" / "d", **split)
    assert len(ours.urls) == len(theirs.urls) > (1 if split.get("maxcount") or split.get("maxsize") else 0)
    assert shard_bytes(ours) == shard_bytes(theirs)
    assert [ours.shard_info(u).checksum for u in ours.urls] == [
        hashlib.sha256(b).hexdigest() for b in shard_bytes(theirs)
    ]
    back = ours[149]
    assert back.s == cols["s"][149] and back.u == int(cols["u"][149]) and back.maybe == cols["maybe"][149]


def test_offset_index_of_a_columnar_write_points_at_each_member(tmp_path):
    cols = every_columns(40)
    ds = atdata.write_samples(cols, tmp_path / "d", maxcount=15, sample_type=Every)
    for url in ds.urls:
        info = ds.shard_info(url)
        data = Path(url).read_bytes()
        for (off, size), key in zip(info.offsets, info.keys):
            m = msgpack.unpackb(data[off : off + size])
            assert m["k"] == int(cols["k"][int(key)])


def test_int_encoding_matches_msgpack_over_many_values(tmp_path):
    @atdata.packable
    class Num:
        v: int

    rng = np.random.default_rng(0)
    vals = np.concatenate([np.array(INT_EDGES), rng.integers(-(2**63), 2**63 - 1, 3000)])
    vals = np.concatenate([vals, vals // (2 ** rng.integers(0, 63, len(vals)))])
    ours = atdata.write_samples({"v": vals}, tmp_path / "c.tar", sample_type=Num)
    theirs = atdata.write_samples([Num(v=int(v)) for v in vals], tmp_path / "o.tar")
    assert shard_bytes(ours) == shard_bytes(theirs)


def small_columns(n: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        "measurement": rng.standard_normal((n, 64)).astype(np.float32),
        "timestamp": np.arange(n, dtype=np.float64),
        "sensor_id": [f"sensor_{i % 4}" for i in range(n)],
    }


def arrow_table(cols: dict) -> pa.Table:
    m = cols["measurement"]
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), m.shape[1])
    t = pa.table({"measurement": fixed, "timestamp": cols["timestamp"], "sensor_id": cols["sensor_id"]})
    return pa.concat_tables([t.slice(0, 100), t.slice(100)])  # chunked columns


@pytest.mark.parametrize(
    "form", ["dict", "dict of lists", "SampleBatch", "typed batch", "DataFrame", "Arrow"]
)
def test_each_input_form(tmp_path, form):
    cols = small_columns(1000)
    cols["sensor_id"][5] = "ü" * 40  # a row of another length: the members are not all one size
    samples = objects(Small, cols)
    given = {
        "dict": cols,
        "dict of lists": {k: list(v) for k, v in cols.items()},
        "SampleBatch": atdata.SampleBatch(samples),
        "typed batch": atdata.SampleBatch(columns=cols, sample_type=Small),
        "DataFrame": pd.DataFrame({**cols, "measurement": list(cols["measurement"])}),
        "Arrow": arrow_table(cols),
    }[form]
    kw = {} if form in ("SampleBatch", "typed batch") else {"sample_type": Small}
    ours = atdata.write_samples(given, tmp_path / "c" / "d", maxcount=300, **kw)
    theirs = atdata.write_samples(samples, tmp_path / "o" / "d", maxcount=300)
    assert shard_bytes(ours) == shard_bytes(theirs)


def test_arrow_record_batch_and_binary_columns(tmp_path):
    @atdata.packable
    class B:
        name: str
        blob: bytes
        n: int

    names = ["a", "bb", "", "é" * 300]
    blobs = [b"", b"\x00" * 70000, b"xyz", b"q"]
    rb = pa.record_batch({"name": names, "blob": pa.array(blobs, pa.binary()), "n": [1, -5, 300, 2**40]})
    ours = atdata.write_samples(rb.slice(1), tmp_path / "c.tar", sample_type=B)
    theirs = atdata.write_samples(
        [B(name=a, blob=b, n=n) for a, b, n in zip(names[1:], blobs[1:], [-5, 300, 2**40])],
        tmp_path / "o.tar",
    )
    assert shard_bytes(ours) == shard_bytes(theirs)


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda c: c.pop("timestamp"), "no column for field(s) 'timestamp'"),
        (lambda c: c.update(extra=[1] * 10), "column(s) 'extra' are not fields of Small"),
        (
            lambda c: c.update(timestamp=["x"] * 10),
            "column 'timestamp', row 0: a str, but Small.timestamp is float",
        ),
        (lambda c: c.update(sensor_id=np.zeros(10)), "column 'sensor_id' is a float64 array"),
        (lambda c: c.update(sensor_id=[None] * 10), "make Small.sensor_id Optional"),
        (lambda c: c.update(timestamp=np.zeros(9)), "columns differ in length"),
        (lambda c: c.update(measurement=np.float32(1)), "column 'measurement' is a float32, not a column"),
        (lambda c: c.update(measurement=np.array(1.0)), "column 'measurement' is one value, not a column"),
    ],
)
def test_columns_that_do_not_fit_are_named_with_the_fix(tmp_path, change, needle):
    cols = small_columns(10)
    change(cols)
    with pytest.raises(ColumnError) as e:
        atdata.write_samples(cols, tmp_path / "out" / "d.tar", sample_type=Small)
    assert needle in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, atdata.errors.AtdataLabError)
    assert not (tmp_path / "out").exists()  # nothing written


def test_columns_need_a_sample_type_and_rows(tmp_path):
    with pytest.raises(ValueError, match="pass sample_type=MySample"):
        atdata.write_samples(small_columns(3), tmp_path / "d.tar")
    with pytest.raises(ValueError, match="the columns are empty"):
        atdata.write_samples(small_columns(0), tmp_path / "d.tar", sample_type=Small)


def test_manifest_with_columns_gives_the_same_shards_and_manifests(tmp_path):
    pytest.importorskip("pyarrow")
    cols = small_columns(200)
    ours = atdata.write_samples(cols, tmp_path / "c" / "d", maxcount=80, sample_type=Small, manifest=True)
    theirs = atdata.write_samples(objects(Small, cols), tmp_path / "o" / "d", maxcount=80, manifest=True)
    assert shard_bytes(ours) == shard_bytes(theirs)
    for a, b in zip(sorted((tmp_path / "c").iterdir()), sorted((tmp_path / "o").iterdir())):
        assert a.name == b.name
        if a.suffix == ".json":  # the same but for the time each was made
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            ja.pop("created_at"), jb.pop("created_at")
            assert ja == jb


def test_large_columns_are_written_in_bounded_memory(tmp_path):
    n = 1200  # 180 MB of images
    images = np.random.default_rng(0).integers(0, 255, (n, 3, 224, 224), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) * 97  # encodings of 1 to 3 bytes: payload sizes differ

    @atdata.packable
    class Img:
        image: NDArray
        label: int

    tracemalloc.start()
    try:
        ds = atdata.write_samples(
            {"image": images, "label": labels}, tmp_path / "d", maxcount=500, sample_type=Img
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"peak {peak / 1e6:.0f} MB while writing {images.nbytes / 1e6:.0f} MB of columns"
    assert len(ds) == n and (ds[n - 1].image == images[n - 1]).all()


def test_index_write_from_a_dataframe_registers_the_entry_like_objects(tmp_path):
    cols = small_columns(500)
    df = pd.DataFrame({**cols, "measurement": list(cols["measurement"])})
    index = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    from_cols = index.write(df, name="from-columns", sample_type=Small, maxcount=200, progress=False)
    from_objs = index.write(objects(Small, cols), name="from-objects", maxcount=200, progress=False)
    assert from_cols.cid == from_objs.cid
    assert from_cols.schema_ref == from_objs.schema_ref
    assert from_cols.shard_checksums == from_objs.shard_checksums
    assert (from_cols.num_samples, from_cols.size_bytes) == (from_objs.num_samples, from_objs.size_bytes)
    # the dtype/shape hints the columns gave are the ones the objects gave
    assert index.get_schema(from_cols.schema_ref) == index.get_schema(from_objs.schema_ref)
    again = index.write(objects(Small, cols), name="from-columns", maxcount=200, progress=False)
    assert again.cid == from_cols.cid and again.data_urls == from_cols.data_urls
    ds = index.dataset("from-columns")
    assert ds[499].sensor_id == "sensor_3"
    batch = atdata.SampleBatch(columns=cols, sample_type=Small, keys=[str(i) for i in range(500)])
    via_batch = index.write_samples(batch, name="from-batch", maxcount=200, progress=False)
    assert via_batch.cid == from_objs.cid


def test_a_failed_background_write_stops_the_write_and_publishes_nothing(tmp_path):
    """Large members go to the sink on a second thread: a write failing there is raised here."""
    from atdata_lab.shards import ShardSetWriter, encode_samples_into
    from atdata_lab.stores.local import FileSink

    class FailingSink(FileSink):  # stand-in: a disk that fails on demand (a real one cannot be made to)
        writes = 0

        def write(self, data):
            FailingSink.writes += 1
            if FailingSink.writes == 3:
                raise OSError(28, "No space left on device")
            super().write(data)

    @atdata.packable
    class Img:
        image: NDArray

    imgs = [Img(image=np.full((3, 224, 224), i, np.uint8)) for i in range(200)]
    out = tmp_path / "out"
    writer = ShardSetWriter(lambda i: str(out / f"d-{i:06d}.tar"), FailingSink, maxcount=80)
    with pytest.raises(OSError, match="No space left"):
        try:
            encode_samples_into(writer, imgs, atdata.sample.codec_for(Img))
            writer.finish()
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    assert not list(out.iterdir())  # no shard, no staging file


def test_tar_headers_built_at_once_are_those_built_one_by_one():
    from atdata_lab.tar import member_keys, ustar_header, ustar_headers

    rng = np.random.default_rng(0)
    # keys of 6 digits, then 7 past 999999, 9 and 10 (digits are written three at a time), 13
    starts = [(0, 40), (999_990, 20), (123_456, 7), (99_999_995, 10), (999_999_998, 4), (10**12 - 2, 3)]
    for first, n in starts:
        assert member_keys(first, n) == ["%06d" % k for k in range(first, first + n)]
        for sizes in (rng.integers(0, 8**11 - 1, n), np.full(n, 331), rng.integers(0, 5000, n)):
            for ext in ("msgpack", "x"):
                heads = ustar_headers(first, sizes, ext)
                assert [h.tobytes() for h in heads] == [
                    ustar_header(f"{first + j:06d}.{ext}", int(s)) for j, s in enumerate(sizes)
                ]
    grid = np.full((5, 1024), 7, np.uint8)  # into a strided view of a block: its rows, nothing else
    ustar_headers(41, np.full(5, 300), "msgpack", out=grid[:, :512])
    assert [r[:512].tobytes() for r in grid] == [ustar_header(f"{k:06d}.msgpack", 300) for k in range(41, 46)]
    assert (grid[:, 512:] == 7).all()


@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("rows_block", [1, 5_000, 1 << 20])
def test_rows_laid_out_a_block_at_a_time_give_the_same_shards(tmp_path, monkeypatch, compression, rows_block):
    """add_rows lays rows out a few MiB at a time (one block is hashed and written while the next is
    built): wherever the blocks are cut (one row each, a few rows, many), the files and their
    checksums are those of the per-object writer."""
    from atdata_lab.shards import ShardSetWriter

    monkeypatch.setattr(ShardSetWriter, "ROWS_BLOCK", rows_block)
    cols = small_columns(3000)
    cols["sensor_id"][7] = "ü" * 300  # one longer member: a block of rows of several sizes
    kw = {"compression": compression, "maxsize": 900_000}
    ours = atdata.write_samples(cols, tmp_path / "c" / "d", sample_type=Small, **kw)
    theirs = atdata.write_samples(objects(Small, cols), tmp_path / "o" / "d", **kw)
    assert len(ours.urls) > 2
    assert shard_bytes(ours) == shard_bytes(theirs)
    assert [ours.shard_info(u).checksum for u in ours.urls] == [
        hashlib.sha256(b).hexdigest() for b in shard_bytes(theirs)
    ]
    assert [np.asarray(ours.shard_info(u).offsets).tolist() for u in ours.urls] == [
        np.asarray(theirs.shard_info(u).offsets).tolist() for u in theirs.urls
    ]


@pytest.mark.parametrize("fails", ["write", "sync"])
def test_a_failed_background_write_or_sync_of_columns_publishes_nothing(tmp_path, fails):
    """Rows are hashed and written on a second thread and each shard synced on a third: what fails
    there is raised by the write, and nothing is published."""
    from atdata_lab.columns import as_columns
    from atdata_lab.shards import ShardSetWriter
    from atdata_lab.stores.local import FileSink

    class FailingSink(FileSink):  # stand-in: a disk that fails on demand (a real one cannot be made to)
        writes = 0

        def write(self, data):
            FailingSink.writes += 1
            if fails == "write" and FailingSink.writes == 4:
                raise OSError(28, "No space left on device")
            super().write(data)

        def sync(self):
            if fails == "sync":
                raise OSError(5, "Input/output error")
            super().sync()

    out = tmp_path / "out"
    writer = ShardSetWriter(lambda i: str(out / f"d-{i:06d}.tar"), FailingSink, maxcount=2000)
    with pytest.raises(OSError, match="No space left" if fails == "write" else "Input/output"):
        try:
            as_columns(small_columns(9000), Small, "test").write_into(writer)
            writer.finish()
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    assert FailingSink.writes >= (4 if fails == "write" else 1)
    assert not list(out.iterdir())  # no shard, no staging file
