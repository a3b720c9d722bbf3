"""Writes and times the tutorial ``ExperimentSample`` dataset with the real atdata 0.7.

Runs INSIDE the reference venv (Python 3.12 + ``atdata==0.7.0b1``); see
``tests/support/atdata_reference.py``. The sample type is the one of atdata's promotion tutorial
(and of the fixtures in ``tests/fixtures/atdata-0.7/``)::

    @atdata.packable
    class ExperimentSample:
        measurement: NDArray      # float32, shape (64,)
        timestamp: float
        sensor_id: str

Sample ``i`` is ``measurement = rng.standard_normal(64).astype(float32)`` (one
``np.random.default_rng(seed)`` for the whole run), ``timestamp = float(i)`` and
``sensor_id = f"sensor_{i % 4}"``.

Commands (each prints one JSON document on stdout):

``write OUT_DIR [--n N] [--maxcount M] [--seed S] [--prefix P] [--via {write_samples,index}]``
    Writes N samples. ``--via write_samples`` (default) calls
    ``atdata.write_samples(samples, OUT_DIR/P.tar, maxcount=M)``, which produces
    ``P-000000.tar, ...``; ``--via index`` calls ``atdata.Index(provider="sqlite", path=...,
    data_store=atdata.LocalDiskStore(root=OUT_DIR), atmosphere=None).write_samples(samples,
    name=P, maxcount=M)`` (the tutorial path: it writes to a temp dir, then re-serialises every
    sample into ``OUT_DIR/P/data--<uuid>--%06d.tar``). Prints ``{"via", "shards", "samples",
    "seconds", "samples_per_s"}``; only the atdata call is timed, not sample generation.

``bench [--n N] [--maxcount M] [--batch-size B] [--repeat R] [--via ...] [SHARD ...]``
    Times a write of N samples (as above, into a temp dir; ``--n 0`` skips it) and then reads
    SHARDs (default: the shards just written) with ``atdata.Dataset[ExperimentSample](url)``:
    unbatched ``ordered(batch_size=None)`` touching every field, and batched
    ``ordered(batch_size=B)`` touching ``batch.measurement`` (np.stack) and the list fields.
    The best of R read passes is reported. Prints ``{"write": {...}, "read": {...},
    "read_batched": {...}}`` with ``samples``, ``seconds``, ``samples_per_s``.
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import atdata
import numpy as np
from numpy.typing import NDArray


@atdata.packable
class ExperimentSample:
    """A sample from a scientific experiment."""

    measurement: NDArray
    timestamp: float
    sensor_id: str


def make_samples(n: int, seed: int = 0) -> list[ExperimentSample]:
    """Builds the tutorial samples (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    return [
        ExperimentSample(
            measurement=rng.standard_normal(64).astype(np.float32),
            timestamp=float(i),
            sensor_id=f"sensor_{i % 4}",
        )
        for i in range(n)
    ]


def write(out_dir: Path, n: int, maxcount: int, seed: int, prefix: str, via: str) -> dict[str, Any]:
    """Writes ``n`` samples with atdata's own writer and times only the atdata call."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = make_samples(n, seed)
    t0 = time.perf_counter()
    if via == "write_samples":
        ds = atdata.write_samples(samples, out_dir / f"{prefix}.tar", maxcount=maxcount)
        shards = ds.list_shards()
    elif via == "index":
        with tempfile.TemporaryDirectory() as tmp:
            index = atdata.Index(
                provider="sqlite",
                path=str(Path(tmp) / "index.db"),
                data_store=atdata.LocalDiskStore(root=out_dir),
                atmosphere=None,
            )
            entry = index.write_samples(samples, name=prefix, maxcount=maxcount)
            shards = list(entry.data_urls)
    else:
        raise SystemExit(f"unknown --via {via!r}")
    seconds = time.perf_counter() - t0
    return {
        "via": via,
        "shards": [str(s) for s in shards],
        "samples": n,
        "bytes": sum(Path(s).stat().st_size for s in shards),
        "seconds": round(seconds, 4),
        "samples_per_s": round(n / seconds, 1) if seconds > 0 else None,
    }


def _url(shards: list[str]) -> str:
    """One WebDataset URL for several shards, built the way atdata itself does."""
    from atdata._hf_api import _shards_to_wds_url

    return _shards_to_wds_url(shards)


def time_read(shards: list[str], batch_size: int | None, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` time to read every sample of ``shards`` with atdata."""
    url = _url(shards)
    best = None
    count = 0
    for _ in range(max(1, repeat)):
        ds = atdata.Dataset[ExperimentSample](url)
        count = 0
        checksum = 0.0
        t0 = time.perf_counter()
        if batch_size is None:
            for s in ds.ordered(batch_size=None):
                checksum += float(s.measurement[0]) + s.timestamp + len(s.sensor_id)
                count += 1
        else:
            for b in ds.ordered(batch_size=batch_size):
                m = b.measurement
                checksum += float(m[0, 0]) + sum(b.timestamp) + len(b.sensor_id)
                count += m.shape[0]
        seconds = time.perf_counter() - t0
        best = seconds if best is None else min(best, seconds)
    return {
        "samples": count,
        "batch_size": batch_size,
        "seconds": round(best, 4),
        "samples_per_s": round(count / best, 1) if best else None,
        "repeat": repeat,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    w = sub.add_parser("write", help="write N tutorial samples with atdata")
    w.add_argument("out_dir", type=Path)
    b = sub.add_parser("bench", help="time atdata's write and read")
    b.add_argument("shards", nargs="*", help="existing ExperimentSample shards to read")
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--repeat", type=int, default=3)
    for sp in (w, b):
        sp.add_argument("--n", type=int, default=1000)
        sp.add_argument("--maxcount", type=int, default=10_000)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--prefix", default="experiment")
        sp.add_argument("--via", choices=("write_samples", "index"), default="write_samples")
    args = p.parse_args(argv)

    # webdataset's ShardWriter prints "# writing ..." on stdout: send that to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        result = _run(args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs the parsed command and returns its JSON-ready result."""
    if args.cmd == "write":
        return write(args.out_dir, args.n, args.maxcount, args.seed, args.prefix, args.via)
    result: dict[str, Any] = {"atdata_version": _version(), "numpy_version": np.__version__}
    with tempfile.TemporaryDirectory(prefix="atdata-bench-") as tmp:
        shards = list(args.shards)
        if args.n > 0:
            result["write"] = write(Path(tmp), args.n, args.maxcount, args.seed, args.prefix, args.via)
            shards = shards or result["write"]["shards"]
        if not shards:
            raise SystemExit("bench: nothing to read (give SHARDs or --n > 0)")
        result["read"] = time_read(shards, None, args.repeat)
        result["read_batched"] = time_read(shards, args.batch_size, args.repeat)
    return result


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("atdata")


if __name__ == "__main__":
    sys.exit(main())
