"""The peer libraries' side of the ``peers`` section of ``benchmarks/run.py``.

Runs INSIDE a peer venv (``benchmarks/peer_env.py``), never in ours; imports nothing of atdata-lab.
One process per library, started by ``run.py``, which interleaves rounds across the libraries and
atdata-lab and takes the medians.

``python peers.py LIB serve``
    Reads JSON commands one per line on stdin, answers one JSON line each on stdout:

    ``{"cmd": "setup", "dir": D, "n_small": n, "n_img": m}``
        Makes the data (the same generators and seeds as ``run.py``: ``n`` samples of
        {float32[64], float, str} and ``m`` images uint8[3,224,224] with an int label), writes the
        datasets the reads use (``D/small``, ``D/img`` and, for MDS, copies for its shuffled
        reader) and answers ``{"digest": sha256 of the data, "small_bytes": bytes on disk, ...}``.
    ``{"cmd": "round", "k": r}``
        One round of every figure: writes (timed, then deleted), ordered and shuffled reads in
        batches of 32, random access p50. Answers seconds (and the p50s in seconds). After each
        write, ``sync_{kind}_s`` times fsyncing what it wrote (:func:`fsync_tree`): no peer makes
        its files durable itself (Lance, for one, calls no fsync at all), atdata-lab fsyncs every
        shard before publishing it, inside its timer; the table reports both ways.
    ``{"cmd": "quit"}``

``python peers.py LIB rss D``
    Streams ``D/img`` (written by setup) in batches of 32 in this fresh process and prints
    ``{"base_mb": VmHWM after imports, "peak_mb": VmHWM at the end, "seconds": s}``.

LIB is ``lance`` (pylance), ``hf`` (Hugging Face datasets), ``wds`` (webdataset; wids for random
access), ``mds`` (MosaicML streaming) or ``lit`` (LitData). Every reader yields stacked numpy batches and touches every
page of every array it yields (:func:`touch`): a memory-mapped view that is never read is not a read.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

BATCH = 32
SHAPE = (3, 224, 224)
IMG_BYTES = 3 * 224 * 224
SMALL_PER_SHARD, IMG_PER_SHARD = 10_000, 500  # as run.py's rw section writes ours
RANDOM_K = 300


def touch(a) -> int:
    """Reads one byte of every page of ``a`` (a numpy array, or a list/array of str: their lengths)."""
    if isinstance(a, list) or (isinstance(a, np.ndarray) and a.dtype == object):
        return len(a)
    b = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return int(b[::4096].sum()) + int(b[-1])


def touch_all(batch) -> int:
    return sum(touch(v) for v in (batch.values() if isinstance(batch, dict) else batch))


# --------------------------------------------------------------------------------- the data


def small_data(n: int) -> dict:
    """run.py's small_samples, as columns of per-sample values."""
    rng = np.random.default_rng(0)
    return {
        "measurement": [rng.standard_normal(64).astype(np.float32) for _ in range(n)],
        "timestamp": [float(i) for i in range(n)],
        "sensor_id": [f"sensor_{i % 4}" for i in range(n)],
    }


def image_data(n: int) -> dict:
    """run.py's image_samples, as columns."""
    rng = np.random.default_rng(1)
    return {
        "image": [rng.integers(0, 255, SHAPE, dtype=np.uint8) for _ in range(n)],
        "label": [i % 10 for i in range(n)],
    }


def small_table(small: dict):
    """The small samples as the pyarrow Table a columnar writer takes (Lance's input, and ours from
    columns), built before any clock starts."""
    import pyarrow as pa

    m = np.stack(small["measurement"]).reshape(-1)
    return pa.table(
        {
            "measurement": pa.FixedSizeListArray.from_arrays(pa.array(m), 64),
            "timestamp": pa.array(small["timestamp"], pa.float64()),
            "sensor_id": pa.array(small["sensor_id"], pa.string()),
        }
    )


def fsync_tree(d: Path) -> None:
    """Make a write durable after the fact: fsync every file under ``d``, and the folders."""
    for p in [*sorted(d.rglob("*")), d]:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def digest(small: dict, img: dict) -> str:
    h = hashlib.sha256()
    for a in small["measurement"]:
        h.update(a.tobytes())
    h.update(json.dumps([small["timestamp"], small["sensor_id"], img["label"]]).encode())
    for a in img["image"]:
        h.update(a.data)
    return h.hexdigest()


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


KEYS = {"small": ("measurement", "timestamp", "sensor_id"), "img": ("image", "label")}


def stack(samples: list, keys) -> dict:
    """Per-sample dicts as one batch: arrays stacked, numbers as an array, strings as a list."""
    out = {}
    for k in keys:
        vals = [s[k] for s in samples]
        out[k] = (
            vals
            if isinstance(vals[0], str)
            else np.stack(vals)
            if isinstance(vals[0], np.ndarray)
            else np.array(vals)
        )
    return out


def batched(samples, kind: str):
    """A per-sample reader (MDS, LitData) in stacked batches of 32."""
    keys, buf = KEYS[kind], []
    for sample in samples:
        buf.append(sample)
        if len(buf) == BATCH:
            yield stack(buf, keys)
            buf = []
    if buf:
        yield stack(buf, keys)


def hwm_mb() -> float:
    """VmHWM: peak RSS of this process (reset at exec, unlike ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------------- the peers


class Lance:
    """pylance: written from a pyarrow Table built before the clock starts (columnar input)."""

    def __init__(self) -> None:
        import lance
        import pyarrow as pa

        self.lance, self.pa = lance, pa

    def prepare(self, small: dict, img: dict) -> None:
        pa = self.pa
        self.small_tbl = small_table(small)
        im = np.stack(img["image"]).reshape(-1)
        self.img_tbl = pa.table(
            {
                "image": pa.FixedSizeListArray.from_arrays(pa.array(im), IMG_BYTES),
                "label": pa.array(img["label"], pa.int64()),
            }
        )

    def write_small(self, d: Path) -> None:
        self.lance.write_dataset(self.small_tbl, str(d))

    def write_img(self, d: Path) -> None:
        self.lance.write_dataset(self.img_tbl, str(d))

    def open(self, d: Path, kind: str, shuffled: bool = False):
        return self.lance.dataset(str(d))

    @staticmethod
    def _batch(rb, kind: str) -> dict:
        """A RecordBatch (``to_batches``) or a Table (``take``) as numpy columns."""

        def col(name: str):
            c = rb.column(name)
            return c.combine_chunks() if hasattr(c, "combine_chunks") else c

        if kind == "small":
            return {
                "measurement": col("measurement").flatten().to_numpy().reshape(-1, 64),
                "timestamp": col("timestamp").to_numpy(),
                "sensor_id": col("sensor_id").to_pylist(),
            }
        return {
            "image": col("image").flatten().to_numpy().reshape(-1, *SHAPE),
            "label": col("label").to_numpy(),
        }

    def ordered(self, ds, kind: str):
        for rb in ds.to_batches(batch_size=BATCH):
            yield self._batch(rb, kind)

    def shuffled(self, ds, kind: str, seed: int):
        perm = np.random.default_rng(seed).permutation(ds.count_rows())
        for i in range(0, len(perm), BATCH):
            yield self._batch(ds.take(perm[i : i + BATCH]), kind)

    def get(self, ds, k: int, kind: str) -> dict:
        return self._batch(ds.take([k]), kind)


class HF:
    """Hugging Face datasets: ``Dataset.from_dict`` of per-sample values, ``save_to_disk`` (Arrow)."""

    def __init__(self) -> None:
        import datasets

        datasets.disable_progress_bars()
        datasets.disable_caching()
        self.datasets = datasets

    def prepare(self, small: dict, img: dict) -> None:
        f = self.datasets
        self.small, self.img = small, img
        self.small_features = f.Features(
            {
                "measurement": f.List(f.Value("float32"), length=64),
                "timestamp": f.Value("float64"),
                "sensor_id": f.Value("string"),
            }
        )
        self.img_features = f.Features({"image": f.Array3D(SHAPE, "uint8"), "label": f.Value("int64")})

    def write_small(self, d: Path) -> None:
        self.datasets.Dataset.from_dict(self.small, features=self.small_features).save_to_disk(str(d))

    def write_img(self, d: Path) -> None:
        self.datasets.Dataset.from_dict(self.img, features=self.img_features).save_to_disk(str(d))

    def open(self, d: Path, kind: str, shuffled: bool = False):
        return self.datasets.load_from_disk(str(d)).with_format("numpy")

    def ordered(self, ds, kind: str):
        yield from ds.iter(batch_size=BATCH)

    def shuffled(self, ds, kind: str, seed: int):
        yield from ds.shuffle(seed=seed).iter(batch_size=BATCH)

    def get(self, ds, k: int, kind: str) -> dict:
        return ds[k]


class WDS:
    """webdataset: ``ShardWriter`` of .npy/.json/.txt/.cls members, read with ``WebDataset(...)
    .decode().to_tuple(...).batched(32)``; random access through ``wids.ShardListDataset``."""

    def __init__(self) -> None:
        import webdataset as wds

        self.wds = wds

    def prepare(self, small: dict, img: dict) -> None:
        self.small, self.img = small, img

    def _write(self, d: Path, rows, maxcount: int) -> None:
        d.mkdir(parents=True, exist_ok=True)
        with self.wds.ShardWriter(str(d / "shard-%06d.tar"), maxcount=maxcount, verbose=0) as w:
            for row in rows:
                w.write(row)

    def write_small(self, d: Path) -> None:
        s = self.small
        rows = (
            {"__key__": f"{i:08d}", "measurement.npy": m, "timestamp.json": t, "sensor_id.txt": c}
            for i, (m, t, c) in enumerate(zip(s["measurement"], s["timestamp"], s["sensor_id"]))
        )
        self._write(d, rows, SMALL_PER_SHARD)

    def write_img(self, d: Path) -> None:
        rows = (
            {"__key__": f"{i:08d}", "image.npy": a, "label.cls": lab}
            for i, (a, lab) in enumerate(zip(self.img["image"], self.img["label"]))
        )
        self._write(d, rows, IMG_PER_SHARD)

    FIELDS = {
        "small": ("measurement.npy", "timestamp.json", "sensor_id.txt"),
        "img": ("image.npy", "label.cls"),
    }

    random_access = True  # off in the peak-RSS process, where torch (which wids imports) is blocked

    def open(self, d: Path, kind: str, shuffled: bool = False):
        urls = sorted(str(p) for p in d.glob("*.tar"))
        if not self.random_access:
            return {"urls": urls}
        import wids
        from wids.wids_decode import default_decoder

        per = SMALL_PER_SHARD if kind == "small" else IMG_PER_SHARD
        total = self.n_small if kind == "small" else self.n_img
        shards = [{"url": u, "nsamples": min(per, total - i * per)} for i, u in enumerate(urls)]
        with open(os.devnull, "w") as quiet:  # wids prints a line to stderr on construction
            err, sys.stderr = sys.stderr, quiet
            try:
                ra = wids.ShardListDataset(
                    shards,
                    localname=lambda u: u,  # the local shard itself: nothing is copied
                    lru_size=len(urls) + 1,
                    transformations=[partial(default_decoder, format="numpy")],
                )
            finally:
                sys.stderr = err
        return {"urls": urls, "wids": ra}

    def _pipeline(self, urls, kind: str, shuffle: int, seed: int):
        wds = self.wds
        p = wds.WebDataset(urls, shardshuffle=len(urls) if shuffle else False, seed=seed, empty_check=False)
        if shuffle:
            p = p.shuffle(shuffle, seed=seed)
        return p.decode().to_tuple(*self.FIELDS[kind]).batched(BATCH)

    def ordered(self, ds, kind: str):
        yield from self._pipeline(ds["urls"], kind, 0, 0)

    def shuffled(self, ds, kind: str, seed: int):
        yield from self._pipeline(ds["urls"], kind, 1000, seed)

    def get(self, ds, k: int, kind: str) -> list:
        sample = ds["wids"][k]
        return [sample["." + f] for f in self.FIELDS[kind]]


class MDS:
    """MosaicML streaming: ``MDSWriter`` (compression off, its default), ``StreamingDataset`` on the
    local folder (no remote), samples stacked into batches of 32."""

    def __init__(self) -> None:
        import torch

        # PyPI's torchvision is a CUDA build whose ops cannot load beside the CPU torch of the peer venv,
        # and torchvision 0.28 then fails to import on two unguarded fake-op registrations. streaming
        # imports torchvision only for its vision datasets (not used here): name the two ops first.
        for op in ("nms", "qnms"):
            torch.library.define(
                f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
            )
        import streaming
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        self.streaming = streaming

    def prepare(self, small: dict, img: dict) -> None:
        self.small, self.img = small, img

    def _write(self, d: Path, columns: dict, rows) -> None:
        with self.streaming.MDSWriter(out=str(d), columns=columns, compression=None) as w:
            for row in rows:
                w.write(row)

    def write_small(self, d: Path) -> None:
        s = self.small
        rows = (
            {"measurement": m, "timestamp": t, "sensor_id": c}
            for m, t, c in zip(s["measurement"], s["timestamp"], s["sensor_id"])
        )
        self._write(
            d, {"measurement": "ndarray:float32:64", "timestamp": "float64", "sensor_id": "str"}, rows
        )

    def write_img(self, d: Path) -> None:
        rows = ({"image": a, "label": lab} for a, lab in zip(self.img["image"], self.img["label"]))
        self._write(d, {"image": "ndarray:uint8:3,224,224", "label": "int"}, rows)

    def open(self, d: Path, kind: str, shuffled: bool = False):
        # one StreamingDataset per local folder and process (it registers the folder in shared memory):
        # the shuffled reader reads a copy made at setup
        local = d.with_name(d.name + "-shuffled") if shuffled else d
        return self.streaming.StreamingDataset(
            local=str(local), shuffle=shuffled, shuffle_seed=0, batch_size=BATCH, predownload=BATCH * 8
        )

    def ordered(self, ds, kind: str):
        yield from batched(ds, kind)

    def shuffled(self, ds, kind: str, seed: int):
        yield from batched(ds, kind)  # a new epoch: a new order (seeded at construction)

    def get(self, ds, k: int, kind: str) -> dict:
        return ds[k]


class Lit:
    """LitData: ``BinaryWriter`` (what ``litdata.optimize`` runs in each of its worker processes; no
    compression, its default), chunks of 64 MB, read with ``StreamingDataset`` on the local folder
    (read in place, no cache copy), samples stacked into batches of 32.

    ``batch_decode`` (how many items LitData decodes at once) is set where its default hurts it:
    ``"auto"`` decodes a window of neighbours (and copies each image out of the memory map) on every
    ``ds[k]``, so random access uses ``0`` (one item, its documented per-item setting), and so do the
    image reads (the docs' ``"auto"`` means one item for images, but it does not see a uint8 array as
    one). The small streaming reads keep ``"auto"``, faster there."""

    CHUNK_BYTES = "64MB"

    def __init__(self) -> None:
        os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")  # else it asks PyPI on every open
        import litdata
        from litdata.streaming.writer import BinaryWriter

        self.litdata, self.writer = litdata, BinaryWriter

    def prepare(self, small: dict, img: dict) -> None:
        self.small, self.img = small, img

    def _write(self, d: Path, rows) -> None:
        w = self.writer(str(d), chunk_bytes=self.CHUNK_BYTES)
        for i, row in enumerate(rows):
            w.add_item(i, row)
        w.done()
        w.merge()

    def write_small(self, d: Path) -> None:
        s = self.small
        self._write(
            d,
            (
                {"measurement": m, "timestamp": t, "sensor_id": c}
                for m, t, c in zip(s["measurement"], s["timestamp"], s["sensor_id"])
            ),
        )

    def write_img(self, d: Path) -> None:
        self._write(d, ({"image": a, "label": lab} for a, lab in zip(self.img["image"], self.img["label"])))

    def open(self, d: Path, kind: str, shuffled: bool = False):
        def dataset(batch_decode):
            return self.litdata.StreamingDataset(str(d), shuffle=shuffled, seed=0, batch_decode=batch_decode)

        return {"stream": dataset("auto" if kind == "small" else 0), "get": dataset(0)}

    def ordered(self, ds, kind: str):
        yield from batched(ds["stream"], kind)

    def shuffled(self, ds, kind: str, seed: int):
        ds["stream"].set_epoch(seed + 1)  # a new order each round (bare iteration keeps the epoch)
        yield from batched(ds["stream"], kind)

    def get(self, ds, k: int, kind: str) -> dict:
        return ds["get"][k]


PEERS = {"lance": Lance, "hf": HF, "wds": WDS, "mds": MDS, "lit": Lit}


# --------------------------------------------------------------------------------- the rounds


def timed(fn) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drain(batches) -> int:
    n = touched = 0
    for b in batches:
        touched += touch_all(b)
        first = next(iter(b.values())) if isinstance(b, dict) else b[0]
        n += len(first)
    return n


class Server:
    def __init__(self, lib: str) -> None:
        self.lib = lib
        self.peer = PEERS[lib]()

    def setup(self, d: str, n_small: int, n_img: int) -> dict:
        self.dir = Path(d)
        self.n_small, self.n_img = n_small, n_img
        self.peer.n_small, self.peer.n_img = n_small, n_img
        small, img = small_data(n_small), image_data(n_img)
        dig = digest(small, img)
        self.peer.prepare(small, img)
        self.peer.write_small(self.dir / "small")
        self.peer.write_img(self.dir / "img")
        if self.lib == "mds":
            for kind in ("small", "img"):
                shutil.copytree(self.dir / kind, self.dir / f"{kind}-shuffled")
        self.ds = {kind: self.peer.open(self.dir / kind, kind) for kind in ("small", "img")}
        self.shuf = {kind: self.peer.open(self.dir / kind, kind, shuffled=True) for kind in ("small", "img")}
        for kind, n in (("small", n_small), ("img", n_img)):  # warm, and check the count once
            got = drain(self.peer.ordered(self.ds[kind], kind))
            if got != n:
                raise RuntimeError(f"{self.lib} read {got} {kind} samples, wrote {n}")
        return {
            "digest": dig,
            "small_bytes": du(self.dir / "small"),
            "img_bytes": du(self.dir / "img"),
            "img_files": sorted(str(p) for p in (self.dir / "img").rglob("*") if p.is_file()),
        }

    def round(self, k: int) -> dict:
        p, out = self.peer, {}
        for kind in ("small", "img"):
            target = self.dir / f"w{k}-{kind}"
            out[f"write_{kind}_s"] = timed(lambda: getattr(p, f"write_{kind}")(target))  # noqa: B023
            out[f"sync_{kind}_s"] = timed(lambda: fsync_tree(target))  # noqa: B023
            shutil.rmtree(target, ignore_errors=True)
        for kind, n in (("small", self.n_small), ("img", self.n_img)):
            ds = self.ds[kind]
            out[f"read_{kind}_s"] = timed(lambda: drain(p.ordered(ds, kind)))  # noqa: B023
            shuf = self.shuf[kind]
            out[f"shuffled_{kind}_s"] = timed(lambda: drain(p.shuffled(shuf, kind, k)))  # noqa: B023
            ks = np.random.default_rng(100 + k).integers(0, n, RANDOM_K)
            touch_all(p.get(ds, int(ks[0]), kind))
            lat = []
            for j in ks:
                t = time.perf_counter()
                touch_all(p.get(ds, int(j), kind))
                lat.append(time.perf_counter() - t)
            out[f"random_{kind}_s"] = statistics.median(lat)
        return out


def serve(lib: str) -> None:
    server = Server(lib)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        if msg["cmd"] == "setup":
            ans = server.setup(msg["dir"], msg["n_small"], msg["n_img"])
        elif msg["cmd"] == "round":
            ans = server.round(msg["k"])
        else:
            raise ValueError(f"unknown command {msg['cmd']!r}")
        print(json.dumps(ans), flush=True)


def rss(lib: str, d: str) -> None:
    """Peak RSS of this fresh process streaming the images written by ``setup`` into ``d``.

    torch is blocked for every library but MDS and LitData (which need it): webdataset would import it just
    because it is installed (wids, in the same venv, needs it), ~150 MB that a user without torch
    does not pay."""
    if lib not in ("mds", "lit"):
        sys.modules["torch"] = None  # type: ignore[assignment]
    peer = PEERS[lib]()
    peer.n_small = peer.n_img = 0
    img = Path(d) / "img"
    peer.random_access = False
    base = hwm_mb()
    t = time.perf_counter()
    ds = peer.open(img, "img")
    n = drain(peer.ordered(ds, "img"))
    print(
        json.dumps({"samples": n, "base_mb": base, "peak_mb": hwm_mb(), "seconds": time.perf_counter() - t})
    )


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in PEERS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(PEERS)}}} serve | rss DIR")
    os.environ.setdefault("HF_HOME", str(Path(sys.argv[-1] if sys.argv[2] == "rss" else "/tmp") / ".hf"))
    if sys.argv[2] == "serve":
        serve(sys.argv[1])
    else:
        rss(sys.argv[1], sys.argv[3])
