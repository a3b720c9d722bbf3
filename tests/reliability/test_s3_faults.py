"""S3 (real SeaweedFS) faults: a writer killed mid-shard, and the server going away mid-copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap

import pytest

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
    return S3DataStore(bucket, endpoint_url=s3_server.endpoint_url, key=s3_server.key, secret=s3_server.secret)


def test_writer_killed_mid_shard_leaves_no_object_and_the_next_writer_aborts_its_upload(s3_server, s3_bucket,
                                                                                         atdata_home):
    url = f"s3://{s3_bucket}/ds/ds-000000.tar"
    cfg = {"bucket": s3_bucket, "endpoint": s3_server.endpoint_url, "key": s3_server.key,
           "secret": s3_server.secret, "url": url, "bytes": PART_SIZE + (1 << 20)}
    proc = subprocess.run([PYTHON, "-c", KILLED_WRITER, json.dumps(cfg)], cwd=REPO_ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    fs = s3_server.fs()
    assert fs.find(s3_bucket) == []  # nothing under the final key
    assert [u["Key"] for u in fs.list_multipart_uploads(s3_bucket)] == ["ds/ds-000000.tar"]  # the leftover
    noted = list((atdata_home / "pending-s3-uploads").glob("*.json"))
    assert len(noted) == 1 and json.loads(noted[0].read_text())["pid"] != os.getpid()

    store = _store(s3_server, s3_bucket)
    live = store.open_sink(f"s3://{s3_bucket}/other/other-000000.tar")  # a live writer of ours...
    live.write(os.urandom(PART_SIZE + 1))
    assert [u["Key"] for u in fs.list_multipart_uploads(s3_bucket)] == ["other/other-000000.tar"]  # dead one aborted
    second = store.open_sink(url)  # ...is never aborted by another open_sink
    assert [u["Key"] for u in fs.list_multipart_uploads(s3_bucket)] == ["other/other-000000.tar"]
    second.write(b"x" * 10)
    second.commit()
    live.commit()
    assert fs.list_multipart_uploads(s3_bucket) == []
    assert list((atdata_home / "pending-s3-uploads").glob("*.json")) == []
    assert fs.cat_file(url[len("s3://"):]) == b"x" * 10
