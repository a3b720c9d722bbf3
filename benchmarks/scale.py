"""Rows for the past-one-machine features (docs/scale.md): shuffle quality, DataLoader workers, Ray.

Each function returns table rows ``(figure, ours, theirs, ratio, target)``; ``benchmarks/run.py``
prints them. Run alone with ``python benchmarks/scale.py [--quick]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atdata_lab as atdata  # noqa: E402


@atdata.packable
class Labelled:
    """A 32x32x3 uint8 image and its label."""

    image: NDArray
    label: int


def _sorted_dataset(tmp: Path, n: int, per_shard: int, classes: int) -> atdata.Dataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), n // classes)  # stored sorted by label: the worst case
    samples = (
        Labelled(image=rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), label=int(y)) for y in labels
    )
    ds = atdata.write_samples(samples, tmp / "sorted", maxcount=per_shard)
    return atdata.Dataset[Labelled](ds.urls)


def _quality(labels: list[int], classes: int, batch: int = 256) -> tuple[float, float]:
    """(rank correlation of read order vs storage order, mean label entropy per batch in bits)."""
    y = np.asarray(labels)
    # storage position of each read sample: samples of one label are contiguous, so the label's
    # rank stands in for it (ties share a rank), which is what a Spearman correlation looks at
    r = float(np.corrcoef(np.arange(len(y)), y)[0, 1])
    ents = []
    for i in range(0, len(y) - batch + 1, batch):
        _, c = np.unique(y[i : i + batch], return_counts=True)
        p = c / c.sum()
        ents.append(float(-(p * np.log2(p)).sum()))
    return r, float(np.mean(ents))


# run inside the cached py3.12 venv with the real atdata 0.7 (tests/support/atdata_reference.py)
_ATDATA_SHUFFLE = """
import json, sys
import atdata
from numpy.typing import NDArray

@atdata.packable
class Labelled:
    image: NDArray
    label: int

ds = atdata.Dataset[Labelled](sys.argv[2])
print(json.dumps({"labels": [int(s.label) for s in ds.shuffled(buffer_samples=int(sys.argv[1]))]}))
"""


def _atdata_shuffle_labels(urls: list[str], buffer_samples: int) -> list[int] | None:
    """The labels in the order atdata 0.7's ``shuffled()`` reads ``urls`` (None without its venv)."""
    try:
        from tests.support import atdata_reference as ref
    except ImportError:  # benchmarks run outside the repository
        return None
    py, _ = ref.atdata_venv_status()
    if py is None:
        return None
    stem = urls[0].rsplit("-", 1)[0]  # write_samples' names: <stem>-000000.tar ...
    digits = len(urls[0].rsplit("-", 1)[1]) - len(".tar")
    assert urls == [f"{stem}-{i:0{digits}d}.tar" for i in range(len(urls))]
    pattern = f"{stem}-{{{0:0{digits}d}..{len(urls) - 1:0{digits}d}}}.tar"
    return ref.run_atdata_json(_ATDATA_SHUFFLE, str(buffer_samples), pattern, timeout=1200)["labels"]


def shuffle_quality(tmp: Path, quick: bool) -> list[tuple]:
    n, per, classes = (100_000, 1_000, 100) if not quick else (20_000, 500, 100)
    ds = _sorted_dataset(tmp, n, per, classes)
    ideal = math.log2(classes)
    got: dict[str, list[int]] = {
        "atdata-lab shuffled(seed, epoch), all shards": [s.label for s in ds.shuffled(seed=1, epoch=0)],
        "atdata-lab shuffled(seed, epoch, block=16)": [
            s.label for s in ds.shuffled(seed=1, epoch=0, block=16)
        ],
        "atdata-lab shuffled(buffer=1000, seed)": [s.label for s in ds.shuffled(buffer=1000, seed=1)],
    }
    try:
        import msgpack
        import webdataset as wds

        pipe = wds.WebDataset(ds.urls, shardshuffle=len(ds.urls), seed=1).shuffle(1000)
        got["webdataset .shuffle(1000) + shardshuffle"] = [
            msgpack.unpackb(s["msgpack"])["label"] for s in pipe
        ]
    except ImportError:
        pass
    failed: list[tuple] = []
    for name, buffer in (
        ("atdata 0.7 shuffled(), its defaults: 100 shards and 10,000 samples buffered, no seed", 10_000),
        ("atdata 0.7 shuffled(buffer_samples=1000)", 1_000),
    ):
        try:
            labels = _atdata_shuffle_labels(ds.urls, buffer)
        except Exception as e:  # atdata's venv failed: its row says so, the others stay
            failed.append((f"shuffle quality, {name}", f"failed: {e!r}"[:200], "—", "—", "—"))
            continue
        if labels is not None:
            got[name] = labels
    rows: list[tuple] = []
    for name, labels in got.items():
        assert sorted(labels) == sorted(s.label for s in ds.ordered())
        r, ent = _quality(labels, classes)
        figure = f"{r:+.3f} / {ent:.2f}"
        ours = not name.startswith(("atdata 0.7", "webdataset"))
        rows.append(
            (
                f"shuffle quality, {name}: rank corr. vs storage / label entropy per 256-batch (bits), "
                f"{n:,} samples sorted by {classes} labels",
                figure if ours else "—",
                "—" if ours else figure,
                f"{ent / ideal:.0%} of {ideal:.2f} bits",
                "corr ~0, entropy near max",
            )
        )
    return rows + failed


def dataloader_throughput(tmp: Path, quick: bool) -> list[tuple]:
    try:
        from torch.utils.data import DataLoader
    except ImportError as e:
        return [("DataLoader throughput", f"not measured: {e}", "—", "—", "—")]
    n = 40_000 if not quick else 10_000
    (tmp / "dl").mkdir()
    ds = _sorted_dataset(tmp / "dl", n, 2_000, 10)

    def one(shuffle: bool) -> float:
        t = time.perf_counter()
        it = ds.shuffled(seed=0, epoch=0, batch_size=64) if shuffle else ds.ordered(batch_size=64)
        assert sum(len(b) for b in it) == n
        return time.perf_counter() - t

    def workers(w: int, shuffle: bool) -> float:
        tds = ds.to_torch(batch_size=64, shuffle=shuffle, seed=0)
        dl = DataLoader(tds, batch_size=None, num_workers=w)
        t = time.perf_counter()
        assert sum(len(b) for b in dl) == n
        return time.perf_counter() - t

    rows = []
    for shuffle in (False, True):
        single = min(one(shuffle) for _ in range(3))
        two = min(workers(2, shuffle) for _ in range(3))
        what = "elastic shuffle" if shuffle else "in order"
        rows.append(
            (
                f"DataLoader, 2 workers, batches of 64 (32x32x3 images, {what}), samples/s",
                f"{n / two:,.0f}",
                f"one process, no DataLoader: {n / single:,.0f}",
                f"{single / two:.2f}x of one process",
                "—",
            )
        )
    return rows


def ray_read(tmp: Path, quick: bool) -> list[tuple]:
    try:
        import msgpack
        import ray

        from atdata_lab.integrations.ray import read_dataset
        from atdata_lab.ndarray_codec import decode_ndarray
    except ImportError as e:
        return [("Ray read", f"not measured: {e}", "—", "—", "—")]
    n = 40_000 if not quick else 10_000
    (tmp / "ray").mkdir()
    ds = _sorted_dataset(tmp / "ray", n, 2_500, 10)
    urls = ds.urls

    def ours_single() -> float:
        t = time.perf_counter()
        total = sum(
            int(b.label.sum() if hasattr(b.label, "sum") else sum(b.label))
            for b in ds.ordered(batch_size=1024)
        )
        assert total == sum(range(10)) * (n // 10)
        return time.perf_counter() - t

    def decode(batch):
        rows = [msgpack.unpackb(b) for b in batch["msgpack"]]
        return {
            "image": np.stack([decode_ndarray(r["image"]) for r in rows]),
            "label": np.array([r["label"] for r in rows]),
        }

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False

        def timed(make) -> float:
            best = math.inf
            for _ in range(3):
                t = time.perf_counter()
                total = sum(int(b["label"].sum()) for b in make().iter_batches(batch_size=1024))
                best = min(best, time.perf_counter() - t)
                assert total == sum(range(10)) * (n // 10)
            return best

        ours = timed(lambda: read_dataset(urls, sample_type=Labelled))
        theirs = timed(
            lambda: ray.data.read_webdataset(urls, decoder=None).map_batches(decode, batch_format="numpy")
        )
    finally:
        ray.shutdown()
    single = min(ours_single() for _ in range(3))
    return [
        (
            f"Ray Data read, {n:,} 32x32x3 images in {len(urls)} shards, 1 node x 2 CPUs, samples/s",
            f"{n / ours:,.0f}",
            f"read_webdataset + msgpack decoder: {n / theirs:,.0f}; our single process: {n / single:,.0f}",
            f"{theirs / ours:.2f}x read_webdataset",
            "> 1x read_webdataset",
        )
    ]


def scale_rows(tmp: Path, quick: bool) -> list[tuple]:
    rows = []
    for fn in (shuffle_quality, dataloader_throughput, ray_read):
        try:
            rows += fn(tmp, quick)
        except Exception as e:  # one failed figure must not hide the others
            rows.append((fn.__name__, f"failed: {e!r}"[:200], "—", "—", "—"))
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for r in scale_rows(Path(d), "--quick" in sys.argv):
            print("| " + " | ".join(r) + " |")
