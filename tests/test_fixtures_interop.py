"""Data written by the real atdata 0.7 reads here, exactly; and our encoding is byte-identical."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.schema import Schema
from tests.support.fixtures import assert_value_equal, decode_expected, expected, fixture_path


@atdata.packable
class ExperimentSample:
    """A sample from a scientific experiment."""

    measurement: NDArray
    timestamp: float
    sensor_id: str


def _fixture_urls(kind):
    return [str(fixture_path(f)) for f in expected()[kind]["files"]]


@pytest.mark.parametrize("kind", ["experiment", "alltypes"])
def test_every_fixture_sample_decodes_equal_to_expected(kind):
    ds = atdata.Dataset(_fixture_urls(kind))  # schema-less: DictSample
    want = expected()[kind]["samples"]
    got = list(ds.ordered())
    assert len(got) == len(want)
    for i, (s, w) in enumerate(zip(got, want)):
        assert list(s.keys()) == list(w.keys()), f"sample {i}: field order"
        for k, v in w.items():
            assert_value_equal(s[k], decode_expected(v), f"{kind}[{i}].{k}")


def test_typed_reading_and_batches_match_expected():
    ds = atdata.Dataset[ExperimentSample](_fixture_urls("experiment"))
    want = expected()["experiment"]["samples"]
    assert len(ds) == 1000
    batches = list(ds.ordered(batch_size=32))
    assert [len(b) for b in batches][:2] == [32, 32]
    stacked = np.concatenate([b.measurement for b in batches])
    assert stacked.shape == (1000, 64) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[17], decode_expected(want[17]["measurement"]))
    assert sum((b.sensor_id for b in batches), []) == [w["sensor_id"] for w in want]
    # random access through the offset index
    assert ds[999].timestamp == want[999]["timestamp"]
    assert_value_equal(ds[500].measurement, decode_expected(want[500]["measurement"]))


def test_our_encoding_is_byte_identical_to_atdata():
    """Re-encoding every fixture sample reproduces atdata's msgpack bytes exactly."""
    import tarfile

    with tarfile.open(fixture_path("experiment-000000.tar")) as tf:
        members = [m for m in tf.getmembers() if m.name.endswith(".msgpack")][:50]
        for m in members:
            raw = tf.extractfile(m).read()
            sample = ExperimentSample.from_bytes(raw)
            assert sample.packed == raw


def test_alltypes_generated_from_local_schema_reads_every_sample():
    schemas = json.loads(fixture_path("local_schemas.json").read_text())
    for name, rec in schemas.items():
        schema = Schema.from_record(rec)
        assert schema.ref == rec["$ref"]
        T = schema.to_type()
        assert T.__name__ == name
        kind = "alltypes" if name == "AllTypes" else "experiment"
        ds = atdata.Dataset[T](_fixture_urls(kind))
        want = expected()[kind]["samples"]
        for i, s in enumerate(ds.ordered()):
            for k, v in want[i].items():
                assert_value_equal(getattr(s, k), decode_expected(v), f"{name}[{i}].{k}")
        # batches work for the generated type, including Optional arrays mixing None
        for b in ds.ordered(batch_size=7):
            assert len(b) <= 7
            if name == "AllTypes":
                assert b.image.shape[1:] == (8, 6, 3) and b.image.dtype == np.uint8
                assert any(m is None for m in b.mask)


def test_alltypes_typed_class_written_here_reads_in_both_directions(tmp_path):
    from typing import Optional

    @atdata.packable
    class AllTypes:
        image: NDArray
        label: str
        count: int
        score: float
        flag: bool
        raw: bytes
        tags: list[str]
        weights: list[float]
        mask: Optional[NDArray] = None
        note: Optional[str] = None

    src = list(atdata.Dataset[AllTypes](_fixture_urls("alltypes")).ordered())
    out = atdata.write_samples(src, tmp_path / "alltypes.tar")
    again = list(out.ordered())
    assert len(again) == len(src) == 40
    for a, b in zip(src, again):
        assert a.packed == b.packed
    # the msgpack bytes equal atdata's own
    import tarfile

    with tarfile.open(fixture_path("alltypes.tar")) as tf:
        raws = [tf.extractfile(m).read() for m in tf.getmembers() if m.name.endswith(".msgpack")]
    assert [s.packed for s in src] == raws
    assert msgpack.unpackb(raws[0])  # sanity
