"""The zero-copy map reader agrees with msgpack on every map, and fails cleanly on anything else."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdata_lab.msgpack_view import unpack_map_views

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=300)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=40), values, max_size=20))
def test_agrees_with_msgpack(d):
    raw = msgpack.packb(d, use_bin_type=True)
    got = unpack_map_views(raw)
    want = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    assert list(got) == list(want)
    for k, v in want.items():
        g = got[k]
        assert (bytes(g) if isinstance(g, memoryview) else g) == v


def test_bin_values_are_views_not_copies():
    raw = msgpack.packb({"img": b"\x01" * 100_000, "n": 3}, use_bin_type=True)
    got = unpack_map_views(raw)
    assert isinstance(got["img"], memoryview) and got["img"].obj is raw and got["n"] == 3


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_only_raises_value_error(data):
    try:
        unpack_map_views(data)
    except ValueError:
        pass


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81",
        b"\x81\xa1a",
        b"\x81\xa1a\xc6\xff\xff\xff\xff",
        b"\xdf\xff\xff\xff\xff",
        b"\x81\xa1a\xdd\xff\xff\xff\xff",
        b"\x91\x01",
        b"\x80\x00",
    ],
)
def test_truncated_or_lying_headers(data):
    with pytest.raises(ValueError):
        unpack_map_views(data)


def test_deep_nesting_is_refused():
    raw = b"\x81\xa1a" + b"\x91" * 200 + b"\x01"
    with pytest.raises(ValueError, match="deep"):
        unpack_map_views(raw)
