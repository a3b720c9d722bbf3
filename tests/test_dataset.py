"""Dataset and load_dataset: URLs, iteration, batching, shuffling, access, splits."""

from __future__ import annotations

import functools
import http.server
import threading
from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata


@atdata.packable
class Item:
    x: NDArray
    i: int
    name: str


@atdata.packable
class Child(Item):
    extra: float


def items(n, start=0):
    return [Item(x=np.full(4, i, np.float32), i=i, name=f"n{i}") for i in range(start, start + n)]


@pytest.fixture
def shards(tmp_path):
    return atdata.write_samples(items(100), tmp_path / "data", maxcount=25)


def test_brace_pattern_and_file_urls(shards, tmp_path):
    pattern = str(tmp_path / "data-{000000..000003}.tar")
    ds = atdata.Dataset[Item](pattern)
    assert ds.urls == shards.urls and len(ds) == 100
    ds2 = atdata.Dataset[Item]([f"file://{u}" for u in shards.urls])
    assert [s.i for s in ds2.ordered()] == list(range(100))
    assert ds2[42].i == 42


def test_http_urls_through_fsspec(shards, tmp_path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        ds = atdata.Dataset[Item](base + "/data-{000000..000003}.tar")
        assert sum(len(b) for b in ds.ordered(batch_size=10)) == 100
        assert ds[77].i == 77  # ranged read through the offset index
    finally:
        srv.shutdown()


def test_batches_stack_arrays_and_keep_lists(shards):
    b = next(shards.ordered(batch_size=32))
    assert b.x.shape == (32, 4) and b.x.dtype == np.float32 and b.x.flags.writeable
    assert b.i == list(range(32)) and b.name[3] == "n3"
    assert len(b) == 32 and b.samples[5].i == 5 and b.keys[0] == "000000"
    sizes = [len(b) for b in shards.ordered(batch_size=32)]
    assert sum(sizes) == 100  # shards of 25: batches span shards; the last may be short


def test_shuffled_is_seeded_and_complete(shards):
    a = [s.i for s in shards.shuffled(buffer=10, seed=7)]
    b = [s.i for s in shards.shuffled(buffer=10, seed=7)]
    c = [s.i for s in shards.shuffled(buffer=10, seed=8)]
    assert a == b and a != c and sorted(a) == list(range(100)) and a != list(range(100))
    batches = list(shards.shuffled(buffer=50, seed=1, batch_size=16))
    assert sorted(np.concatenate([bb.x[:, 0] for bb in batches]).astype(int).tolist()) == list(range(100))


def test_filter_and_map_apply_when_batching(shards):
    even = shards.filter(lambda s: s.i % 2 == 0)
    assert [s.i for s in even.ordered()][:3] == [0, 2, 4]
    b = next(even.ordered(batch_size=10))
    assert b.i == list(range(0, 20, 2)) and b.x.shape == (10, 4)
    doubled = shards.map(lambda s: Item(x=s.x * 2, i=s.i, name=s.name))
    assert next(doubled.ordered(batch_size=4)).x[1, 0] == 2.0
    assert doubled[3].x[0] == 6.0
    with pytest.raises(TypeError, match="filter"):
        len(even)


def test_head_len_describe_to_pandas_as_type(shards):
    assert [s.i for s in shards.head(3)] == [0, 1, 2]
    d = shards.describe()
    assert (
        d["samples"] == 100
        and d["shards"] == 4
        and d["fields"][0] == {"name": "x", "kind": "ndarray", "dtype": "<f4", "shape": [4]}
    )
    df = shards.to_pandas(limit=10)
    assert list(df.columns) == ["x", "i", "name"] and len(df) == 10

    @atdata.packable
    class JustI:
        i: int

    assert shards.as_type(JustI)[9].i == 9


def test_split_by_worker_sees_each_shard_once(shards):
    seen = []
    for w in range(3):
        seen += [s.i for s in shards.split_by_worker(w, 3).ordered()]
    assert sorted(seen) == list(range(100))
    with pytest.raises(ValueError, match="no shard"):
        atdata.Dataset[Item](shards.urls[:1]).split_by_worker(1, 2)


def test_rank_environment_assigns_shards(shards, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert {s.i // 25 for s in shards.ordered()} == {1, 3}


def test_sample_batch_dictsample_inherited_ragged_and_none(tmp_path):
    kids = [Child(x=np.ones(3, np.float32), i=i, name="c", extra=i / 2) for i in range(6)]
    b = next(atdata.write_samples(kids, tmp_path / "kids.tar").ordered(batch_size=6))
    assert b.x.shape == (6, 3) and b.extra[1] == 0.5

    @atdata.packable
    class Ragged:
        x: NDArray
        m: Optional[NDArray] = None

    rs = [Ragged(x=np.zeros(i + 1), m=None if i % 2 else np.ones(2)) for i in range(5)]
    ds = atdata.write_samples(rs, tmp_path / "ragged.tar")
    b = next(ds.ordered(batch_size=5))
    assert isinstance(b.x, list) and [len(a) for a in b.x] == [1, 2, 3, 4, 5]
    assert b.m[1] is None and b.m[0].shape == (2,)
    db = next(atdata.Dataset(ds.url).ordered(batch_size=5))  # DictSample
    assert isinstance(db.x, list) and db.m[1] is None
    d2 = next(atdata.Dataset(str(tmp_path / "kids.tar")).ordered(batch_size=3))
    assert d2.x.shape == (3, 3) and d2.extra == [0.0, 0.5, 1.0]
    assert d2.samples[2]["extra"] == 1.0


def test_load_dataset_detects_splits(tmp_path):
    for split in ("train", "test", "validation"):
        atdata.write_samples(items(10), tmp_path / "ds" / f"{split}", maxcount=5)
    dd = atdata.load_dataset(str(tmp_path / "ds"))
    assert sorted(dd) == ["test", "train", "validation"]
    assert len(dd["test"]) == 10 and isinstance(dd["train"][0], atdata.DictSample)
    ds = atdata.load_dataset(str(tmp_path / "ds" / "*.tar"), Item, split="validation")
    assert isinstance(ds[0], Item)
    with pytest.raises(KeyError, match="available splits"):
        atdata.load_dataset(str(tmp_path / "ds"), split="dev2")
    only = atdata.load_dataset(str(tmp_path / "ds" / "test-{000000..000001}.tar"))
    assert list(only) == ["test"]
    with pytest.raises(FileNotFoundError):
        atdata.load_dataset(str(tmp_path / "nothing-*.tar"))


def test_load_dataset_from_local_index():
    index = atdata.Index()
    index.write(items(40), name="things", maxcount=16, progress=False)
    ds = atdata.load_dataset("@local/things", split="train", index=index)
    assert len(ds) == 40 and ds[39].i == 39  # type generated from the indexed schema
    assert type(ds[0]).__name__ == "Item"
    dd = atdata.load_dataset("@local/things", Item, index=index)
    assert isinstance(dd["train"][0], Item)


def test_batches_and_typed_datasets_pickle_for_loader_workers(shards):
    import copy
    import pickle

    b = next(shards.ordered(batch_size=4))
    assert pickle.loads(pickle.dumps(b)).i == [0, 1, 2, 3] and copy.copy(b).name == b.name
    with pytest.raises(AttributeError, match="no field 'nope'"):
        b.nope
    back = pickle.loads(pickle.dumps(shards))
    assert back.sample_type is Item and len(back) == 100 and back[7].i == 7


def test_explicit_split_is_not_split_again_by_rank(shards, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    part = shards.shard(1, 2)
    assert sum(1 for _ in part.ordered()) == len(part) == 50


def test_stale_offsets_are_never_used_after_a_file_changes(tmp_path):
    ds = atdata.write_samples(items(10), tmp_path / "x.tar")
    atdata.write_samples(items(4), tmp_path / "x.tar")  # the same path, other content
    fresh = atdata.Dataset[Item](str(tmp_path / "x.tar"))
    fresh._remember_shards([ds.shard_info(ds.url)])  # stale info (10 samples) is refused
    assert len(fresh) == 4 and fresh[3].i == 3


def test_percent_in_paths_is_not_a_pattern(tmp_path):
    ds = atdata.write_samples(items(6), tmp_path / "50%_data", maxcount=4)
    assert [u.rsplit("/", 1)[1] for u in ds.urls] == ["50%_data-000000.tar", "50%_data-000001.tar"]
    assert (
        atdata.write_samples(items(2), str(tmp_path / "p-%03d.tar"), maxcount=1).urls[1].endswith("p-001.tar")
    )


def test_local_store_never_claims_remote_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = atdata.LocalDiskStore(".")
    assert not store.owns("s3://bucket/k.tar") and not store.owns("https://host/x.tar")
    assert store.owns(str(tmp_path / "a" / "b.tar")) and store.owns(f"file://{tmp_path}/c.tar")


def test_split_names_in_parent_folders_are_ignored(tmp_path):
    root = tmp_path / "test_project" / "valid-data"  # folder names that look like splits
    atdata.write_samples(items(4), root / "shards", maxcount=2)
    assert list(atdata.load_dataset(str(root))) == ["train"]
    assert list(atdata.load_dataset(str(root / "*.tar"))) == ["train"]
    assert list(atdata.load_dataset(str(root / "shards-{000000..000001}.tar"))) == ["train"]
    atdata.write_samples(items(2), root / "test" / "d", maxcount=1)  # a split folder below the root
    assert sorted(atdata.load_dataset(str(root))) == ["test", "train"]


@atdata.packable
class LargeMixed:
    image: NDArray
    blob: bytes
    label: int


def test_random_access_to_large_samples_reads_their_bin_values_in_place(tmp_path):
    """ds[k] of a large sample decodes its arrays from views of the bytes read (one copy): they are
    writable and own their memory, a large bytes field is bytes, and damaged bytes are still a
    SampleDecodeError naming shard and sample."""
    from pathlib import Path

    rng = np.random.default_rng(1)
    samples = [
        LargeMixed(image=rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), blob=bytes([i]) * 20_000, label=i)
        for i in range(6)
    ]
    ds = atdata.write_samples(samples, tmp_path / "d")
    got = ds[4]
    assert np.array_equal(got.image, samples[4].image) and got.label == 4
    assert got.image.flags.writeable and got.image.flags.owndata
    assert type(got.blob) is bytes and got.blob == samples[4].blob
    got.image[0, 0, 0] ^= 1  # changing the copy changes nothing read later
    assert np.array_equal(ds[4].image, samples[4].image)

    url = ds.urls[0]
    off, size = ds.shard_info(url).offsets[2]
    raw = bytearray(Path(url).read_bytes())
    raw[int(off)] = 0x91  # the map's first byte: now a one-item array
    Path(url).write_bytes(bytes(raw))
    with pytest.raises(atdata.SampleDecodeError, match=r"sample '000002'.*not a valid msgpack sample"):
        atdata.Dataset[LargeMixed](url)[2]
