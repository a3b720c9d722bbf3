"""Ray Data on a real two-node Ray cluster on this machine: read (one task per shard, typed
columns, checksums verified) and write (one entry after every task succeeded; a killed task leaves
no entry and, after the next write's sweep, no shard), with data on real SeaweedFS S3."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import ray  # installed by make test (extra "ray"); a missing install fails here, never skips
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab import _journal
from atdata_lab.index import _pending_writes_dir
from atdata_lab.integrations.ray import read_dataset, write_dataset
from atdata_lab.stores.s3 import S3DataStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.s3]


@atdata.packable
class Frame:
    index: int
    name: str
    pixels: NDArray
    score: float


@atdata.packable
class JustIndex:
    index: int


def frames(n: int, start: int = 0) -> list[Frame]:
    rng = np.random.default_rng(start)
    return [
        Frame(index=i, name=f"f{i}", pixels=rng.integers(0, 255, (6, 5), dtype=np.uint8), score=i / 2)
        for i in range(start, start + n)
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a second node (1 CPU each), started once for this module."""
    from ray.cluster_utils import Cluster

    home = tmp_path_factory.mktemp("ray-home")
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "ATDATA_HOME", "RAY_DEDUP_LOGS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved["PYTHONPATH"]) if p)
    os.environ["ATDATA_HOME"] = str(home)  # what the workers see (each test sets its own for the driver)
    store_mem = 150 << 20
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": store_mem, "include_dashboard": False},
    )
    c.add_node(num_cpus=1, object_store_memory=store_mem)
    try:
        ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
        c.wait_for_nodes()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_index(s3_server, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    store = S3DataStore(
        s3_bucket,
        prefix=f"ray-{uuid.uuid4().hex[:8]}/",
        endpoint_url=s3_server.endpoint_url,
        key=s3_server.key,
        secret=s3_server.secret,
    )
    return atdata.Index(path=tmp_path / "i.db", data_store=store)


def shard_files(index, name):
    store = index.data_store
    fs = store.fs
    root = f"{store.bucket}/{store.prefix}{name}"
    try:
        return sorted("s3://" + p for p in fs.ls(root, refresh=True) if p.endswith(".tar"))
    except FileNotFoundError:
        return []


@pytest.mark.timeout(300)
def test_two_nodes_are_up(cluster):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2


@pytest.mark.timeout(300)
def test_read_matches_a_single_process_read(cluster, s3_index):
    entry = s3_index.write(frames(70), name="frames", maxcount=16, progress=False)
    ds = s3_index.dataset(entry).as_type(Frame)
    local_sum = sum(int(s.pixels.sum()) for s in ds.ordered())
    rd = read_dataset(entry, index=s3_index).materialize()
    assert rd.num_blocks() == len(entry.data_urls) == 5  # one read task (and block) per shard
    rows = rd.take_all()
    assert len(rows) == rd.count() == 70
    assert sorted(r["index"] for r in rows) == list(range(70))
    assert rd.sum("index") == sum(range(70)) and rd.sum("score") == sum(i / 2 for i in range(70))
    assert sum(int(r["pixels"].sum()) for r in rows) == local_sum
    row = next(r for r in rows if r["index"] == 3)
    assert row["name"] == "f3" and row["pixels"].shape == (6, 5) and row["pixels"].dtype == np.uint8
    schema = rd.schema()
    assert "Tensor" in str(schema.types[schema.names.index("pixels")])
    # a shard bigger than max_rows_per_task is read by several tasks, each a range of it
    ranged = read_dataset(entry, index=s3_index, max_rows_per_task=6).materialize()
    assert ranged.num_blocks() == 13  # 4 shards of 16 samples in 3 ranges each, and one of 6
    assert sorted(r["index"] for r in ranged.take_all()) == list(range(70))
    # map() and lenses of a Dataset run inside the read tasks
    viewed = read_dataset(ds.as_type(JustIndex).map(lambda s: JustIndex(index=s.index * 2)))
    assert viewed.columns() == ["index"] and viewed.sum("index") == 2 * sum(range(70))
    # the entry's checksums are checked in the tasks: a shard changed on S3 before it was ever
    # read (and cached, by content) fails the read
    other = s3_index.write(frames(20, 500), name="other", maxcount=10, progress=False)
    fs = s3_index.data_store.fs
    data = bytearray(fs.cat_file(other.data_urls[1]))
    data[600] ^= 0xFF
    fs.pipe_file(other.data_urls[1], bytes(data))
    with pytest.raises(Exception, match="sha256|checksum"):
        read_dataset(other, index=s3_index).take_all()


@pytest.mark.timeout(300)
def test_write_commits_one_entry_that_reads_back_equal(cluster, s3_index):
    src = frames(45)
    rd = ray.data.from_items(
        [{"index": f.index, "name": f.name, "pixels": f.pixels, "score": f.score} for f in src]
    )
    rd = rd.repartition(3)
    entry = write_dataset(rd, name="written", index=s3_index, sample_type=Frame, maxcount=10)
    assert entry.num_shards >= 3
    back = sorted(s3_index.dataset(entry).as_type(Frame).ordered(), key=lambda f: f.index)
    assert [f.index for f in back] == list(range(45))
    assert all(np.array_equal(a.pixels, b.pixels) and a.name == b.name for a, b in zip(back, src))
    assert shard_files(s3_index, "written") == sorted(entry.data_urls)  # nothing else was left


KILL_AT = 20
KILL_MARKER = "ATDATA_TEST_KILL_MARKER"


@atdata.packable
class Fragile:
    """A Frame whose construction (in the write task, row by row) kills the task's worker process
    at row ``KILL_AT``: every time, or once when the marker file named in the row exists."""

    index: int
    name: str
    pixels: NDArray
    score: float
    marker: str

    def __post_init__(self):
        if self.index == KILL_AT and self.marker:
            once = self.marker.endswith(".once")
            if not once or not os.path.exists(self.marker):
                Path(self.marker).touch()
                os.kill(os.getpid(), 9)


def _rows(n: int, start: int = 0, marker: str = ""):
    return ray.data.from_items(
        [
            {"index": f.index, "name": f.name, "pixels": f.pixels, "score": f.score, "marker": marker}
            for f in frames(n, start)
        ]
    )


@pytest.mark.timeout(300)
def test_a_killed_task_leaves_no_entry_and_the_next_write_sweeps_its_shards(cluster, s3_index, tmp_path):
    marker = str(tmp_path / "killed")
    rd = _rows(60, marker=marker).repartition(4)
    with pytest.raises(Exception):  # noqa: B017 - Ray's error for the crashed worker
        write_dataset(
            rd,
            name="doomed",
            index=s3_index,
            sample_type=Fragile,
            maxcount=5,
            ray_remote_args={"max_retries": 0},
        )
    assert os.path.exists(marker)
    with pytest.raises(KeyError):
        s3_index.get_entry_by_name("doomed")
    # shards published by tasks that finished are deleted at once, or by the next write's sweep
    notes = list(_pending_writes_dir().glob("*.json"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        _journal.pid_alive((_journal.read(p) or {}).get("pid", 0)) for p in notes
    ):
        time.sleep(0.2)
    write_dataset(_rows(10, 100), name="next", index=s3_index, sample_type=Fragile, maxcount=5)
    assert shard_files(s3_index, "doomed") == []
    assert not list(_pending_writes_dir().glob("*.json"))


@pytest.mark.timeout(300)
def test_a_task_killed_once_is_retried_and_leaves_no_orphan(cluster, s3_index, tmp_path):
    marker = str(tmp_path / "killed.once")
    rd = _rows(40, marker=marker).repartition(2)
    entry = write_dataset(
        rd,
        name="retried",
        index=s3_index,
        sample_type=Fragile,
        maxcount=5,
        ray_remote_args={"max_retries": 2},
    )
    assert os.path.exists(marker)
    assert sorted(f.index for f in s3_index.dataset(entry).as_type(Frame).ordered()) == list(range(40))
    assert shard_files(s3_index, "retried") == sorted(entry.data_urls)


@pytest.mark.sandbox
@pytest.mark.timeout(300)
def test_read_of_an_at_uri_matches_a_single_process_read(cluster, pds_account, tmp_path):
    """A dataset published to the real sandbox PDS with its shards as blobs, read by URI through
    Ray: the read tasks (on both nodes) fetch the blobs from the PDS and give the same rows as the
    single-process read of the same URI."""
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.promotion.published import load_published

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "pub.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "data")
    )
    index.write(frames(50, 100), name="published-frames", maxcount=16, progress=False)
    uri = index.plan_promotion("published-frames", copy_to="blobs").execute(progress=False).at_uri
    single = load_published(uri, sample_type=Frame)
    assert len(single.urls) == 4 and all("/blob/" in u for u in single.list_shards())  # PDS blobs
    want = sorted(single.ordered(), key=lambda f: f.index)
    rd = read_dataset(uri, sample_type=Frame).materialize()
    assert rd.num_blocks() == 4  # one read task (and block) per published shard
    rows = sorted(rd.take_all(), key=lambda r: r["index"])
    assert rd.count() == len(rows) == len(want) == 50
    assert [r["index"] for r in rows] == [f.index for f in want] == list(range(100, 150))
    assert rd.sum("score") == sum(f.score for f in want)
    assert sum(int(r["pixels"].sum()) for r in rows) == sum(int(f.pixels.sum()) for f in want)
    assert all(np.array_equal(r["pixels"], f.pixels) and r["name"] == f.name for r, f in zip(rows, want))
    # the handle form resolves to the same record
    assert read_dataset(f"@{pds_account.handle}/published-frames", sample_type=Frame).count() == 50
