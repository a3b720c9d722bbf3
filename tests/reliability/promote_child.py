"""A promotion in a child process, for the crash matrix and the concurrency tests.

``python -m tests.reliability.promote_child '<json config>'`` logs in from ``ATDATA_HANDLE`` /
``ATDATA_PASSWORD`` / ``ATDATA_PDS_URL``, writes (or finds) the entry, promotes it and prints
``{"uri": ...}`` as its last line. A failure prints ``{"error": <class>, "message": ...}`` and exits 2.

Where it dies:

* ``ATDATA_LAB_CRASH_AT=<step>``: the library's own crash points (``after_plan``, ``before_intent``,
  ``after_intent``, ``during_copy`` = after the first shard is in place, ``before_apply``,
  ``after_apply``) SIGKILL the process;
* ``RELIABILITY_KILL_MID_SHARD=1``: the progress callback SIGKILLs the process while the bytes of the
  second shard are being copied (the first block written, the rest not), i.e. with a staged,
  uncommitted shard open at the target.

Config keys: ``db``, ``data``, ``name``, ``n``, ``dim``, ``maxcount``, ``target`` (``keep``, ``disk``,
``s3``, ``blobs``), ``target_dir`` (disk), ``s3`` (``bucket``, ``prefix``, ``endpoint``, ``key``,
``secret``), ``s3_part_mb`` (multipart part size, e.g. 5), ``start_at`` (optional: wait until this ``time.time()`` before promoting), ``prepare_only``
(write the entry and stop).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.progress import ProgressEvent
from tests.reliability.support import samples


def _copy_target(cfg: dict[str, Any]) -> Any:
    kind = cfg["target"]
    if kind == "keep":
        return None
    if kind == "disk":
        return atdata.LocalDiskStore(cfg["target_dir"])
    if kind == "blobs":
        return "blobs"
    s3 = cfg["s3"]
    return atdata.S3DataStore(
        s3["bucket"],
        prefix=s3.get("prefix", ""),
        endpoint_url=s3["endpoint"],
        key=s3["key"],
        secret=s3["secret"],
    )


def _killer(shard_sizes: list[int]):
    lo = shard_sizes[0]
    hi = lo + shard_sizes[1]

    def progress(event: ProgressEvent) -> None:
        if event.task == "copy" and event.message and lo < event.done < hi:
            os.kill(os.getpid(), signal.SIGKILL)

    return progress


def main() -> int:
    cfg = json.loads(sys.argv[1])
    if cfg.get("s3_part_mb"):  # S3's minimum part size, so that a ~9 MiB shard is a real multipart upload
        import atdata_lab.stores.s3 as s3_store

        s3_store.PART_SIZE = cfg["s3_part_mb"] << 20
    try:
        client = Atmosphere.from_env()
        index = atdata.Index(path=cfg["db"], atmosphere=client, data_store=atdata.LocalDiskStore(cfg["data"]))
        entry = index.write(
            samples(cfg["n"], cfg["dim"]), name=cfg["name"], maxcount=cfg["maxcount"], progress=False
        )
        if cfg.get("prepare_only"):
            print(json.dumps({"entry": entry.name}))
            return 0
        progress: Any = False
        if os.environ.get("RELIABILITY_KILL_MID_SHARD") == "1":
            sizes = [r["size"] for r in index.get_shards(entry)]
            progress = _killer(sizes)
        if cfg.get("start_at"):
            time.sleep(max(0.0, cfg["start_at"] - time.time()))
        uri = index.promote_entry(cfg["name"], copy_to=_copy_target(cfg), progress=progress)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
        return 2
    print(json.dumps({"uri": uri}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
