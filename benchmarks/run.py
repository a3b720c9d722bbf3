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
from benchmarks.scale import scale_rows  # noqa: E402


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
    return [
        ExperimentSample(
            measurement=rng.standard_normal(64).astype(np.float32),
            timestamp=float(i),
            sensor_id=f"sensor_{i % 4}",
        )
        for i in range(n)
    ]


def image_samples(n: int) -> list:
    rng = np.random.default_rng(1)
    return [
        ImageSample(image=rng.integers(0, 255, (3, 224, 224), dtype=np.uint8), label=i % 10) for i in range(n)
    ]


def columnar_write_seconds(n: int, tmp: Path, repeat: int) -> float:
    """The small samples written from columns (an Arrow table, the form a columnar peer writes
    from): the same shards as the per-object write, byte for byte."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    m = rng.standard_normal((n, 64)).astype(np.float32)
    table = pa.table(
        {
            "measurement": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), 64),
            "timestamp": np.arange(n, dtype=np.float64),
            "sensor_id": [f"sensor_{i % 4}" for i in range(n)],
        }
    )
    counter = iter(range(10**6))

    def write():
        atdata.write_samples(
            table, tmp / f"cols-{next(counter)}" / "d", maxcount=10_000, sample_type=ExperimentSample
        )

    return median_time(write, repeat)


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


def bench_first_access(tmp: Path, n: int = 5_000, repeat: int = 5) -> dict:
    """The first ``ds[k]`` on a local shard nothing has indexed (a new process opening it by path):
    its offset index built from the tar headers, and then read back from the on-disk cache."""
    from atdata_lab import dataset as dataset_module
    from atdata_lab.offset_index import offsets_cache_path

    url = atdata.write_samples(small_samples(n), tmp / "first-access" / "d", maxcount=n).urls[0]

    def first(drop_disk_cache: bool) -> float:
        dataset_module._scan_cache.clear()  # what a new process knows: nothing
        if drop_disk_cache:
            offsets_cache_path(url).unlink(missing_ok=True)
        t = time.perf_counter()
        atdata.Dataset[ExperimentSample](url)[n // 2]
        return time.perf_counter() - t

    cold = statistics.median(first(True) for _ in range(repeat))
    cached = statistics.median(first(False) for _ in range(repeat))
    return {"n": n, "headers_ms": cold * 1000, "cached_ms": cached * 1000}


def bench_compact(samples: list, tmp: Path, repeat: int, maxcount: int = 10_000) -> dict:
    """Plain tar vs ``compression="gzip"`` on the same small samples, rounds interleaved: bytes per
    sample, write and ordered batched read (32), random access p50 (warm: the inflated-block cache
    as a reader has it; cold: the cache emptied before each read, one ~32 KiB block inflated), and
    the first ``ds[k]`` of a gzip shard nothing has indexed (a scan, then the whole stream inflated
    once: a scan finds no block table)."""
    from atdata_lab import seekable_gzip
    from atdata_lab.dataset import _scan_cache

    out: dict = {"n": len(samples)}
    counter = iter(range(10**6))
    ks = [int(k) for k in np.random.default_rng(0).integers(0, len(samples), 500)]
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        for comp in (None, "gzip"):
            tag = comp or "plain"
            gc.collect()
            t = time.perf_counter()
            ds = atdata.write_samples(
                samples, tmp / f"compact-{next(counter)}" / "d", maxcount=maxcount, compression=comp
            )
            times.setdefault(f"{tag}_write", []).append(time.perf_counter() - t)
            out[f"{tag}_bytes"] = sum(ds.shard_info(u).size for u in ds.urls)
            gc.collect()
            t = time.perf_counter()
            for _b in ds.ordered(batch_size=32):
                pass
            times.setdefault(f"{tag}_read", []).append(time.perf_counter() - t)
            ds[0]
            lat, cold = [], []
            for k in ks:
                t = time.perf_counter()
                ds[k]
                lat.append(time.perf_counter() - t)
            for k in ks[:200]:
                seekable_gzip._cache.clear()
                t = time.perf_counter()
                ds[k]
                cold.append(time.perf_counter() - t)
            times.setdefault(f"{tag}_p50", []).append(statistics.median(lat))
            times.setdefault(f"{tag}_cold_p50", []).append(statistics.median(cold))
            if comp:
                _scan_cache.clear()
                seekable_gzip._cache.clear()
                fresh = atdata.Dataset[type(samples[0])](ds.urls)
                t = time.perf_counter()
                fresh[len(samples) // 2]
                times.setdefault("gzip_first", []).append(time.perf_counter() - t)
    out.update({k: statistics.median(v) for k, v in times.items()})
    return out


def compact_rows(row, c: dict) -> None:
    n = c["n"]
    for tag, what in (("plain", "plain tar (default)"), ("gzip", 'compression="gzip"')):
        row(
            f"small ({n // 1000}k), {what}: bytes per sample / write / ordered read (32), samples/s",
            f"{c[f'{tag}_bytes'] / n:,.0f} B / {n / c[f'{tag}_write']:,.0f} / {n / c[f'{tag}_read']:,.0f}",
            target="<= 1.2x best peer (~265-280 B)" if tag == "gzip" else "—",
        )
        row(
            f"small ({n // 1000}k), {what}: random access p50, us (warm / cold block cache)",
            f"{c[f'{tag}_p50'] * 1e6:,.0f} / {c[f'{tag}_cold_p50'] * 1e6:,.0f}",
        )
    row(
        f"small ({n // 1000}k), gzip: first ds[k] of an unindexed shard (scan + one inflate), ms",
        f"{c['gzip_first'] * 1000:,.1f}",
    )


def _rows(n_entries: int) -> list[dict]:
    return [
        {
            "name": f"dataset-{i:06d}",
            "cid": f"bafy{i}",
            "schema_ref": f"atdata://local/schema/S{i % 7}@1.0.0",
            "data_urls": [f"/d/{i}.tar"],
            "num_samples": i,
            "num_shards": 1,
            "size_bytes": i * 100,
            "shard_checksums": ["0" * 64],
            "metadata": {},
            "description": f"run {i}",
            "tags": ["a", f"t{i % 10}"],
            "license": "MIT",
            "created_at": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}",
            "published_uri": None,
        }
        for i in range(n_entries)
    ]


def _fill_sqlite(tmp: Path, rows: list[dict]):
    import json

    from atdata_lab.providers.base import ENTRY_KEYS, search_text
    from atdata_lab.providers.sqlite import SQLiteProvider

    prov = SQLiteProvider(tmp / f"lookup-{len(rows)}.db")
    with prov._write() as c:
        c.executemany(
            f"INSERT INTO entries ({', '.join(ENTRY_KEYS)}, search_text) VALUES ({', '.join('?' * (len(ENTRY_KEYS) + 1))})",
            [
                tuple(
                    json.dumps(r[k]) if k in ("data_urls", "shard_checksums", "metadata", "tags") else r[k]
                    for k in ENTRY_KEYS
                )
                + (search_text(r),)
                for r in rows
            ],
        )
        c.executemany(
            "INSERT INTO entry_tags(name, tag) VALUES (?, ?)",
            [(r["name"], t) for r in rows for t in r["tags"]],
        )
    return prov


def _fill_redis(url: str, rows: list[dict]):
    from atdata_lab.providers.redis import RedisProvider

    prov = RedisProvider(url=url, key_prefix=f"bench{len(rows)}")
    pipe = prov.r.pipeline(transaction=False)
    for i, r in enumerate(rows):
        pipe.set(prov._k("e", r["name"]), prov._pack(r))
        prov._add_indexes(pipe, r)
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    return prov


def _fill_postgres(dsn: str, rows: list[dict]):
    """A PostgreSQL index in a fresh database, filled with COPY, then VACUUM ANALYZE (what autovacuum
    does to a table that has settled: page walks become index-only scans)."""
    from atdata_lab.providers.base import ENTRY_KEYS, search_text
    from atdata_lab.providers.postgres import PostgresProvider, _entry_params

    prov = PostgresProvider(dsn)
    conn = prov._conn
    copy = f"COPY atdata_lab_entries ({', '.join(ENTRY_KEYS)}, search_text) FROM STDIN"
    with conn.cursor() as cur, cur.copy(copy) as cp:
        for r in rows:
            cp.write_row([*_entry_params(r), search_text(r)])
    conn.execute("VACUUM ANALYZE atdata_lab_entries")
    return prov


def bench_select1(dsn: str, provider, n_entries: int) -> tuple[float, float]:
    """p50s of a bare ``SELECT 1`` round trip (prepared, its own connection) and of
    ``get_entry_by_name``, measured alternately so that both see the same machine: the round trip
    is the floor under any PostgreSQL lookup on this loopback."""
    import psycopg

    index = atdata.Index(provider)
    names = [f"dataset-{i:06d}" for i in np.random.default_rng(1).integers(0, n_entries, 2000)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for nm in names[:50]:
            conn.execute("SELECT 1", prepare=True).fetchone()
            index.get_entry_by_name(nm)
        bare, get = [], []
        for nm in names:
            t = time.perf_counter()
            conn.execute("SELECT 1", prepare=True).fetchone()
            t1 = time.perf_counter()
            index.get_entry_by_name(nm)
            get.append(time.perf_counter() - t1)
            bare.append(t1 - t)
    return statistics.median(bare) * 1e6, statistics.median(get) * 1e6


def bench_lookup(provider, n_entries: int) -> dict:
    """get_entry_by_name and 25-row search pages with n_entries in one index."""
    index = atdata.Index(provider)
    names = [f"dataset-{i:06d}" for i in np.random.default_rng(0).integers(0, n_entries, 2000)]
    for nm in names[:50]:
        index.get_entry_by_name(nm)
    lat = []
    for nm in names:
        t = time.perf_counter()
        index.get_entry_by_name(nm)
        lat.append(time.perf_counter() - t)
    get_us = statistics.median(lat) * 1e6  # per lookup, like the random-access p50
    first_ms = median_time(lambda: index.search(limit=25), 9) * 1000
    deep_ms = median_time(lambda: index.search(limit=25, offset=n_entries // 2, sort="name"), 9) * 1000
    text_ms = median_time(lambda: index.search("run 12", limit=25), 9) * 1000
    tag_ms = (
        median_time(lambda: index.search(tags=["t3"], schema="S3", limit=25, sort="size_bytes"), 9) * 1000
    )
    return {
        "n": n_entries,
        "get_us": get_us,
        "first_ms": first_ms,
        "deep_ms": deep_ms,
        "text_ms": text_ms,
        "tag_ms": tag_ms,
    }


class _Redis:
    """A throw-away redis-server on 127.0.0.1 for the benchmark."""

    def __init__(self, tmp: Path) -> None:
        import shutil
        import socket
        import subprocess

        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise RuntimeError("redis-server is not installed (make system-deps)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp),
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        for _ in range(100):
            try:
                redis.Redis(port=self.port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def bench_promotion_round_trips(tmp: Path, counts=(0, 100, 1000)) -> list[dict] | str:
    """PDS round trips and wall time of promote_entry with N schema records already in the repo."""
    try:
        from atdata_lab.atmosphere import Atmosphere
        from atdata_lab.atmosphere import records as rec
        from atdata_lab.sandbox import Sandbox
    except ImportError as e:
        return f"unavailable: {e}"
    out = []
    with Sandbox(run_dir=tmp / "sandbox", progress=False) as sb:
        for n in counts:
            acct = sb.create_account()
            client = Atmosphere.login(acct.handle, acct.password, pds_url=sb.pds_url)
            for start in range(0, n, 200):
                client.apply_writes(
                    [
                        {
                            "action": "create",
                            "collection": rec.SCHEMA_NSID,
                            "rkey": rec.schema_rkey(f"Other{i}", "1.0.0"),
                            "value": rec.schema_record(
                                {
                                    "name": f"Other{i}",
                                    "version": "1.0.0",
                                    "fields": [
                                        {
                                            "name": "x",
                                            "fieldType": {"$type": "local#primitive", "primitive": "int"},
                                            "optional": False,
                                        }
                                    ],
                                }
                            ),
                        }
                        for i in range(start, min(n, start + 200))
                    ]
                )
            index = atdata.Index(
                path=tmp / f"promo-{n}.db",
                atmosphere=client,
                data_store=atdata.LocalDiskStore(tmp / f"promo-{n}"),
            )
            row = {"schemas": n}
            for label, name, seed in (
                ("first", "bench-a", 0),
                ("next", "bench-b", 1),
                ("again", "bench-b", 1),
            ):
                if label != "again":
                    index.write(small_samples(200)[seed:], name=name, progress=False)
                client.round_trips = 0
                t = time.perf_counter()
                index.promote_entry(name, progress=False)
                row[label] = (client.round_trips, (time.perf_counter() - t) * 1000)
            out.append(row)
    return out


ATDATA_NETWORK_SEARCH = """
import json, statistics, sys, time
from atdata.atmosphere.client import Atmosphere
from atdata.search import AppViewSearchBackend
url, word, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend = AppViewSearchBackend(Atmosphere(appview=url))
backend.search(text=word)
times = []
for _ in range(reps):
    t = time.perf_counter()
    backend.search(text=word)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps(statistics.median(times)))
"""


def bench_network_search(tmp: Path, reps: int = 50, n_datasets: int = 3) -> dict | str:
    """A search across publishers through the real AppView (sandbox: PDS + PostgreSQL + bridge +
    atdata-app): ``index.search(word, scope="network")`` p50 and its HTTP requests, against a bare
    GET of the same ``searchDatasets`` query (the floor: the AppView's own time plus loopback)."""
    try:
        import httpx

        from atdata_lab.atmosphere import Atmosphere
        from atdata_lab.sandbox import Sandbox
    except ImportError as e:
        return f"unavailable: {e}"
    try:
        sb = Sandbox(run_dir=tmp / "sandbox-net", progress=False, appview=True)
        sb.start()
    except Exception as e:  # no Python 3.12 for the AppView: say so in the table
        return f"not measured: {str(e)[:160]}"
    try:
        word = "bench" + os.urandom(4).hex()
        uris = []
        for i in range(n_datasets):
            acct = sb.create_account()
            client = Atmosphere.login(acct.handle, acct.password, pds_url=sb.pds_url, appview="")
            index = atdata.Index(
                path=tmp / f"net-{i}.db",
                atmosphere=client,
                data_store=atdata.LocalDiskStore(tmp / f"net-{i}"),
            )
            index.write(small_samples(100), name=f"net-{i}", progress=False)
            uris.append(
                index.promote_entry(f"net-{i}", tags=[word], description=f"{word} {i}", progress=False)
            )
        reader = Atmosphere.login(acct.handle, acct.password, pds_url=sb.pds_url, appview=sb.appview_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the AppView has indexed all of them
            found = reader.xrpc_query("science.alt.dataset.searchDatasets", {"q": word, "limit": 100})
            if len(found.get("entries", [])) >= n_datasets:
                break
            time.sleep(0.2)
        else:
            return "not measured: the AppView did not index the datasets within 60 s"
        index = atdata.Index(path=tmp / "net-reader.db", atmosphere=reader)
        index.search(word, scope="network")  # warm: connections, handles resolved once (kept 5 min)
        ours, floor, trips = [], [], []
        url = f"{sb.appview_url}/xrpc/science.alt.dataset.searchDatasets"
        with httpx.Client() as bare:
            bare.get(url, params={"q": word, "limit": 100})
            for _ in range(reps):
                reader.round_trips = 0
                t = time.perf_counter()
                page = index.search(word, scope="network")
                ours.append((time.perf_counter() - t) * 1000)
                trips.append(reader.round_trips)
                assert len(page.items) == n_datasets
                t = time.perf_counter()
                bare.get(url, params={"q": word, "limit": 100}).json()
                floor.append((time.perf_counter() - t) * 1000)
        theirs: float | str
        try:  # atdata 0.7's AppViewSearchBackend on the same AppView, in its venv
            from tests.support import atdata_reference as ref

            theirs = float(
                ref.run_atdata_json(ATDATA_NETWORK_SEARCH, sb.appview_url, word, str(reps), timeout=300)
            )
        except Exception as e:  # no Python 3.12: say so in the table
            theirs = str(e)[:80]
        return {
            "n": n_datasets,
            "theirs_ms": theirs,
            "ours_ms": statistics.median(ours),
            "floor_ms": statistics.median(floor),
            "trips": statistics.median(trips),
        }
    finally:
        sb.stop()


RSS_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])


def hwm_mb():  # VmHWM resets at exec, unlike ru_maxrss (which keeps the parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


import atdata_lab as atdata
ds = atdata.Dataset(sys.argv[1])
base = hwm_mb()
n = 0
t = time.perf_counter()
for b in ds.ordered(batch_size=32):
    n += len(b)
dt = time.perf_counter() - t
print(n, base, hwm_mb(), dt)
"""


def bench_streaming_rss(tmp: Path, gigabytes: float) -> dict:
    """Peak RSS of a fresh process streaming ``gigabytes`` of image shards in batches of 32."""
    import subprocess

    n = int(gigabytes * 1e9 / (3 * 224 * 224))
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (3, 224, 224), dtype=np.uint8)
    ds = atdata.write_samples(
        (ImageSample(image=img, label=i % 10) for i in range(n)), tmp / "big" / "d", maxcount=1000
    )
    size = sum(ds.shard_info(u).size for u in ds.urls)
    pattern = str(tmp / "big" / f"d-{{000000..{len(ds.urls) - 1:06d}}}.tar")
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, pattern, str(ROOT)], capture_output=True, text=True, check=True
    )
    count, base_mb, peak_mb, dt = out.stdout.split()
    return {
        "bytes": size,
        "samples": int(count),
        "base_mb": float(base_mb),
        "peak_mb": float(peak_mb),
        "mb_s": size / 1e6 / float(dt),
    }


def bench_s3(tmp: Path, n_images: int, repeat: int) -> dict | str:
    """S3DataStore write/read MB/s against a plain s3fs put/get of the same bytes (real SeaweedFS)."""
    try:
        from tests.plugins.services import start_s3_server
    except ImportError as e:
        return f"unavailable: {e}"
    try:
        server = start_s3_server(tmp / "s3")
    except Exception as e:  # no weed binary: say so in the table
        return f"unavailable: {e}"
    try:
        bucket = server.make_bucket()
        store = atdata.S3DataStore(
            bucket, endpoint_url=server.endpoint_url, key=server.key, secret=server.secret
        )
        samples = image_samples(n_images)
        index = atdata.Index(path=tmp / "s3.db", data_store=store)
        counter = iter(range(10**6))
        entry = index.write(samples, name="s3-bench-0", maxcount=200, progress=False)
        size = entry.size_bytes / 1e6
        write_s = median_time(
            lambda: index.write(samples, name=f"s3-bench-{next(counter) + 1}", maxcount=200, progress=False),
            repeat,
        )
        ds = index.dataset(entry)
        read_s = median_time(lambda: [None for _ in ds.ordered(batch_size=32)], repeat)
        fs = server.fs()
        local = atdata.write_samples(samples, tmp / "s3-local" / "d", maxcount=200)
        keys = [f"{bucket}/plain/{i}.tar" for i in range(len(local.urls))]
        put_s = median_time(lambda: [fs.put_file(u, k) for u, k in zip(local.urls, keys)], repeat)
        get_s = median_time(lambda: [fs.cat_file(k) for k in keys], repeat)
        return {
            "mb": size,
            "write": size / write_s,
            "read": size / read_s,
            "put": size / put_s,
            "get": size / get_s,
        }
    finally:
        server.stop()


def webdataset_read_seconds(urls: list[str], repeat: int) -> float | None:
    try:
        import webdataset as wds
    except ImportError:
        return None

    def read():
        for _s in wds.WebDataset(urls, shardshuffle=False):
            pass

    return median_time(read, repeat)


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


# ------------------------------------------------------------------------------------ manifests


@atdata.packable
class TaggedSample:
    """The manifest rows' sample: an int label, a float score and a str category (every field is a
    manifest field; ~60 bytes of msgpack, one 512 B block)."""

    label: int
    score: float
    category: str


CATEGORIES = [f"cat_{c:02d}" for c in range(100)]
# the queries both libraries answer: a numeric range (~1% of the samples) and a categorical isin
# (2 of 100 categories, ~2%), as JSON (tests/support/manifest_queries.py turns them into F predicates)
MANIFEST_QUERIES = [
    ("numeric range (score between 0.25 and 0.26)", ["between", "score", 0.25, 0.26]),
    ("categorical isin (2 of 100 categories)", ["isin", "category", ["cat_03", "cat_42"]]),
]
MANIFEST_DATA_VERSION = 1  # bump when the cached data must be written again
ATDATA_MANIFEST_SCRIPT = Path(__file__).resolve().parent / "atdata_manifest_bench.py"


def tagged_samples(n: int, seed: int = 3):
    """``n`` samples with uniformly random labels (0-999), scores ([0, 1)) and categories (100), in
    random order, so no shard's statistics rule a query out (no shard is skipped)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 1000, n).tolist()
    scores = rng.random(n).tolist()
    cats = rng.integers(0, 100, n).tolist()
    for a, b, c in zip(labels, scores, cats):
        yield TaggedSample(label=a, score=b, category=CATEGORIES[c])


@atdata.packable
class TaggedVector:
    """TaggedSample and a 16-float32 vector (not a manifest field): a more usual small sample."""

    label: int
    score: float
    category: str
    embedding: NDArray


def vector_samples(n: int, seed: int = 3):
    """:func:`tagged_samples` with a vector each."""
    rng = np.random.default_rng(seed + 1)
    for s in tagged_samples(n, seed):
        yield TaggedVector(s.label, s.score, s.category, rng.standard_normal(16).astype(np.float32))


def bench_cache() -> Path:
    """Where generated bench data is kept between runs: ``$ATDATA_LAB_CACHE/bench`` (default
    ``~/.cache/atdata-lab/bench``, beside the atdata 0.7 venv)."""
    env = os.environ.get("ATDATA_LAB_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "atdata-lab") / "bench"


def manifest_data(n: int, shards: int) -> Path:
    """A folder of ``n`` TaggedSamples in ``shards`` shards with manifests, written once (by
    atdata-lab, ``manifest=True``) and kept in :func:`bench_cache`; delete it to write it again."""
    import json
    import shutil

    root = bench_cache() / f"manifest-{n}-{shards}-v{MANIFEST_DATA_VERSION}"
    if (root / "ready.json").exists():
        return root
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"writing {n:,} samples in {shards} shards with manifests to {root} (kept for later runs)...")
    atdata.write_samples(tagged_samples(n), tmp / "q", maxcount=n // shards, manifest=True)
    (tmp / "ready.json").write_text(json.dumps({"samples": n, "shards": shards}))
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    return root


def _hits_digest(hits) -> str:
    """sha256 of the hits' (shard, key, offset), as atdata_manifest_bench.py makes it of atdata's."""
    import hashlib

    return hashlib.sha256("\n".join(f"{h.shard}\t{h.key}\t{h.offset}" for h in hits).encode()).hexdigest()


def _atdata_ref():
    """The reference-venv helpers, or the reason atdata 0.7 cannot run here."""
    try:
        from tests.support import atdata_reference as ref
    except ImportError as e:
        return None, f"unavailable: {e}"
    try:
        py, why = ref.atdata_venv_status()
    except Exception as e:  # build failure: report, don't crash the table
        return None, f"unavailable: {e}"
    return (ref, "") if py is not None else (None, f"unavailable: {why}")


def bench_manifest_write(tmp: Path, n: int, maxcount: int, pairs: int, atdata_n: int) -> dict:
    """write_samples of ``n`` small samples without and with manifests, in pairs run back to back
    (which goes first alternates), for the scalar samples and for the same with a small vector;
    atdata 0.7's own overhead on ``atdata_n`` scalar samples beside it."""
    import json
    import shutil

    sets = {"scalars": list(tagged_samples(n)), "vector": list(vector_samples(n))}  # only writes are timed
    times = {k: {False: [], True: []} for k in sets}
    cpu = {k: {False: [], True: []} for k in sets}
    for r in range(pairs):
        for kind, samples in sets.items():
            for manifest in (True, False) if r % 2 == 0 else (False, True):
                out = tmp / f"mwrite-{kind}-{r}-{int(manifest)}"
                gc.collect()
                t, c = time.perf_counter(), time.process_time()
                atdata.write_samples(samples, out / "d", maxcount=maxcount, manifest=manifest)
                times[kind][manifest].append(time.perf_counter() - t)
                cpu[kind][manifest].append(time.process_time() - c)
                shutil.rmtree(out)
    res: dict = {"n": n, "shards": -(-n // maxcount)}
    for kind in sets:
        wall, proc = times[kind], cpu[kind]
        res[kind] = {
            "without_s": statistics.median(wall[False]),
            "with_s": statistics.median(wall[True]),
            # each pair ran back to back: the median of their ratios follows the machine's load least
            "ratio": statistics.median(b / a for a, b in zip(wall[False], wall[True])),
            "cpu_ratio": statistics.median(b / a for a, b in zip(proc[False], proc[True])),
        }
    ref, why = _atdata_ref()
    if ref is None:
        res["atdata"] = why
        return res
    try:
        got = ref.run_atdata_json(
            ATDATA_MANIFEST_SCRIPT,
            stdin=json.dumps(
                {
                    "cmd": "write",
                    "dir": str(tmp / "atdata-mwrite"),
                    "n": atdata_n,
                    "maxcount": 10_000,
                    "pairs": 5,
                }
            ),
            timeout=1800,
        )
        res["atdata"] = statistics.median(b / a for a, b in zip(got["without_s"], got["with_s"]))
        res["atdata_n"] = atdata_n
    except Exception as e:  # report, don't crash the table
        res["atdata"] = f"failed: {str(e)[:80]}"
    return res


def bench_manifest_query(root: Path, rounds: int, reps: int) -> dict:
    """QueryExecutor.from_directory over the folder, then each query ``reps`` times, ours and
    atdata 0.7's (in its venv) in alternating rounds; the hits of both must agree."""
    import json

    from atdata_lab.manifest import F, QueryExecutor
    from tests.support.manifest_queries import to_where

    specs = [spec for _, spec in MANIFEST_QUERIES]
    ours: dict = {"load": [], "first": [[] for _ in specs], "query": [[] for _ in specs], "hits": []}
    theirs: dict = {"load": [], "query": [[] for _ in specs], "hits": []}
    ref, why = _atdata_ref()

    def our_round() -> None:
        gc.collect()
        t = time.perf_counter()
        ex = QueryExecutor.from_directory(root)
        ours["load"].append(time.perf_counter() - t)
        hits_of = []
        for k, spec in enumerate(specs):
            where = to_where(spec, F)
            for rep in range(reps + 1):
                gc.collect()
                t = time.perf_counter()
                hits = ex.query(where=where)
                (ours["first"] if rep == 0 else ours["query"])[k].append(time.perf_counter() - t)
            hits_of.append((len(hits), _hits_digest(hits)))
        ours["hits"] = hits_of

    def their_round() -> None:
        got = ref.run_atdata_json(
            ATDATA_MANIFEST_SCRIPT,
            stdin=json.dumps({"cmd": "query", "dir": str(root), "queries": specs, "repeat": 2}),
            timeout=1800,
        )
        theirs["load"].append(got["load_s"])
        for k, q in enumerate(got["queries"]):
            theirs["query"][k] += q["s"]
        theirs["hits"] = [(q["count"], q["digest"]) for q in got["queries"]]

    for r in range(rounds):
        for fn in (our_round, their_round) if r % 2 == 0 else (their_round, our_round):
            if fn is their_round and ref is None:
                continue
            try:
                fn()
            except Exception as e:  # atdata failed: say so in its column
                if fn is our_round:
                    raise
                why, ref = f"failed: {str(e)[:80]}", None
    return {"ours": ours, "theirs": theirs if theirs["load"] else why}


def bench_manifest_fetch(root: Path, reps: int) -> dict:
    """``ds.select`` of 100 query hits, one in each shard, against plain ``os.pread`` of the same
    100 byte ranges (open, read, close per hit), alternating."""
    from atdata_lab.manifest import F

    urls = sorted(str(p) for p in root.glob("q-*.tar"))
    ds = atdata.Dataset[TaggedSample](urls)
    seen: set[str] = set()
    locs = [
        h for h in ds.query(where=F.score.between(0.25, 0.26)) if not (h.shard in seen or seen.add(h.shard))
    ]
    got = ds.select(locs)  # the first select also checks each shard's path once
    assert len(got) == len(urls) and all(0.25 <= s.score <= 0.26 for s in got)

    def raw() -> None:
        for h in locs:
            fd = os.open(h.url, os.O_RDONLY)
            try:
                os.pread(fd, h.data_offset - h.offset + h.size, h.offset)
            finally:
                os.close(fd)

    ours, plain = [], []
    for r in range(reps):
        for fn, acc in ((lambda: ds.select(locs), ours), (raw, plain))[:: 1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return {
        "hits": len(locs),
        "select_ms": statistics.median(ours) * 1000,
        "pread_ms": statistics.median(plain) * 1000,
    }


def bench_column_stats(root: Path, reps: int) -> dict:
    """``dataset_stats`` of the cached manifest dataset: from its manifests (a new Dataset each
    time, so the manifests are read too) and by one streaming pass over the samples."""
    from atdata_lab.column_stats import dataset_stats

    urls = sorted(str(p) for p in root.glob("q-*.tar"))

    def fresh():
        return atdata.Dataset[TaggedSample](urls)

    manifest = []
    for _ in range(reps):
        ds = fresh()
        t = time.perf_counter()
        st = dataset_stats(ds)
        manifest.append(time.perf_counter() - t)
        assert st.source == "manifest"
    ds = fresh()
    t = time.perf_counter()
    scan = dataset_stats(ds, source="scan")
    scan_s = time.perf_counter() - t
    agree = all(scan[n].count == st[n].count and scan[n].nulls == st[n].nulls for n in st.columns)
    return {"manifest_s": statistics.median(manifest), "scan_s": scan_s, "n": st.n_samples, "agree": agree}


def _faster(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x faster" if theirs >= ours else f"{ours / theirs:.1f}x slower"


def manifest_rows(row, mw: dict, mq: dict, mf: dict, n: int, shards: int) -> None:
    """The manifest rows of the table."""
    theirs = mw.get("atdata")
    for kind, what in (
        ("scalars", "int, float, str: all in the manifest"),
        ("vector", "the same and a 16-float32 vector"),
    ):
        w = mw[kind]
        row(
            f"manifest overhead while writing {mw['n'] // 1000}k small samples ({what}), {mw['shards']} shards, "
            "s without / with",
            f"{w['without_s']:.2f} / {w['with_s']:.2f}",
            (
                f"its own overhead: {theirs - 1:+.0%} ({mw['atdata_n'] // 1000}k samples)"
                if isinstance(theirs, float)
                else str(theirs)
            )
            if kind == "scalars"
            else "—",
            f"{w['ratio'] - 1:+.1%} (CPU time {w['cpu_ratio'] - 1:+.1%})",
            "< +10%",
        )
    ours, their = mq["ours"], mq["theirs"]
    have = isinstance(their, dict)
    agree = have and ours["hits"] == [tuple(h) for h in their["hits"]]
    load = statistics.median(ours["load"]) * 1000
    tload = statistics.median(their["load"]) * 1000 if have else None
    row(
        f"manifest query: load {shards} shards' manifests ({n:,} rows, QueryExecutor.from_directory), ms",
        f"{load:,.0f}",
        f"{tload:,.0f}" if have else str(their),
        _faster(tload, load) if have else "—",
    )
    for k, (label, _) in enumerate(MANIFEST_QUERIES):
        p50 = statistics.median(ours["query"][k]) * 1000
        first = statistics.median(ours["first"][k]) * 1000
        hits = ours["hits"][k][0]
        t50 = statistics.median(their["query"][k]) * 1000 if have else None
        row(
            f"manifest query p50 over {n:,} samples in {shards} shards: {label}, {hits:,} hits, ms",
            f"{p50:.1f} (first after load: {first:.0f})",
            f"{t50:,.0f}" if have else str(their),
            (_faster(t50, p50) + ("" if agree else "; HITS DIFFER")) if have else "—",
            "< 100 ms, faster",
        )
    row(
        f"fetch {mf['hits']} hits from {mf['hits']} shards (ds.select, local), p50 ms",
        f"{mf['select_ms']:.2f}",
        f"plain os.pread of the same ranges: {mf['pread_ms']:.2f}",
        f"{mf['select_ms'] / mf['pread_ms']:.1f}x pread",
        "< 20 ms",
    )


SECTIONS = ("rw", "lookups", "rss", "s3", "promotion", "network", "manifest", "scale", "widgets", "peers")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    ap.add_argument("--no-pds", action="store_true", help="skip the promotion round-trip rows")
    ap.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default all): {', '.join(SECTIONS)}",
    )
    args = ap.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.no_pds:
        only.discard("promotion")
        only.discard("network")
    n_small, n_img, repeat = (20_000, 2_000, 5) if not args.quick else (5_000, 300, 3)
    lookups = (10_000, 100_000) if not args.quick else (10_000,)
    gigabytes = 1.0 if not args.quick else 0.2
    # manifests: 1M samples in 100 shards (cached between runs); the write overhead on 100k samples
    m_n, m_shards = (1_000_000, 100) if not args.quick else (200_000, 20)
    m_write_n, m_pairs, m_rounds = (100_000, 9, 5) if not args.quick else (50_000, 5, 3)
    small = img = rss = s3 = ref = first_access = compact = None
    looks: list[dict] = []
    promo: list[dict] | str | None = None
    net: dict | str | None = None
    mw = mq = mf = mstats = None
    past_one_machine: list[tuple] = []
    widget_table: list[tuple] = []
    peers = None
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("ATDATA_HOME", str(tmp / "home"))
        if "rw" in only:
            small = bench_rw("small", small_samples(n_small), tmp, repeat, maxcount=10_000)
            small["wds_s"] = webdataset_read_seconds(small["urls"], repeat)
            small["cols_write_s"] = columnar_write_seconds(n_small, tmp, repeat)
            compact = bench_compact(small_samples(n_small), tmp, repeat)
            img = bench_rw("image", image_samples(n_img), tmp, repeat, maxcount=500)
            first_access = bench_first_access(tmp, repeat=repeat)
        if "lookups" in only:
            redis_server = None
            try:
                redis_server = _Redis(tmp)
            except Exception as e:  # no redis-server: say so in the table
                looks.append({"provider": "redis", "error": str(e)})
            pg_server = None
            try:
                from tests.plugins.services import start_postgres_server

                pg_server = start_postgres_server(tmp / "postgres")
            except Exception as e:  # no PostgreSQL or psycopg: say so in the table
                looks.append({"provider": "postgres", "error": str(e)[:200]})
            for n in lookups:
                rows = _rows(n)
                looks.append({"provider": "sqlite", **bench_lookup(_fill_sqlite(tmp, rows), n)})
                if redis_server is not None:
                    looks.append(
                        {"provider": "redis", **bench_lookup(_fill_redis(redis_server.url, rows), n)}
                    )
                if pg_server is not None:
                    dsn = pg_server.create_database(f"bench_{n}")
                    prov = _fill_postgres(dsn, rows)
                    floor_us, paired_us = bench_select1(dsn, prov, n)
                    looks.append(
                        {
                            "provider": "postgres",
                            **bench_lookup(prov, n),
                            "floor_us": floor_us,
                            "paired_us": paired_us,
                        }
                    )
            if redis_server is not None:
                redis_server.stop()
            if pg_server is not None:
                pg_server.cleanup()
        if "rss" in only:
            rss = bench_streaming_rss(tmp, gigabytes)
        if "s3" in only:
            s3 = bench_s3(tmp, 600 if not args.quick else 150, 3)
        if "promotion" in only:
            promo = bench_promotion_round_trips(tmp)
        elif args.no_pds:
            promo = "skipped (--no-pds)"
        if "network" in only:
            net = bench_network_search(tmp)
        if "manifest" in only:
            root = manifest_data(m_n, m_shards)
            mw = bench_manifest_write(tmp, m_write_n, 10_000, m_pairs, atdata_n=20_000)
            mq = bench_manifest_query(root, m_rounds, reps=5)
            mf = bench_manifest_fetch(root, reps=41)
            mstats = bench_column_stats(root, reps=3)
        if small is not None:
            ref = atdata_figures(small["urls"], n_small)
        if "scale" in only:  # docs/scale.md: shuffle quality, DataLoader, Ray
            past_one_machine = scale_rows(tmp, args.quick)
        if "widgets" in only:  # the samples table on the manifest data, in JupyterLab + Chromium
            from benchmarks.widgets_bench import widget_rows

            widget_table = widget_rows(manifest_data(m_n, m_shards), args.quick)
        if "peers" in only:  # Lance, HF datasets, webdataset, MDS, LitData in their own venvs (peer_bench.py)
            from benchmarks.peer_bench import bench_peers

            n_peer_small, n_peer_img, peer_rounds = (20_000, 2_000, 3) if not args.quick else (5_000, 300, 3)
            (tmp / "peers").mkdir()
            peers = bench_peers(
                tmp / "peers", n_peer_small, n_peer_img, peer_rounds, ExperimentSample, ImageSample
            )
    load_after = os.getloadavg()

    print(f"# atdata-lab benchmarks ({time.strftime('%Y-%m-%d')})")
    print()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {_mem_gb():.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, numpy {np.__version__}. "
        # the peers section says its own rounds
        + ("Data" if only == {"peers"} else f"Medians of {repeat} runs; data")
        + " in the page cache. Load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after."
    )
    lines: list[str] = []  # the main table, printed only if a section filled it (not for --only peers)

    def row(fig, ours, theirs="—", ratio="—", target="—"):
        lines.append(f"| {fig} | {ours} | {theirs} | {ratio} | {target} |")

    if small is not None and img is not None:
        rw_rows(row, small, img, ref)
    if first_access is not None:
        row(
            f"first ds[k] on an unindexed {first_access['n']:,}-sample shard, ms",
            f"{first_access['headers_ms']:.1f} (offset index cached on disk: {first_access['cached_ms']:.1f})",
            target="< 20 ms",
        )
    if compact is not None:
        compact_rows(row, compact)
    for lk in looks:
        if "error" in lk:
            row(f"{lk['provider']} lookups", f"not measured: {lk['error']}")
            continue
        row(
            f"get_entry_by_name, {lk['provider']}, {lk['n']:,} entries, p50 us",
            f"{lk['get_us']:.0f}",
            (
                f"bare SELECT 1 round trip: {lk['floor_us']:.0f} (a lookup alternating with it: {lk['paired_us']:.0f})"
                if "floor_us" in lk
                else "—"
            ),
            target="< 100 us",
        )
        row(
            f"25-row search page, {lk['provider']}, {lk['n']:,} entries, ms (first / middle / text / tag+schema)",
            f"{lk['first_ms']:.2f} / {lk['deep_ms']:.2f} / {lk['text_ms']:.2f} / {lk['tag_ms']:.2f}",
            target="< 20 ms",
        )
    if isinstance(s3, dict):
        row(
            f"S3 (SeaweedFS) write, {s3['mb']:.0f} MB of image shards, MB/s",
            f"{s3['write']:,.0f}",
            f"plain s3fs put: {s3['put']:,.0f}",
            f"{s3['write'] / s3['put']:.0%} of put",
            ">= 80%",
        )
        row(
            "S3 (SeaweedFS) batched read, MB/s",
            f"{s3['read']:,.0f}",
            f"plain s3fs get: {s3['get']:,.0f}",
            f"{s3['read'] / s3['get']:.0%} of get",
            ">= 80%",
        )
    elif s3 is not None:
        row("S3 write/read", f"not measured: {s3}")
    if rss is not None:
        row(
            f"peak RSS streaming {rss['bytes'] / 1e9:.2f} GB ({rss['samples']:,} images), MB",
            f"{rss['peak_mb']:.0f} (interpreter + numpy: {rss['base_mb']:.0f}); {rss['mb_s']:,.0f} MB/s",
            target="< 200 MB",
        )
    if isinstance(promo, list):
        for p in promo:
            f, nx, ag = p["first"], p["next"], p["again"]
            row(
                f"promote_entry with {p['schemas']:,} schemas in the repo: PDS round trips (ms)",
                f"first {f[0]} ({f[1]:.0f}), next {nx[0]} ({nx[1]:.0f}), unchanged again {ag[0]} ({ag[1]:.0f})",
                "atdata: reads the first 100 schemas only",
                target="<= 2, flat",
            )
    elif promo is not None:
        row("promotion round trips", promo)
    if isinstance(net, dict):
        row(
            f"network search through the AppView ({net['n']} publishers' datasets), p50 ms (HTTP requests)",
            f"{net['ours_ms']:.1f} ({net['trips']:.0f})",
            (
                f"AppViewSearchBackend.search: {net['theirs_ms']:.1f}"
                if isinstance(net["theirs_ms"], float)
                else f"not measured: {net['theirs_ms']}"
            )
            + f"; bare GET of the same searchDatasets: {net['floor_ms']:.1f}",
            f"{net['ours_ms'] / net['floor_ms']:.1f}x the bare GET",
        )
    elif net is not None:
        row("network search through the AppView", net)
    if mw is not None and mq is not None and mf is not None:
        manifest_rows(row, mw, mq, mf, m_n, m_shards)
    if mstats is not None:
        row(
            f"column statistics of {mstats['n']:,} samples in {m_shards} shards (ds.stats()), s: "
            "from the manifests / by one streaming pass",
            f"{mstats['manifest_s']:.2f} / {mstats['scan_s']:.2f}"
            + ("" if mstats["agree"] else " (COUNTS DIFFER)"),
            "none",
            f"manifests {mstats['scan_s'] / mstats['manifest_s']:.0f}x faster",
        )
    for r in past_one_machine:
        row(*r)
    for r in widget_table:
        row(*r)
    if lines:
        print()
        print("| figure | atdata-lab | atdata 0.7 | ratio | target |")
        print("|---|---|---|---|---|")
        print("\n".join(lines))
    if peers is not None:
        from benchmarks.peer_bench import print_peer_table

        print_peer_table(peers)


def rw_rows(row, small: dict, img: dict, ref) -> None:
    """The write/read rows of the table."""
    ref_w = ref["write"]["samples_per_s"] if isinstance(ref, dict) and "write" in ref else None
    ref_r = ref["read_batched"]["samples_per_s"] if isinstance(ref, dict) and "read_batched" in ref else None
    why = "" if isinstance(ref, dict) else str(ref)[:80]
    sw = small["n"] / small["write_s"]
    sr = small["n"] / small["read_s"]
    row(
        "small write (20k), samples/s",
        f"{sw:,.0f}",
        f"{ref_w:,.0f}" if ref_w else why,
        f"{sw / ref_w:.1f}x" if ref_w else "—",
        ">= 3x",
    )
    row("small write from columns (an Arrow table), samples/s", f"{small['n'] / small['cols_write_s']:,.0f}")
    row(
        "small batched read (32), samples/s",
        f"{sr:,.0f}",
        f"{ref_r:,.0f}" if ref_r else why,
        f"{sr / ref_r:.1f}x" if ref_r else "—",
        ">= 5x",
    )
    if small["wds_s"]:
        row(
            "small read, plain webdataset iteration (no decode), samples/s",
            f"{small['n'] / small['wds_s']:,.0f}",
        )
    row("small shuffled read (buffer 1000, batch 32), samples/s", f"{small['n'] / small['shuffled_s']:,.0f}")
    bps = small["bytes"] / small["n"]
    row(
        "bytes on disk per small sample",
        f"{bps:,.0f}",
        "2,050 (3 x 512 B headers)",
        f"{bps / 2050:.2f}x",
        "<= 0.5x",
    )
    mb = img["bytes"] / 1e6
    raw = mb / img["raw_s"]
    ir = mb / img["read_s"]
    row("image (3x224x224 uint8) write, MB/s", f"{mb / img['write_s']:,.0f}")
    row(
        "image batched read (32), MB/s",
        f"{ir:,.0f}",
        "954 (issue 8, same machine kind)",
        f"{ir / raw:.0%} of raw read ({raw:,.0f} MB/s)",
        ">= 50% of raw",
    )
    row("image shuffled read (32), MB/s", f"{mb / img['shuffled_s']:,.0f}")
    row(
        "random access to sample k, p50 ms (small / image)",
        f"{small['random_p50_ms']:.3f} / {img['random_p50_ms']:.3f}",
        target="< 1 ms",
    )


def _mem_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


if __name__ == "__main__":
    main()
