"""The NDArray payload format: every dtype round-trips; hostile headers fail fast and cleanly."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdata_lab.errors import AtdataLabError
from atdata_lab.ndarray_codec import NDArrayFormatError, decode_ndarray, encode_ndarray

DTYPES = [
    "<f4",
    ">f4",
    "<f8",
    ">i4",
    "|u1",
    "|i1",
    "<u2",
    ">u8",
    "<c8",
    ">c16",
    "|b1",
    "<f2",
    "<i8",
    "<M8[ms]",
    "<m8[s]",
    "|S5",
    "<U3",
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 4), (2, 3, 4)])
def test_round_trip_every_dtype_and_shape(dtype, shape):
    rng = np.random.default_rng(0)
    arr = np.zeros(shape, dtype=dtype)
    if arr.size and arr.dtype.kind in "iuf":
        arr[...] = rng.integers(0, 100, size=shape)
    out = decode_ndarray(encode_ndarray(arr))
    assert out.dtype == arr.dtype and out.dtype.str == np.dtype(dtype).str
    assert out.shape == arr.shape
    assert np.array_equal(out, arr)
    assert out.flags.writeable


def test_header_layout_matches_atdata():
    arr = np.arange(6, dtype="<i4").reshape(2, 3)
    b = encode_ndarray(arr)
    assert b[:1] == bytes([3]) and b[1:4] == b"<i4" and b[4] == 2
    assert struct.unpack_from("<2q", b, 5) == (2, 3)
    assert b[21:] == arr.tobytes()


def test_non_contiguous_input_is_stored_c_order():
    arr = np.arange(12, dtype=np.float64).reshape(3, 4).T
    assert np.array_equal(decode_ndarray(encode_ndarray(arr)), arr)


def test_npy_payloads_are_read():
    arr = np.arange(10, dtype=">f8").reshape(2, 5)
    buf = io.BytesIO()
    np.save(buf, arr)
    assert np.array_equal(decode_ndarray(buf.getvalue()), arr)


def _header(dtype=b"<f4", ndim=1, shape=(4,)):
    return bytes([len(dtype)]) + dtype + bytes([ndim]) + struct.pack(f"<{len(shape)}q", *shape)


@pytest.mark.parametrize(
    "payload, words",
    [
        (b"", "too short"),
        (_header(ndim=200, shape=()), "200 dimensions"),
        (_header(shape=(2**40,)), "bytes follow"),
        (_header(dtype=b"|O") + bytes(8), "not allowed"),
        (_header(dtype=b"\xff\xfe"), "invalid dtype"),
        (_header(dtype=b"zz9"), "invalid dtype"),
        (_header(shape=(-1,)), "negative"),
        (_header(ndim=3, shape=(1,)), "payload ends"),
        (_header(shape=(4,)) + bytes(15), "bytes follow"),
        (bytes([200]) + b"<f4", "declares a dtype"),
    ],
)
def test_hostile_headers_raise_our_error(payload, words):
    with pytest.raises(NDArrayFormatError, match=words) as e:
        decode_ndarray(payload)
    assert isinstance(e.value, AtdataLabError) and isinstance(e.value, ValueError)


def test_object_arrays_cannot_be_written():
    with pytest.raises(NDArrayFormatError):
        encode_ndarray(np.array([object()], dtype=object))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_decoder_only_raises_our_errors(data):
    try:
        decode_ndarray(data)
    except NDArrayFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES[:13]),
    shape=st.lists(st.integers(0, 4), max_size=4).map(tuple),
)
def test_property_round_trip(dtype, shape):
    arr = (np.arange(int(np.prod(shape)) if shape else 1) % 7).astype(dtype).reshape(shape)
    out = decode_ndarray(encode_ndarray(arr))
    assert out.dtype.str == arr.dtype.str and out.shape == arr.shape and np.array_equal(out, arr)
