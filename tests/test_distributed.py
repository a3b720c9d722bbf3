"""Distribution across ranks and workers: exactly once per epoch, elastic deterministic shuffle,
and resume from a saved state (also after a SIGKILL, and with another number of workers)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.distributed import UnevenPartitionWarning, global_order, plan, slot_positions
from atdata_lab.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[1]
# uneven layouts are the point of several tests here; the warning itself is checked once below
pytestmark = pytest.mark.filterwarnings("ignore::atdata_lab.distributed.UnevenPartitionWarning")


@atdata.packable
class Item:
    i: int
    x: NDArray


def write_shards(folder: Path, counts: list[int]) -> atdata.Dataset:
    """One shard per count, sample ``i`` numbered across shards."""
    folder.mkdir(parents=True, exist_ok=True)
    urls, n = [], 0
    for s, c in enumerate(counts):
        path = folder / f"part-{s:04d}.tar"
        atdata.write_samples([Item(i=n + k, x=np.full(2, n + k, dtype="<i4")) for k in range(c)], path)
        urls.append(str(path))
        n += c
    return atdata.Dataset[Item](urls)


def reader(ds, rank, ranks, worker, workers, uneven="allow"):
    return ds.split_by_node(rank, ranks, uneven=uneven).split_by_worker(worker, workers)


layouts = st.tuples(st.integers(1, 4), st.integers(1, 3))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 9), min_size=1, max_size=12),
    layout=layouts,
    shuffle=st.booleans(),
    uneven=st.sampled_from(["allow", "drop", "pad"]),
)
def test_partition_delivers_every_position_once(counts, layout, shuffle, uneven):
    ranks, workers = layout
    slots = ranks * workers
    p = plan(counts, slots, shuffle=shuffle, uneven=uneven)
    seqs = [slot_positions(p, counts, s) for s in range(slots)]
    total = sum(counts)
    flat = np.concatenate(seqs) if seqs else np.zeros(0)
    assert p.by_shards == (not shuffle and len(counts) >= slots)
    if uneven == "allow":
        assert sorted(flat.tolist()) == list(range(total))
        assert p.dropped == p.padded == 0
    elif uneven == "drop":
        assert len(set(map(len, seqs))) == 1 and len(set(flat.tolist())) == len(flat)
        assert p.dropped == total - len(flat)
    else:
        assert len(set(map(len, seqs))) == 1
        assert set(flat.tolist()) == set(range(total)) and p.padded == len(flat) - total


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(st.integers(1, 6), min_size=1, max_size=7),
    layout=layouts,
    mode=st.sampled_from(["ordered", "elastic", "buffer"]),
    batch=st.sampled_from([None, 3]),
)
def test_every_sample_once_across_ranks_and_workers(tmp_path_factory, counts, layout, mode, batch):
    ds = write_shards(tmp_path_factory.mktemp("d"), counts)
    ranks, workers = layout
    seen = []
    for r in range(ranks):
        for w in range(workers):
            part = reader(ds, r, ranks, w, workers)
            if mode == "ordered":
                it = part.ordered(batch_size=batch)
            elif mode == "elastic":
                it = part.shuffled(seed=5, epoch=2, batch_size=batch)
            else:
                it = part.shuffled(buffer=4, seed=5, batch_size=batch)
            with_warnings = list(it)
            seen += [i for b in with_warnings for i in b.i] if batch else [s.i for s in with_warnings]
    assert sorted(seen) == list(range(sum(counts)))


def test_fewer_shards_than_readers_is_a_per_sample_stride(tmp_path):
    ds = write_shards(tmp_path, [5, 4])
    got = [[s.i for s in reader(ds, r, 2, w, 3).ordered()] for r in range(2) for w in range(3)]
    assert got == [[0, 6], [1, 7], [2, 8], [3], [4], [5]]


def test_uneven_counts_are_reported_dropped_or_padded(tmp_path):
    ds = write_shards(tmp_path, [4, 4, 3])
    with pytest.warns(UnevenPartitionWarning, match="uneven='drop'"):
        list(ds.split_by_node(0, 2).shuffled(seed=1, epoch=0))
    it = ds.split_by_node(1, 2).shuffled(seed=1, epoch=0)
    assert it.partition().sizes == (6, 5) and not it.partition().even
    drop = [sorted(s.i for s in ds.split_by_node(r, 2, uneven="drop").ordered()) for r in range(2)]
    assert [len(d) for d in drop] == [4, 4] and not set(drop[0]) & set(drop[1])
    pad = [[s.i for s in ds.split_by_node(r, 2, uneven="pad").ordered(batch_size=2)] for r in range(2)]
    assert [len(p) for p in pad] == [4, 4]  # the same number of batches on both ranks
    part = ds.split_by_node(0, 2, uneven="pad").ordered().partition()
    assert part.counts == (7, 4) and part.sizes == (7, 7) and part.padded == 3
    with pytest.raises(InvalidArgumentError, match="uneven"):
        ds.split_by_node(0, 2, uneven="repeat")
    with pytest.raises(InvalidArgumentError, match=r"rank must be in \[0, 2\)"):
        ds.split_by_node(2, 2)


@pytest.mark.parametrize("block", [None, 2])
def test_elastic_shuffle_has_one_global_order_for_every_layout(tmp_path, block):
    ds = write_shards(tmp_path, [7, 3, 8, 5, 6])
    n = 29
    orders = {}
    for ranks, workers in [(1, 1), (2, 1), (4, 2)]:
        slots = ranks * workers
        merged: list = [None] * n
        for r in range(ranks):
            for w in range(workers):
                got = [s.i for s in reader(ds, r, ranks, w, workers).shuffled(seed=9, epoch=3, block=block)]
                for k, v in enumerate(got):
                    merged[r * workers + w + k * slots] = v
        orders[(ranks, workers)] = merged
    assert orders[(1, 1)] == orders[(2, 1)] == orders[(4, 2)]
    assert sorted(orders[(1, 1)]) == list(range(n)) and orders[(1, 1)] != list(range(n))
    again = [s.i for s in ds.shuffled(seed=9, epoch=3, block=block)]
    other_epoch = [s.i for s in ds.shuffled(seed=9, epoch=4, block=block)]
    assert again == orders[(1, 1)] and other_epoch != again
    assert global_order([7, 3, 8, 5, 6], 9, 3, block).tolist() == orders[(1, 1)]


def test_block_shuffle_mixes_only_within_blocks_of_shards():
    order = global_order([10] * 6, seed=1, epoch=0, block=2)
    shards = order // 10
    for lo in range(0, 60, 20):  # each block of 20 positions holds exactly two whole shards
        assert len(set(shards[lo : lo + 20].tolist())) == 2


def _read_with_rank_env(args):
    urls, rank, world, out = args
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    ds = atdata.Dataset[Item](urls)
    Path(out).write_text(json.dumps([s.i for s in ds.shuffled(seed=2, epoch=0)]))


def test_real_processes_taking_rank_from_the_environment_read_each_sample_once(tmp_path):
    ds = write_shards(tmp_path / "d", [6, 6, 5])
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_read_with_rank_env, args=((ds.urls, r, 3, str(tmp_path / f"{r}.json")),))
        for r in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    parts = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(3)]
    merged = [parts[k % 3][k // 3] for k in range(17)]
    assert merged == [s.i for s in ds.shuffled(seed=2, epoch=0)]


def test_resume_in_process_continues_exactly_and_checks_the_state(tmp_path):
    ds = write_shards(tmp_path, [5, 5, 5, 4])
    it = ds.shuffled(seed=4, epoch=1, batch_size=3)
    first = [i for _ in range(2) for i in next(it).i]
    state = json.loads(json.dumps(it.state_dict()))  # plain data
    again = ds.shuffled(seed=4, epoch=1, batch_size=3)
    again.load_state_dict(state)
    rest = [i for b in again for i in b.i]
    assert first + rest == [s.i for s in ds.shuffled(seed=4, epoch=1)]
    with pytest.raises(InvalidArgumentError, match="seed, epoch"):
        ds.shuffled(seed=4, epoch=2).load_state_dict(state)
    with pytest.raises(InvalidArgumentError, match="same ranks"):
        ds.split_by_node(0, 2).shuffled(seed=4, epoch=1).load_state_dict(state)
    with pytest.raises(InvalidArgumentError, match="no resumable state"):
        ds.shuffled(buffer=10).state_dict()
    ordered = ds.ordered()
    head = [next(ordered).i for _ in range(7)]
    resumed = ds.ordered()
    resumed.load_state_dict(ordered.state_dict())
    assert head + [s.i for s in resumed] == list(range(19))


def test_a_dataset_dict_split_resumes(tmp_path):
    ds = write_shards(tmp_path, [4, 4])
    dd = atdata.DatasetDict({"train": ds})
    it = dd.shuffled(seed=1, epoch=0)
    head = [next(it).i for _ in range(3)]
    it2 = dd["train"].shuffled(seed=1, epoch=0)
    it2.load_state_dict(it.state_dict())
    assert sorted(head + [s.i for s in it2]) == list(range(8))


CHILD = """
import json, os, sys, time
import atdata_lab as atdata
from tests.test_distributed import Item
ds = atdata.Dataset[Item](json.loads(sys.argv[1]))
out = sys.argv[2]
it = ds.shuffled(seed=7, epoch=5, batch_size=4)
seen = []
for batch in it:
    seen += list(batch.i)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"state": it.state_dict(), "seen": seen}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    time.sleep(0.05)
"""


@pytest.mark.reliability
def test_resume_after_sigkill_yields_exactly_the_unseen_samples_also_with_more_workers(tmp_path):
    ds = write_shards(tmp_path / "d", [9, 9, 9, 9, 8])
    out = tmp_path / "progress.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(ds.urls), str(out)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and len(json.loads(out.read_text())["seen"]) >= 12:
                break
            assert child.poll() is None, "the child ended before it was killed"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    saved = json.loads(out.read_text())
    seen = saved["seen"]
    assert 12 <= len(seen) < 44
    full = [s.i for s in ds.shuffled(seed=7, epoch=5)]
    assert seen == full[: len(seen)]
    # the same single worker: exactly the rest, in the global order
    one = ds.shuffled(seed=7, epoch=5)
    one.load_state_dict(saved["state"])
    assert [s.i for s in one] == full[len(seen) :]
    # two workers now: together exactly the rest, each in the global order
    parts = []
    for w in range(2):
        it = ds.split_by_node(0, 1).split_by_worker(w, 2).shuffled(seed=7, epoch=5, batch_size=3)
        it.load_state_dict(saved["state"])
        parts.append([i for b in it for i in b.i])
    assert sorted(parts[0] + parts[1]) == sorted(full[len(seen) :])
    rest = full[len(seen) :]
    assert all(p == sorted(p, key=rest.index) for p in parts)
    # and a second interruption, with three workers after two, still loses and repeats nothing
    its = [
        ds.split_by_node(0, 1).split_by_worker(w, 2).shuffled(seed=7, epoch=5, batch_size=3) for w in range(2)
    ]
    for it in its:
        it.load_state_dict(saved["state"])
    got = [i for i in next(its[0]).i] + [i for i in next(its[1]).i] + [i for i in next(its[1]).i]
    stage = {"workers": 2, "consumed": [its[0].consumed, its[1].consumed]}
    state2 = {**saved["state"], "stages": [*saved["state"]["stages"], stage]}
    later = []
    for w in range(3):
        it = ds.split_by_node(0, 1).split_by_worker(w, 3).shuffled(seed=7, epoch=5)
        it.load_state_dict(state2)
        later += [s.i for s in it]
    assert sorted(seen + got + later) == list(range(44))
