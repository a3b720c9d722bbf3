"""atdata's Dataset/DatasetDict names: get, select, column_names, schema, batch_type, wrap,
to_dict, to_parquet, process_shards (resumable after SIGKILL), DatasetDict helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.errors import PartialFailureError, SampleIndexError, SampleKeyError


@atdata.packable
class Item:
    i: int
    v: NDArray


def item(i: int) -> Item:
    return Item(i=i, v=np.full(3, i, dtype=np.float32))


@pytest.fixture
def ds(tmp_path):
    return atdata.write_samples([item(i) for i in range(10)], tmp_path / "d", maxcount=4)


def test_shard_lists_get_and_select(ds):
    assert ds.list_shards() == ds.shard_list == ds.shards == ds.urls and len(ds.shards) == 3
    key = ds.shard_info(ds.urls[1]).keys[2]
    assert ds.get(key).i == 6
    with pytest.raises(SampleKeyError) as e:
        ds.get("nope")
    assert isinstance(e.value, KeyError) and "nope" in str(e.value)
    with pytest.raises(SampleKeyError, match="filter"):
        ds.filter(lambda s: s.i != 6).get(key)
    assert [s.i for s in ds.select([9, 0, 4])] == [9, 0, 4]
    assert [s.i for s in ds.filter(lambda s: s.i % 2).select([1, 0])] == [3, 1]
    with pytest.raises(SampleIndexError):
        ds.select([10])
    with pytest.raises(IndexError):
        ds.filter(lambda s: s.i % 2).select([5])


def test_type_information_wrap_and_to_dict(ds):
    assert ds.column_names == ["i", "v"]
    assert ds.schema == {"i": int, "v": NDArray}
    assert ds.batch_type.__origin__ is atdata.SampleBatch and ds.batch_type.__args__ == (Item,)
    url, i, key = ds.locate(5)
    off, size = ds.shard_info(url).offsets[i]
    data = Path(url).read_bytes()[off : off + size]
    assert ds.wrap({"msgpack": data, "__key__": key}).i == 5
    batch = ds.wrap_batch({"msgpack": [data, data]})
    assert batch.i == [5, 5] and batch.v.shape == (2, 3)
    with pytest.raises(ValueError, match="msgpack"):
        ds.wrap({"json": b"{}"})
    d = ds.to_dict(limit=3)
    assert d["i"] == [0, 1, 2] and len(d["v"]) == 3
    assert ds.filter(lambda s: False).to_dict() == {}


def test_shuffled_takes_atdatas_arguments_in_its_order(ds):
    a = [s.i for s in ds.shuffled(100, 4, seed=1)]  # buffer_shards, buffer_samples
    assert (
        a
        == [s.i for s in ds.shuffled(buffer_samples=4, seed=1)]
        == [s.i for s in ds.shuffled(buffer=4, seed=1)]
    )
    assert sorted(a) == list(range(10)) and a != list(range(10))
    batches = list(ds.shuffled(100, 10_000, 4, seed=2))  # atdata's positional batch_size
    assert [len(b) for b in batches] == [4, 4, 2] and isinstance(batches[0], atdata.SampleBatch)
    with pytest.raises(ValueError, match="buffer_shards"):
        next(iter(ds.shuffled(0)))
    with pytest.raises(ValueError, match="buffer_samples"):
        next(iter(ds.shuffled(buffer_samples=0)))


def test_sample_batch_from_samples_as_in_atdata():
    items = [item(i) for i in range(3)]
    b = atdata.SampleBatch[Item](items)
    assert b.sample_type is Item and b.i == [0, 1, 2] and b.v.shape == (3, 3) and len(b) == 3
    assert b.samples == items and b.keys == ["0", "1", "2"]
    assert atdata.SampleBatch(items).sample_type is Item
    empty = atdata.SampleBatch[Item]([])
    assert empty.sample_type is Item and len(empty) == 0 and empty.fields == []


def test_to_parquet_writes_real_parquet(ds, tmp_path):
    import pyarrow.parquet as pq  # in the widgets extra, which make test installs: never skipped

    one = ds.to_parquet(tmp_path / "all.parquet", compression="zstd")
    assert one == [str(tmp_path / "all.parquet")]
    table = pq.read_table(one[0])
    assert table.column("i").to_pylist() == list(range(10))
    assert table.column("v").to_pylist()[3] == [3.0, 3.0, 3.0]
    assert pq.ParquetFile(one[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_to_parquet_splits_files_and_maps_rows(ds, tmp_path):
    import pyarrow.parquet as pq

    parts = ds.to_parquet(tmp_path / "p.parquet", sample_map=lambda s: {"i": s.i}, maxcount=4)
    assert parts == [str(tmp_path / f"p-{k:06d}.parquet") for k in range(3)]
    assert [pq.read_table(p).column("i").to_pylist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert pq.read_table(parts[0]).column_names == ["i"]


def test_to_parquet_without_pyarrow_says_how_to_install_it(ds, tmp_path, monkeypatch):
    """pyarrow is installed here; its absence is simulated (the one thing a real install cannot show)."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="pip install"):
        ds.to_parquet(tmp_path / "x.parquet")


def test_dataset_dict_helpers(ds, tmp_path):
    one = atdata.DatasetDict({"train": ds}, streaming=True)
    assert one.sample_type is Item and one.streaming and one.num_shards == {"train": 3}
    assert [s.i for s in one.ordered()][:3] == [0, 1, 2]
    assert len(next(one.ordered(batch_size=4))) == 4
    assert sorted(s.i for s in one.shuffled(seed=0)) == list(range(10))
    two = atdata.DatasetDict({"train": ds, "test": ds})
    with pytest.raises(ValueError, match="pick one"):
        two.ordered()
    assert atdata.DatasetDict().sample_type is None


def test_process_shards_collects_results_and_failures(ds, tmp_path):
    assert ds.process_shards(lambda xs: sum(s.i for s in xs)) == dict(zip(ds.urls, [6, 22, 17]))
    seen = []

    def fn(xs):
        if xs[0].i == 4:
            raise RuntimeError("boom")
        return len(xs)

    ck = tmp_path / "ck.txt"
    with pytest.raises(PartialFailureError) as e:
        ds.process_shards(fn, checkpoint=ck, on_shard_error=lambda u, err: seen.append(u))
    err = e.value
    assert isinstance(err, atdata.AtdataLabError)
    assert err.failed_shards == [ds.urls[1]] == seen and err.succeeded_shards == [ds.urls[0], ds.urls[2]]
    assert err.results == {ds.urls[0]: 4, ds.urls[2]: 2} and "boom" in str(err.errors[ds.urls[1]])
    assert ck.read_text().splitlines() == [ds.urls[0], ds.urls[2]]
    assert ds.process_shards(lambda xs: len(xs), checkpoint=ck) == {ds.urls[1]: 4}  # only the failed one
    assert not ck.exists()  # all done: the checkpoint is removed
    assert ds.process_shards(len, shards=[ds.urls[2]]) == {ds.urls[2]: 2}


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import atdata_lab as atdata
    from tests.test_dataset_api import Item

    work = sys.argv[1]
    ds = atdata.Dataset[Item](sys.argv[2:])

    def fn(samples):
        first = samples[0].i
        open(os.path.join(work, f"started-{first}-{os.getpid()}"), "w").close()
        if first == 8 and os.environ.get("HANG"):
            time.sleep(120)  # killed here
        with open(os.path.join(work, f"effect-{first}"), "a") as f:
            f.write("x")  # the side effect, at the end of fn
        return first

    print(ds.process_shards(fn, checkpoint=os.path.join(work, "ck.txt")))
    """
)


def test_process_shards_resumes_after_sigkill_each_shard_once(tmp_path):
    many = atdata.write_samples([item(i) for i in range(20)], tmp_path / "m", maxcount=4)  # 5 shards
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""), "HANG": "1"}
    cmd = [sys.executable, str(script), str(work), *many.urls]
    child = subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("started-8-") for p in work.iterdir()):
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "the child never reached shard 3"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert sorted(p.name for p in work.glob("effect-*")) == ["effect-0", "effect-4"]
    assert (work / "ck.txt").read_text().splitlines() == many.urls[:2]
    env.pop("HANG")
    out = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    effects = {p.name: p.read_text() for p in work.glob("effect-*")}
    assert effects == {f"effect-{i}": "x" for i in (0, 4, 8, 12, 16)}  # every shard exactly once
    assert not (work / "ck.txt").exists()
    assert len(list(work.glob("started-0-*"))) == 1  # finished shards were not run again


def test_metadata_url(ds, tmp_path):
    assert ds.metadata is None
    meta = tmp_path / "meta.msgpack"
    meta.write_bytes(msgpack.packb({"source": "lab", "n": 10}))
    with_meta = atdata.Dataset[Item](ds.urls, str(meta))
    assert with_meta.metadata == {"source": "lab", "n": 10}
    assert with_meta.as_type(Item).metadata == {"source": "lab", "n": 10}
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(msgpack.packb([1, 2]))
    with pytest.raises(ValueError, match="not a msgpack map"):
        atdata.Dataset(ds.urls, str(bad)).metadata


def test_content_metadata_stays_on_the_written_dataset(tmp_path):
    written = atdata.write_samples([item(1)], tmp_path / "one.tar", content_metadata={"instrument": "x"})
    assert written.content_metadata == {"instrument": "x"}
    assert written.filter(lambda s: True).content_metadata == {"instrument": "x"}
    assert atdata.Dataset(written.urls).content_metadata is None


def test_source_lists_and_opens_shards(ds):
    src = ds.source
    assert src.shard_list == src.list_shards() == ds.urls
    with src.open_shard(ds.urls[0]) as f:
        assert f.read() == Path(ds.urls[0]).read_bytes()
    with pytest.raises(KeyError):
        src.open_shard("elsewhere.tar")
    assert "3 shards" in repr(src)
