"""docs/scale.md's index figures for one big entry: 100,000 shards x 100 samples (10M samples) in a
SQLite index. Writes the entry's rows straight into the provider (no shard files: the URLs are on
S3, nothing is read), then times ``get_entry_by_name``, ``index.dataset(entry)`` with its resident
memory, locating random samples (each loads its shard's offsets), and one rank's shuffled plan.

Run: ``python benchmarks/index_scale.py [shards] [samples_per_shard]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atdata_lab as atdata  # noqa: E402
from atdata_lab.providers.base import ENTRY_KEYS  # noqa: E402
from atdata_lab.shards import ShardInfo  # noqa: E402


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(shards: int = 100_000, per: int = 100) -> None:
    with tempfile.TemporaryDirectory() as d:
        index = atdata.Index(path=Path(d) / "index.db")
        urls = [f"s3://bucket/big/big-{i:06d}.tar" for i in range(shards)]
        t = time.perf_counter()
        rows = []
        for i, url in enumerate(urls):
            offsets = np.stack([np.arange(per) * 4096 + 1024, np.full(per, 3000)], axis=1).astype("<i8")
            keys = [f"{i:06d}-{j:04d}" for j in range(per)]
            info = ShardInfo(url, f"{i:064x}", per * 4096, per, offsets, keys)
            rows.append(
                {"url": url, "entry": "big", "checksum": info.checksum, "size": info.size}
                | {"num_samples": per, "offsets": info.index_blob()}
            )
        entry = {k: None for k in ENTRY_KEYS} | {
            "name": "big",
            "cid": "bafybig",
            "schema_ref": "atdata://local/schema/DictSample@1.0.0",
            "data_urls": urls,
            "num_samples": shards * per,
            "num_shards": shards,
            "size_bytes": shards * per * 4096,
            "shard_checksums": [r["checksum"] for r in rows],
            "metadata": {},
            "description": "",
            "tags": [],
            "created_at": "2026-01-01T00:00:00",
        }
        index.provider.put_entry(entry, rows)
        del rows
        db = (Path(d) / "index.db").stat().st_size
        print(f"write {shards:,} shard rows: {time.perf_counter() - t:.1f} s, index {db / 1e6:.0f} MB")

        t = time.perf_counter()
        e = index.get_entry_by_name("big")
        print(f"get_entry_by_name: {(time.perf_counter() - t) * 1000:.0f} ms")

        before = rss_mb()
        t = time.perf_counter()
        ds = index.dataset(e)
        n = len(ds)
        took = time.perf_counter() - t
        print(f"index.dataset + len ({n:,}): {took:.2f} s, +{rss_mb() - before:.0f} MB resident")

        rng = np.random.default_rng(0)
        t = time.perf_counter()
        for k in rng.integers(0, n, 100):
            ds.locate(int(k))
        print(
            f"locate 100 random samples (each loads its shard's offsets): "
            f"{(time.perf_counter() - t) * 1000:.0f} ms, now +{rss_mb() - before:.0f} MB"
        )

        t = time.perf_counter()
        plan = ds.split_by_node(123, 1000).shuffled(seed=0, epoch=0).partition()
        print(
            f"rank 123 of 1,000 plans its shuffled share ({plan.sizes[123]:,} samples): "
            f"{time.perf_counter() - t:.2f} s, now +{rss_mb() - before:.0f} MB"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
