"""atdata-lab benchmarks: one run, one table, ratios against atdata 0.7 and the raw file read.

Run with ``make bench`` (or ``python benchmarks/run.py [--quick]``). Figures are medians of
several runs. atdata 0.7 runs in its own cached Python 3.12 venv; where no 3.12 exists its
column says why it is missing.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atdata_lab as atdata  # noqa: E402


@atdata.packable
class ExperimentSample:
    """The tutorial's small sample: 64 float32 + float + str."""

    measurement: NDArray
    timestamp: float
    sensor_id: str


@atdata.packable
class ImageSample:
    """A 3x224x224 uint8 image and a label."""

    image: NDArray
    label: int


def small_samples(n: int) -> list:
    rng = np.random.default_rng(0)
    return [ExperimentSample(measurement=rng.standard_normal(64).astype(np.float32), timestamp=float(i),
                             sensor_id=f"sensor_{i % 4}") for i in range(n)]


def image_samples(n: int) -> list:
    rng = np.random.default_rng(1)
    return [ImageSample(image=rng.integers(0, 255, (3, 224, 224), dtype=np.uint8), label=i % 10) for i in range(n)]


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def raw_read_seconds(urls: list[str], repeat: int) -> float:
    def read():
        for u in urls:
            with open(u, "rb", buffering=0) as f:
                while f.read(8 << 20):
                    pass

    return median_time(read, repeat)


def bench_rw(name: str, samples: list, tmp: Path, repeat: int, maxcount: int) -> dict:
    out: dict = {"name": name, "n": len(samples)}
    counter = iter(range(10**6))

    def write():
        atdata.write_samples(samples, tmp / f"{name}-{next(counter)}" / "d", maxcount=maxcount)

    out["write_s"] = median_time(write, repeat)
    ds = atdata.write_samples(samples, tmp / f"{name}-read" / "d", maxcount=maxcount)
    out["bytes"] = sum(ds.shard_info(u).size for u in ds.urls)
    out["urls"] = ds.urls

    def read():
        for _b in ds.ordered(batch_size=32):
            pass

    def shuffled():
        for _b in ds.shuffled(buffer=1000, seed=0, batch_size=32):
            pass

    out["read_s"] = median_time(read, repeat)
    out["shuffled_s"] = median_time(shuffled, repeat)
    out["raw_s"] = raw_read_seconds(ds.urls, repeat)
    # random access to sample k of a cached shard (offset index): p50 over many k
    rng = np.random.default_rng(0)
    ks = rng.integers(0, len(samples), 500)
    ds[0]
    lat = []
    for k in ks:
        t = time.perf_counter()
        ds[int(k)]
        lat.append(time.perf_counter() - t)
    out["random_p50_ms"] = statistics.median(lat) * 1000
    return out


def bench_lookup(n_entries: int, tmp: Path) -> dict:
    """get_entry_by_name and a 25-row search page with n_entries in a SQLite index."""
    from atdata_lab.providers.sqlite import SQLiteProvider

    prov = SQLiteProvider(tmp / f"lookup-{n_entries}.db")
    rows = []
    for i in range(n_entries):
        rows.append({
            "name": f"dataset-{i:06d}", "cid": f"bafy{i}", "schema_ref": "atdata://local/schema/S@1.0.0",
            "data_urls": [f"/d/{i}.tar"], "num_samples": i, "num_shards": 1, "size_bytes": i * 100,
            "shard_checksums": ["0" * 64], "metadata": {}, "description": f"run {i}", "tags": ["a", f"t{i % 10}"],
            "license": "MIT", "created_at": f"2026-01-01T00:00:{i % 60:02d}", "published_uri": None,
        })
    t = time.perf_counter()
    with prov._write() as c:
        import json

        from atdata_lab.providers.base import ENTRY_KEYS, search_text

        c.executemany(
            f"INSERT INTO entries ({', '.join(ENTRY_KEYS)}, search_text) VALUES ({', '.join('?' * (len(ENTRY_KEYS) + 1))})",
            [tuple(json.dumps(r[k]) if k in ("data_urls", "shard_checksums", "metadata", "tags") else r[k]
                   for k in ENTRY_KEYS) + (search_text(r),) for r in rows],
        )
    fill = time.perf_counter() - t
    index = atdata.Index(prov)
    names = [f"dataset-{i:06d}" for i in np.random.default_rng(0).integers(0, n_entries, 2000)]
    t = time.perf_counter()
    for nm in names:
        index.get_entry_by_name(nm)
    get_us = (time.perf_counter() - t) / len(names) * 1e6
    page_ms = median_time(lambda: index.search(limit=25, offset=n_entries // 2, sort="name"), 7) * 1000
    text_ms = median_time(lambda: index.search("run 12", limit=25), 7) * 1000
    return {"n": n_entries, "get_us": get_us, "page_ms": page_ms, "text_ms": text_ms, "fill_s": fill}


def atdata_figures(small_urls: list[str], n: int) -> dict | str:
    try:
        from tests.support import atdata_reference as ref
    except ImportError as e:
        return f"unavailable: {e}"
    py, why = ref.atdata_venv_status() if hasattr(ref, "atdata_venv_status") else (None, "no helper")
    if py is None:
        try:
            py = ref.ensure_atdata_venv()
        except Exception as e:  # build failure: report, don't crash the table
            return f"unavailable: {e}"
        if py is None:
            return f"unavailable: {why}"
    try:
        return ref.bench_atdata(small_urls, n=n, batch_size=32, repeat=3)
    except Exception as e:
        return f"failed: {e}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = ap.parse_args()
    n_small, n_img, repeat = (20_000, 2_000, 5) if not args.quick else (5_000, 300, 3)
    lookups = (10_000, 100_000) if not args.quick else (10_000,)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("ATDATA_HOME", str(tmp / "home"))
        small = bench_rw("small", small_samples(n_small), tmp, repeat, maxcount=10_000)
        img = bench_rw("image", image_samples(n_img), tmp, repeat, maxcount=500)
        looks = [bench_lookup(n, tmp) for n in lookups]
        ref = atdata_figures(small["urls"], n_small)

    print(f"# atdata-lab benchmarks ({time.strftime('%Y-%m-%d')})")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")
    print()
    print("| figure | atdata-lab | atdata 0.7 | ratio | raw file read |")
    print("|---|---|---|---|---|")

    def row(fig, ours, theirs="—", ratio="—", raw="—"):
        print(f"| {fig} | {ours} | {theirs} | {ratio} | {raw} |")

    ref_w = ref["write"]["samples_per_s"] if isinstance(ref, dict) and "write" in ref else None
    ref_r = ref["read_batched"]["samples_per_s"] if isinstance(ref, dict) and "read_batched" in ref else None
    sw = small["n"] / small["write_s"]
    sr = small["n"] / small["read_s"]
    row("small write, samples/s", f"{sw:,.0f}", f"{ref_w:,.0f}" if ref_w else str(ref)[:60], f"{sw / ref_w:.1f}x" if ref_w else "—")
    row("small batched read (32), samples/s", f"{sr:,.0f}", f"{ref_r:,.0f}" if ref_r else "—", f"{sr / ref_r:.1f}x" if ref_r else "—",
        f"{small['n'] / small['raw_s']:,.0f}")
    row("small shuffled read (32), samples/s", f"{small['n'] / small['shuffled_s']:,.0f}")
    row("bytes per small sample", f"{small['bytes'] / small['n']:,.0f}", "2,050 (measured by issue)", f"{small['bytes'] / small['n'] / 2050:.2f}x")
    mb = img["bytes"] / 1e6
    row("image write, MB/s", f"{mb / img['write_s']:,.0f}")
    row("image batched read (32), MB/s", f"{mb / img['read_s']:,.0f}", raw=f"{mb / img['raw_s']:,.0f} ({mb / img['read_s'] / (mb / img['raw_s']):.0%} of raw)")
    row("random access sample k, p50 ms (small / image)", f"{small['random_p50_ms']:.3f} / {img['random_p50_ms']:.3f}")
    for lk in looks:
        row(f"get_entry_by_name at {lk['n']:,} entries, us", f"{lk['get_us']:.0f}")
        row(f"search page (25 rows) at {lk['n']:,} entries, ms", f"{lk['page_ms']:.2f} (text: {lk['text_ms']:.2f})")


if __name__ == "__main__":
    main()
