"""The peers of ``make bench`` (benchmarks/peer_env.py, peers.py, peer_bench.py) on tiny data.

Builds the two cached peer venvs when they are missing (``~/.cache/atdata-lab/peers-*``, with
LitData, and ``mds-*``: about 2 + 4 minutes once on 2 cores, torch from the CPU wheel on this
machine's disk; ``peers`` took 68 s with pip's cache off, as on a fresh machine, 109 s under load),
then runs every peer's script on 200 small samples and 12 images: a setup, one round of every
figure, and the peak-RSS process. No skip: a venv that cannot be built fails the test (CI builds
them; they stay cached between runs on one machine). Well under a minute once the venvs exist.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import peer_env

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    f"{what}_{kind}_s" for what in ("write", "read", "shuffled", "random") for kind in ("small", "img")
}
SYNCS = {"sync_small_s", "sync_img_s"}  # a peer's fsync of what it wrote, timed after its write


@pytest.mark.slow
@pytest.mark.peers
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("lib", sorted(peer_env.LIBRARIES))
def test_peer_script_runs_on_a_tiny_dataset(lib: str, tmp_path: Path) -> None:
    python = peer_env.ensure_venv(peer_env.LIBRARIES[lib])
    assert peer_env.versions(peer_env.LIBRARIES[lib])  # the marker records what pip installed
    script = ROOT / "benchmarks" / "peers.py"
    env = peer_env.clean_env({"HF_HOME": str(tmp_path / "hf")})
    commands = [
        {"cmd": "setup", "dir": str(tmp_path), "n_small": 200, "n_img": 12},
        {"cmd": "round", "k": 0},
        {"cmd": "quit"},
    ]
    out = subprocess.run(
        [str(python), str(script), lib, "serve"],
        input="".join(json.dumps(c) + "\n" for c in commands),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    setup, round0 = (json.loads(line) for line in out.stdout.splitlines())
    # the same data as ours: run.py's generators, the digest computed here with our numpy
    from benchmarks.peers import digest, image_data, small_data

    assert setup["digest"] == digest(small_data(200), image_data(12))
    assert 100 < setup["small_bytes"] / 200 < 10_000  # webdataset: 3 members with PAX headers, ~6 KB
    assert setup["img_bytes"] >= 12 * 3 * 224 * 224  # no compression anywhere
    assert set(round0) == FIGURES | SYNCS and all(v > 0 for v in round0.values())

    rss = subprocess.run(
        [str(python), str(script), lib, "rss", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert rss.returncode == 0, rss.stderr[-3000:]
    got = json.loads(rss.stdout.splitlines()[-1])
    assert got["samples"] == 12 and got["peak_mb"] >= got["base_mb"] > 10


def test_our_side_and_the_rows(tmp_path: Path) -> None:
    """atdata-lab's side of the section on tiny data, and the table made from it. The peers' numbers
    here are our own figures scaled (a stand-in: the real ones come from the test above)."""
    from benchmarks.peer_bench import Ours, peer_rows
    from benchmarks.run import ExperimentSample, ImageSample

    ours = Ours(ExperimentSample, ImageSample)
    info = ours.setup(tmp_path, 300, 4)
    fig = ours.round(0, info["columns"] is True)
    assert set(fig) >= FIGURES and all(v > 0 for v in fig.values())
    fig.update(
        raw_img_s=fig["read_img_s"] / 2,
        small_bytes=info["small_bytes"],
        img_bytes=info["img_bytes"],
        gzip_bytes=info["gzip_bytes"],
    )
    fig["rss"] = {"peak_mb": 70.0, "base_mb": 40.0}
    half = {k: (v * 2 if k.endswith("_s") else v) for k, v in fig.items()}  # a peer twice as slow
    res = {
        "n_small": 300,
        "n_img": 4,
        "ours": fig,
        "lance": half,
        "hf": half,
        "wds": "not measured: x",
        "mds": half,
        "lit": half,
    }
    rows: list[tuple] = []
    peer_rows(lambda *r: rows.append(r), res)
    by_name = {r[0].split(",")[0].split(" (")[0]: r for r in rows}
    assert "2.00x" in by_name["small ordered read"][3]
    assert "0.50x" in by_name["random access to sample k"][3]  # lower is better: ours / best
    assert "webdataset: not measured: x" in by_name["small ordered read"][2]
    # a ratio of another form of ours against the best peer is kept, and names that peer
    small_write = by_name["small write"][3]  # both ratios to Lance: as written, and with its files synced
    assert re.search(r"; columns [\d.]+x Lance \([\d.]+x Lance \+ fsync of its files\)$", small_write)
    assert by_name["bytes on disk per small sample"][3].endswith("x Lance")  # the gzip ratio's peer
    assert all(r[3] != "—" and r[4] != "—" for r in rows)  # every figure: a ratio and a target
    assert len(rows) == 10
