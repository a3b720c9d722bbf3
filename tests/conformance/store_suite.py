"""The data store conformance suite, written once. A backend opts in by subclassing
:class:`StoreSuite` and providing a ``store`` fixture (a fresh, empty store) and an ``other_store``
fixture (a second one, for copies)."""

from __future__ import annotations

import threading

import pytest

import atdata_lab as atdata
from atdata_lab import transfer
from atdata_lab.errors import ShardExistsError
from atdata_lab.progress import ProgressEvent
from atdata_lab.transfer import copy_shards
from tests.conformance.index_suite import ExperimentSample, experiment


class StoreSuite:
    @pytest.fixture
    def store(self):  # pragma: no cover - each backend overrides
        raise NotImplementedError

    @pytest.fixture
    def other_store(self):  # pragma: no cover
        raise NotImplementedError

    def test_sink_publishes_only_on_commit(self, store):
        url = store.shard_url("ds", 0)
        assert url.endswith("ds/ds-000000.tar") and store.owns(url)
        sink = store.open_sink(url)
        sink.write(b"a" * 1000)
        sink.write(memoryview(b"b" * 24))
        assert not store.exists(url)  # staged, not visible under the final name
        sink.commit()
        assert store.exists(url) and store.size(url) == 1024
        with store.open_read(url) as f:
            assert f.read() == b"a" * 1000 + b"b" * 24

    def test_abort_leaves_nothing_and_keeps_the_previous_shard(self, store):
        url = store.shard_url("ab", 0)
        first = store.open_sink(url)
        first.write(b"old")
        first.commit()
        sink = store.open_sink(url)
        sink.write(b"x" * 10)
        sink.abort()
        with store.open_read(url) as f:
            assert f.read() == b"old"  # nothing already stored is lost
        other = store.shard_url("ab", 1)
        s2 = store.open_sink(other)
        s2.write(b"y")
        s2.abort()
        assert not store.exists(other)

    def test_commit_never_replaces_a_different_file(self, store):
        url = store.shard_url("taken", 0)
        first = store.open_sink(url)
        first.write(b"first" * 100)
        assert first.commit() is True  # created
        second = store.open_sink(url)
        second.write(b"other" * 100)
        with pytest.raises(ShardExistsError) as e:
            second.commit()
        assert (
            isinstance(e.value, FileExistsError) and e.value.url == url and "already exists" in str(e.value)
        )
        with store.open_read(url) as f:
            assert f.read() == b"first" * 100  # nothing already stored is lost
        same = store.open_sink(url)
        same.write(b"first" * 100)
        assert same.commit() is False  # identical content: the existing file is reused
        with store.open_read(url) as f:
            assert f.read() == b"first" * 100

    def test_two_writers_committing_one_name_at_once_never_overwrite_each_other(self, store):
        # both stage their bytes, then commit at the same moment: one wins, the other is refused
        url = store.shard_url("race", 0)
        payloads = [bytes([65 + k]) * 4096 for k in range(2)]
        sinks = [store.open_sink(url) for _ in payloads]
        for sink, data in zip(sinks, payloads):
            sink.write(data)
        barrier = threading.Barrier(len(sinks))
        outcomes: list[object] = [None] * len(sinks)

        def commit(k: int) -> None:
            barrier.wait()
            try:
                outcomes[k] = sinks[k].commit()
            except ShardExistsError as e:
                outcomes[k] = e

        threads = [threading.Thread(target=commit, args=(k,)) for k in range(len(sinks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [k for k, o in enumerate(outcomes) if o is True]
        assert len(winners) == 1 and sum(isinstance(o, ShardExistsError) for o in outcomes) == 1, outcomes
        with store.open_read(url) as f:
            assert f.read() == payloads[winners[0]]

    def test_delete_is_idempotent(self, store):
        url = store.shard_url("del", 0)
        sink = store.open_sink(url)
        sink.write(b"z")
        sink.commit()
        store.delete(url)
        store.delete(url)
        assert not store.exists(url)

    def test_index_writes_and_reads_through_the_store(self, store, tmp_path):
        index = atdata.Index(path=tmp_path / "i.db", data_store=store)
        entry = index.write(experiment(300), name="through", maxcount=128, progress=False)
        assert len(entry.data_urls) == 3 and all(store.owns(u) for u in entry.data_urls)
        ds = index.dataset("through")
        assert sum(len(b) for b in ds.ordered(batch_size=64)) == 300
        assert ds[257].timestamp == 257.0  # a ranged read through the offset index
        typed = atdata.Dataset[ExperimentSample](entry.data_urls, storage_options=store.storage_options)
        assert len(typed) == 300 and typed[5].sensor_id == "sensor_1"

    def test_copy_between_stores_is_verified_and_resumable(self, store, other_store, tmp_path):
        index = atdata.Index(path=tmp_path / "i.db", data_store=store)
        entry = index.write(experiment(200), name="mover", maxcount=50, progress=False)
        ds = index.dataset(entry)
        infos = [ds.shard_info(u) for u in entry.data_urls]
        copied = copy_shards(
            infos[:2], other_store, "mover", source_options=store.storage_options, progress=False
        )
        assert [c.checksum for c in copied] == [i.checksum for i in infos[:2]]
        flags: list[bool] = []
        again = copy_shards(
            infos,
            other_store,
            "mover",
            source_options=store.storage_options,
            progress=False,
            on_shard=lambda i, info, copied: flags.append(copied),
        )
        assert flags == [False, False, True, True]  # the first two were already there: skipped
        assert [a.url for a in again][:2] == [c.url for c in copied]
        events: list[ProgressEvent] = []
        moved = index.copy_entry("mover", to=other_store, progress=events.append)
        assert moved.cid == entry.cid and all(other_store.owns(u) for u in moved.data_urls)
        assert events[-1].finished and events[-1].done == sum(i.size for i in infos)
        assert [e.done for e in events] == sorted(e.done for e in events)  # progress never goes back
        back = index.dataset("mover")
        assert back[199].timestamp == 199.0
        assert all(store.exists(u) for u in entry.data_urls)  # originals stay

    def test_a_copy_never_replaces_a_file_and_takes_a_content_addressed_name(
        self, store, other_store, tmp_path
    ):
        index = atdata.Index(path=tmp_path / "i.db", data_store=store)
        old = index.write(experiment(40), name="old", progress=False)
        new = index.write(experiment(41), name="new", progress=False)
        ds = index.dataset(old)
        old_info = ds.shard_info(old.data_urls[0])
        new_info = index.dataset(new).shard_info(new.data_urls[0])
        (first,) = copy_shards(
            [old_info], other_store, "shared", source_options=store.storage_options, progress=False
        )
        assert first.url == other_store.shard_url("shared", 0)
        (second,) = copy_shards(
            [new_info], other_store, "shared", source_options=store.storage_options, progress=False
        )
        assert second.url == other_store.shard_url("shared", 0, tag=new_info.checksum[:16])
        for info, copy in ((old_info, first), (new_info, second)):  # each copy holds its own bytes
            assert transfer.sha256_of(copy.url, other_store.storage_options) == info.checksum
        flags: list[bool] = []
        (again,) = copy_shards(
            [new_info],
            other_store,
            "shared",
            source_options=store.storage_options,
            progress=False,
            on_shard=lambda i, info, copied: flags.append(copied),
        )
        assert again.url == second.url and flags == [False]  # resumable: the tagged copy is reused
        # a name that an entry or a published record points to is left to it, even when its file is gone
        other_store.delete(first.url)
        (third,) = copy_shards(
            [new_info],
            other_store,
            "shared",
            source_options=store.storage_options,
            progress=False,
            in_use=lambda urls: set(urls),
        )
        assert third.url == second.url and not other_store.exists(first.url)
