"""Shards written by atdata-lab load in the real atdata 0.7.0b1 with equal values.

atdata needs Python 3.12: the reference venv is built once (cached) with a pyenv 3.12; where no
3.12 interpreter exists the test skips and says so.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from tests.support import atdata_reference as ref
from tests.support.fixtures import assert_value_equal, decode_expected

pytestmark = pytest.mark.slow


@atdata.packable
class Mixed:
    big: NDArray
    img: NDArray
    half: NDArray
    label: str
    count: int
    score: float
    flag: bool
    raw: bytes
    tags: list[str]
    weights: list[float]
    mask: Optional[NDArray] = None
    note: Optional[str] = None


SPEC = {
    "name": "Mixed",
    "fields": [
        {"name": "big", "kind": "ndarray"},
        {"name": "img", "kind": "ndarray"},
        {"name": "half", "kind": "ndarray"},
        {"name": "label", "kind": "str"},
        {"name": "count", "kind": "int"},
        {"name": "score", "kind": "float"},
        {"name": "flag", "kind": "bool"},
        {"name": "raw", "kind": "bytes"},
        {"name": "tags", "kind": "list[str]"},
        {"name": "weights", "kind": "list[float]"},
        {"name": "mask", "kind": "optional[ndarray]"},
        {"name": "note", "kind": "optional[str]"},
    ],
}


def mixed(i):
    rng = np.random.default_rng(i)
    return Mixed(
        big=rng.standard_normal((2, 3)).astype(">f8"),
        img=rng.integers(0, 255, (4, 4, 3), dtype=np.uint8),
        half=rng.standard_normal(5).astype(np.float16),
        label=f"é{i}✓",
        count=-i * 10**12,
        score=i / 7,
        flag=bool(i % 2),
        raw=bytes(range(i % 5)),
        tags=[f"t{j}" for j in range(i % 3)],
        weights=[j / 3 for j in range(i % 4)],
        mask=None if i % 3 == 0 else np.eye(2, dtype=bool),
        note=None if i % 2 else f"n{i}",
    )


def test_atdata_reads_our_shards_with_equal_values(tmp_path):
    ref.require_atdata_venv()
    samples = [mixed(i) for i in range(30)]
    ds = atdata.write_samples(samples, tmp_path / "mixed", maxcount=12)
    got = ref.read_shards_with_atdata(SPEC, ds.urls)
    assert len(got) == 30
    for i, (s, g) in enumerate(zip(samples, got)):
        for f in SPEC["fields"]:
            want = getattr(s, f["name"])
            assert_value_equal(decode_expected(g[f["name"]]), want, f"sample {i}.{f['name']}")


def test_atdata_reads_an_index_written_tutorial_dataset():
    ref.require_atdata_venv()
    from tests.conformance.index_suite import experiment

    entry = atdata.Index().write(experiment(1000), name="experiment-2024-001", maxcount=500, progress=False)
    spec = {
        "name": "ExperimentSample",
        "fields": [
            {"name": "measurement", "kind": "ndarray"},
            {"name": "timestamp", "kind": "float"},
            {"name": "sensor_id", "kind": "str"},
        ],
    }
    got = ref.read_shards_with_atdata(spec, entry.data_urls)
    assert len(got) == 1000 and got[999]["timestamp"] == 999.0
    assert decode_expected(got[0]["measurement"]).dtype == np.float32
