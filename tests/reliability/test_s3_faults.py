"""S3 (real SeaweedFS) faults: a writer killed mid-shard, and the server going away mid-copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time

import pytest

import atdata_lab as atdata
from atdata_lab.stores.s3 import PART_SIZE, S3DataStore
from tests.reliability.support import PYTHON, REPO_ROOT, child_env

pytestmark = pytest.mark.s3

KILLED_WRITER = textwrap.dedent("""
    import json, os, signal, sys
    from atdata_lab.stores.s3 import S3DataStore
    cfg = json.loads(sys.argv[1])
    store = S3DataStore(cfg["bucket"], endpoint_url=cfg["endpoint"], key=cfg["key"], secret=cfg["secret"])
    sink = store.open_sink(cfg["url"])
    sink.write(os.urandom(cfg["bytes"]))  # more than one part: the multipart upload is open
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _store(s3_server, bucket: str) -> S3DataStore:
    return S3DataStore(
        bucket, endpoint_url=s3_server.endpoint_url, key=s3_server.key, secret=s3_server.secret
    )


def test_writer_killed_mid_shard_leaves_no_object_and_the_next_writer_aborts_its_upload(
    s3_server, s3_bucket, atdata_home
):
    url = f"s3://{s3_bucket}/ds/ds-000000.tar"
    cfg = {
        "bucket": s3_bucket,
        "endpoint": s3_server.endpoint_url,
        "key": s3_server.key,
        "secret": s3_server.secret,
        "url": url,
        "bytes": PART_SIZE + (1 << 20),
    }
    proc = subprocess.run(
        [PYTHON, "-c", KILLED_WRITER, json.dumps(cfg)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    fs = s3_server.fs()
    assert fs.find(s3_bucket) == []  # nothing under the final key
    assert [u["Key"] for u in fs.list_multipart_uploads(s3_bucket)] == ["ds/ds-000000.tar"]  # the leftover
    noted = list((atdata_home / "pending-s3-uploads").glob("*.json"))
    assert len(noted) == 1 and json.loads(noted[0].read_text())["pid"] != os.getpid()

    store = _store(s3_server, s3_bucket)
    live = store.open_sink(f"s3://{s3_bucket}/other/other-000000.tar")  # a live writer of ours...
    live.write(os.urandom(PART_SIZE + 1))
    assert [u["Key"] for u in fs.list_multipart_uploads(s3_bucket)] == [
        "other/other-000000.tar"
    ]  # dead one aborted
    second = store.open_sink(url)  # ...is never aborted by another open_sink
    assert [u["Key"] for u in fs.list_multipart_uploads(s3_bucket)] == ["other/other-000000.tar"]
    second.write(b"x" * 10)
    second.commit()
    live.commit()
    assert fs.list_multipart_uploads(s3_bucket) == []
    assert list((atdata_home / "pending-s3-uploads").glob("*.json")) == []
    assert fs.cat_file(url[len("s3://") :]) == b"x" * 10


@pytest.fixture
def own_s3_server(tmp_path):
    """A SeaweedFS server of this test's own, to stop and restart mid-copy."""
    from tests.plugins.services import start_s3_server

    server = start_s3_server(tmp_path / "weed")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("when", ["after shard 1 of 3", "inside shard 2 of 3"])
def test_s3_server_stopped_mid_copy_gives_store_error_and_the_copy_resumes(
    own_s3_server, tmp_path, when, report_table, monkeypatch
):
    """The S3 server process is stopped during a copy (a real outage: the server cannot be told to fail
    one request on demand): after the first shard is in place, or inside the second shard's multipart
    upload. The copy fails with StoreError; after a restart the same copy resumes, skipping the shards
    already there, and no unfinished multipart upload is left."""
    import hashlib

    import atdata_lab.stores.s3 as s3_store
    from atdata_lab.errors import StoreError
    from atdata_lab.progress import ProgressEvent
    from atdata_lab.transfer import copy_shards
    from tests.reliability.support import samples

    monkeypatch.setattr(
        s3_store, "PART_SIZE", 5 << 20
    )  # S3's minimum: the 9.4 MiB shards are multipart uploads
    server = own_s3_server
    bucket = server.make_bucket()
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    entry = index.write(samples(108, dim=2**16), name="big", maxcount=36, progress=False)  # 3 x 9.4 MiB
    infos = [index.dataset(entry).shard_info(u) for u in entry.data_urls]
    stopping: list[float] = []

    def stop_server() -> None:
        if not stopping:
            t = time.monotonic()
            server.stop()
            stopping.append(time.monotonic() - t)

    def on_shard(i: int, info, copied: bool) -> None:
        if when.startswith("after") and i == 0:
            stop_server()

    def progress(ev: ProgressEvent) -> None:  # the first 8 MiB block of shard 2 is in its multipart upload
        if (
            when.startswith("inside")
            and ev.task == "copy"
            and infos[0].size < ev.done < infos[0].size + infos[1].size
        ):
            stop_server()

    t0 = time.monotonic()
    with pytest.raises(StoreError) as ei:
        copy_shards(infos, _store(server, bucket), "big", progress=progress, on_shard=on_shard)
    failed_after = time.monotonic() - t0 - stopping[0]
    assert "cannot connect" in str(ei.value) and server.endpoint_url in str(ei.value), str(ei.value)
    assert isinstance(ei.value, OSError)
    server.start()
    left_open = len(server.fs().list_multipart_uploads(bucket))  # an abort that could not reach the server
    if when.startswith("inside"):
        assert left_open == 1
    flags: list[bool] = []
    copied = copy_shards(
        infos,
        _store(server, bucket),
        "big",
        progress=False,
        on_shard=lambda i, info, was_copied: flags.append(was_copied),
    )
    fs = server.fs()
    verified = sum(hashlib.sha256(fs.cat_file(c.url[5:])).hexdigest() == c.checksum for c in copied)
    objects = sorted(f"s3://{k}" for k in fs.find(bucket))
    uploads = fs.list_multipart_uploads(bucket)
    report_table(
        f"S3 server stopped mid-copy ({when}), restarted, copy run again",
        ("what", "result"),
        [
            ("error", f"{type(ei.value).__name__}, {failed_after:.1f} s after the server stopped"),
            ("multipart uploads left open by the failure", left_open),
            ("re-run: shards skipped / copied", f"{flags.count(False)} / {flags.count(True)}"),
            ("objects == the 3 shards", objects == sorted(c.url for c in copied)),
            ("unfinished multipart uploads", len(uploads)),
            ("sha256 verified", f"{verified}/3"),
        ],
    )
    assert flags == [False, True, True]
    assert objects == sorted(c.url for c in copied) and verified == 3
    assert uploads == [], uploads


@pytest.mark.sandbox
def test_promotion_with_s3_down_mid_copy_publishes_nothing_and_a_rerun_completes(
    own_s3_server, sandbox, tmp_path, report_table, monkeypatch
):
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.errors import StoreError
    from atdata_lab.progress import ProgressEvent
    from tests.reliability.support import counts, samples
    from tests.reliability.test_promotion_crashes import check_published

    server = own_s3_server
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret)
    bucket = server.make_bucket()
    acct = sandbox.create_account()
    client = Atmosphere.login(acct.handle, acct.password, pds_url=sandbox.pds_url)
    index = atdata.Index(
        path=tmp_path / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    entry = index.write(samples(90), name="s3pub", maxcount=30, progress=False)
    first = index.get_shards(entry)[0]["size"]

    def progress(ev: ProgressEvent) -> None:  # after the first shard is in place at the target
        if ev.task == "copy" and not ev.message and not ev.finished and ev.done >= first and server.pid:
            server.stop()

    with pytest.raises(StoreError):
        index.promote_entry("s3pub", copy_to=_store(server, bucket), progress=progress)
    after_fault = counts(client)
    assert after_fault == (0, 0, 0) and index.get_entry_by_name("s3pub").published_uri is None
    server.start()
    uri = index.promote_entry("s3pub", copy_to=_store(server, bucket), progress=False)
    cfg = {
        "db": str(tmp_path / "i.db"),
        "data": str(tmp_path / "d"),
        "name": "s3pub",
        "target": "s3",
        "s3": {"bucket": bucket},
    }
    orphans, verified = check_published(client, cfg, uri, server)
    report_table(
        "Promotion to S3 with the S3 server stopped after the first shard, restarted, re-run",
        ("what", "result"),
        [
            ("records after the fault", "/".join(map(str, after_fault))),
            ("records after the re-run", "/".join(map(str, counts(client)))),
            ("orphans", len(orphans)),
            ("shards sha256-verified", verified),
        ],
    )
    assert counts(client) == (1, 1, 1) and not orphans, orphans
