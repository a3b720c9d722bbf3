"""Paths to the data written by the real atdata 0.7 (copied into tests/fixtures/ from ../shared)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "atdata-0.7"


def fixture_path(name: str) -> Path:
    p = FIXTURES / name
    if not p.exists():
        alt = ROOT.parent / "shared" / "fixtures" / "atdata-0.7" / name
        if alt.exists():
            return alt
        pytest.skip(
            f"fixture {name} is in neither tests/fixtures/atdata-0.7 nor ../shared/fixtures/atdata-0.7"
        )
    return p


@cache
def expected() -> dict:
    return json.loads(fixture_path("expected.json").read_text())


def decode_expected(v):
    """expected.json's convention -> Python values (arrays, bytes)."""
    if isinstance(v, dict) and "dtype" in v and "data" in v:
        return np.array(v["data"], dtype=np.dtype(v["dtype"])).reshape(v["shape"])
    if isinstance(v, dict) and "bytes_hex" in v:
        return bytes.fromhex(v["bytes_hex"])
    return v


def assert_value_equal(actual, want, where=""):
    if isinstance(want, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{where}: expected an array, got {type(actual).__name__}"
        assert actual.dtype == want.dtype, f"{where}: dtype {actual.dtype} != {want.dtype}"
        assert actual.shape == want.shape, f"{where}: shape {actual.shape} != {want.shape}"
        assert np.array_equal(actual, want, equal_nan=want.dtype.kind in "fc"), f"{where}: values differ"
    else:
        assert actual == want, f"{where}: {actual!r} != {want!r}"
