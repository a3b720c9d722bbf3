"""Index-server and shard-write faults, on real servers and real processes.

* Redis (``appendonly yes``, ``appendfsync always``) restarted, gently and by SIGKILL, while another
  process writes entries: every entry whose ``write()`` returned is there afterwards, with shards that
  match their checksums, and nothing is left over.
* A process writing a dataset is killed with SIGKILL: while encoding (first shard open; several shards
  staged) it leaves no shard under a final name and no index entry; the staging files it leaves are
  invisible to readers and removed by the next write. Killed in the moment between its shards being
  published and its entry being committed, it leaves complete shards that no entry references; the
  next write on the machine removes them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import atdata_lab as atdata
from tests.reliability.support import PYTHON, REPO_ROOT, child_env, sha256_file, temp_files


def _start_writer(cfg: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "tests.reliability.write_child", json.dumps(cfg)],
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _disk_orphans(index: atdata.Index, data: Path) -> tuple[list[str], list[str]]:
    """(shard files no entry references, staging files) under ``data``."""
    used = {u for e in index.list_entries() for u in e.data_urls}
    files = {str(p) for p in data.rglob("*.tar")}
    return sorted(files - used), temp_files(data)


def _verify_entries(index: atdata.Index, committed: dict[str, str]) -> list[str]:
    problems = []
    for name, cid in committed.items():
        try:
            e = index.get_entry_by_name(name)
        except KeyError:
            problems.append(f"{name}: lost")
            continue
        if e.cid != cid:
            problems.append(f"{name}: cid {e.cid} != {cid}")
        for url, digest in zip(e.data_urls, e.shard_checksums):
            if not Path(url).exists() or sha256_file(url) != digest:
                problems.append(f"{name}: shard {url} missing or changed")
    return problems


# ------------------------------------------------------------------------------------------------
# Redis restarted mid-write
# ------------------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_restarted_mid_write_loses_no_committed_entry(start_redis, tmp_path, report_table):
    rows = []
    for how in ("SIGTERM (restart)", "SIGKILL (crash)"):
        server = start_redis(aof=True)
        data = tmp_path / how.split()[0] / "data"
        cfg = {
            "redis": server.url,
            "data": str(data),
            "count": 60,
            "samples": 40,
            "maxcount": 20,
            "retry_unavailable": True,
        }
        proc = _start_writer(cfg)
        committed: dict[str, str] = {}
        lines: list[str] = []

        def read(
            proc: subprocess.Popen[str] = proc,
            committed: dict[str, str] = committed,
            lines: list[str] = lines,
        ) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("COMMITTED "):
                    _, name, cid = line.split()
                    committed[name] = cid

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        restarts = 0
        for at in (12, 35):  # restart twice, while entries are being written
            deadline = time.monotonic() + 120
            while len(committed) < at and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            server.restart(crash=how.startswith("SIGKILL"))
            restarts += 1
        proc.wait(timeout=300)
        reader.join(timeout=10)
        summary = json.loads(lines[-1])
        assert proc.returncode == 0 and "FAILED" not in "".join(lines), (
            "".join(lines[-20:]) + proc.stderr.read()
        )
        index = atdata.Index(url=server.url, data_store=atdata.LocalDiskStore(data))
        problems = _verify_entries(index, committed)
        orphans, staging = _disk_orphans(index, data)
        rows.append(
            (
                how,
                restarts,
                len(committed),
                len(index),
                summary["retries"],
                len(problems),
                len(orphans),
                len(staging),
            )
        )
        assert len(committed) == 60 and not problems, problems
        assert not orphans and not staging, (orphans, staging)
    report_table(
        "Redis (AOF, appendfsync always) restarted twice while a process writes 60 entries",
        (
            "restart",
            "restarts",
            "writes returned",
            "entries after",
            "writes retried",
            "lost/damaged",
            "orphan shards",
            "staging files",
        ),
        rows,
        note="A write that fails with IndexUnavailableError (the server was down) is retried by the "
        "writer; the same content gives the same entry, never a second one.",
    )


# ------------------------------------------------------------------------------------------------
# a writer killed mid-write
# ------------------------------------------------------------------------------------------------

KILLS = [
    ("encoding the first shard", {"kill_at_sample": 512}),
    ("4 shards staged, 5th open", {"kill_at_sample": 2048}),
    ("shards published, entry not yet committed", {"kill_before_entry": True}),
]


def _s3_state(s3_server: Any, bucket: str) -> tuple[list[str], int]:
    fs = s3_server.fs()
    return sorted(fs.find(bucket)), len(fs.list_multipart_uploads(bucket))


@pytest.mark.s3
@pytest.mark.parametrize("store", ["disk", "s3"])
def test_writer_killed_mid_write_leaves_no_shard_and_no_entry(
    store, tmp_path, s3_server, report_table, request
):
    rows = []
    for what, kill in KILLS:
        work = tmp_path / what.split()[0]
        cfg: dict[str, Any] = {
            "db": str(work / "i.db"),
            "data": str(work / "data"),
            "count": 1,
            "prefix": "big",
            "samples": 3000,
            "maxcount": 500,
            "dim": 4096 if store == "s3" else 256,
        }
        if store == "s3":
            cfg["s3"] = {
                "bucket": s3_server.make_bucket(),
                "endpoint": s3_server.endpoint_url,
                "key": s3_server.key,
                "secret": s3_server.secret,
            }
            cfg["s3_part_mb"] = 5  # S3's minimum part size: the 8 MiB shards are multipart uploads
        proc = _start_writer({**cfg, **kill})
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == -9, out + err
        index = atdata.Index(path=work / "i.db", data_store=atdata.LocalDiskStore(work / "data"))
        entries_after_kill = len(index)
        if store == "disk":
            final_after_kill = sorted(str(p) for p in (work / "data").rglob("*.tar"))
            leftovers = len(temp_files(work / "data"))
            readable = (
                atdata.load_dataset(str(work / "data" / "big000" / "*.tar")) if final_after_kill else None
            )
        else:
            final_after_kill, leftovers = _s3_state(s3_server, cfg["s3"]["bucket"])
            readable = None
        # the next write (here: the same one, run again) cleans up and completes
        proc = _start_writer(cfg)
        out2, err2 = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "COMMITTED big000" in out2, out2 + err2
        index = atdata.Index(path=work / "i.db", data_store=atdata.LocalDiskStore(work / "data"))
        entry = index.get_entry_by_name("big000")
        if store == "disk":
            orphans, staging = _disk_orphans(index, work / "data")
            verified = sum(sha256_file(u) == d for u, d in zip(entry.data_urls, entry.shard_checksums))
            cleaned = not orphans and not staging
        else:
            objects, uploads = _s3_state(s3_server, cfg["s3"]["bucket"])
            fs = s3_server.fs()
            verified = sum(
                hashlib.sha256(fs.cat_file(u[5:])).hexdigest() == d
                for u, d in zip(entry.data_urls, entry.shard_checksums)
            )
            cleaned = sorted(f"s3://{o}" for o in objects) == sorted(entry.data_urls) and uploads == 0
        rows.append(
            (
                what,
                entries_after_kill,
                len(final_after_kill),
                leftovers,
                "yes" if cleaned else "NO",
                f"{verified}/{entry.num_shards}",
            )
        )
        assert entries_after_kill == 0, what
        if store == "s3" and "entry not yet committed" not in what:
            assert leftovers >= 1, f"{what}: expected the killed writer's open multipart uploads"
        if "entry not yet committed" in what:
            assert final_after_kill, "expected the published shards of the killed writer"
        else:
            assert final_after_kill == [], f"{what}: shards under final names: {final_after_kill}"
            assert readable is None
        assert cleaned and verified == entry.num_shards, what
    report_table(
        f"Writer killed mid-write (SIGKILL), {store} store: 3000 samples in 6 shards",
        (
            "killed while",
            "entries after kill",
            "final-named shards after kill",
            "staging files" if store == "disk" else "open multipart uploads",
            "next write cleaned up",
            "shards verified",
        ),
        rows,
    )
