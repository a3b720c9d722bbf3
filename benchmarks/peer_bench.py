"""The ``peers`` section of ``benchmarks/run.py``: atdata-lab beside the libraries a user would pick
instead, on identical data, in one run.

The peers (Lance, Hugging Face datasets, webdataset + wids, MosaicML streaming, LitData) run in their own
cached venvs (``peer_env.py``), one long-lived process each (``peers.py LIB serve``); atdata-lab
runs here. Every side gets the same data (``peers.small_data`` / ``peers.image_data``: the same
functions and seeds, checked by a digest), decodes it into stacked numpy batches of 32 and touches
every page of every array (``peers.touch``). Rounds are interleaved (each round runs every side once,
in a rotating order) and the figures are medians over the rounds. The physical reference is
``readinto`` of each side's image files into one reused buffer, in the same rounds. Peak RSS is
measured last, in a fresh process per library.
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atdata_lab as atdata  # noqa: E402
from benchmarks import peer_env  # noqa: E402
from benchmarks.peers import (  # noqa: E402
    BATCH,
    IMG_BYTES,
    RANDOM_K,
    digest,
    image_data,
    small_data,
    small_table,
    touch_all,
)

NAMES = {"lance": "Lance", "hf": "HF datasets", "wds": "webdataset", "mds": "MDS", "lit": "LitData"}
SMALL_FIELDS = ("measurement", "timestamp", "sensor_id")
IMG_FIELDS = ("image", "label")


def readinto_seconds(files: list[str]) -> float:
    """The physical reference: every file read into one reused 8 MB buffer (one kernel copy)."""
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    t = time.perf_counter()
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while fh.readinto(view):
                pass
    return time.perf_counter() - t


def _timed(fn) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _drain(batches, fields) -> int:
    n = 0
    for b in batches:
        touch_all([getattr(b, f) for f in fields])
        n += len(b)
    return n


class Ours:
    """atdata-lab's side, in this process: the same figures as ``peers.Server``."""

    def __init__(self, small_cls, img_cls) -> None:
        self.small_cls, self.img_cls = small_cls, img_cls
        self.column_options: dict = {}

    def setup(self, d: Path, n_small: int, n_img: int) -> dict:
        self.dir, self.n_small, self.n_img = d, n_small, n_img
        s, i = small_data(n_small), image_data(n_img)
        self.small = [self.small_cls(*v) for v in zip(s["measurement"], s["timestamp"], s["sensor_id"])]
        self.img = [self.img_cls(*v) for v in zip(i["image"], i["label"])]
        # from columns: the very Table Lance writes, built before the clock as Lance's is
        self.columns = small_table(s)
        self.ds = {
            "small": atdata.write_samples(self.small, d / "small" / "d", maxcount=10_000),
            "img": atdata.write_samples(self.img, d / "img" / "d", maxcount=500),
        }
        out = {
            "digest": digest(s, i),
            "small_bytes": sum(self.ds["small"].shard_info(u).size for u in self.ds["small"].urls),
            "img_bytes": sum(self.ds["img"].shard_info(u).size for u in self.ds["img"].urls),
            "img_files": list(self.ds["img"].urls),
            "columns": self._write_columns(d / "columns-probe"),
        }
        if "compression" in inspect.signature(atdata.write_samples).parameters:  # the compact option
            try:
                gz = atdata.write_samples(self.small, d / "gz" / "d", maxcount=10_000, compression="gzip")
                out["gzip_bytes"] = sum(os.path.getsize(u) for u in gz.urls)
            except Exception as e:  # report, don't crash the table
                out["gzip_bytes"] = f"failed: {str(e)[:60]}"
        return out

    def _write_columns(self, d: Path) -> bool | str:
        """Writes the small samples from columns, if this build of atdata-lab takes columns (a dict
        of columns alone, or with the sample type named); remembers the form that worked."""
        why = ""
        for extra in ({}, {"sample_type": self.small_cls}):
            try:
                ds = atdata.write_samples(self.columns, d / "d", maxcount=10_000, **extra)  # type: ignore[arg-type]
            except Exception as e:
                why = why or f"{type(e).__name__}: {str(e)[:60]}"
                continue
            got = sum(len(b) for b in ds.ordered(batch_size=1024))
            shutil.rmtree(d, ignore_errors=True)
            self.column_options = extra
            return True if got == self.n_small else f"wrote {got} of {self.n_small} samples"
        return why

    def round(self, k: int, columns: bool) -> dict:
        out = {}
        # the small writes first, as on the peers' side (a write timed just after 300 MB of images
        # were written, synced and deleted waits on the disk for them)
        writes = [("small", self.small, 10_000, {}), ("img", self.img, 500, {})]
        if columns:
            writes.insert(1, ("columns", self.columns, 10_000, self.column_options))
        for kind, samples, maxcount, options in writes:
            target = self.dir / f"w{k}-{kind}"
            out[f"write_{kind}_s"] = _timed(
                lambda s=samples, t=target, m=maxcount, o=options: atdata.write_samples(
                    s, t / "d", maxcount=m, **o
                )
            )
            shutil.rmtree(target, ignore_errors=True)
        for kind, n, fields in (("small", self.n_small, SMALL_FIELDS), ("img", self.n_img, IMG_FIELDS)):
            ds = self.ds[kind]
            out[f"read_{kind}_s"] = _timed(lambda: _drain(ds.ordered(batch_size=BATCH), fields))  # noqa: B023
            out[f"shuffled_{kind}_s"] = _timed(
                lambda: _drain(ds.shuffled(buffer=1000, seed=k, batch_size=BATCH), fields)  # noqa: B023
            )
            ks = np.random.default_rng(100 + k).integers(0, n, RANDOM_K)
            ds[int(ks[0])]
            lat = []
            for j in ks:
                t = time.perf_counter()
                s = ds[int(j)]
                touch_all([getattr(s, f) for f in fields])
                lat.append(time.perf_counter() - t)
            out[f"random_{kind}_s"] = statistics.median(lat)
        return out


RSS_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from benchmarks.peers import hwm_mb, touch_all
import atdata_lab as atdata
ds = atdata.Dataset(sys.argv[1])
base = hwm_mb()
n = 0
t = time.perf_counter()
for b in ds.ordered(batch_size=32):
    touch_all([b.image, b.label])
    n += len(b)
print(json.dumps({"samples": n, "base_mb": base, "peak_mb": hwm_mb(), "seconds": time.perf_counter() - t}))
"""


class Peer:
    """One peer library's ``peers.py LIB serve`` process."""

    def __init__(self, lib: str, tmp: Path) -> None:
        self.lib = lib
        self.log = tmp / f"peer-{lib}.stderr"
        self.proc: subprocess.Popen | None = None
        self.error = ""
        try:
            python = peer_env.ensure_venv(peer_env.LIBRARIES[lib])
            with open(self.log, "w") as err:
                self.proc = subprocess.Popen(
                    [str(python), str(ROOT / "benchmarks" / "peers.py"), lib, "serve"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=peer_env.clean_env(
                        {"HF_HOME": str(tmp / "hf-home"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
                    ),
                )
        except Exception as e:  # no venv: say so in the table
            self.error = f"not measured: {str(e)[:120]}"

    def send(self, msg: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict | None:
        """The next answer, or None (and ``error`` set) when the process failed."""
        if self.proc is None:
            return None
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            tail = self.log.read_text()[-300:].strip().splitlines()
            self.error = f"failed: {tail[-1] if tail else f'exit {self.proc.returncode}'}"[:160]
            self.proc = None
            return None
        return json.loads(line)

    def ask(self, msg: dict) -> dict | None:
        if self.proc is None:
            return None
        try:
            self.send(msg)
        except (BrokenPipeError, OSError):
            return self.answer()
        return self.answer()

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.send({"cmd": "quit"})
                self.proc.wait(60)
            except Exception:
                self.proc.kill()


def _rss(lib: str, d: Path, tmp: Path) -> dict | str:
    try:
        if lib == "ours":
            urls = sorted(str(p) for p in (d / "img").glob("d-*.tar"))
            spec = urls[0] if len(urls) == 1 else str(d / "img" / f"d-{{000000..{len(urls) - 1:06d}}}.tar")
            cmd = [sys.executable, "-c", RSS_CHILD, spec, str(ROOT)]
            env = None
        else:
            python = peer_env.ensure_venv(peer_env.LIBRARIES[lib])
            cmd = [str(python), str(ROOT / "benchmarks" / "peers.py"), lib, "rss", str(d)]
            env = peer_env.clean_env({"HF_HOME": str(tmp / "hf-home")})
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        if out.returncode != 0:
            return f"failed: {out.stderr.strip().splitlines()[-1][:100] if out.stderr.strip() else out.returncode}"
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as e:  # report, don't crash the table
        return f"failed: {str(e)[:100]}"


def bench_peers(tmp: Path, n_small: int, n_img: int, rounds: int, small_cls, img_cls) -> dict:
    """Every figure of every side, ``rounds`` interleaved rounds; medians, setup facts, peak RSS."""
    peers = {lib: Peer(lib, tmp) for lib in NAMES}
    info: dict = {}
    try:
        for lib, p in peers.items():  # the peers set up in parallel (not timed) while ours does
            (tmp / f"peer-{lib}").mkdir()
            if p.proc is not None:
                p.send({"cmd": "setup", "dir": str(tmp / f"peer-{lib}"), "n_small": n_small, "n_img": n_img})
        ours = Ours(small_cls, img_cls)
        info["ours"] = ours.setup(tmp / "peer-ours", n_small, n_img)
        columns = info["ours"]["columns"] is True
        for lib, p in peers.items():
            got = p.answer()
            if got is not None:
                info[lib] = got
                if got["digest"] != info["ours"]["digest"]:
                    p.error = "not measured: its data differ from ours (digest)"
                    p.close()
                    p.proc = None
        times: dict[str, list[dict]] = {side: [] for side in ("ours", *NAMES)}
        raw: dict[str, list[float]] = {side: [] for side in times}
        sides = list(times)
        for r in range(rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]
            for side in order:
                if side == "ours":
                    times["ours"].append(ours.round(r, columns))
                else:
                    got = peers[side].ask({"cmd": "round", "k": r})
                    if got is None:
                        continue
                    times[side].append(got)
                if side in info:
                    raw[side].append(readinto_seconds(info[side]["img_files"]))
    finally:
        for p in peers.values():
            p.close()
    res: dict = {"n_small": n_small, "n_img": n_img, "rounds": rounds, "columns": info["ours"]["columns"]}
    for side in times:
        if side != "ours" and (peers[side].error or not times[side]):
            res[side] = peers[side].error or "not measured"
            continue
        med = {key: statistics.median(t[key] for t in times[side]) for key in times[side][0]}
        med["raw_img_s"] = statistics.median(raw[side])
        med["small_bytes"] = info[side]["small_bytes"]
        med["img_bytes"] = info[side]["img_bytes"]
        if "gzip_bytes" in info[side]:
            med["gzip_bytes"] = info[side]["gzip_bytes"]
        res[side] = med
    for side in ("ours", *NAMES):  # last, one fresh process each, one after the other
        if isinstance(res[side], dict):
            res[side]["rss"] = _rss(side, tmp / f"peer-{side}", tmp)
    res["versions"] = {**peer_env.versions("peers"), **peer_env.versions("mds")}
    return res


# ------------------------------------------------------------------------------------------ rows


def _fmt(v: float, unit: str) -> str:
    if unit == "us":
        return f"{v * 1e6:,.0f}"
    if unit == "mb":
        return f"{v:,.0f}"
    return f"{v:,.0f}"


def peer_rows(row, res: dict) -> None:
    """The rows of the peers table: our figure, every peer's, ours / the best peer's, the target."""
    ns, ni = res["n_small"], res["n_img"]
    img_mb = ni * IMG_BYTES / 1e6
    ours = res["ours"]
    peers = {lib: res[lib] for lib in NAMES if isinstance(res.get(lib), dict)}
    missing = "; ".join(
        f"{NAMES[lib]}: {res.get(lib, 'not measured')}" for lib in NAMES if not isinstance(res.get(lib), dict)
    )

    def figure(name, value, higher_better=True, fmt="{:,.0f}", ours_cell=None, extra="", target="—"):
        vals = {lib: value(p) for lib, p in peers.items()}
        vals = {lib: v for lib, v in vals.items() if v is not None}
        mine = value(ours)
        if not vals:
            row(name, ours_cell or fmt.format(mine), missing or "—", "—", target)
            return
        best = max(vals, key=vals.get) if higher_better else min(vals, key=vals.get)
        others = "; ".join(
            f"{NAMES[lib]} {fmt.format(v)}"
            for lib, v in sorted(vals.items(), key=lambda x: -x[1] if higher_better else x[1])
        )
        ratio = f"{mine / vals[best]:.2f}x {NAMES[best]}"
        # the extra ratios name other peers or other forms of ours; one equal to the first is dropped
        ratio += "".join(f"; {e}" for e in extra.split("; ") if e and e != ratio)
        row(name, ours_cell or fmt.format(mine), others + (f"; {missing}" if missing else ""), ratio, target)

    sw = ns / ours["write_small_s"]
    hf = peers.get("hf")
    lance = peers.get("lance")
    cols = ns / ours["write_columns_s"] if "write_columns_s" in ours else None
    extra = ""

    def durable(p: dict) -> float:  # a peer's write and then the fsync of its files (ours fsyncs inside)
        return ns / (p["write_small_s"] + p.get("sync_small_s", 0.0))

    if hf:
        extra += (
            f"; {sw / (ns / hf['write_small_s']):.2f}x HF from_dict ({sw / durable(hf):.2f}x with its fsync)"
        )
    if cols and lance:
        extra += (
            f"; columns {cols / (ns / lance['write_small_s']):.2f}x Lance "
            f"({cols / durable(lance):.2f}x Lance + fsync of its files)"
        )
    figure(
        f"small write ({ns:,}), samples/s (ours: per object{' / from columns' if cols else ''})",
        lambda p: ns / p["write_small_s"],
        ours_cell=f"{sw:,.0f}" + (f" / {cols:,.0f}" if cols else " / columns not taken by this build"),
        extra=extra,
        target="columns >= 1.0x Lance; per object >= 1.5x HF from_dict",
    )
    figure(
        f"image write ({ni:,} x 3x224x224 uint8), MB/s of pixels",
        lambda p: img_mb / p["write_img_s"],
        target=">= 1.0x best peer",
    )
    gz = ours.get("gzip_bytes")
    figure(
        "bytes on disk per small sample (lower is better)",
        lambda p: p["small_bytes"] / ns,
        higher_better=False,
        ours_cell=f"{ours['small_bytes'] / ns:,.0f}"
        + (
            f" (gzip: {gz / ns:,.0f})"
            if isinstance(gz, int)
            else f" ({gz})"
            if gz
            else " (no compact option in this build)"
        ),
        extra=(
            f"; gzip {gz / min(p['small_bytes'] for p in peers.values()):.2f}x "
            + NAMES[min(peers, key=lambda lib: peers[lib]["small_bytes"])]
            if isinstance(gz, int) and peers
            else ""
        ),
        target="compact <= 1.2x best peer",
    )
    figure(
        "small ordered read (batch 32), samples/s",
        lambda p: ns / p["read_small_s"],
        extra=f"; {(ns / ours['read_small_s']) / (ns / lance['read_small_s']):.2f}x Lance" if lance else "",
        target=">= 1.0x Lance",
    )
    raw = img_mb / ours["raw_img_s"]
    ir = img_mb / ours["read_img_s"]
    figure(
        "image ordered read (batch 32), MB/s",
        lambda p: img_mb / p["read_img_s"],
        ours_cell=f"{ir:,.0f} ({ir / raw:.0%} of readinto of the same files: {raw:,.0f})",
        target=">= 1.0x best peer, >= 70% of readinto",
    )
    for kind, n, label in (("small", ns, "small"), ("img", ni, "image")):
        figure(
            f"{label} shuffled read (batch 32), samples/s",
            lambda p, kind=kind, n=n: n / p[f"shuffled_{kind}_s"],
            target="> 1x (keep the lead)",
        )
    for kind, label in (("small", "small"), ("img", "image")):
        figure(
            f"random access to sample k, {label}, p50 us (lower is better)",
            lambda p, kind=kind: p[f"random_{kind}_s"] * 1e6,
            higher_better=False,
            target="< 1x (keep the lead)",
        )
    if isinstance(ours.get("rss"), dict):
        wds = peers.get("wds")
        figure(
            f"peak RSS streaming the {ni:,} images (fresh process; lower is better), MB",
            lambda p: p["rss"]["peak_mb"] if isinstance(p.get("rss"), dict) else None,
            higher_better=False,
            ours_cell=f"{ours['rss']['peak_mb']:.0f} (after imports: {ours['rss']['base_mb']:.0f})",
            extra=(
                f"; {ours['rss']['peak_mb'] / wds['rss']['peak_mb']:.2f}x webdataset"
                if wds and isinstance(wds.get("rss"), dict)
                else ""
            ),
            target="<= webdataset's",
        )


def print_peer_table(res: dict) -> None:
    print()
    print(
        f"## Peers ({res['n_small']:,} small samples of {{float32[64], float, str}}, {res['n_img']:,} images "
        f"uint8[3,224,224]; medians of {res['rounds']} interleaved rounds)"
    )
    print()
    v = res.get("versions", {})
    print(
        "Peers: "
        + ", ".join(
            f"{k} {v[k]}"
            for k in ("pylance", "datasets", "pyarrow", "webdataset", "wids", "mosaicml-streaming", "litdata")
            if k in v
        )
        + "."
    )
    print()
    print("| figure | atdata-lab | peers (best first) | atdata-lab / best peer | target |")
    print("|---|---|---|---|---|")

    def row(fig, ours, theirs="—", ratio="—", target="—"):
        print(f"| {fig} | {ours} | {theirs} | {ratio} | {target} |")

    peer_rows(row, res)
    for lib in NAMES:
        if isinstance(res.get(lib), dict) and isinstance(res[lib].get("rss"), dict):
            r = res[lib]["rss"]
            print(f"  - {NAMES[lib]}: peak RSS {r['peak_mb']:.0f} MB, after imports {r['base_mb']:.0f} MB")
        elif isinstance(res.get(lib), dict):
            print(f"  - {NAMES[lib]}: peak RSS {res[lib].get('rss')}")
