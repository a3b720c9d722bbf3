"""Shards in use are never overwritten or deleted (issue 12, items 3 and 4), against the real sandbox
PDS, once with SQLite + LocalDiskStore and once with the README's team setup (RedisProvider +
S3DataStore on a real redis-server and SeaweedFS).

3: a copy never replaces a file that an entry or a published record points to: a different content
   under a taken name gets a content-addressed name (``shard_url(name, i, tag=sha256[:16])``).
4: ``write(..., overwrite=True)`` and ``delete_entry(..., delete_data=True)`` keep the files a published
   record of the index still points to (a ``PublishedDataWarning`` names the record); ``force=True``
   deletes them and the warning names the records it breaks.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.errors import AtdataLabError, PublishedDataWarning
from atdata_lab.stores.base import DataStore
from tests.test_promotion import features

SETUPS = [
    pytest.param("sqlite+disk", id="sqlite-disk"),
    pytest.param("redis+s3", id="redis-s3", marks=[pytest.mark.redis, pytest.mark.s3]),
]


@dataclass
class Setup:
    """Makes indexes and stores of one kind of setup, all in this test's own space."""

    kind: str
    tmp: Path
    request: Any

    def store(self, name: str) -> DataStore:
        if self.kind == "sqlite+disk":
            return atdata.LocalDiskStore(self.tmp / name)
        server = self.request.getfixturevalue("s3_server")
        return atdata.S3DataStore(
            self.request.getfixturevalue("s3_bucket"),
            prefix=f"{name}/",
            endpoint_url=server.endpoint_url,
            key=server.key,
            secret=server.secret,
        )

    def index(
        self,
        n: int = 0,
        *,
        data_store: DataStore | None = None,
        atmosphere: Any = None,
        provider: str | None = None,
    ) -> atdata.Index:
        data_store = data_store if data_store is not None else self.store(f"data{n}")
        if (provider or self.kind.split("+")[0]) == "sqlite":
            return atdata.Index(path=self.tmp / f"index{n}.db", data_store=data_store, atmosphere=atmosphere)
        return atdata.Index(
            redis=self.request.getfixturevalue("redis_client"),
            key_prefix=f"idx{n}:",
            data_store=data_store,
            atmosphere=atmosphere,
        )


@pytest.fixture(params=SETUPS)
def setup(request, tmp_path, monkeypatch) -> Setup:
    if request.param == "redis+s3":  # readers of the published records take S3 credentials from the env
        for k, v in request.getfixturevalue("s3_server").env().items():
            monkeypatch.setenv(k, v)
    return Setup(request.param, tmp_path, request)


@pytest.fixture
def client(pds_account):
    return Atmosphere.login(pds_account.handle, pds_account.password)


def forget_verified_cache() -> None:
    """Drop the shards this machine downloaded and verified (``$ATDATA_HOME/cache``)."""
    import shutil

    shutil.rmtree(Path(os.environ["ATDATA_HOME"]) / "cache", ignore_errors=True)


def assert_holds(ds: atdata.Dataset, samples: list) -> None:
    """``ds`` reads exactly ``samples`` (reading a published dataset also checks every shard's sha256)."""
    got = list(ds.ordered())
    assert len(got) == len(samples)
    np.testing.assert_array_equal(
        np.stack([g.features for g in got]), np.stack([s.features for s in samples])
    )
    assert [g.label for g in got] == [s.label for s in samples]


# ------------------------------------------------------------------ 3: copies never overwrite shards in use


@pytest.mark.sandbox
def test_3a_promoting_changed_data_again_keeps_the_first_version_loadable(setup, client):
    index = setup.index(atmosphere=client)
    public = setup.store("public")
    v1, v2 = features(60, seed=1), features(70, seed=2)
    index.write(v1, name="exp", maxcount=25, progress=False)
    first = index.plan_promotion("exp", copy_to=public).execute(progress=False)
    uri_v1, urls_v1 = first.at_uri, first.data_urls
    assert urls_v1[0] == public.shard_url("exp", 0)  # the plain name while it is free
    index.write(v2, name="exp", maxcount=25, overwrite=True, progress=False)
    second = index.plan_promotion("exp", copy_to=public).execute(progress=False)
    uri_v2, urls_v2 = second.at_uri, second.data_urls
    assert uri_v2 != uri_v1
    assert not set(urls_v2) & set(urls_v1)  # the taken names got content-addressed twins
    checksums = index.get_entry_by_name("exp").shard_checksums
    assert urls_v2[0] == public.shard_url("exp", 0, tag=checksums[0][:16])
    assert len(index.get_dataset(uri_v2).data_urls) == 3  # the record points at the twins it was copied to
    assert_holds(atdata.load_dataset(uri_v1, split="train"), v1)
    assert index.verify(uri_v1).failed == [
        "loadable by others"
    ]  # checksums and records pass; the data is on this machine
    assert_holds(atdata.load_dataset(uri_v2, split="train"), v2)
    assert index.verify(uri_v2).failed == [
        "loadable by others"
    ]  # checksums and records pass; the data is on this machine


@pytest.mark.sandbox
def test_3b_promoting_another_entry_under_a_taken_name_leaves_the_local_entry_alone(setup, client):
    index = setup.index(atmosphere=client)
    a, b = features(40, seed=3), features(50, seed=4)
    index.write(a, name="a", maxcount=20, progress=False)
    index.write(b, name="b", maxcount=20, progress=False)
    uri_a = index.promote_entry(
        "a", copy_to=index.data_store, progress=False
    )  # a's own files: nothing to copy
    as_a = index.plan_promotion("b", name="a", copy_to=index.data_store).execute(progress=False)
    uri_b = as_a.at_uri
    assert not set(as_a.data_urls) & set(index.get_entry_by_name("a").data_urls)
    assert_holds(index.dataset("a"), a)
    assert_holds(atdata.load_dataset(uri_a, split="train"), a)
    assert_holds(atdata.load_dataset(uri_b, split="train"), b)


@pytest.mark.parametrize(
    "providers, store_kind",
    [
        pytest.param(("sqlite", "sqlite"), "sqlite+disk", id="two-sqlite-disk"),
        pytest.param(
            ("sqlite", "redis"),
            "redis+s3",
            id="sqlite-and-redis-s3",
            marks=[pytest.mark.redis, pytest.mark.s3],
        ),
    ],
)
def test_3c_two_indexes_copying_one_name_into_a_shared_store_keep_their_own_data(
    providers, store_kind, tmp_path, request
):
    setup = Setup(store_kind, tmp_path, request)
    shared = setup.store("shared")
    indexes = [setup.index(n, provider=p) for n, p in enumerate(providers)]
    data = [features(45, seed=10 + n) for n in range(2)]
    for index, samples in zip(indexes, data):
        index.write(samples, name="run-17", maxcount=20, progress=False)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def copy(index: atdata.Index) -> None:
        barrier.wait()  # both copy at once: whoever commits a name second never replaces the first
        try:
            index.copy_entry("run-17", to=shared, progress=False)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=copy, args=(ix,)) for ix in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = [ix.get_entry_by_name("run-17") for ix in indexes]
    assert all(shared.owns(u) for e in entries for u in e.data_urls)
    assert not set(entries[0].data_urls) & set(entries[1].data_urls)
    for index, samples in zip(indexes, data):
        assert_holds(index.dataset("run-17"), samples)
    # a third copy of the first index's data (resumed, or by a colleague) reuses what is there
    again = indexes[0].copy_entry("run-17", to=shared, progress=False)
    assert again.data_urls == entries[0].data_urls


# ------------------------------------------------------------------ 4: overwrite/delete keep live publications


def _published_keep_mode(index: atdata.Index, name: str, samples: list) -> tuple[str, list[str]]:
    index.write(samples, name=name, maxcount=20, progress=False)
    uri = index.promote_entry(name, progress=False)  # copy_to=None: the record points at these very files
    urls = index.get_entry_by_name(name).data_urls
    assert index.published_urls(urls) == {u: [uri] for u in urls}
    return uri, urls


@pytest.mark.sandbox
def test_4_overwrite_keeps_the_files_of_a_live_publication(setup, client):
    index = setup.index(atmosphere=client)
    store = index.data_store
    v1, v2 = features(50, seed=20), features(30, seed=21)
    uri, urls = _published_keep_mode(index, "kept", v1)
    with pytest.warns(PublishedDataWarning) as caught:
        index.write(v2, name="kept", maxcount=20, overwrite=True, progress=False)
    (w,) = [c.message for c in caught if isinstance(c.message, PublishedDataWarning)]
    assert uri in str(w) and "force=True" in str(w) and w.records == {uri: urls} and not w.deleted
    assert all(store.exists(u) for u in urls)
    assert_holds(atdata.load_dataset(uri, split="train"), v1)
    assert index.verify(uri).failed == [
        "loadable by others"
    ]  # checksums and records pass; the data is on this machine
    assert_holds(index.dataset("kept"), v2)

    # force=True deletes them, and says which records no longer load
    uri_f, urls_f = _published_keep_mode(index, "forced", v1)
    with pytest.warns(PublishedDataWarning) as caught:
        index.write(v2, name="forced", maxcount=20, overwrite=True, force=True, progress=False)
    (w,) = [c.message for c in caught if isinstance(c.message, PublishedDataWarning)]
    assert w.deleted and w.records == {uri_f: urls_f} and uri_f in str(w) and "no longer load" in str(w)
    assert not any(store.exists(u) for u in urls_f)
    forget_verified_cache()  # as someone else would load it: not from this machine's cache
    with pytest.raises((AtdataLabError, OSError)):
        list(atdata.load_dataset(uri_f, split="train").ordered())
    assert_holds(index.dataset("forced"), v2)


@pytest.mark.sandbox
def test_4_delete_keeps_the_files_of_a_live_publication(setup, client):
    index = setup.index(atmosphere=client)
    store = index.data_store
    samples = features(50, seed=22)
    uri, urls = _published_keep_mode(index, "gone", samples)
    with pytest.warns(PublishedDataWarning) as caught:
        index.delete_entry("gone", delete_data=True)
    (w,) = [c.message for c in caught if isinstance(c.message, PublishedDataWarning)]
    assert uri in str(w) and w.records == {uri: urls} and not w.deleted
    assert "gone" not in [e.name for e in index.list_entries()]
    assert all(store.exists(u) for u in urls)
    assert_holds(atdata.load_dataset(uri, split="train"), samples)
    assert index.verify(uri).failed == [
        "loadable by others"
    ]  # checksums and records pass; the data is on this machine

    uri_f, urls_f = _published_keep_mode(index, "gone-forced", samples)
    with pytest.warns(PublishedDataWarning) as caught:
        index.delete_entry("gone-forced", delete_data=True, force=True)
    (w,) = [c.message for c in caught if isinstance(c.message, PublishedDataWarning)]
    assert w.deleted and w.records == {uri_f: urls_f} and uri_f in str(w)
    assert not any(store.exists(u) for u in urls_f)
    forget_verified_cache()  # as someone else would load it: not from this machine's cache
    with pytest.raises((AtdataLabError, OSError)):
        list(atdata.load_dataset(uri_f, split="train").ordered())


@pytest.mark.sandbox
def test_4_the_pending_writes_cleanup_never_deletes_a_published_file(setup, client, atdata_home):
    # a writer killed between publishing its shards and forgetting its note leaves the note behind;
    # the next write's cleanup deletes the noted shards no entry uses, but never those a record uses
    index = setup.index(atmosphere=client)
    samples = features(30, seed=23)
    uri, urls = _published_keep_mode(index, "noted", samples)
    with pytest.warns(PublishedDataWarning):
        index.delete_entry("noted", delete_data=True)
    folder = atdata_home / "pending-writes"
    folder.mkdir(exist_ok=True)
    (folder / "1-dead.json").write_text(
        json.dumps({"index": index._index_id(), "urls": urls, "pid": 2**22 + 7, "host": socket.gethostname()})
    )
    assert os.getpid() != 2**22 + 7
    index.write(features(5, seed=24), name="next", progress=False)  # runs the cleanup
    assert not (folder / "1-dead.json").exists()  # handled: the published files are kept on purpose
    assert all(index.data_store.exists(u) for u in urls)
    assert_holds(atdata.load_dataset(uri, split="train"), samples)


def test_published_urls_reads_what_promotions_recorded(tmp_path):
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "d"))
    state = index.provider
    state.set_state("published:a:did:plc:x:a", {"entry_uri": "at://x/e/1", "data_urls": ["u1", "u2"]})
    state.set_state("published:b:did:plc:x:a", {"entry_uri": "at://x/e/2", "data_urls": ["u2", "u3"]})
    state.set_state("schema-published:did:plc:x:ref", {"uri": "at://x/s/1"})
    assert index.published_urls() == {
        "u1": ["at://x/e/1"],
        "u2": ["at://x/e/1", "at://x/e/2"],
        "u3": ["at://x/e/2"],
    }
    assert index.published_urls(["u3", "nope"]) == {"u3": ["at://x/e/2"]}


@pytest.mark.sandbox
def test_every_published_version_keeps_its_files(setup, client):
    """Each published record is remembered on its own: promoting v2 under the same name does not
    make the index forget the files v1's record points to."""
    index = setup.index(atmosphere=client)
    v1, v2 = features(40, seed=30), features(30, seed=31)
    uri1, urls1 = _published_keep_mode(index, "versions", v1)
    with pytest.warns(PublishedDataWarning):
        index.write(v2, name="versions", maxcount=20, overwrite=True, progress=False)
    uri2 = index.promote_entry("versions", progress=False)
    assert uri2 != uri1 and set(index.published_urls(urls1)) == set(urls1)
    urls2 = index.get_entry_by_name("versions").data_urls
    with pytest.warns(PublishedDataWarning) as caught:
        index.delete_entry("versions", delete_data=True)
    (w,) = [c.message for c in caught if isinstance(c.message, PublishedDataWarning)]
    assert w.records == {uri2: urls2} and not w.deleted
    assert_holds(atdata.load_dataset(uri1, split="train"), v1)
    assert_holds(atdata.load_dataset(uri2, split="train"), v2)
