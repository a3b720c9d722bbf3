"""Manifests published with the dataset (issue 16), against the real sandbox PDS and a real HTTP
server on 127.0.0.1 holding the shards.

A promotion uploads each shard's manifest (header and Parquet rows) as PDS blobs and lists them in
the entry record's ``manifests`` (atdata's ``shardManifestRef`` shape); the plan lists those blobs
and their bytes. ``load_dataset("at://...").query(where=...)`` then answers from the PDS blobs
alone (the shards' server is stopped), and once the server is back the k hits are fetched with k
range requests, each checked against the sha256 its published manifest records (the shard is never
downloaded whole). Republishing an unchanged entry uploads and writes nothing; ``verify`` checks the
manifests against the shards.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.errors import PromotionDowngradeError, ShardError
from atdata_lab.manifest import F
from atdata_lab.urls import TrustPolicy
from atdata_lab.views import promotion as plan_view
from tests.reliability.support import list_blob_cids

pytestmark = pytest.mark.sandbox
pytest.importorskip("pyarrow")

LABELS = ["cat", "dog", "bird", "fish"]


@atdata.packable
class Shot:
    image: NDArray
    label: str
    score: float


def shots(n: int = 90, seed: int = 0) -> list[Shot]:
    rng = np.random.default_rng(seed)
    return [
        Shot(image=rng.integers(0, 255, (8, 8), dtype=np.uint8), label=LABELS[i % 4], score=float(i) / n)
        for i in range(n)
    ]


class ShardHost:
    """A real HTTP server on 127.0.0.1 serving the files of ``root`` (with ``Range`` requests, as a
    static file host does); ``stop()`` then ``start()`` keep its port. Every request is logged."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._srv: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ShardHost:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                rng = self.headers.get("Range")
                host.requests.append((self.command, path, rng))
                name = path.lstrip("/")
                file = host.root / name
                if "/" in name or not file.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = file.read_bytes()
                status, body = 200, data
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[6:].partition("-")
                    start, end = int(a), min(int(b) + 1, len(data)) if b else len(data)
                    status, body = 206, data[start:end]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            do_GET = do_HEAD = _serve

        self._srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._srv.daemon_threads = True
        self.port = self._srv.server_address[1]
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None

    def shard_gets(self) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if r[1].endswith(".tar")]


@pytest.fixture
def client(pds_account):
    c = Atmosphere.login(pds_account.handle, pds_account.password)
    yield c
    c.close()


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    h = ShardHost(root).start()
    yield h
    h.stop()


def cache_files(kind: str) -> list[str]:
    folder = Path(os.environ["ATDATA_HOME"]) / "cache" / kind
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def expected(samples: list[Shot], pred) -> list[tuple[str, str]]:
    return [(f"{i:06d}", s.label) for i, s in enumerate(samples) if pred(s)]


def record(client, uri):
    u = rec.AtUri.parse(uri)
    return client.get_record(u.collection, u.rkey)


def test_a_published_dataset_answers_queries_from_its_pds_blobs_and_fetches_only_the_hits(client, host):
    data = shots(90)
    written = atdata.write_samples(data, host.root / "shots", maxcount=30, manifest=True)
    urls = [f"{host.url}/{Path(u).name}" for u in written.urls]
    index = atdata.Index(atmosphere=client)
    index.insert_dataset(atdata.Dataset[Shot](urls), name="shots", progress=False)

    # the plan lists every manifest blob and its bytes, and its record lists them
    plan = index.plan_promotion("shots", copy_to="keep")
    m = plan.manifests
    assert m is not None and m.shards == 3 and len(m.blobs) == 6 and len(m.uploads) == 6
    for b in m.blobs:
        local = host.root / Path(b.source).name
        assert b.bytes == local.stat().st_size and b.kind in ("header", "samples")
        assert b.cid == str(atdata_cid(local.read_bytes()))
        assert f"{b.bytes:,} bytes ({b.cid}" in plan.summary()
    assert plan.pds_calls == 1 + 6
    assert plan.to_dict()["manifests"]["bytes"] == m.bytes
    lines = plan_view.plan_data_lines(plan)
    assert lines[1] == m.describe() and lines[2].startswith("shots-000000.tar: header ")
    entry_write = next(w for w in plan.writes if w.collection == rec.ENTRY_NSID)
    refs = entry_write.value["manifests"]
    assert [rec.blob_cid(r["header"]) for r in refs] == [b.cid for b in m.blobs if b.kind == "header"]
    assert [rec.blob_cid(r["samples"]) for r in refs] == [b.cid for b in m.blobs if b.kind == "samples"]
    uri = plan.execute(progress=False).at_uri
    published = record(client, uri)["value"]
    assert published["manifests"] == refs  # the record holds exactly the planned references
    assert {b.cid for b in m.blobs} <= list_blob_cids(client)

    # the shards' server is stopped: the query is answered from the PDS blobs alone
    host.stop()
    host.requests.clear()
    ds = atdata.load_dataset(uri, Shot, split="train", trust=TrustPolicy(trusted_hosts={host.host}))
    hits = ds.query(where=(F.label == "dog") & (F.score > 0.5))
    want = expected(data, lambda s: s.label == "dog" and s.score > 0.5)
    assert [(h.key, "dog") for h in hits] == want and len(want) == 11
    lam = ds.query(where=lambda df: df["label"].isin(["cat", "fish"]) & (df["score"] < 0.2))
    assert [h.key for h in lam] == [
        k for k, _ in expected(data, lambda s: s.label in ("cat", "fish") and s.score < 0.2)
    ]
    assert host.requests == []  # (it was stopped: a request would have failed)
    assert cache_files("shards") == [] and len(cache_files("blobs")) == 6  # the manifest blobs only

    # the server is back: the k hits are k range requests, each sample checked against its hash
    host.start()
    got = ds.select(hits)
    assert [g.label for g in got] == ["dog"] * len(hits)
    for h, g in zip(hits, got):
        np.testing.assert_array_equal(g.image, data[int(h.key)].image)
    gets = host.shard_gets()
    assert len(gets) == len(hits) and all(method == "GET" and r is not None for method, _, r in gets)
    assert len(host.requests) == len(hits)  # nothing else: no HEAD, no manifest beside the shards
    assert cache_files("shards") == []  # no shard was downloaded whole
    host.requests.clear()
    assert ds.get("000042").score == data[42].score and len(host.requests) == 1
    # a copy sent to a worker process (pickled) reads the manifests again, and the hits alike
    clone = pickle.loads(pickle.dumps(ds))
    host.requests.clear()
    again = clone.query(where=(F.label == "dog") & (F.score > 0.5))
    assert again == hits and [g.label for g in clone.select(again[:2])] == ["dog", "dog"]
    assert len(host.requests) == 2

    # a shard changed on the host after publication: its hits are refused, nothing wrong is returned
    shard = host.root / "shots-000001.tar"
    original = shard.read_bytes()
    raw = bytearray(original)
    loc = next(h for h in hits if h.url == urls[1])
    start = loc.data_offset + loc.size - 4
    raw[start : start + 4] = bytes(4)  # same size, other bytes
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=r"does not match the sha256 its published manifest records"):
        ds.select([loc])
    assert [g.label for g in ds.select([h for h in hits if h.url == urls[2]])] == ["dog"] * 8

    # verify reports the published manifests against the shards
    report = index.verify(uri)
    row = next(c for c in report.checks if c[0] == "manifests match the shards")
    assert not row[1] and "shots-000001" in row[2]  # the changed shard
    shard.write_bytes(original)
    report = index.verify(uri)
    assert (
        "manifests match the shards",
        True,
        "3 shard(s): sample counts and keys match, and every sample's sha256",
    ) in report.checks


def atdata_cid(data: bytes):
    from atdata_lab.cid import BlobCID

    return BlobCID(hashlib.sha256(data).digest())


def test_blobs_storage_publishes_manifests_and_republishing_unchanged_uploads_and_writes_nothing(client):
    data = shots(60, seed=3)
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
    entry = index.write(data, name="b", maxcount=20, manifest=True, progress=False)
    plan = index.plan_promotion("b", copy_to="blobs")
    assert plan.manifests is not None and len(plan.manifests.uploads) == 6
    assert plan.pds_calls == 1 + 3 + 6  # the records, the shards, the manifest files
    uri = plan.execute(progress=False).at_uri
    before_cid, before_blobs = record(client, uri)["cid"], list_blob_cids(client)
    assert len(record(client, uri)["value"]["manifests"]) == 3

    ds = atdata.load_dataset(uri, split="train")
    hits = ds.query(where=F.label.isin(["bird"]) & (F.score < 0.5))
    want = expected(data, lambda s: s.label == "bird" and s.score < 0.5)
    assert [(h.key, "bird") for h in hits] == want and want
    # 3 headers and the rows of the 2 shards the statistics did not rule out: no shard was read
    assert len(cache_files("blobs")) == 3 + 2
    assert [s.score for s in ds.select(hits)] == [data[int(k)].score for k, _ in want]
    assert len(cache_files("blobs")) == 5 + 2  # the two shards that hold hits (checked against their CIDs)
    assert ds.describe()["manifest"]["label"]["value_counts"] == {lab: 15 for lab in LABELS}

    # unchanged: the plan uploads nothing and writes nothing, and the repository stays the same
    for copy_to in (None, "blobs"):
        again = index.plan_promotion("b", copy_to=copy_to)
        assert again.writes == [] and again.already_published == uri and again.pds_calls == 0
        assert again.manifests is not None and again.manifests.uploads == []
        assert "already published (nothing is uploaded)" in again.summary()
        assert index.promote_entry("b", copy_to=copy_to, progress=False) == uri
    assert record(client, uri)["cid"] == before_cid and list_blob_cids(client) == before_blobs

    # a new description changes the record, not the manifests: nothing is uploaded
    plan = index.plan_promotion("b", description="now described")
    assert [w.action for w in plan.writes] == ["update"] and plan.manifests.uploads == []
    assert plan.pds_calls == 1
    plan.execute(progress=False)
    assert list_blob_cids(client) == before_blobs
    assert index.verify(uri).ok
    assert entry.num_shards == 3


def test_entries_without_manifests_publish_as_before_and_partial_ones_say_why(client):
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
    entry = index.write(shots(40), name="plain", maxcount=20, progress=False)
    plan = index.plan_promotion("plain")
    assert plan.manifests is None and plan.to_dict()["manifests"] is None
    uri = plan.execute(progress=False).at_uri
    assert "manifests" not in record(client, uri)["value"]
    # one shard gets a manifest: none is published, and the plan says how to make the others
    from atdata_lab.manifest.build import manifest_of_shard
    from atdata_lab.manifest.writer import ManifestWriter

    first = entry.data_urls[0]
    ManifestWriter(first).write(manifest_of_shard(first, Shot))
    plan = index.plan_promotion("plain")
    assert plan.manifests is None and plan.writes == []
    assert any(
        "1 of 2 shards have no manifest" in w and "build_manifests('plain')" in w for w in plan.warnings
    )
    # built for all: the next promotion adds them to the record (a field-level change)
    index.build_manifests("plain", progress=False)
    plan = index.plan_promotion("plain")
    assert plan.manifests is not None and len(plan.manifests.uploads) == 4
    (change,) = plan.changes
    assert [(f.field, f.old, f.new) for f in change.fields] == [("manifests", None, "2 shard manifest(s)")]
    plan.execute(progress=False)
    ds = atdata.load_dataset(uri, split="train")
    assert [h.key for h in ds.query(where=F.label == "fish")] == [f"{i:06d}" for i in range(3, 40, 4)]

    # the manifests' files go away locally: republishing would drop published manifests, which
    # needs the user's say-so (nothing is written without it)
    from atdata_lab.manifest.shard_manifest import manifest_urls

    for url in entry.data_urls:
        for side in manifest_urls(url):
            Path(side).unlink()
    with pytest.raises(PromotionDowngradeError, match=r"manifests.*downgrade=True") as e:
        index.plan_promotion("plain", description="changed")
    assert [d.field for d in e.value.downgrades] == ["manifests"]
    assert len(record(client, uri)["value"]["manifests"]) == 2
    plan = index.plan_promotion("plain", description="changed", downgrade=True)
    assert any(i.startswith("downgrade manifests: 2 shard manifest(s) -> (none)") for i in plan.intents)
