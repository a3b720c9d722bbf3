"""The SQLite provider opts into the index conformance suite, plus SQLite-specific checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import atdata_lab as atdata
from tests.conformance.index_suite import ExperimentSample, IndexSuite, experiment


class TestSQLiteIndex(IndexSuite):
    @pytest.fixture
    def index(self, tmp_path):
        return atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


def test_defaults_live_under_atdata_home(atdata_home):
    index = atdata.Index()
    e = index.write(experiment(3), name="home", progress=False)
    assert (atdata_home / "index.db").exists()
    assert e.data_urls[0].startswith(str(atdata_home / "data" / "home" / "home-000000.tar"))


def test_path_is_honoured_without_naming_provider(tmp_path):
    idx = atdata.Index(path=tmp_path / "mine.db")
    assert idx.provider.path == tmp_path / "mine.db"


def test_two_processes_share_one_index_file(tmp_path):
    db = tmp_path / "shared.db"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        import atdata_lab as atdata
        from tests.conformance.index_suite import experiment
        idx = atdata.Index(path={str(db)!r}, data_store=atdata.LocalDiskStore({str(tmp_path / "d")!r}))
        for i in range(15):
            idx.write(experiment(5, seed=i), name=f"p{{sys.argv[1]}}-{{i}}", progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(p)], env=env, stderr=subprocess.PIPE)
        for p in range(3)
    ]
    errs = [p.communicate()[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert not any("locked" in e for e in errs)
    assert len(atdata.Index(path=db)) == 45


def test_an_index_dataset_never_uses_stale_offsets_and_takes_its_index_along_when_pickled(tmp_path):
    import pickle

    from atdata_lab.shards import ShardInfo
    from atdata_lab.urls import local_path

    index = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    entry = index.write(experiment(40), name="e", maxcount=10, progress=False)
    replaced = experiment(3, seed=5)
    atdata.write_samples(replaced, local_path(entry.data_urls[1]))  # shard 1 is now another file
    ds = index.dataset(entry)
    assert len(ds) == 33 and ds[12].sensor_id == replaced[2].sensor_id and ds[12].timestamp == 2.0
    assert ds[13].timestamp == 20.0  # shard 2, through the index's offsets
    # a DataLoader worker gets the dataset pickled: it opens the same SQLite index to fetch offsets
    back = pickle.loads(pickle.dumps(index.dataset(entry, ExperimentSample)))
    assert back._offsets.provider.path == index.provider.path and back._infos == {}
    assert isinstance(back.shard_info(entry.data_urls[3]), ShardInfo)
    assert back[32].timestamp == 39.0 and len(back) == 33
