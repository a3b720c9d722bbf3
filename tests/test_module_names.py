"""atdata's module-level names: schema_to_type, generate_cid/verify_cid, verify_checksums, Packable,
and its error names as aliases in our one hierarchy."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.entry import IndexEntry


@atdata.packable
class Row:
    name: str
    v: NDArray


def test_error_aliases_are_one_hierarchy():
    assert atdata.AtdataError is atdata.AtdataLabError
    for err in (
        atdata.SchemaError,
        atdata.SampleKeyError,
        atdata.PartialFailureError,
        atdata.LensNotFoundError,
    ):
        assert issubclass(err, atdata.AtdataError)
    assert issubclass(atdata.SampleKeyError, KeyError)
    for name in (
        "AtdataError",
        "SampleKeyError",
        "PartialFailureError",
        "Packable",
        "schema_to_type",
        "generate_cid",
        "verify_cid",
        "verify_checksums",
        "lens",
        "LensNetwork",
    ):
        assert name in atdata.__all__ and hasattr(atdata, name)


def test_generate_and_verify_cid():
    cid = atdata.generate_cid({"name": "test", "value": 42})
    assert cid == "bafyreidnzhwcbncg3avwjjao5o6wx4zhnksmxhdo6w5iaqupexnmzdlb54"  # atdata 0.7 gives the same
    assert atdata.verify_cid(cid, {"name": "test", "value": 42})
    assert not atdata.verify_cid(cid, {"name": "other", "value": 42})
    with pytest.raises(ValueError):
        atdata.generate_cid({"x": object()})
    assert not atdata.verify_cid(cid, {"x": object()})


def test_schema_to_type_round_trips_a_record():
    rec = Row.schema().to_record()
    T = atdata.schema_to_type(rec)
    assert T is atdata.schema_to_type(rec) and T is not atdata.schema_to_type(rec, use_cache=False)
    s = T(name="a", v=np.arange(3))
    assert T.from_bytes(s.packed).name == "a"
    with pytest.raises(ValueError):
        atdata.schema_to_type({"name": "x"})


def test_packable_protocol():
    assert isinstance(Row(name="a", v=np.zeros(1)), atdata.Packable)
    assert not isinstance(object(), atdata.Packable)


def test_verify_checksums(tmp_path):
    ds = atdata.write_samples([Row(name=str(i), v=np.zeros(2)) for i in range(4)], tmp_path / "d", maxcount=2)
    sums = [hashlib.sha256(open(u, "rb").read()).hexdigest() for u in ds.urls]
    entry = IndexEntry(
        name="d",
        cid="c",
        data_urls=[*ds.urls, str(tmp_path / "gone.tar")],
        schema_ref="x",
        shard_checksums=[sums[0], "0" * 64, "1" * 64],
    )
    got = atdata.verify_checksums(entry)
    assert got[ds.urls[0]] == "ok" and got[ds.urls[1]] == "mismatch"
    assert got[str(tmp_path / "gone.tar")].startswith("error:")
    entry.shard_checksums = [sums[0]]
    assert atdata.verify_checksums(entry)[ds.urls[1]] == "skipped"
