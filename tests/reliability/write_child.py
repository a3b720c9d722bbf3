"""``index.write()`` in a child process, for the index-fault, shard-kill and concurrency suites.

``python -m tests.reliability.write_child '<json config>'`` opens an index (``sqlite`` path,
``redis`` URL or ``postgres`` DSN) over a data store (``disk`` folder or ``s3`` bucket) and writes ``count`` entries
named ``{prefix}{i:03d}`` (``samples`` samples of ``dim`` floats each, deterministic by name, so a
retry writes identical content). Each committed entry prints ``COMMITTED <name> <cid>``; the last
line is a JSON summary (``errors`` by class, ``locked``: messages mentioning "database is locked",
``retries``).

``retry_unavailable``: retry a write that failed because the index server was unreachable (the
Redis-restart test). ``kill_at_sample``: SIGKILL this process once the first write has encoded that
many samples (progress events every 512 samples). ``kill_before_entry``: SIGKILL right before the
index entry is committed (shards complete). ``start_at``: wait until this ``time.time()`` first. ``s3_part_mb``: the S3
multipart part size (the library's default is larger than these test shards).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import zlib
from typing import Any

import atdata_lab as atdata
from atdata_lab.errors import AtdataLabError
from atdata_lab.progress import ProgressEvent
from tests.reliability.support import samples


def _index(cfg: dict[str, Any]) -> atdata.Index:
    if cfg.get("s3"):
        s3 = cfg["s3"]
        store: Any = atdata.S3DataStore(
            s3["bucket"], endpoint_url=s3["endpoint"], key=s3["key"], secret=s3["secret"]
        )
    else:
        store = atdata.LocalDiskStore(cfg["data"])
    if cfg.get("redis"):
        return atdata.Index(url=cfg["redis"], data_store=store, key_prefix=cfg.get("key_prefix", "atdata:"))
    if cfg.get("postgres"):
        return atdata.Index(dsn=cfg["postgres"], data_store=store)
    return atdata.Index(path=cfg["db"], data_store=store)


def main() -> int:
    cfg = json.loads(sys.argv[1])
    if cfg.get("s3_part_mb"):  # S3's minimum part size, so that shards of a few MiB are multipart uploads
        import atdata_lab.stores.s3 as s3_store

        s3_store.PART_SIZE = cfg["s3_part_mb"] << 20
    index = _index(cfg)
    if cfg.get("kill_before_entry"):
        put_entry = index.provider.put_entry

        def dying_put_entry(*args: Any, **kwargs: Any) -> Any:
            os.kill(os.getpid(), signal.SIGKILL)
            return put_entry(*args, **kwargs)

        index.provider.put_entry = dying_put_entry  # type: ignore[method-assign]
    progress: Any = False
    if cfg.get("kill_at_sample"):

        def progress(ev: ProgressEvent) -> None:
            if ev.task == "write" and ev.done >= cfg["kill_at_sample"]:
                os.kill(os.getpid(), signal.SIGKILL)

    if cfg.get("start_at"):
        time.sleep(max(0.0, cfg["start_at"] - time.time()))
    errors: dict[str, int] = {}
    locked = retries = 0
    for i in range(cfg["count"]):
        name = f"{cfg.get('prefix', 'e')}{i:03d}"
        seed = zlib.crc32(name.encode())
        for _attempt in range(200):
            try:
                entry = index.write(
                    samples(cfg["samples"], cfg.get("dim", 64), seed=seed),
                    name=name,
                    maxcount=cfg.get("maxcount"),
                    progress=progress,
                )
                print(f"COMMITTED {name} {entry.cid}", flush=True)
                break
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                locked += "database is locked" in str(e).lower()
                if (
                    cfg.get("retry_unavailable")
                    and isinstance(e, AtdataLabError)
                    and isinstance(e, ConnectionError)
                ):
                    retries += 1
                    time.sleep(0.05)
                    continue
                print(f"FAILED {name} {type(e).__name__}: {e}", flush=True)
                break
    print(json.dumps({"errors": errors, "locked": locked, "retries": retries}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
