"""The Redis provider opts into the index conformance suite on a real redis-server."""

from __future__ import annotations

import time

import pytest

import atdata_lab as atdata
from atdata_lab.providers.redis import IndexUnavailableError, RedisProvider
from tests.conformance.index_suite import IndexSuite, experiment

pytestmark = pytest.mark.redis


class TestRedisIndex(IndexSuite):
    @pytest.fixture
    def index(self, redis_client, tmp_path):
        return atdata.Index(redis=redis_client, data_store=atdata.LocalDiskStore(tmp_path / "data"))


def test_url_form_and_key_prefixes_share_one_redis(redis_server, tmp_path):
    a = atdata.Index(
        "redis", url=redis_server.url, key_prefix="team-a", data_store=atdata.LocalDiskStore(tmp_path / "a")
    )
    b = atdata.Index(
        url=redis_server.url, key_prefix="team-b", data_store=atdata.LocalDiskStore(tmp_path / "b")
    )
    a.write(experiment(3), name="same-name", progress=False)
    b.write(experiment(4), name="same-name", progress=False)
    assert a.get_entry_by_name("same-name").num_samples == 3
    assert b.get_entry_by_name("same-name").num_samples == 4


def test_lookups_never_scan_the_keyspace(redis_client, tmp_path):
    index = atdata.Index(redis=redis_client, data_store=atdata.LocalDiskStore(tmp_path))
    for i in range(20):
        index.write(experiment(2, seed=i), name=f"e{i}", tags=["t"], progress=False)
    redis_client.config_resetstat()
    index.get_entry_by_name("e7")
    index.get_entry(index.get_entry_by_name("e3").cid)
    index.search(tags=["t"], schema="ExperimentSample", limit=5)
    stats = redis_client.info("commandstats")
    assert not any(k in stats for k in ("cmdstat_scan", "cmdstat_keys"))


def test_redis_down_gives_a_clear_error_and_changes_nothing(start_redis, tmp_path):
    server = start_redis()
    index = atdata.Index(url=server.url, data_store=atdata.LocalDiskStore(tmp_path))
    index.write(experiment(3), name="kept", progress=False)
    server.stop()
    with pytest.raises(IndexUnavailableError, match="redis-server") as err:
        index.get_entry_by_name("kept")
    assert isinstance(err.value, ConnectionError) and server.url.split("//")[1].split("/")[0] in str(
        err.value
    )
    with pytest.raises(IndexUnavailableError):
        RedisProvider(url=server.url)


def test_restart_with_aof_keeps_committed_entries(start_redis, tmp_path):
    server = start_redis(aof=True)
    index = atdata.Index(url=server.url, data_store=atdata.LocalDiskStore(tmp_path))
    for i in range(5):
        index.write(experiment(2, seed=i), name=f"k{i}", progress=False)
    server.restart()
    time.sleep(0.1)
    again = atdata.Index(url=server.url, data_store=atdata.LocalDiskStore(tmp_path))
    assert len(again) == 5 and again.dataset("k4")[1].timestamp == 1.0


def test_lookups_on_the_same_index_survive_a_server_restart(start_redis, tmp_path):
    """A pooled connection left stale by a restart is replaced: lookups on the same Index go on."""
    server = start_redis(aof=True)
    index = atdata.Index(url=server.url, data_store=atdata.LocalDiskStore(tmp_path))
    index.write(experiment(2), name="kept", progress=False)
    assert index.get_entry_by_name("kept").name == "kept"
    server.restart()
    time.sleep(0.1)
    assert index.get_entry_by_name("kept").name == "kept"  # the pooled connection was stale
    with pytest.raises(atdata.EntryNotFoundError):
        index.get_entry_by_name("never-written")


def test_text_search_sees_entries_written_by_another_client(redis_server, redis_client, tmp_path):
    mine = atdata.Index(redis=redis_client, data_store=atdata.LocalDiskStore(tmp_path / "a"))
    mine.write(experiment(2), name="alpha-run", progress=False)
    assert [e.name for e in mine.search("run")] == ["alpha-run"]  # fills the text cache
    other = atdata.Index(url=redis_server.url, data_store=atdata.LocalDiskStore(tmp_path / "b"))
    other.write(experiment(3), name="beta-run", description="calibration", progress=False)
    assert {e.name for e in mine.search("run")} == {"alpha-run", "beta-run"}
    assert [e.name for e in mine.search("calib")] == ["beta-run"]
    other.delete_entry("alpha-run")
    assert [e.name for e in mine.search("run")] == ["beta-run"]
