"""PyTorch: ds.to_torch() under a real DataLoader with worker processes (local and S3 shards),
exactly once per epoch across ranks x workers, elastic order, and Loader resume after SIGKILL
with another number of workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import atdata_lab as atdata
from atdata_lab.integrations.torch import Loader, collate
from atdata_lab.stores.s3 import S3DataStore
from tests.test_distributed import Item, write_shards

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.filterwarnings("ignore::atdata_lab.distributed.UnevenPartitionWarning"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),  # 3 workers on 2 cores
]


def batches_of(loader):
    return [b for b in loader]


def test_two_workers_yield_every_sample_once_as_tensors_in_our_batch_layout(tmp_path):
    ds = write_shards(tmp_path, [10, 10, 10, 7])
    tds = ds.to_torch(batch_size=4)
    got = batches_of(DataLoader(tds, batch_size=None, num_workers=2))
    assert isinstance(got[0], atdata.SampleBatch)
    assert isinstance(got[0].x, torch.Tensor) and got[0].x.shape == (4, 2) and got[0].x.dtype == torch.int32
    assert isinstance(got[0].i, list)
    seen = [i for b in got for i in b.i]
    assert sorted(seen) == list(range(37))
    assert all(int(b.x[k, 0]) == b.i[k] for b in got for k in range(len(b)))
    # samples, and our collate keeping the batch layout
    samples = DataLoader(ds.to_torch(), batch_size=5, num_workers=2, collate_fn=collate)
    got = list(samples)
    assert isinstance(got[0], atdata.SampleBatch) and got[0].x.shape == (5, 2)
    assert sorted(i for b in got for i in b.i) == list(range(37))


def test_persistent_workers_follow_set_epoch(tmp_path):
    ds = write_shards(tmp_path, [6, 6, 6])
    tds = ds.to_torch(batch_size=3, shuffle=True, seed=11)
    loader = DataLoader(tds, batch_size=None, num_workers=2, persistent_workers=True)
    epochs = []
    for e in range(2):
        tds.set_epoch(e)
        epochs.append([i for b in loader for i in b.i])
    assert all(sorted(e) == list(range(18)) for e in epochs)
    assert epochs[0] != epochs[1]
    again = ds.to_torch(batch_size=3, shuffle=True, seed=11, epoch=1)
    assert sorted(i for b in DataLoader(again, batch_size=None, num_workers=2) for i in b.i) == list(
        range(18)
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(st.integers(1, 5), min_size=1, max_size=5),
    ranks=st.integers(1, 3),
    workers=st.integers(1, 3),
    shuffle=st.booleans(),
    uneven=st.sampled_from(["allow", "drop", "pad"]),
)
def test_ranks_times_real_workers_read_every_sample_exactly_once(
    tmp_path_factory, counts, ranks, workers, shuffle, uneven
):
    ds = write_shards(tmp_path_factory.mktemp("d"), counts)
    per_rank = []
    for r in range(ranks):
        tds = ds.split_by_node(r, ranks, uneven=uneven).to_torch(batch_size=2, shuffle=shuffle, seed=3)
        per_rank.append([i for b in DataLoader(tds, batch_size=None, num_workers=workers) for i in b.i])
    flat = [i for p in per_rank for i in p]
    n = sum(counts)
    if uneven == "allow":
        assert sorted(flat) == list(range(n))
    elif uneven == "drop":
        assert len(set(flat)) == len(flat) and len({len(p) for p in per_rank}) == 1
    else:
        assert set(flat) == set(range(n)) and len({len(p) for p in per_rank}) == 1


@pytest.mark.slow
def test_elastic_order_is_the_same_with_4_ranks_times_2_real_workers(tmp_path):
    ds = write_shards(tmp_path, [7, 3, 8, 5, 6])
    whole = [s.i for s in ds.shuffled(seed=21, epoch=2)]
    slots = 8
    merged: list = [None] * len(whole)
    for r in range(4):
        tds = ds.split_by_node(r, 4).to_torch(batch_size=1, shuffle=True, seed=21, epoch=2)
        for b in DataLoader(tds, batch_size=None, num_workers=2):
            stage = b._progress["stages"][-1]
            w = max(range(2), key=lambda k: stage["consumed"][k])  # the worker that sent it
            k = stage["consumed"][w] - 1
            merged[r * 2 + w + k * slots] = b.i[0]
    assert merged == whole


@pytest.mark.s3
@pytest.mark.slow
def test_two_workers_over_s3_shards_yield_every_sample_once(s3_server, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    store = S3DataStore(
        s3_bucket,
        prefix=f"t-{uuid.uuid4().hex[:8]}/",
        endpoint_url=s3_server.endpoint_url,
        key=s3_server.key,
        secret=s3_server.secret,
    )
    index = atdata.Index(path=tmp_path / "i.db", data_store=store)
    samples = [Item(i=i, x=np.full(2, i, dtype="<i4")) for i in range(53)]
    entry = index.write(samples, name="items", maxcount=10, progress=False)
    ds = index.dataset(entry).as_type(Item)
    assert all(u.startswith("s3://") for u in ds.urls)
    for shuffle in (False, True):
        tds = ds.to_torch(batch_size=4, shuffle=shuffle, seed=1)
        got = [i for b in DataLoader(tds, batch_size=None, num_workers=2) for i in b.i]
        assert sorted(got) == list(range(53))
    one = ds.split_by_node(0, 1)  # fewer shards than readers: a per-sample stride over S3
    tds = one.to_torch(batch_size=4)
    assert sorted(i for b in DataLoader(tds, batch_size=None, num_workers=2) for i in b.i) == list(range(53))


CHILD = """
import json, os, sys, time
import atdata_lab as atdata
from atdata_lab.integrations.torch import Loader
from tests.test_distributed import Item
ds = atdata.Dataset[Item](json.loads(sys.argv[1]))
out = sys.argv[2]
loader = Loader(ds.to_torch(batch_size=3, shuffle=True, seed=5, epoch=4), num_workers=2)
seen = []
for batch in loader:
    seen += list(batch.i)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"state": loader.state_dict(), "seen": seen}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    time.sleep(0.05)
"""


@pytest.mark.reliability
@pytest.mark.slow
def test_loader_resumes_after_sigkill_with_three_workers_instead_of_two(tmp_path):
    ds = write_shards(tmp_path / "d", [8, 8, 8, 8, 8, 5])
    out = tmp_path / "progress.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(ds.urls), str(out)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if out.exists() and len(json.loads(out.read_text())["seen"]) >= 12:
                break
            assert child.poll() is None, "the child ended before it was killed"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    saved = json.loads(out.read_text())
    seen = saved["seen"]
    assert 12 <= len(seen) < 45
    loader = Loader(ds.to_torch(batch_size=3, shuffle=True, seed=5), num_workers=3, persistent_workers=True)
    loader.load_state_dict(saved["state"])
    assert loader.tds.epoch == 4
    rest = [i for b in loader for i in b.i]
    assert sorted(seen + rest) == list(range(45))
    loader.tds.set_epoch(5)  # the next epoch is whole again (the persistent workers forget the state)
    assert sorted(i for b in loader for i in b.i) == list(range(45))
